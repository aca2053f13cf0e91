//! How a generation ends when time runs out: tries that never reached DLI stop at the
//! delivery deadline (a policy fixed days later must not suddenly stop the jobs), and
//! resolving an unanswered call stops at the resolve timeout (DLI's job detail unreadable for
//! good must not keep the request open). Pure, like `status`.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::status::{Verdict, apply_verdict, call_jobs, summarize};
use crate::api::conditions::reason;
use crate::api::conditions::{self, READY};
use crate::api::{JobResult, JobStopRequestSpec, JobStopRequestStatus, Phase, SubmissionState};

/// No try of `generation` reached DLI before its delivery deadline: final, `Failed`, reason
/// `StopNeverSent`; every job not stopped, and the last try's trouble kept in the message.
pub fn never_sent(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    let attempts = status.submission.as_ref().map_or(0, |s| s.attempts);
    let last_try = conditions::find(&old.conditions, READY)
        .map(|ready| ready.message.clone())
        .unwrap_or_default();
    status.observed_generation = Some(generation);
    status.response.clear();
    status.results = call_jobs(old, spec)
        .iter()
        .map(|job| JobResult {
            is_success: Some(false),
            message: Some("not stopped: the stop was never sent".to_string()),
            ..job.result()
        })
        .collect();
    status.summary = Some(summarize(&status.results, false, false));
    apply_verdict(
        &mut status,
        Verdict {
            phase: Phase::Failed,
            reason: reason::STOP_NEVER_SENT,
            message: format!(
                "The stop was never sent: {attempts} attempt(s) in {}s did not reach DLI \
                 (spec.deliveryDeadlineSeconds). Last: {last_try}. Fix the cause, then change \
                 the spec (e.g. spec.nonce) to try again",
                spec.delivery_deadline().as_secs()
            ),
            submitted: false,
        },
        generation,
        now,
    );
    status
}

/// Resolving an unanswered call of `generation` failed for `resolve_timeout`: the outcome is
/// unknown, with the last error in the message; the call is not sent again.
pub fn resolving_gave_up(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    last_error: &str,
    resolve_timeout: Duration,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    status.observed_generation = Some(generation);
    status.response.clear();
    status.error = None;
    status.results = call_jobs(old, spec)
        .iter()
        .map(|job| JobResult {
            message: Some("no answer from DLI and the job's state could not be read".to_string()),
            ..job.result()
        })
        .collect();
    if let Some(submission) = status.submission.as_mut() {
        submission.state = SubmissionState::Ambiguous;
    }
    status.summary = Some(summarize(&status.results, true, false));
    apply_verdict(
        &mut status,
        Verdict {
            phase: Phase::Unknown,
            reason: reason::OUTCOME_UNKNOWN,
            message: format!(
                "The stop call got no answer and the jobs' states could not be read for {}s \
                 (last error: {last_error}); it was not sent again. Check the jobs in DLI, then \
                 change spec.nonce to send the stop again",
                resolve_timeout.as_secs()
            ),
            submitted: false,
        },
        generation,
        now,
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::STALLED;
    use crate::controller::fixtures::{self, time};
    use crate::controller::status::{NotDeliveredReason, ambiguous, claim, not_delivered};

    fn spec(ids: &[i64]) -> JobStopRequestSpec {
        JobStopRequestSpec {
            delivery_deadline_seconds: Some(600),
            ..fixtures::spec(ids)
        }
    }

    fn ready(status: &JobStopRequestStatus) -> (String, String, String) {
        let ready = conditions::find(&status.conditions, READY).expect("ready");
        (
            ready.status.clone(),
            ready.reason.clone(),
            ready.message.clone(),
        )
    }

    #[test]
    fn a_stop_past_its_delivery_deadline_fails_and_says_it_was_never_sent() {
        let spec = spec(&[1, 2]);
        let claimed = claim(&JobStopRequestStatus::default(), &spec, 3, "op-a", &time(0));
        let refused = not_delivered(
            &claimed,
            3,
            NotDeliveredReason::Unauthorized,
            "HTTP 403: the policy denies dli:jobs:stopFlinkJob",
            Duration::from_secs(300),
            &time(1),
        );
        let status = never_sent(&refused, &spec, 3, &time(600));
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.finished_at, Some(time(600)));
        let (ready_status, reason, message) = ready(&status);
        assert_eq!(
            (ready_status.as_str(), reason.as_str()),
            ("False", "StopNeverSent")
        );
        assert!(message.contains("never sent"), "{message}");
        assert!(message.contains("policy denies"), "{message}");
        assert!(message.contains("600s"), "{message}");
        assert_eq!(
            conditions::find(&status.conditions, STALLED).map(|c| c.status.as_str()),
            Some("True")
        );
        assert_eq!(status.summary.map(|s| (s.failed, s.total)), Some((2, 2)));
        assert_eq!(
            status.submission.map(|s| s.state),
            Some(SubmissionState::NotDelivered),
            "the record still says nothing reached DLI"
        );
    }

    #[test]
    fn resolving_that_keeps_failing_ends_unknown_with_the_last_error() {
        let spec = spec(&[1]);
        let claimed = claim(&JobStopRequestStatus::default(), &spec, 1, "op-a", &time(0));
        let waiting = ambiguous(&claimed, 1, "timed out", &time(30));
        let status = resolving_gave_up(
            &waiting,
            &spec,
            1,
            "HTTP 403 DLI.0016: no permission to read jobs",
            Duration::from_secs(600),
            &time(700),
        );
        assert_eq!(status.phase, Some(Phase::Unknown));
        assert_eq!(status.observed_generation, Some(1));
        let (_, reason, message) = ready(&status);
        assert_eq!(reason, "OutcomeUnknown");
        assert!(message.contains("no permission to read jobs"), "{message}");
        assert!(message.contains("spec.nonce"), "{message}");
        assert_eq!(status.summary.map(|s| s.pending), Some(1));
    }
}
