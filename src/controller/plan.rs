//! Which step of the once-per-generation protocol (README, "How it works") applies now.

use std::time::Duration;

use jiff::Timestamp;

use crate::api::{JobStopRequestStatus, SubmissionState};

/// The next step for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The call for this generation is done; only confirmation and TTL may run.
    CallDone,
    /// An earlier try may have reached DLI. Never resend: resolve it read-only.
    Resolve,
    /// Another operator process claimed this try recently and may still be waiting for DLI.
    WaitForClaimant(Duration),
    /// Claim the generation (or the next try after one that did not reach DLI) and call.
    Submit,
}

/// Decides the step from the status alone, so every replica and every restart agrees.
///
/// `claim_grace` is how long another process's in-flight try is given before it is presumed
/// dead: longer than a DLI request can take, so a live claimant is never second-guessed.
pub fn next_step(
    status: Option<&JobStopRequestStatus>,
    generation: i64,
    holder: &str,
    now: Timestamp,
    claim_grace: Duration,
) -> Step {
    let Some(status) = status else {
        return Step::Submit;
    };
    if status.observed_generation == Some(generation) {
        return Step::CallDone;
    }
    let Some(submission) = status
        .submission
        .as_ref()
        .filter(|s| s.generation == generation)
    else {
        return Step::Submit;
    };
    match submission.state {
        SubmissionState::NotDelivered => Step::Submit,
        SubmissionState::Ambiguous | SubmissionState::Answered => Step::Resolve,
        SubmissionState::InFlight => {
            if submission.claimed_by.as_deref() == Some(holder) {
                // This process makes at most one try per object at a time, so its own
                // unanswered claim means the try ended without its answer being written.
                return Step::Resolve;
            }
            let attempt_at = submission
                .last_attempt_at
                .as_ref()
                .or(submission.claimed_at.as_ref());
            let waited = attempt_at.map_or(Duration::MAX, |t| {
                Duration::try_from(now.duration_since(t.0)).unwrap_or(Duration::ZERO)
            });
            if waited < claim_grace {
                Step::WaitForClaimant(claim_grace - waited)
            } else {
                Step::Resolve
            }
        }
    }
}

/// Delay before the next try after `attempts` tries that did not reach DLI: exponential from
/// `initial`, capped at `max`, and never shorter than DLI's `Retry-After` unless that exceeds
/// `max`.
pub fn retry_backoff(
    attempts: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let backoff = initial.saturating_mul(1 << exponent).min(max);
    retry_after.map_or(backoff, |after| backoff.max(after.min(max)))
}

/// Delay before the next confirmation poll: a third of the time since DLI answered, between
/// `min` and a minute, so fast stops are seen quickly and slow ones are not polled hard.
pub fn confirm_poll_delay(since_answer: Duration, min: Duration) -> Duration {
    (since_answer / 3).clamp(min, Duration::from_secs(60).max(min))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::Submission;

    const GRACE: Duration = Duration::from_secs(40);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("valid timestamp")
    }

    fn with_submission(
        generation: i64,
        state: SubmissionState,
        by: &str,
        at_second: i64,
    ) -> JobStopRequestStatus {
        JobStopRequestStatus {
            submission: Some(Submission {
                generation,
                claimed_by: Some(by.into()),
                claimed_at: Some(Time(at(at_second))),
                last_attempt_at: Some(Time(at(at_second))),
                state,
                ..Submission::default()
            }),
            ..JobStopRequestStatus::default()
        }
    }

    #[test]
    fn a_new_object_is_submitted() {
        assert_eq!(next_step(None, 1, "a", at(0), GRACE), Step::Submit);
        assert_eq!(
            next_step(Some(&JobStopRequestStatus::default()), 1, "a", at(0), GRACE),
            Step::Submit
        );
        // How the API server returns a new request: the schema default, nothing done.
        let defaulted = JobStopRequestStatus {
            observed_generation: Some(0),
            ..JobStopRequestStatus::default()
        };
        assert_eq!(
            next_step(Some(&defaulted), 1, "a", at(0), GRACE),
            Step::Submit
        );
    }

    #[test]
    fn an_observed_generation_is_never_called_again() {
        let mut status = with_submission(3, SubmissionState::Answered, "a", 0);
        status.observed_generation = Some(3);
        assert_eq!(
            next_step(Some(&status), 3, "b", at(100), GRACE),
            Step::CallDone
        );
    }

    #[test]
    fn a_new_generation_is_claimed_again() {
        let mut status = with_submission(3, SubmissionState::Answered, "a", 0);
        status.observed_generation = Some(3);
        assert_eq!(
            next_step(Some(&status), 4, "a", at(100), GRACE),
            Step::Submit
        );
    }

    #[test]
    fn an_unanswered_claim_is_resolved_never_resent() {
        let own = with_submission(2, SubmissionState::InFlight, "a", 0);
        assert_eq!(next_step(Some(&own), 2, "a", at(1), GRACE), Step::Resolve);
        let ambiguous = with_submission(2, SubmissionState::Ambiguous, "b", 0);
        assert_eq!(
            next_step(Some(&ambiguous), 2, "a", at(1), GRACE),
            Step::Resolve
        );
    }

    #[test]
    fn another_process_gets_its_grace_before_its_claim_is_resolved() {
        let theirs = with_submission(2, SubmissionState::InFlight, "b", 0);
        assert_eq!(
            next_step(Some(&theirs), 2, "a", at(10), GRACE),
            Step::WaitForClaimant(Duration::from_secs(30))
        );
        assert_eq!(
            next_step(Some(&theirs), 2, "a", at(40), GRACE),
            Step::Resolve
        );
    }

    #[test]
    fn a_try_that_did_not_reach_dli_is_retried() {
        let status = with_submission(2, SubmissionState::NotDelivered, "b", 0);
        assert_eq!(next_step(Some(&status), 2, "a", at(1), GRACE), Step::Submit);
    }

    #[test]
    fn backoff_doubles_is_capped_and_honours_retry_after() {
        let (initial, max) = (Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(retry_backoff(1, initial, max, None), Duration::from_secs(2));
        assert_eq!(retry_backoff(3, initial, max, None), Duration::from_secs(8));
        assert_eq!(retry_backoff(30, initial, max, None), max);
        assert_eq!(
            retry_backoff(1, initial, max, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            retry_backoff(1, initial, max, Some(Duration::from_secs(3600))),
            max
        );
    }

    #[test]
    fn confirmation_polls_fast_first_then_slower() {
        let min = Duration::from_secs(10);
        assert_eq!(confirm_poll_delay(Duration::ZERO, min), min);
        assert_eq!(
            confirm_poll_delay(Duration::from_secs(90), min),
            Duration::from_secs(30)
        );
        assert_eq!(
            confirm_poll_delay(Duration::from_secs(3600), min),
            Duration::from_secs(60)
        );
    }
}
