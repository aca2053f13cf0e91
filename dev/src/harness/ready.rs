//! Watches a namespace and notes the moment each request is first seen Ready, the way a user
//! running `kubectl wait --for=condition=Ready` would see it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use dli_stop_operator::api::JobStopRequest;
use dli_stop_operator::api::conditions::{self, READY};

/// Whether the request's current generation is Ready.
pub fn is_ready(request: &JobStopRequest) -> bool {
    request.status.as_ref().is_some_and(|status| {
        conditions::find(&status.conditions, READY).is_some_and(|c| {
            c.status == "True" && c.observed_generation == request.metadata.generation
        })
    })
}

/// First-seen-Ready instants by request name, filled by a background watch.
pub struct ReadyTracker {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    task: JoinHandle<()>,
}

impl ReadyTracker {
    pub fn spawn(api: Api<JobStopRequest>) -> ReadyTracker {
        let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(event) = stream.next().await {
                let Ok(request) = event else { continue };
                if is_ready(&request) {
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(request.name_any())
                        .or_insert_with(Instant::now);
                }
            }
        });
        ReadyTracker { seen, task }
    }

    pub fn count(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Waits until `expected` requests were seen Ready or `timeout` passed; returns how many were.
    pub async fn wait_for(&self, expected: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.count() < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.count()
    }

    pub fn snapshot(&self) -> HashMap<String, Instant> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ReadyTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::world::request;
    use dli_stop_operator::api::JobStopRequestStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn with_ready(status: &str, observed: i64, generation: i64) -> JobStopRequest {
        let mut object = request("r", vec![1], false, false);
        object.metadata.generation = Some(generation);
        object.status = Some(JobStopRequestStatus {
            conditions: vec![Condition {
                type_: READY.to_string(),
                status: status.to_string(),
                reason: "StopDelivered".to_string(),
                message: String::new(),
                observed_generation: Some(observed),
                last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            }],
            ..JobStopRequestStatus::default()
        });
        object
    }

    #[test]
    fn only_a_true_ready_of_the_current_generation_counts() {
        assert!(is_ready(&with_ready("True", 2, 2)));
        assert!(!is_ready(&with_ready("True", 1, 2)));
        assert!(!is_ready(&with_ready("False", 2, 2)));
        assert!(!is_ready(&request("r", vec![1], false, false)));
    }
}
