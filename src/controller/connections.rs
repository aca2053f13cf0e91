//! Which DLI client serves a request: its `spec.connectionRef` Secret (in its own namespace
//! only) or the operator's default connection. Clients are cached per Secret version so IAM
//! tokens are reused, and the Secret is read on every reconcile so a fixed one just works.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};

use crate::api::JobStopRequest;
use crate::connection::Connection;
use crate::dli::{ClientOptions, DliClient};
use crate::metrics::Metrics;

/// Why a request has no usable connection. Messages name keys and Secrets, never values.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionProblem {
    /// The user must fix something. Before the stop call the request waits in `Pending`;
    /// after it (confirming, resolving) it keeps its phase and retries.
    #[error("{0}")]
    Invalid(String),
    /// The API server could not be asked; try again.
    #[error("cannot read Secret {namespace}/{name}: {source}")]
    Unreachable {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The default connection of the operator.
#[derive(Debug)]
pub enum DefaultConnection {
    /// From the `DLI_*` environment variables, read once at start.
    Env(Arc<DliClient>),
    /// A Secret in the operator's namespace.
    Secret { namespace: String, name: String },
}

/// Clients by Secret (namespace, name), with the Secret version each was built from.
type ClientCache = HashMap<(String, String), (String, Arc<DliClient>)>;

pub struct Connections {
    client: Client,
    default: DefaultConnection,
    options: ClientOptions,
    metrics: Metrics,
    cache: Mutex<ClientCache>,
}

impl Connections {
    pub fn new(
        client: Client,
        default: DefaultConnection,
        options: ClientOptions,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            default,
            options,
            metrics,
            cache: Mutex::default(),
        }
    }

    /// The client for one request.
    pub async fn for_request(
        &self,
        request: &JobStopRequest,
    ) -> Result<Arc<DliClient>, ConnectionProblem> {
        match (&request.spec.connection_ref, &self.default) {
            (Some(reference), _) => {
                let namespace = request.namespace().unwrap_or_default();
                self.client_from_secret(&namespace, &reference.name, "spec.connectionRef")
                    .await
            }
            (None, DefaultConnection::Env(client)) => Ok(client.clone()),
            (None, DefaultConnection::Secret { namespace, name }) => {
                self.client_from_secret(namespace, name, "the operator's default connection")
                    .await
            }
        }
    }

    async fn client_from_secret(
        &self,
        namespace: &str,
        name: &str,
        role: &str,
    ) -> Result<Arc<DliClient>, ConnectionProblem> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = match secrets.get_opt(name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                return Err(ConnectionProblem::Invalid(format!(
                    "Secret {namespace}/{name} ({role}) does not exist"
                )));
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Err(ConnectionProblem::Invalid(format!(
                    "the operator may not read Secret {namespace}/{name} ({role}): grant it `get` on \
                     secrets in {namespace} (see deploy/overlays/cluster-secrets)"
                )));
            }
            Err(source) => {
                return Err(ConnectionProblem::Unreachable {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    source,
                });
            }
        };
        let version = format!(
            "{}/{}",
            secret.uid().unwrap_or_default(),
            secret.resource_version().unwrap_or_default()
        );
        let key = (namespace.to_string(), name.to_string());
        if let Some((cached_version, client)) = self.lock_cache().get(&key)
            && *cached_version == version
        {
            return Ok(client.clone());
        }
        let data = secret.data.unwrap_or_default();
        let connection = Connection::from_secret_data(&data).map_err(|error| {
            ConnectionProblem::Invalid(format!("Secret {namespace}/{name} ({role}): {error}"))
        })?;
        let client = DliClient::new(connection, self.options.clone())
            .map(|client| Arc::new(client.with_metrics(self.metrics.clone())))
            .map_err(|error| {
                ConnectionProblem::Invalid(format!("Secret {namespace}/{name} ({role}): {error}"))
            })?;
        self.lock_cache().insert(key, (version, client.clone()));
        Ok(client)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ClientCache> {
        // A panic while holding this lock leaves only a cache behind; its data is still valid.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
