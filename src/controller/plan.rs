//! Which step of the once-per-generation protocol (README, "How it works") applies now.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::conditions::{self, READY};
use crate::api::{JobStopRequestSpec, JobStopRequestStatus, Phase, Submission, SubmissionState};

/// The next step for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The call for this generation is done; only confirmation and TTL may run.
    CallDone,
    /// This generation sends exactly what the call already made for an earlier one sent: it
    /// keeps that call's outcome and no call is made.
    Adopt,
    /// An earlier try may have reached DLI. Never resend: resolve it read-only.
    Resolve,
    /// Another operator process claimed this try recently and may still be waiting for DLI.
    WaitForClaimant(Duration),
    /// Tries of this generation kept failing to reach DLI for longer than its delivery
    /// deadline: stop trying; the stop was never sent.
    GiveUp,
    /// Claim the generation (or the next try after one that did not reach DLI) and call.
    Submit,
}

/// What the step depends on besides the status.
#[derive(Clone, Debug)]
pub struct Situation<'a> {
    pub generation: i64,
    /// What this generation's call would send (see `adoption::fingerprint`).
    pub fingerprint: &'a str,
    /// This process, as named in the claims it writes.
    pub holder: &'a str,
    pub now: Timestamp,
    /// How long another process's in-flight try is given before it is presumed dead: longer
    /// than a try can take (see [`TryBounds::claim_grace`]), so a live claimant is never
    /// second-guessed.
    pub claim_grace: Duration,
    /// How long after the first claim of a generation tries that did not reach DLI are
    /// repeated (`spec.deliveryDeadlineSeconds`).
    pub delivery_deadline: Duration,
}

/// Decides the step from the status alone, so every replica and every restart agrees.
pub fn next_step(status: Option<&JobStopRequestStatus>, situation: &Situation<'_>) -> Step {
    let Some(status) = status else {
        return Step::Submit;
    };
    let generation = situation.generation;
    if status.observed_generation == Some(generation) {
        return Step::CallDone;
    }
    let Some(submission) = status.submission.as_ref() else {
        return Step::Submit;
    };
    if submission.generation != generation {
        if submission.fingerprint.as_deref() != Some(situation.fingerprint) {
            return Step::Submit;
        }
        return match submission.state {
            // Nothing of it reached DLI: this generation makes its own first try.
            SubmissionState::NotDelivered => Step::Submit,
            _ if outcome_recorded(status, submission) => Step::Adopt,
            // Its outcome is still to come, and it is this generation's outcome too.
            SubmissionState::InFlight | SubmissionState::Ambiguous => {
                unanswered(submission, situation)
            }
            // Recorded once, but the status has since moved on to another generation: a new
            // call is harmless (jobs found already stopped count as stopped).
            SubmissionState::Answered => Step::Submit,
        };
    }
    match submission.state {
        SubmissionState::NotDelivered => {
            if since(submission.claimed_at.as_ref(), situation.now) >= situation.delivery_deadline {
                Step::GiveUp
            } else {
                Step::Submit
            }
        }
        SubmissionState::Ambiguous | SubmissionState::Answered => Step::Resolve,
        SubmissionState::InFlight => unanswered(submission, situation),
    }
}

/// The step for a try whose answer is not recorded.
fn unanswered(submission: &Submission, situation: &Situation<'_>) -> Step {
    match submission.state {
        SubmissionState::InFlight if submission.claimed_by.as_deref() != Some(situation.holder) => {
            let attempt_at = submission
                .last_attempt_at
                .as_ref()
                .or(submission.claimed_at.as_ref());
            let waited = since(attempt_at, situation.now);
            if waited < situation.claim_grace {
                Step::WaitForClaimant(situation.claim_grace - waited)
            } else {
                Step::Resolve
            }
        }
        // This process makes at most one try per object at a time and keeps the answers it
        // got until they are written, so its own unanswered claim means a try that ended
        // without an answer to keep.
        _ => Step::Resolve,
    }
}

/// Whether the status holds the recorded outcome of the call `submission` made: an observed
/// generation at or after the call's, which the status still describes (a later generation
/// waiting for its connection replaces the results).
fn outcome_recorded(status: &JobStopRequestStatus, submission: &Submission) -> bool {
    let Some(observed) = status.observed_generation else {
        return false;
    };
    let describes_observed = conditions::find(&status.conditions, READY)
        .is_some_and(|ready| ready.observed_generation == Some(observed));
    observed >= submission.generation && describes_observed
}

/// Time from `at` to `now`; all of time when `at` is missing, so a record without its
/// timestamp never waits.
fn since(at: Option<&Time>, now: Timestamp) -> Duration {
    at.map_or(Duration::MAX, |t| {
        Duration::try_from(now.duration_since(t.0)).unwrap_or(Duration::ZERO)
    })
}

/// The time bounds of one try, and the claim grace derived from them.
///
/// A try is: the claim is written, then the call goes out only if the claim landed within
/// `send_window` of being made (an API server that took longer makes the call wait for the
/// next try), then the call takes at most the connect and request timeouts. The IAM token
/// and the connection are ready before the claim, so nothing else can come in between.
/// Another process presumes the claimant dead only after all of that plus a margin for clock
/// skew between replicas and for writing the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TryBounds {
    pub send_window: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// How long after a claim was made its call may still go out.
pub const SEND_WINDOW: Duration = Duration::from_secs(5);
/// Clock skew between replicas and the write of the answer, on top of a try's own bounds.
pub const CLAIM_MARGIN: Duration = Duration::from_secs(10);
/// Claim times are stored in whole seconds: a stored claim may read up to this much older
/// than it is.
const TIMESTAMP_ROUNDING: Duration = Duration::from_secs(1);

impl TryBounds {
    pub fn new(connect_timeout: Duration, request_timeout: Duration) -> Self {
        Self {
            send_window: SEND_WINDOW,
            connect_timeout,
            request_timeout,
        }
    }

    /// How long another process's unanswered claim is presumed alive.
    pub fn claim_grace(&self) -> Duration {
        self.send_window + self.connect_timeout + self.request_timeout + CLAIM_MARGIN
    }

    /// Whether the call may still go out for a claim made `claim_age` ago (measured by the
    /// claimant from just before it wrote the claim).
    pub fn may_send(&self, claim_age: Duration) -> bool {
        claim_age + TIMESTAMP_ROUNDING < self.send_window
    }
}

/// Delay before the next try of a call that did not reach DLI, never past the generation's
/// delivery deadline (`until_deadline` from now), so giving up happens on time.
pub fn next_try_in(backoff: Duration, until_deadline: Duration) -> Duration {
    backoff.min(until_deadline).max(Duration::from_secs(1))
}

/// How long from `now` until the delivery deadline of a generation first claimed at
/// `claimed_at`.
pub fn until_delivery_deadline(
    claimed_at: Option<&Time>,
    now: Timestamp,
    deadline: Duration,
) -> Duration {
    deadline.saturating_sub(since(claimed_at, now).min(deadline))
}

/// Whether resolving a try made at `attempt_at` has gone on past `resolve_timeout`: it then
/// ends `Unknown` instead of asking DLI for ever.
pub fn resolving_expired(
    attempt_at: Option<&Time>,
    now: Timestamp,
    resolve_timeout: Duration,
) -> bool {
    since(attempt_at, now) >= resolve_timeout
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

/// When to look at a request again after its status was written, `None` for "only when it
/// changes": a confirmation poll while `Confirming` (never past the confirmation timeout), the
/// TTL deletion of a finished request, nothing otherwise.
pub fn follow_up(
    spec: &JobStopRequestSpec,
    status: &JobStopRequestStatus,
    now: Timestamp,
    confirm_poll_interval: Duration,
) -> Option<Duration> {
    match status.phase {
        Some(Phase::Confirming) => {
            let timeout = confirm_timeout(spec);
            let since_answer = answered_for(status, now);
            let delay = confirm_poll_delay(since_answer, confirm_poll_interval);
            Some(
                delay
                    .min(timeout.saturating_sub(since_answer))
                    .max(Duration::from_secs(1)),
            )
        }
        Some(phase) if phase.is_final() => ttl_remaining(spec, status, now),
        _ => None,
    }
}

/// Whether confirmation has gone on for its whole timeout since DLI answered: the jobs still
/// not stopped then count as failed.
pub fn confirmation_timed_out(
    spec: &JobStopRequestSpec,
    status: &JobStopRequestStatus,
    now: Timestamp,
) -> bool {
    answered_for(status, now) >= confirm_timeout(spec)
}

fn confirm_timeout(spec: &JobStopRequestSpec) -> Duration {
    Duration::from_secs(u64::try_from(spec.confirm().timeout_seconds).unwrap_or(0))
}

/// How long until a finished request is deleted; `None` without a TTL or a finish time.
pub fn ttl_remaining(
    spec: &JobStopRequestSpec,
    status: &JobStopRequestStatus,
    now: Timestamp,
) -> Option<Duration> {
    let ttl = Duration::from_secs(u64::try_from(spec.ttl_seconds_after_finished?).unwrap_or(0));
    let finished = status.finished_at.as_ref()?;
    Some(ttl.saturating_sub(since(Some(finished), now)))
}

/// How long ago DLI answered the call (or, lacking that record, it was last tried or
/// claimed); zero without a submission.
fn answered_for(status: &JobStopRequestStatus, now: Timestamp) -> Duration {
    let submission = status.submission.as_ref();
    let answered = submission.and_then(|s| {
        s.submitted_at
            .as_ref()
            .or(s.last_attempt_at.as_ref())
            .or(s.claimed_at.as_ref())
    });
    answered.map_or(Duration::ZERO, |at| since(Some(at), now))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;
    use crate::api::Submission;

    const GRACE: Duration = Duration::from_secs(40);
    const DEADLINE: Duration = Duration::from_secs(3600);
    const CALL: &str = "call-of-jobs-1-2";

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("valid timestamp")
    }

    /// The step for `generation` (sending `CALL`) as process `holder` sees it at `now`.
    fn step(
        status: Option<&JobStopRequestStatus>,
        generation: i64,
        holder: &str,
        now: i64,
    ) -> Step {
        step_sending(status, generation, CALL, holder, now)
    }

    fn step_sending(
        status: Option<&JobStopRequestStatus>,
        generation: i64,
        fingerprint: &str,
        holder: &str,
        now: i64,
    ) -> Step {
        next_step(
            status,
            &Situation {
                generation,
                fingerprint,
                holder,
                now: at(now),
                claim_grace: GRACE,
                delivery_deadline: DEADLINE,
            },
        )
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
                fingerprint: Some(CALL.into()),
                ..Submission::default()
            }),
            ..JobStopRequestStatus::default()
        }
    }

    /// The call of `generation` answered and recorded, the status describing it.
    fn answered(generation: i64) -> JobStopRequestStatus {
        let mut status = with_submission(generation, SubmissionState::Answered, "a", 0);
        status.observed_generation = Some(generation);
        status.conditions = vec![Condition {
            type_: READY.into(),
            status: "True".into(),
            reason: "JobsStopped".into(),
            message: String::new(),
            observed_generation: Some(generation),
            last_transition_time: Time(at(1)),
        }];
        status
    }

    #[test]
    fn a_new_object_is_submitted() {
        assert_eq!(step(None, 1, "a", 0), Step::Submit);
        assert_eq!(
            step(Some(&JobStopRequestStatus::default()), 1, "a", 0),
            Step::Submit
        );
        // How the API server returns a new request: the schema default, nothing done.
        let defaulted = JobStopRequestStatus {
            observed_generation: Some(0),
            ..JobStopRequestStatus::default()
        };
        assert_eq!(step(Some(&defaulted), 1, "a", 0), Step::Submit);
    }

    #[test]
    fn an_observed_generation_is_never_called_again() {
        assert_eq!(step(Some(&answered(3)), 3, "b", 100), Step::CallDone);
    }

    #[test]
    fn a_new_generation_that_sends_something_else_is_claimed_again() {
        assert_eq!(
            step_sending(Some(&answered(3)), 4, "other-call", "a", 100),
            Step::Submit
        );
    }

    #[test]
    fn a_new_generation_that_sends_the_same_keeps_the_outcome_of_the_call_made() {
        assert_eq!(step(Some(&answered(3)), 4, "a", 100), Step::Adopt);
        let mut resolved = answered(3);
        if let Some(submission) = resolved.submission.as_mut() {
            submission.state = SubmissionState::Ambiguous;
        }
        assert_eq!(step(Some(&resolved), 4, "a", 100), Step::Adopt);
        // Adopted once, adopted again by the next such generation.
        let mut adopted = answered(3);
        adopted.observed_generation = Some(4);
        adopted.conditions[0].observed_generation = Some(4);
        assert_eq!(step(Some(&adopted), 5, "a", 100), Step::Adopt);
    }

    #[test]
    fn an_outcome_is_not_adopted_from_a_status_that_no_longer_describes_it() {
        // Generation 4 waited for its connection: the results are 4's, not the call's.
        let mut replaced = answered(3);
        replaced.conditions[0].observed_generation = Some(4);
        assert_eq!(step(Some(&replaced), 5, "a", 100), Step::Submit);
    }

    #[test]
    fn a_call_that_never_reached_dli_is_not_adopted() {
        let mut given_up = answered(3);
        if let Some(submission) = given_up.submission.as_mut() {
            submission.state = SubmissionState::NotDelivered;
        }
        assert_eq!(step(Some(&given_up), 4, "a", 100), Step::Submit);
    }

    #[test]
    fn a_new_generation_that_sends_the_same_waits_for_the_call_in_flight() {
        let theirs = with_submission(3, SubmissionState::InFlight, "b", 0);
        assert_eq!(
            step(Some(&theirs), 4, "a", 10),
            Step::WaitForClaimant(Duration::from_secs(30))
        );
        assert_eq!(step(Some(&theirs), 4, "a", 40), Step::Resolve);
        let ambiguous = with_submission(3, SubmissionState::Ambiguous, "b", 0);
        assert_eq!(step(Some(&ambiguous), 4, "a", 1), Step::Resolve);
        assert_eq!(
            step_sending(Some(&theirs), 4, "other-call", "a", 1),
            Step::Submit,
            "another call does not wait"
        );
    }

    #[test]
    fn an_unanswered_claim_is_resolved_never_resent() {
        let own = with_submission(2, SubmissionState::InFlight, "a", 0);
        assert_eq!(step(Some(&own), 2, "a", 1), Step::Resolve);
        let ambiguous = with_submission(2, SubmissionState::Ambiguous, "b", 0);
        assert_eq!(step(Some(&ambiguous), 2, "a", 1), Step::Resolve);
    }

    #[test]
    fn another_process_gets_its_grace_before_its_claim_is_resolved() {
        let theirs = with_submission(2, SubmissionState::InFlight, "b", 0);
        assert_eq!(
            step(Some(&theirs), 2, "a", 10),
            Step::WaitForClaimant(Duration::from_secs(30))
        );
        assert_eq!(step(Some(&theirs), 2, "a", 40), Step::Resolve);
    }

    #[test]
    fn a_try_that_did_not_reach_dli_is_retried_until_the_delivery_deadline() {
        let status = with_submission(2, SubmissionState::NotDelivered, "b", 0);
        assert_eq!(step(Some(&status), 2, "a", 1), Step::Submit);
        assert_eq!(step(Some(&status), 2, "a", 3599), Step::Submit);
        assert_eq!(step(Some(&status), 2, "a", 3600), Step::GiveUp);
    }

    #[test]
    fn the_claim_grace_covers_a_whole_try_and_the_call_goes_out_only_early_in_it() {
        let bounds = TryBounds::new(Duration::from_secs(5), Duration::from_secs(30));
        assert_eq!(bounds.claim_grace(), Duration::from_secs(50));
        assert!(bounds.may_send(Duration::from_millis(50)));
        assert!(bounds.may_send(Duration::from_millis(3900)));
        assert!(!bounds.may_send(Duration::from_secs(4)));
        assert!(!bounds.may_send(Duration::from_secs(60)));
        // The latest call still ends (timeouts included) well before others give up on it.
        let latest_end = bounds.send_window + bounds.connect_timeout + bounds.request_timeout;
        assert!(latest_end + CLAIM_MARGIN <= bounds.claim_grace());
    }

    #[test]
    fn retries_stop_at_the_delivery_deadline() {
        let claimed = Time(at(0));
        assert_eq!(
            until_delivery_deadline(Some(&claimed), at(3000), DEADLINE),
            Duration::from_secs(600)
        );
        assert_eq!(
            until_delivery_deadline(Some(&claimed), at(4000), DEADLINE),
            Duration::ZERO
        );
        assert_eq!(
            next_try_in(Duration::from_secs(300), Duration::from_secs(20)),
            Duration::from_secs(20)
        );
        assert_eq!(
            next_try_in(Duration::from_secs(8), Duration::from_secs(20)),
            Duration::from_secs(8)
        );
        assert_eq!(
            next_try_in(Duration::from_secs(8), Duration::ZERO),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn resolving_ends_after_its_timeout() {
        let tried = Time(at(0));
        let timeout = Duration::from_secs(600);
        assert!(!resolving_expired(Some(&tried), at(599), timeout));
        assert!(resolving_expired(Some(&tried), at(600), timeout));
        assert!(resolving_expired(None, at(0), timeout));
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

    fn with_phase(
        phase: Phase,
        answered_at: i64,
        finished_at: Option<i64>,
    ) -> JobStopRequestStatus {
        let mut status = with_submission(1, SubmissionState::Answered, "a", answered_at);
        if let Some(submission) = status.submission.as_mut() {
            submission.submitted_at = Some(Time(at(answered_at)));
        }
        status.phase = Some(phase);
        status.finished_at = finished_at.map(|second| Time(at(second)));
        status
    }

    fn spec(confirm_timeout: i64, ttl: Option<i64>) -> JobStopRequestSpec {
        serde_json::from_value(serde_json::json!({
            "jobIds": [1],
            "confirm": {"timeoutSeconds": confirm_timeout},
            "ttlSecondsAfterFinished": ttl,
        }))
        .expect("valid spec")
    }

    #[test]
    fn what_follows_a_written_status() {
        let poll = Duration::from_secs(2);
        let secs = Duration::from_secs;
        let cases = [
            // (phase, answered at, finished at, confirm timeout, ttl, now, expected)
            (Phase::Confirming, 0, None, 600, None, 3, Some(secs(2))),
            (Phase::Confirming, 0, None, 600, None, 90, Some(secs(30))),
            (Phase::Confirming, 0, None, 600, None, 900, Some(secs(1))),
            (Phase::Confirming, 0, None, 100, None, 90, Some(secs(10))),
            (
                Phase::Succeeded,
                0,
                Some(10),
                600,
                Some(60),
                40,
                Some(secs(30)),
            ),
            (
                Phase::Failed,
                0,
                Some(10),
                600,
                Some(60),
                100,
                Some(Duration::ZERO),
            ),
            (Phase::Unknown, 0, Some(10), 600, None, 100, None),
            (Phase::Submitting, 0, None, 600, Some(60), 100, None),
        ];
        for (phase, answered_at, finished_at, timeout, ttl, now, expected) in cases {
            let status = with_phase(phase, answered_at, finished_at);
            assert_eq!(
                follow_up(&spec(timeout, ttl), &status, at(now), poll),
                expected,
                "{phase:?} answered at {answered_at}, now {now}"
            );
        }
    }

    #[test]
    fn confirmation_times_out_when_its_timeout_has_passed_since_the_answer() {
        let status = with_phase(Phase::Confirming, 10, None);
        assert!(!confirmation_timed_out(&spec(100, None), &status, at(109)));
        assert!(confirmation_timed_out(&spec(100, None), &status, at(110)));
    }

    #[test]
    fn a_finished_request_without_its_finish_time_is_not_deleted() {
        let status = with_phase(Phase::Succeeded, 0, None);
        assert_eq!(ttl_remaining(&spec(600, Some(0)), &status, at(100)), None);
    }
}
