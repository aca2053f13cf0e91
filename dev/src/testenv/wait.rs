//! Watch-based waiting, so tests react as soon as the server changes an object.

use std::fmt::Debug;
use std::time::Duration;

use kube::Resource;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use serde::de::DeserializeOwned;

use super::TestEnvError;

/// Waits until the object `name` exists and satisfies `cond`, and returns it.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    cond: impl Fn(&K) -> bool,
    timeout: Duration,
) -> Result<K, TestEnvError>
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + 'static,
{
    let what = format!("{} {name}", std::any::type_name::<K>());
    let satisfied = move |obj: Option<&K>| obj.is_some_and(&cond);
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, satisfied)).await {
        Ok(Ok(Some(obj))) => Ok(obj),
        // The condition only matches existing objects, so a match always carries one.
        Ok(Ok(None)) | Err(_) => Err(TestEnvError::Timeout {
            what,
            after: timeout,
        }),
        Ok(Err(source)) => Err(TestEnvError::Watch { what, source }),
    }
}
