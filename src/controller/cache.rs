//! What the watch cache keeps. A request whose current generation is finished (and has no TTL
//! to wait for) needs nothing more from the controller until its spec changes, so it is not
//! kept in memory: memory stays flat however many finished requests accumulate. A spec change
//! makes a new generation, which is not finished, so it enters the cache again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::api::{JobStopRequest, Phase};

/// Whether the controller is done with the request's current generation for good.
pub fn is_settled(request: &JobStopRequest) -> bool {
    let Some(status) = request.status.as_ref() else {
        return false;
    };
    request.metadata.deletion_timestamp.is_none()
        && request.spec.ttl_seconds_after_finished.is_none()
        && status.observed_generation == request.metadata.generation
        && status.phase.is_some_and(Phase::is_final)
}

/// Phases of the settled requests the cache forgot, for the requests-by-phase gauge.
#[derive(Clone, Default)]
pub struct SettledRequests(Arc<Mutex<HashMap<String, Phase>>>);

impl SettledRequests {
    /// Passes a watch event on as the cache should see it: a settled request is dropped
    /// (while listing) or turned into a deletion (when it settles), and remembered by phase.
    pub fn filter(&self, event: Event<JobStopRequest>) -> Option<Event<JobStopRequest>> {
        match event {
            Event::Init => {
                self.phases().clear();
                Some(Event::Init)
            }
            Event::InitApply(request) if is_settled(&request) => {
                self.remember(&request);
                None
            }
            Event::Apply(request) if is_settled(&request) => {
                self.remember(&request);
                Some(Event::Delete(request))
            }
            Event::InitApply(request) => {
                self.forget(&request);
                Some(Event::InitApply(request))
            }
            Event::Apply(request) => {
                self.forget(&request);
                Some(Event::Apply(request))
            }
            Event::Delete(request) => {
                self.forget(&request);
                Some(Event::Delete(request))
            }
            Event::InitDone => Some(Event::InitDone),
        }
    }

    /// How many settled requests are in each phase.
    pub fn count(&self, phase: Phase) -> i64 {
        let count = self.phases().values().filter(|p| **p == phase).count();
        i64::try_from(count).unwrap_or(i64::MAX)
    }

    fn remember(&self, request: &JobStopRequest) {
        if let (Some(uid), Some(phase)) =
            (request.uid(), request.status.as_ref().and_then(|s| s.phase))
        {
            self.phases().insert(uid, phase);
        }
    }

    fn forget(&self, request: &JobStopRequest) {
        if let Some(uid) = request.uid() {
            self.phases().remove(&uid);
        }
    }

    fn phases(&self) -> std::sync::MutexGuard<'_, HashMap<String, Phase>> {
        // Only counts live behind this lock; after a panic elsewhere they are still valid.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(
        uid: &str,
        generation: i64,
        observed: Option<i64>,
        phase: Option<&str>,
        ttl: Option<i64>,
    ) -> JobStopRequest {
        let mut status = json!({});
        if let Some(observed) = observed {
            status["observedGeneration"] = json!(observed);
        }
        if let Some(phase) = phase {
            status["phase"] = json!(phase);
        }
        let mut spec = json!({"jobIds": [1]});
        if let Some(ttl) = ttl {
            spec["ttlSecondsAfterFinished"] = json!(ttl);
        }
        serde_json::from_value(json!({
            "apiVersion": "dli.stop-operator.io/v1alpha1",
            "kind": "JobStopRequest",
            "metadata": {"name": uid, "namespace": "ns", "uid": uid, "generation": generation},
            "spec": spec,
            "status": status,
        }))
        .expect("valid request")
    }

    #[test]
    fn only_a_finished_current_generation_without_ttl_is_settled() {
        assert!(is_settled(&request(
            "a",
            2,
            Some(2),
            Some("Succeeded"),
            None
        )));
        assert!(is_settled(&request("a", 2, Some(2), Some("Unknown"), None)));
        assert!(
            !is_settled(&request("a", 3, Some(2), Some("Succeeded"), None)),
            "a new generation"
        );
        assert!(!is_settled(&request(
            "a",
            2,
            Some(2),
            Some("Confirming"),
            None
        )));
        assert!(
            !is_settled(&request("a", 2, Some(2), Some("Succeeded"), Some(60))),
            "the TTL still needs it"
        );
        assert!(!is_settled(&request("a", 1, None, None, None)));
        assert!(
            !is_settled(&request("a", 1, Some(0), None, None)),
            "a new request as the API server returns it"
        );
    }

    #[test]
    fn the_cache_forgets_settled_requests_and_takes_them_back_on_a_new_generation() {
        let settled = SettledRequests::default();
        let done = request("a", 1, Some(1), Some("Failed"), None);
        assert!(settled.filter(Event::InitApply(done.clone())).is_none());
        assert_eq!(settled.count(Phase::Failed), 1);
        assert!(matches!(
            settled.filter(Event::Apply(done)),
            Some(Event::Delete(_))
        ));

        let changed = request("a", 2, Some(1), Some("Failed"), None);
        assert!(matches!(
            settled.filter(Event::Apply(changed)),
            Some(Event::Apply(_))
        ));
        assert_eq!(settled.count(Phase::Failed), 0);

        let active = request("b", 1, None, None, None);
        assert!(matches!(
            settled.filter(Event::InitApply(active)),
            Some(Event::InitApply(_))
        ));
        settled.filter(Event::InitApply(request(
            "c",
            1,
            Some(1),
            Some("Succeeded"),
            None,
        )));
        assert!(matches!(settled.filter(Event::Init), Some(Event::Init)));
        assert_eq!(
            settled.count(Phase::Succeeded),
            0,
            "a relist starts counting afresh"
        );
    }
}
