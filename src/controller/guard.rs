//! Requests the operator cannot read (a status written by hand, or stored under an older schema
//! that allowed values the types cannot hold). Without a guard one such object fails every list
//! and watch of the kind, and reconciling stops for every request in the cluster; with it, the
//! object is reported once per version and left alone while the others go on.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::watcher::Event;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::api::JobStopRequest;

/// The Event reason of an unreadable request.
pub const REASON: &str = "InvalidObject";

/// Longest error text put into a log line or an Event note.
const ERROR_LIMIT: usize = 500;

/// What is known of the unreadable requests, by uid: the resourceVersion that could not be
/// read, or `None` once the object was deleted (its last readable copy may linger in the
/// watch cache until the next relist, and must not be reconciled).
#[derive(Clone, Default)]
pub struct InvalidRequests(Arc<Mutex<HashMap<String, Option<String>>>>);

/// An unreadable object version seen for the first time: what to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub reference: ObjectReference,
    pub error: String,
}

impl Unreadable {
    /// The Warning Event that tells the user what to fix.
    pub fn event(&self) -> KubeEvent {
        KubeEvent {
            type_: EventType::Warning,
            reason: REASON.to_string(),
            note: Some(format!(
                "The operator cannot read this request and skips it: {}. Fix or delete it.",
                self.error
            )),
            action: "Read".to_string(),
            secondary: None,
        }
    }
}

/// A request as the watch delivers it: read, or the reason it cannot be and its metadata.
///
/// kube's own `DeserializeGuard` buffers every object as a generic value tree, copies that
/// tree and reads the request from the copy; on a backlog that was a sixth of the operator's
/// CPU. This guard keeps the object's JSON text as it came and reads the request straight from
/// it, reading the text a second time only for an object that failed. It reads only from
/// serde_json's own reader, which is what kube parses lists and watch lines with; the API server
/// writes a watch line's `type` before its `object`, so the object is never buffered first.
#[derive(Clone, Debug)]
pub struct Guarded(pub DeserializeGuard<JobStopRequest>);

/// What an unreadable object still tells: who it is.
#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: ObjectMeta,
}

impl<'de> Deserialize<'de> for Guarded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Box::<RawValue>::deserialize(deserializer)?;
        let object = match serde_json::from_str::<JobStopRequest>(text.get()) {
            Ok(request) => Ok(request),
            Err(error) => {
                let MetadataOnly { metadata } =
                    serde_json::from_str(text.get()).map_err(serde::de::Error::custom)?;
                Err(InvalidObject {
                    error: error.to_string(),
                    metadata,
                })
            }
        };
        Ok(Self(DeserializeGuard(object)))
    }
}

impl Resource for Guarded {
    type DynamicType = ();
    type Scope = <JobStopRequest as Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        JobStopRequest::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        JobStopRequest::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        JobStopRequest::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        JobStopRequest::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

impl InvalidRequests {
    /// Passes a guarded watch event on as the cache should see it: readable objects as they
    /// are, unreadable ones not at all. The second value is the report to make, for an
    /// unreadable object version not reported before.
    pub fn unguard(
        &self,
        event: Event<Guarded>,
    ) -> (Option<Event<JobStopRequest>>, Option<Unreadable>) {
        match event {
            Event::Init => {
                self.entries().clear();
                (Some(Event::Init), None)
            }
            Event::InitDone => (Some(Event::InitDone), None),
            Event::InitApply(Guarded(DeserializeGuard(object))) => match object {
                Ok(request) => {
                    self.forget(&request);
                    (Some(Event::InitApply(request)), None)
                }
                Err(invalid) => (None, self.record(&invalid)),
            },
            Event::Apply(Guarded(DeserializeGuard(object))) => match object {
                Ok(request) => {
                    self.forget(&request);
                    (Some(Event::Apply(request)), None)
                }
                Err(invalid) => (None, self.record(&invalid)),
            },
            Event::Delete(Guarded(DeserializeGuard(object))) => match object {
                Ok(request) => {
                    self.forget(&request);
                    (Some(Event::Delete(request)), None)
                }
                Err(invalid) => {
                    if let Some(uid) = invalid.metadata.uid.clone() {
                        self.entries().insert(uid, None);
                    }
                    (None, None)
                }
            },
        }
    }

    /// Whether the request with this uid is unreadable as stored: a reconcile of an older,
    /// readable copy would act on a version that no longer exists.
    pub fn contains(&self, uid: &str) -> bool {
        self.entries().contains_key(uid)
    }

    /// How many stored requests are unreadable now.
    pub fn count(&self) -> usize {
        self.entries().values().filter(|rv| rv.is_some()).count()
    }

    fn record(&self, invalid: &InvalidObject) -> Option<Unreadable> {
        let uid = invalid.metadata.uid.clone()?;
        let version = invalid.metadata.resource_version.clone();
        let previous = self.entries().insert(uid.clone(), version.clone());
        if previous == Some(version.clone()) {
            return None;
        }
        let meta = &invalid.metadata;
        Some(Unreadable {
            reference: ObjectReference {
                api_version: Some(JobStopRequest::api_version(&()).into_owned()),
                kind: Some(JobStopRequest::kind(&()).into_owned()),
                name: meta.name.clone(),
                namespace: meta.namespace.clone(),
                uid: Some(uid),
                resource_version: version,
                ..ObjectReference::default()
            },
            error: cap(&invalid.error),
        })
    }

    fn forget(&self, request: &JobStopRequest) {
        if let Some(uid) = request.meta().uid.as_deref() {
            self.entries().remove(uid);
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Option<String>>> {
        // A poisoned lock only means another thread panicked mid-update; the map is usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn cap(text: &str) -> String {
    match text.char_indices().nth(ERROR_LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::WatchEvent;
    use serde_json::json;

    use super::*;

    fn guarded(attempts: u64, resource_version: &str) -> Guarded {
        let object = json!({
            "apiVersion": "dli.stop-operator.io/v1alpha1",
            "kind": "JobStopRequest",
            "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "resourceVersion": resource_version},
            "spec": {"jobIds": [1]},
            "status": {"submission": {"generation": 1, "attempts": attempts}},
        });
        serde_json::from_str(&object.to_string())
            .expect("the guard always reads an object with metadata")
    }

    #[test]
    fn an_unreadable_object_is_left_out_and_reported_once_per_version() {
        let invalid = InvalidRequests::default();
        let (event, report) = invalid.unguard(Event::Apply(guarded(5_000_000_000, "3")));
        assert!(event.is_none());
        let report = report.expect("reported");
        assert_eq!(report.reference.name.as_deref(), Some("r"));
        assert_eq!(report.reference.kind.as_deref(), Some("JobStopRequest"));
        assert!(report.error.contains("5000000000"), "{}", report.error);
        assert!(invalid.contains("u-1"));
        assert_eq!(invalid.count(), 1);

        let (_, again) = invalid.unguard(Event::Apply(guarded(5_000_000_000, "3")));
        assert_eq!(again, None, "the same version is reported once");
        let (_, newer) = invalid.unguard(Event::InitApply(guarded(6_000_000_000, "4")));
        assert!(newer.is_some(), "a new version is reported again");
    }

    #[test]
    fn a_readable_version_clears_the_mark_and_passes() {
        let invalid = InvalidRequests::default();
        invalid.unguard(Event::Apply(guarded(5_000_000_000, "3")));
        let (event, report) = invalid.unguard(Event::Apply(guarded(1, "4")));
        assert!(matches!(event, Some(Event::Apply(_))));
        assert_eq!(report, None);
        assert!(!invalid.contains("u-1"));
        assert_eq!(invalid.count(), 0);
    }

    #[test]
    fn a_deleted_unreadable_object_stays_skipped_until_the_next_relist() {
        let invalid = InvalidRequests::default();
        invalid.unguard(Event::Apply(guarded(5_000_000_000, "3")));
        let (event, _) = invalid.unguard(Event::Delete(guarded(5_000_000_000, "5")));
        assert!(event.is_none());
        assert!(invalid.contains("u-1"));
        assert_eq!(invalid.count(), 0);
        invalid.unguard(Event::Init);
        assert!(!invalid.contains("u-1"));
    }

    #[test]
    fn a_watch_line_carries_readable_and_unreadable_requests() {
        // As the API server writes a watch line: the type first, then the object.
        let line = |attempts: u64| {
            let object = json!({
                "apiVersion": "dli.stop-operator.io/v1alpha1",
                "kind": "JobStopRequest",
                "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "resourceVersion": "7"},
                "spec": {"jobIds": [1]},
                "status": {"phase": "Submitting", "submission": {"generation": 1, "attempts": attempts}},
            });
            format!(r#"{{"type":"MODIFIED","object":{object}}}"#)
        };
        let readable: WatchEvent<Guarded> = serde_json::from_str(&line(2)).expect("a watch line");
        let WatchEvent::Modified(Guarded(DeserializeGuard(Ok(request)))) = readable else {
            panic!("read as a request: {readable:?}");
        };
        assert_eq!(request.spec.job_ids, vec![1]);
        assert_eq!(
            request
                .status
                .and_then(|s| s.submission)
                .map(|s| s.attempts),
            Some(2)
        );

        let unreadable: WatchEvent<Guarded> =
            serde_json::from_str(&line(5_000_000_000)).expect("still a watch line");
        let WatchEvent::Modified(Guarded(DeserializeGuard(Err(invalid)))) = unreadable else {
            panic!("kept as unreadable: {unreadable:?}");
        };
        assert_eq!(invalid.metadata.name.as_deref(), Some("r"));
        assert_eq!(invalid.metadata.resource_version.as_deref(), Some("7"));
        assert!(invalid.error.contains("5000000000"), "{}", invalid.error);
    }

    #[test]
    fn the_event_says_what_to_do() {
        let invalid = InvalidRequests::default();
        let (_, report) = invalid.unguard(Event::Apply(guarded(5_000_000_000, "3")));
        let event = report.expect("reported").event();
        assert_eq!(event.reason, REASON);
        assert!(matches!(event.type_, EventType::Warning));
        assert!(
            event
                .note
                .as_deref()
                .is_some_and(|n| n.ends_with("Fix or delete it.")),
            "{:?}",
            event.note
        );
    }
}
