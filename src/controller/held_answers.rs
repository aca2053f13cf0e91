//! Answers this process got for its tries and has not yet written. An answer is kept for its
//! (uid, generation, attempt) until it lands in the status or the stored object shows the
//! claim it answers is no longer this process's open claim; until then the answer, not a
//! guess from job detail, is what gets written, however long the API server is unavailable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::dli_access::CallOutcome;
use super::status as transition;
use crate::api::{JobStopRequest, JobStopRequestSpec, JobStopRequestStatus, SubmissionState};

/// The outcome of one try, waiting to be written.
#[derive(Clone, Debug)]
pub struct HeldAnswer {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// The try's number (`submission.attempts` of its claim).
    pub attempt: u32,
    /// The spec the claim was made for.
    pub spec: JobStopRequestSpec,
    pub outcome: CallOutcome,
    /// When the outcome came.
    pub at: Time,
    /// For a try that did not reach DLI: when to try again.
    pub retry_in: Duration,
}

impl HeldAnswer {
    /// Whether `object` carries the claim this answers, still open: same object, same
    /// generation and try, claimed by `holder`, and no outcome recorded for it.
    pub fn claim_open_in(&self, object: &JobStopRequest, holder: &str) -> bool {
        let status = object.status.as_ref();
        object.uid().as_deref() == Some(self.uid.as_str())
            && status.and_then(|s| s.observed_generation) != Some(self.generation)
            && status.and_then(|s| s.submission.as_ref()).is_some_and(|s| {
                s.generation == self.generation
                    && s.attempts == self.attempt
                    && s.state == SubmissionState::InFlight
                    && s.claimed_by.as_deref() == Some(holder)
            })
    }

    /// The status recording this answer on top of `claimed` (the status with its claim).
    pub fn recorded_on(&self, claimed: &JobStopRequestStatus) -> JobStopRequestStatus {
        let (spec, generation, at) = (&self.spec, self.generation, &self.at);
        match &self.outcome {
            CallOutcome::Delivered(answer) => {
                transition::delivered(claimed, spec, generation, answer, at)
            }
            CallOutcome::Rejected { error, request_id } => transition::rejected(
                claimed,
                spec,
                generation,
                error.clone(),
                request_id.clone(),
                at,
            ),
            CallOutcome::NotDelivered { why, message, .. } => {
                transition::not_delivered(claimed, generation, *why, message, self.retry_in, at)
            }
            CallOutcome::Ambiguous { message } => {
                transition::ambiguous(claimed, generation, message, at)
            }
        }
    }
}

/// The answers held, by object uid; one try per object is made at a time.
#[derive(Clone, Default)]
pub struct HeldAnswers {
    by_uid: Arc<Mutex<HashMap<String, HeldAnswer>>>,
}

impl HeldAnswers {
    pub fn hold(&self, answer: HeldAnswer) {
        self.lock().insert(answer.uid.clone(), answer);
    }

    pub fn get(&self, uid: &str) -> Option<HeldAnswer> {
        self.lock().get(uid).cloned()
    }

    pub fn all(&self) -> Vec<HeldAnswer> {
        self.lock().values().cloned().collect()
    }

    /// Lets `answer` go; a newer answer held for the same object stays.
    pub fn release(&self, answer: &HeldAnswer) {
        let mut held = self.lock();
        if held
            .get(&answer.uid)
            .is_some_and(|h| h.generation == answer.generation && h.attempt == answer.attempt)
        {
            held.remove(&answer.uid);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HeldAnswer>> {
        // A panic while holding this lock leaves a map whose entries are each still whole.
        self.by_uid.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controller::status::NotDeliveredReason;

    fn object(submission: serde_json::Value, observed: Option<i64>) -> JobStopRequest {
        serde_json::from_value(json!({
            "apiVersion": "dli.stop-operator.io/v1alpha1",
            "kind": "JobStopRequest",
            "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "generation": 2},
            "spec": {"jobIds": [7]},
            "status": {"submission": submission, "observedGeneration": observed},
        }))
        .expect("request")
    }

    fn held(generation: i64, attempt: u32) -> HeldAnswer {
        HeldAnswer {
            uid: "u-1".into(),
            namespace: "ns".into(),
            name: "r".into(),
            generation,
            attempt,
            spec: object(json!(null), None).spec,
            outcome: CallOutcome::NotDelivered {
                why: NotDeliveredReason::Throttled,
                message: "HTTP 429".into(),
                retry_after: None,
            },
            at: Time(jiff::Timestamp::UNIX_EPOCH),
            retry_in: Duration::from_secs(2),
        }
    }

    fn claim(generation: i64, attempts: u32, by: &str, state: &str) -> serde_json::Value {
        json!({"generation": generation, "attempts": attempts, "claimedBy": by, "state": state})
    }

    #[test]
    fn an_answer_is_written_only_onto_its_own_open_claim() {
        let answer = held(2, 3);
        assert!(answer.claim_open_in(&object(claim(2, 3, "op-a", "InFlight"), Some(1)), "op-a"));
        let closed = [
            object(claim(2, 3, "op-b", "InFlight"), Some(1)),
            object(claim(2, 4, "op-a", "InFlight"), Some(1)),
            object(claim(3, 3, "op-a", "InFlight"), Some(1)),
            object(claim(2, 3, "op-a", "Ambiguous"), Some(1)),
            object(claim(2, 3, "op-a", "InFlight"), Some(2)),
            object(json!(null), None),
        ];
        for other in &closed {
            assert!(!answer.claim_open_in(other, "op-a"), "{:?}", other.status);
        }
        let mut recreated = object(claim(2, 3, "op-a", "InFlight"), Some(1));
        recreated.metadata.uid = Some("u-2".into());
        assert!(!answer.claim_open_in(&recreated, "op-a"));
    }

    #[test]
    fn releasing_an_old_answer_keeps_a_newer_one() {
        let answers = HeldAnswers::default();
        answers.hold(held(2, 3));
        answers.hold(held(2, 4));
        answers.release(&held(2, 3));
        assert_eq!(answers.get("u-1").map(|a| a.attempt), Some(4));
        answers.release(&held(2, 4));
        assert!(answers.get("u-1").is_none());
    }
}
