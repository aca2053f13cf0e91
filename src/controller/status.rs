//! Pure status computation: every transition of the protocol as a function from the old
//! status (plus what just happened) to the new one. No I/O, no clock: `now` is passed in and
//! only lands in the status on a transition. Step numbers are those of the README's "How it
//! works".

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::conditions::{
    self, DesiredCondition, FINISHED, READY, RECONCILING, STALLED, SUBMITTED, reason,
};
use crate::api::{
    JobResult, JobStopRequestSpec, JobStopRequestStatus, Phase, RequestError, ResponseElement,
    SkippedJob, Submission, SubmissionState, Summary,
};
use crate::dli::{
    AnswerElement, JobStateClass, JobStatus, StopAnswer, job_state_class, map_answer,
};
use crate::selection::Selection;

/// What one job's record says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobVerdict {
    Succeeded,
    Failed,
    Pending,
}

/// How a recorded DLI job status reads for a stop.
pub fn classify_job_state(status: &str) -> JobStateClass {
    job_state_class(&JobStatus::parse(status))
}

/// The verdict for one job given whether confirmation is on.
pub fn job_verdict(result: &JobResult, confirm: bool) -> JobVerdict {
    if result.is_success == Some(false) {
        return JobVerdict::Failed;
    }
    match result.state.as_deref().map(classify_job_state) {
        Some(JobStateClass::Stopped) => JobVerdict::Succeeded,
        Some(JobStateClass::StopFailed) => JobVerdict::Failed,
        _ if result.is_success == Some(true) && !confirm => JobVerdict::Succeeded,
        _ => JobVerdict::Pending,
    }
}

/// Counts verdicts over the results; `timed_out` turns the still-pending into failures.
pub fn summarize(results: &[JobResult], confirm: bool, timed_out: bool) -> Summary {
    let mut summary = Summary {
        total: u32::try_from(results.len()).unwrap_or(u32::MAX),
        ..Summary::default()
    };
    for result in results {
        match job_verdict(result, confirm) {
            JobVerdict::Succeeded => summary.succeeded += 1,
            JobVerdict::Failed => summary.failed += 1,
            JobVerdict::Pending if timed_out => summary.failed += 1,
            JobVerdict::Pending => summary.pending += 1,
        }
    }
    summary
}

/// Where a generation stands, in the terms the conditions speak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub phase: Phase,
    pub reason: &'static str,
    pub message: String,
    /// Whether DLI accepted the call for this generation.
    pub submitted: bool,
}

/// Writes phase, conditions and (on reaching a final phase) `finishedAt` from a verdict.
pub fn apply_verdict(
    status: &mut JobStopRequestStatus,
    verdict: Verdict,
    generation: i64,
    now: &Time,
) {
    let final_phase = verdict.phase.is_final();
    let became_final =
        final_phase && (status.phase != Some(verdict.phase) || status.finished_at.is_none());
    let ready = verdict.phase == Phase::Succeeded;
    let stalled = matches!(
        verdict.phase,
        Phase::PartiallyFailed | Phase::Failed | Phase::Unknown
    );
    let list = &mut status.conditions;
    conditions::set(
        list,
        DesiredCondition::new(READY, ready, verdict.reason, verdict.message.clone()),
        generation,
        now,
    );
    conditions::set(
        list,
        DesiredCondition::new(
            RECONCILING,
            !final_phase,
            verdict.reason,
            verdict.message.clone(),
        ),
        generation,
        now,
    );
    conditions::set(
        list,
        DesiredCondition::new(
            STALLED,
            stalled,
            verdict.reason,
            if stalled {
                verdict.message.clone()
            } else {
                String::new()
            },
        ),
        generation,
        now,
    );
    let submitted_reason = if verdict.submitted {
        reason::STOP_DELIVERED
    } else {
        verdict.reason
    };
    let submitted_message = if verdict.submitted {
        "DLI accepted the stop call".to_string()
    } else {
        verdict.message.clone()
    };
    conditions::set(
        list,
        DesiredCondition::new(
            SUBMITTED,
            verdict.submitted,
            submitted_reason,
            submitted_message,
        ),
        generation,
        now,
    );
    conditions::set(
        list,
        DesiredCondition::new(
            FINISHED,
            final_phase,
            verdict.phase.as_str(),
            verdict.message,
        ),
        generation,
        now,
    );
    status.phase = Some(verdict.phase);
    if became_final {
        status.finished_at = Some(now.clone());
    } else if !final_phase {
        status.finished_at = None;
    }
}

/// A connection that cannot be used: nothing is claimed, the request waits for a fix. Results
/// of an earlier generation give way to this one's jobs, all pending, so `kubectl get` does
/// not show the old outcome next to the new wait. `reason` says why: the Secret is unusable (`ConnectionInvalid`) or the admin's rules refuse
/// it (`DefaultConnectionNotAllowed`, `EndpointNotAllowed`).
pub fn waiting_for_connection(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    reason: &'static str,
    message: &str,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    if old.submission.as_ref().map(|s| s.generation) != Some(generation) {
        start_generation(&mut status, spec);
    }
    apply_verdict(
        &mut status,
        Verdict {
            phase: Phase::Pending,
            reason,
            message: message.to_string(),
            submitted: false,
        },
        generation,
        now,
    );
    status
}

/// The connection may not stop some of the jobs (`outside` its `allowedJobIds`): the
/// generation ends `Failed` without a claim or a call. Final, so widening the scope later never
/// sends a stop someone asked for long ago; a new generation asks again.
pub fn jobs_not_allowed(
    old: &JobStopRequestStatus,
    jobs: &[CallJob],
    generation: i64,
    outside: &[i64],
    message: &str,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    status.observed_generation = Some(generation);
    status.results = jobs
        .iter()
        .map(|job| JobResult {
            is_success: Some(false),
            message: Some(if outside.contains(&job.job_id) {
                "not stopped: outside the connection's allowedJobIds".to_string()
            } else {
                "not stopped: the request holds jobs outside the connection's allowedJobIds"
                    .to_string()
            }),
            ..job.result()
        })
        .collect();
    status.response.clear();
    status.summary = Some(summarize(&status.results, false, false));
    status.error = Some(RequestError {
        http_status: None,
        code: Some(reason::JOBS_NOT_ALLOWED.to_string()),
        message: message.to_string(),
    });
    apply_verdict(
        &mut status,
        Verdict {
            phase: Phase::Failed,
            reason: reason::JOBS_NOT_ALLOWED,
            message: message.to_string(),
            submitted: false,
        },
        generation,
        now,
    );
    status
}

/// Every job of `spec` pending (none yet for a selector, which its claim resolves); nothing
/// of an earlier generation's answer or selection left.
fn start_generation(status: &mut JobStopRequestStatus, spec: &JobStopRequestSpec) {
    status.results = spec
        .job_ids
        .iter()
        .map(|&job_id| JobResult {
            job_id,
            ..JobResult::default()
        })
        .collect();
    status.skipped.clear();
    status.unmatched_names.clear();
    status.response.clear();
    status.error = None;
    status.summary = Some(summarize(&status.results, true, false));
}

/// A job the generation's call sends, with its name when a selector chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallJob {
    pub job_id: i64,
    pub name: Option<String>,
}

impl CallJob {
    /// A result for this job that says nothing yet.
    pub fn result(&self) -> JobResult {
        JobResult {
            job_id: self.job_id,
            name: self.name.clone(),
            ..JobResult::default()
        }
    }
}

/// The jobs the generation's call sends: `spec.jobIds`, or for a selector the ids (and names)
/// its claim recorded in `results`, never resolved again.
pub fn call_jobs(status: &JobStopRequestStatus, spec: &JobStopRequestSpec) -> Vec<CallJob> {
    if spec.job_selector.is_some() {
        return status
            .results
            .iter()
            .map(|result| CallJob {
                job_id: result.job_id,
                name: result.name.clone(),
            })
            .collect();
    }
    spec.job_ids
        .iter()
        .map(|&job_id| CallJob { job_id, name: None })
        .collect()
}

/// Whether `generation`'s claim already recorded the jobs a selector resolved to: its later
/// tries send those, and the selector is never resolved again for it.
pub fn selection_recorded(status: &JobStopRequestStatus, generation: i64) -> bool {
    status
        .submission
        .as_ref()
        .is_some_and(|submission| submission.generation == generation)
        && !status.results.is_empty()
}

/// The jobs `selection` resolved to, as its claim records them.
pub fn selected_jobs(selection: &Selection) -> Vec<CallJob> {
    selection
        .stop
        .iter()
        .map(|target| CallJob {
            job_id: target.job_id,
            name: Some(target.name.clone()),
        })
        .collect()
}

/// The ids of `jobs`, in order.
pub fn call_job_ids(jobs: &[CallJob]) -> Vec<i64> {
    jobs.iter().map(|job| job.job_id).collect()
}

/// Step 2: the write-ahead claim of `generation`, made before every try.
pub fn claim(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    holder: &str,
    now: &Time,
) -> JobStopRequestStatus {
    claim_jobs(old, spec, None, generation, holder, now)
}

/// Step 2 for a selector's first try: the claim records the jobs `selection` resolved to (as
/// pending results, with their names) and the jobs it skipped, before the call.
pub fn claim_selection(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    selection: &Selection,
    generation: i64,
    holder: &str,
    now: &Time,
) -> JobStopRequestStatus {
    claim_jobs(old, spec, Some(selection), generation, holder, now)
}

fn claim_jobs(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    selection: Option<&Selection>,
    generation: i64,
    holder: &str,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    let previous = old
        .submission
        .as_ref()
        .filter(|s| s.generation == generation);
    let attempts = previous.map_or(0, |s| s.attempts) + 1;
    status.submission = Some(Submission {
        generation,
        claimed_at: Some(
            previous
                .and_then(|s| s.claimed_at.clone())
                .unwrap_or_else(|| now.clone()),
        ),
        claimed_by: Some(holder.to_string()),
        last_attempt_at: Some(now.clone()),
        state: SubmissionState::InFlight,
        submitted_at: None,
        request_id: None,
        http_status: None,
        attempts,
        fingerprint: Some(super::adoption::fingerprint(spec)),
    });
    if let Some(selection) = selection {
        start_generation(&mut status, spec);
        record_selection(&mut status, selection);
    } else if previous.is_none() {
        start_generation(&mut status, spec);
    }
    // A retry keeps the reason of the failed try (e.g. Unauthorized): it is the same state
    // going on, not a new transition, so `kubectl describe` shows one event, not one per try.
    let jobs = status.results.len();
    let (phase_reason, message) = match previous.and(conditions::find(&old.conditions, READY)) {
        Some(ready) if attempts > 1 => (
            retry_reason(&ready.reason),
            format!(
                "Calling DLI to stop {jobs} job(s), attempt {attempts}; {}",
                ready.message
            ),
        ),
        _ => (
            reason::SUBMITTING,
            format!("Calling DLI to stop {jobs} job(s)"),
        ),
    };
    apply_verdict(
        &mut status,
        Verdict {
            phase: Phase::Submitting,
            reason: phase_reason,
            message,
            submitted: false,
        },
        generation,
        now,
    );
    status
}

/// The reason a retry keeps showing: the one of the try that did not reach DLI.
fn retry_reason(previous: &str) -> &'static str {
    match previous {
        reason::UNAUTHORIZED => reason::UNAUTHORIZED,
        reason::THROTTLED => reason::THROTTLED,
        reason::DLI_UNAVAILABLE => reason::DLI_UNAVAILABLE,
        reason::CLAIM_DELAYED => reason::CLAIM_DELAYED,
        _ => reason::SUBMITTING,
    }
}

/// Most skipped jobs listed in the status; the condition message gives the full count.
pub const MAX_SKIPPED_LISTED: usize = 50;

/// The skipped jobs a status lists.
pub fn listed_skipped(selection: &Selection) -> Vec<SkippedJob> {
    selection
        .skipped
        .iter()
        .take(MAX_SKIPPED_LISTED)
        .cloned()
        .collect()
}

/// The jobs `selection` resolved to, as pending results with their names, and what it skipped.
fn record_selection(status: &mut JobStopRequestStatus, selection: &Selection) {
    status.results = selected_jobs(selection)
        .iter()
        .map(CallJob::result)
        .collect();
    status.skipped = listed_skipped(selection);
    status.unmatched_names = selection.unmatched_names.clone();
    status.summary = Some(summarize(&status.results, true, false));
}

/// Step 3, delivered: per-job results recorded, the call for this generation is done.
pub fn delivered(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    answer: &StopAnswer,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    if let Some(submission) = status.submission.as_mut() {
        submission.state = SubmissionState::Answered;
        submission.submitted_at = Some(now.clone());
        submission.request_id = answer.request_id.clone();
        submission.http_status = Some(answer.http_status);
    }
    status.observed_generation = Some(generation);
    status.response = answer
        .elements
        .iter()
        .map(|element| ResponseElement {
            is_success: element.is_success,
            message: element.message.clone(),
        })
        .collect();
    status.error = None;
    // A refusal ("not running", often for one element standing for the whole batch) is no
    // verdict yet: job detail decides, and a job found already stopped counts as stopped.
    status.results = answer
        .jobs
        .iter()
        .map(|job| JobResult {
            job_id: job.job_id,
            name: old
                .results
                .iter()
                .find(|result| result.job_id == job.job_id)
                .and_then(|result| result.name.clone()),
            is_success: job.is_success.filter(|accepted| *accepted),
            message: job.message.clone(),
            state: None,
            savepoint_path: None,
        })
        .collect();
    let confirm = spec.confirm().enabled;
    settle(&mut status, spec, generation, confirm, false, now);
    status
}

/// Step 3, rejected: DLI refused the request with an error body. Final, no retry.
pub fn rejected(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    error: RequestError,
    request_id: Option<String>,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    if let Some(submission) = status.submission.as_mut() {
        submission.state = SubmissionState::Answered;
        submission.submitted_at = Some(now.clone());
        submission.request_id = request_id;
        submission.http_status = error.http_status;
    }
    let described = describe_error(&error);
    // The whole message is in `error`; up to 500 copies of it would only swell the status.
    let per_job = format!(
        "not stopped: DLI rejected the request ({}); see status.error",
        error
            .code
            .clone()
            .or_else(|| error.http_status.map(|status| format!("HTTP {status}")))
            .unwrap_or_else(|| "no code".to_string())
    );
    status.observed_generation = Some(generation);
    status.results = call_jobs(old, spec)
        .iter()
        .map(|job| JobResult {
            is_success: Some(false),
            message: Some(per_job.clone()),
            ..job.result()
        })
        .collect();
    status.response.clear();
    status.summary = Some(summarize(&status.results, false, false));
    status.error = Some(error);
    apply_verdict(
        &mut status,
        Verdict {
            phase: Phase::Failed,
            reason: reason::DLI_REJECTED,
            message: format!("DLI rejected the stop call: {described}"),
            submitted: false,
        },
        generation,
        now,
    );
    status
}

/// Why a try certainly did not reach DLI, in the terms of a condition reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotDeliveredReason {
    Unauthorized,
    Throttled,
    Unavailable,
    /// The claim was written too slowly (or its write not confirmed) for the call to go out
    /// on it safely.
    ClaimDelayed,
}

/// Step 4, not delivered: the claim stays, the next try is safe and scheduled.
pub fn not_delivered(
    old: &JobStopRequestStatus,
    generation: i64,
    why: NotDeliveredReason,
    message: &str,
    retry_in: std::time::Duration,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    let attempts = status.submission.as_ref().map_or(0, |s| s.attempts);
    if let Some(submission) = status.submission.as_mut() {
        submission.state = SubmissionState::NotDelivered;
    }
    let reason = match why {
        NotDeliveredReason::Unauthorized => reason::UNAUTHORIZED,
        NotDeliveredReason::Throttled => reason::THROTTLED,
        NotDeliveredReason::Unavailable => reason::DLI_UNAVAILABLE,
        NotDeliveredReason::ClaimDelayed => reason::CLAIM_DELAYED,
    };
    apply_verdict(
        &mut status,
        Verdict {
            phase: Phase::Submitting,
            reason,
            message: format!(
                "Attempt {attempts} did not reach DLI ({message}); retrying in {}s",
                retry_in.as_secs()
            ),
            submitted: false,
        },
        generation,
        now,
    );
    status
}

/// Step 5, ambiguous: the call may have reached DLI. Never resent; resolved read-only.
pub fn ambiguous(
    old: &JobStopRequestStatus,
    generation: i64,
    message: &str,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    if let Some(submission) = status.submission.as_mut() {
        submission.state = SubmissionState::Ambiguous;
    }
    apply_verdict(
        &mut status,
        Verdict {
            phase: Phase::Submitting,
            reason: reason::RESOLVING_OUTCOME,
            message: format!(
                "The stop call may have reached DLI ({message}); checking the jobs' states instead of sending it again"
            ),
            submitted: false,
        },
        generation,
        now,
    );
    status
}

/// What job detail said about one job, or `None` when the job no longer exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobObservation {
    pub job_id: i64,
    pub status: Option<String>,
    pub savepoint_path: Option<String>,
}

/// Step 5: an unanswered claim resolved through job detail. Jobs found stopping, stopped or
/// failed to stop count as delivered; if any is not, the outcome is unknown and a human
/// decides.
pub fn resolved(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    observations: &[JobObservation],
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    status.observed_generation = Some(generation);
    status.response.clear();
    status.error = None;
    let mut undelivered = Vec::new();
    status.results = call_jobs(old, spec)
        .into_iter()
        .map(|job| {
            let job_id = job.job_id;
            let observation = observations.iter().find(|o| o.job_id == job_id);
            let state = observation.and_then(|o| o.status.clone());
            // A failed stop is a stop that arrived.
            let delivered = state.as_deref().is_some_and(|s| {
                matches!(
                    classify_job_state(s),
                    JobStateClass::Stopped | JobStateClass::Stopping | JobStateClass::StopFailed
                )
            });
            if !delivered {
                undelivered.push(job_id);
            }
            JobResult {
                job_id,
                name: job.name,
                is_success: delivered.then_some(true),
                message: Some(if delivered {
                    "no answer from DLI; the job's state shows the stop was delivered".to_string()
                } else {
                    "no answer from DLI and the job's state does not show the stop".to_string()
                }),
                state,
                savepoint_path: observation.and_then(|o| o.savepoint_path.clone()),
            }
        })
        .collect();
    if let Some(submission) = status.submission.as_mut() {
        submission.state = SubmissionState::Ambiguous;
    }
    if undelivered.is_empty() {
        settle(
            &mut status,
            spec,
            generation,
            spec.confirm().enabled,
            false,
            now,
        );
    } else {
        status.summary = Some(summarize(&status.results, true, false));
        let ids = join_ids(&undelivered);
        apply_verdict(
            &mut status,
            Verdict {
                phase: Phase::Unknown,
                reason: reason::OUTCOME_UNKNOWN,
                message: format!(
                    "The stop call got no answer and job(s) {ids} do not show it; it was not sent again. \
                     Check the jobs in DLI, then change spec.nonce to send the stop again"
                ),
                submitted: false,
            },
            generation,
            now,
        );
    }
    status
}

/// Step 6: merge job-detail observations into the results and settle the phase.
/// `timed_out` ends confirmation: jobs still not stopped count as failed.
pub fn confirmed(
    old: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    observations: &[JobObservation],
    timed_out: bool,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    let refused = refused_by_dli(&status);
    for result in &mut status.results {
        let Some(observation) = observations.iter().find(|o| o.job_id == result.job_id) else {
            continue;
        };
        match &observation.status {
            Some(state) => {
                result.state = Some(state.clone());
                // DLI refused to stop this job and it still runs (or its stop failed): that
                // settles it. Found stopped, its state alone makes it a success.
                let not_stopping = matches!(
                    classify_job_state(state),
                    JobStateClass::Running | JobStateClass::StopFailed
                );
                if refused.contains(&result.job_id) && not_stopping {
                    result.is_success = Some(false);
                }
            }
            None => {
                result.is_success = Some(false);
                result.message = Some("the job no longer exists in DLI".to_string());
            }
        }
        if observation.savepoint_path.is_some() {
            result.savepoint_path = observation.savepoint_path.clone();
        }
    }
    let confirm = spec.confirm().enabled;
    settle(&mut status, spec, generation, confirm, timed_out, now);
    status
}

/// The jobs DLI's recorded answer refused, read back from `response` over the results, which
/// keep the order the ids were sent in.
fn refused_by_dli(status: &JobStopRequestStatus) -> Vec<i64> {
    let job_ids: Vec<i64> = status.results.iter().map(|r| r.job_id).collect();
    let elements: Vec<AnswerElement> = status
        .response
        .iter()
        .map(|element| AnswerElement {
            is_success: element.is_success,
            message: element.message.clone(),
        })
        .collect();
    map_answer(&job_ids, &elements)
        .into_iter()
        .filter(|answer| answer.is_success == Some(false))
        .map(|answer| answer.job_id)
        .collect()
}

/// Summary, phase and conditions from the per-job results.
fn settle(
    status: &mut JobStopRequestStatus,
    spec: &JobStopRequestSpec,
    generation: i64,
    confirm: bool,
    timed_out: bool,
    now: &Time,
) {
    let summary = summarize(&status.results, confirm, timed_out);
    status.summary = Some(summary);
    let total = summary.total;
    let verdict = if summary.pending > 0 {
        Verdict {
            phase: Phase::Confirming,
            reason: reason::CONFIRMING,
            message: format!(
                "{} of {total} job(s) stopped; waiting for DLI to stop the rest",
                summary.succeeded
            ),
            submitted: true,
        }
    } else if summary.failed == 0 {
        let (reason, message) = if confirm {
            (reason::JOBS_STOPPED, format!("All {total} job(s) stopped"))
        } else {
            (
                reason::STOP_DELIVERED,
                format!("DLI accepted the stop of all {total} job(s)"),
            )
        };
        Verdict {
            phase: Phase::Succeeded,
            reason,
            message,
            submitted: true,
        }
    } else {
        let failed: Vec<i64> = status
            .results
            .iter()
            .filter(|r| job_verdict(r, confirm) != JobVerdict::Succeeded)
            .map(|r| r.job_id)
            .collect();
        let phase = if summary.succeeded == 0 {
            Phase::Failed
        } else {
            Phase::PartiallyFailed
        };
        let (reason, message) = if timed_out {
            (
                reason::CONFIRM_TIMEOUT,
                format!(
                    "{} of {total} job(s) not stopped within {}s: {}",
                    summary.failed,
                    spec.confirm().timeout_seconds,
                    join_ids(&failed)
                ),
            )
        } else {
            (
                reason::JOBS_FAILED,
                format!(
                    "{} of {total} job(s) failed to stop: {}",
                    summary.failed,
                    describe_failures(&status.results, &failed)
                ),
            )
        };
        Verdict {
            phase,
            reason,
            message,
            submitted: true,
        }
    };
    apply_verdict(status, verdict, generation, now);
}

/// Per-job final results, by metric label, when `after` is the write that made the generation
/// final; empty otherwise, so each job is counted once.
pub fn newly_finished_jobs(
    before: Option<&JobStopRequestStatus>,
    after: &JobStopRequestStatus,
    spec: &JobStopRequestSpec,
) -> Vec<(&'static str, u64)> {
    let Some(phase) = after.phase.filter(|p| p.is_final()) else {
        return Vec::new();
    };
    if before.and_then(|s| s.phase) == Some(phase)
        && before.map(|s| &s.finished_at) == Some(&after.finished_at)
    {
        return Vec::new();
    }
    let confirm = spec.confirm().enabled;
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    for result in &after.results {
        let label = match job_verdict(result, confirm) {
            JobVerdict::Succeeded => "stopped",
            JobVerdict::Failed => "failed",
            JobVerdict::Pending if phase == Phase::Unknown => "unknown",
            JobVerdict::Pending => "timeout",
        };
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some(entry) => entry.1 += 1,
            None => counts.push((label, 1)),
        }
    }
    counts
}

fn describe_error(error: &RequestError) -> String {
    match (&error.code, error.http_status) {
        (Some(code), Some(http)) => format!("HTTP {http} {code}: {}", error.message),
        (None, Some(http)) => format!("HTTP {http}: {}", error.message),
        (Some(code), None) => format!("{code}: {}", error.message),
        (None, None) => error.message.clone(),
    }
}

fn describe_failures(results: &[JobResult], failed: &[i64]) -> String {
    failed
        .iter()
        .map(|id| {
            let message = results
                .iter()
                .find(|r| r.job_id == *id)
                .and_then(|r| r.message.clone().or_else(|| r.state.clone()))
                .unwrap_or_default();
            if message.is_empty() {
                id.to_string()
            } else {
                format!("{id} ({message})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::controller::fixtures::{spec_confirming as spec, time};

    /// DLI's answer with one element per job when every job has a verdict, or elements that
    /// cannot be attributed (none) when some have none, mapped as the client maps them.
    fn answer(jobs: &[(i64, Option<bool>)]) -> StopAnswer {
        let message = |ok: bool| {
            if ok {
                "delivered"
            } else {
                "job is not running"
            }
            .to_string()
        };
        let verdicts: Option<Vec<bool>> = jobs.iter().map(|&(_, ok)| ok).collect();
        let elements: Vec<AnswerElement> = verdicts
            .unwrap_or_default()
            .into_iter()
            .map(|ok| AnswerElement {
                is_success: ok,
                message: message(ok),
            })
            .collect();
        let ids: Vec<i64> = jobs.iter().map(|&(id, _)| id).collect();
        StopAnswer {
            http_status: 200,
            request_id: Some("req-1".into()),
            jobs: map_answer(&ids, &elements),
            elements,
        }
    }

    /// `generation` of `spec` claimed at 0 s and answered by DLI with `jobs` at 1 s.
    fn claimed_and_answered(
        spec: &JobStopRequestSpec,
        generation: i64,
        jobs: &[(i64, Option<bool>)],
    ) -> (JobStopRequestStatus, JobStopRequestStatus) {
        let claimed = claim(
            &JobStopRequestStatus::default(),
            spec,
            generation,
            "op-a",
            &time(0),
        );
        let answered = delivered(&claimed, spec, generation, &answer(jobs), &time(1));
        (claimed, answered)
    }

    /// Generation 1 of jobs 128 and 137, claimed at 0 s and accepted by DLI at 1 s.
    fn claimed_and_accepted(
        spec: &JobStopRequestSpec,
    ) -> (JobStopRequestStatus, JobStopRequestStatus) {
        claimed_and_answered(spec, 1, &[(128, Some(true)), (137, Some(true))])
    }

    fn observe(job_id: i64, status: &str) -> JobObservation {
        JobObservation {
            job_id,
            status: Some(status.into()),
            savepoint_path: None,
        }
    }

    fn condition<'a>(status: &'a JobStopRequestStatus, type_: &str) -> (&'a str, &'a str) {
        let c = conditions::find(&status.conditions, type_).expect("condition present");
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn claim_is_written_before_the_call_and_resets_results() {
        let spec = spec(&[128, 137], true);
        let status = claim(&JobStopRequestStatus::default(), &spec, 3, "op-a", &time(0));
        let submission = status.submission.clone().expect("claimed");
        assert_eq!(submission.generation, 3);
        assert_eq!(submission.attempts, 1);
        assert_eq!(submission.state, SubmissionState::InFlight);
        assert_eq!(submission.claimed_at, Some(time(0)));
        assert_eq!(status.phase, Some(Phase::Submitting));
        assert_eq!(status.observed_generation, None);
        assert_eq!(status.summary.map(|s| (s.total, s.pending)), Some((2, 2)));
        assert_eq!(
            condition(&status, RECONCILING),
            ("True", reason::SUBMITTING)
        );
        assert_eq!(condition(&status, READY).0, "False");
    }

    #[test]
    fn retry_after_not_delivered_keeps_the_claim_time_and_counts_attempts() {
        let spec = spec(&[1], true);
        let first = claim(&JobStopRequestStatus::default(), &spec, 1, "op-a", &time(0));
        let failed = not_delivered(
            &first,
            1,
            NotDeliveredReason::Throttled,
            "HTTP 429",
            Duration::from_secs(4),
            &time(1),
        );
        assert_eq!(
            failed.submission.as_ref().map(|s| s.state),
            Some(SubmissionState::NotDelivered)
        );
        assert_eq!(condition(&failed, RECONCILING), ("True", reason::THROTTLED));
        assert!(
            conditions::find(&failed.conditions, READY)
                .is_some_and(|c| c.message.contains("retrying in 4s"))
        );
        let second = claim(&failed, &spec, 1, "op-a", &time(5));
        assert_eq!(
            condition(&second, READY),
            ("False", reason::THROTTLED),
            "a retry is the same state going on, not a new transition"
        );
        let submission = second.submission.expect("claimed");
        assert_eq!(submission.attempts, 2);
        assert_eq!(submission.claimed_at, Some(time(0)));
        assert_eq!(submission.state, SubmissionState::InFlight);
    }

    #[test]
    fn delivered_without_confirmation_is_ready_at_once() {
        let spec = spec(&[128, 137], false);
        let (_, status) = claimed_and_answered(&spec, 2, &[(128, Some(true)), (137, Some(true))]);
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(status.phase, Some(Phase::Succeeded));
        assert_eq!(condition(&status, READY), ("True", reason::STOP_DELIVERED));
        assert_eq!(
            condition(&status, SUBMITTED),
            ("True", reason::STOP_DELIVERED)
        );
        assert_eq!(condition(&status, STALLED).0, "False");
        assert_eq!(condition(&status, RECONCILING).0, "False");
        assert_eq!(status.finished_at, Some(time(1)));
        let submission = status.submission.expect("answered");
        assert_eq!(submission.request_id.as_deref(), Some("req-1"));
        assert_eq!(submission.http_status, Some(200));
        assert_eq!(
            status.summary,
            Some(Summary {
                total: 2,
                succeeded: 2,
                failed: 0,
                pending: 0
            })
        );
    }

    #[test]
    fn confirmation_moves_from_confirming_to_jobs_stopped() {
        let spec = spec(&[128, 137], true);
        let (_, accepted) = claimed_and_accepted(&spec);
        assert_eq!(accepted.phase, Some(Phase::Confirming));
        assert_eq!(
            condition(&accepted, SUBMITTED),
            ("True", reason::STOP_DELIVERED)
        );
        assert_eq!(accepted.finished_at, None);

        let halfway = confirmed(
            &accepted,
            &spec,
            1,
            &[
                observe(128, "job_cancel_success"),
                observe(137, "job_canceling"),
            ],
            false,
            &time(11),
        );
        assert_eq!(halfway.phase, Some(Phase::Confirming));
        assert_eq!(
            halfway.summary.map(|s| (s.succeeded, s.pending)),
            Some((1, 1))
        );
        let again = confirmed(
            &halfway,
            &spec,
            1,
            &[
                observe(128, "job_cancel_success"),
                observe(137, "job_canceling"),
            ],
            false,
            &time(21),
        );
        assert_eq!(
            again, halfway,
            "an unchanged observation must not change the status"
        );

        let mut done_observation = observe(137, "job_cancel_success");
        done_observation.savepoint_path = Some("obs://bucket/jobs/savepoint/137/1/".into());
        let done = confirmed(
            &halfway,
            &spec,
            1,
            &[observe(128, "job_cancel_success"), done_observation],
            false,
            &time(31),
        );
        assert_eq!(done.phase, Some(Phase::Succeeded));
        assert_eq!(condition(&done, READY), ("True", reason::JOBS_STOPPED));
        assert_eq!(
            done.results[1].savepoint_path.as_deref(),
            Some("obs://bucket/jobs/savepoint/137/1/")
        );
        assert_eq!(done.finished_at, Some(time(31)));
    }

    #[test]
    fn finished_turns_true_on_every_final_phase_with_the_phase_as_reason() {
        let spec = spec(&[128, 137], true);
        let (claimed, accepted) = claimed_and_accepted(&spec);
        assert_eq!(condition(&claimed, FINISHED), ("False", "Submitting"));
        assert_eq!(condition(&accepted, FINISHED), ("False", "Confirming"));
        let stopped = [
            observe(128, "job_cancel_success"),
            observe(137, "job_cancel_success"),
        ];
        let done = confirmed(&accepted, &spec, 1, &stopped, false, &time(31));
        assert_eq!(condition(&done, FINISHED), ("True", "Succeeded"));
        let finished = |status: &JobStopRequestStatus| {
            conditions::find(&status.conditions, FINISHED)
                .map(|c| (c.last_transition_time.clone(), c.observed_generation))
        };
        assert_eq!(
            finished(&accepted),
            Some((time(0), Some(1))),
            "no flip from Submitting to Confirming"
        );
        assert_eq!(finished(&done), Some((time(31), Some(1))));

        let (_, partial) = claimed_and_answered(&spec, 1, &[(128, Some(true)), (137, Some(false))]);
        let partial = confirmed(
            &partial,
            &spec,
            1,
            &[stopped[0].clone(), observe(137, "job_running")],
            false,
            &time(5),
        );
        assert_eq!(condition(&partial, FINISHED), ("True", "PartiallyFailed"));

        let error = RequestError {
            http_status: Some(400),
            code: Some("DLI.16001".into()),
            message: "no such job".into(),
        };
        let failed = rejected(&claimed, &spec, 1, error, None, &time(1));
        assert_eq!(condition(&failed, FINISHED), ("True", "Failed"));

        let unknown = resolved(
            &claimed,
            &spec,
            1,
            &[observe(128, "job_running"), observe(137, "job_running")],
            &time(11),
        );
        assert_eq!(condition(&unknown, FINISHED), ("True", "Unknown"));

        let waiting = waiting_for_connection(
            &done,
            &spec,
            2,
            reason::CONNECTION_INVALID,
            "Secret is missing",
            &time(40),
        );
        let finished_condition = conditions::find(&waiting.conditions, FINISHED);
        assert_eq!(condition(&waiting, FINISHED), ("False", "Pending"));
        assert_eq!(
            finished_condition.and_then(|c| c.observed_generation),
            Some(2)
        );
    }

    #[test]
    fn a_job_dli_refused_is_decided_by_job_detail() {
        let spec = spec(&[128, 137], false);
        let (_, answered) =
            claimed_and_answered(&spec, 1, &[(128, Some(true)), (137, Some(false))]);
        assert_eq!(
            answered.phase,
            Some(Phase::Confirming),
            "137 waits for job detail"
        );
        assert_eq!(answered.results[1].is_success, None);

        let running = confirmed(
            &answered,
            &spec,
            1,
            &[observe(137, "job_running")],
            false,
            &time(2),
        );
        assert_eq!(running.phase, Some(Phase::PartiallyFailed));
        assert_eq!(condition(&running, STALLED), ("True", reason::JOBS_FAILED));
        let ready = conditions::find(&running.conditions, READY).expect("ready");
        assert!(
            ready.message.contains("137 (job is not running)"),
            "{}",
            ready.message
        );

        let stopped = confirmed(
            &answered,
            &spec,
            1,
            &[observe(137, "job_cancel_success")],
            false,
            &time(2),
        );
        assert_eq!(stopped.phase, Some(Phase::Succeeded), "already stopped");
        assert_eq!(
            stopped.results[1].message.as_deref(),
            Some("job is not running"),
            "DLI's message is kept"
        );
    }

    /// One `false` element standing for the whole batch (DLI refused one job, or the
    /// answer's shape) is no verdict on each job: job detail decides each.
    #[test]
    fn one_false_element_for_the_batch_leaves_each_job_to_job_detail() {
        let spec = spec(&[1, 2, 3], false);
        let refusal = "The job 3 cannot be stopped in status job_cancel_success.";
        let elements = vec![AnswerElement {
            is_success: false,
            message: refusal.into(),
        }];
        let answer = StopAnswer {
            http_status: 200,
            request_id: None,
            jobs: map_answer(&spec.job_ids, &elements),
            elements,
        };
        let claimed = claim(&JobStopRequestStatus::default(), &spec, 1, "op-a", &time(0));
        let answered = delivered(&claimed, &spec, 1, &answer, &time(1));
        assert_eq!(answered.phase, Some(Phase::Confirming));
        assert_eq!(answered.summary.map(|s| s.pending), Some(3));
        let stopping = confirmed(
            &answered,
            &spec,
            1,
            &[
                observe(1, "job_canceling"),
                observe(2, "job_cancel_success"),
                observe(3, "job_cancel_success"),
            ],
            false,
            &time(2),
        );
        assert_eq!(stopping.phase, Some(Phase::Confirming));
        assert_eq!(
            stopping.summary.map(|s| (s.succeeded, s.pending)),
            Some((2, 1))
        );
        let done = confirmed(
            &stopping,
            &spec,
            1,
            &[observe(1, "job_cancel_success")],
            false,
            &time(3),
        );
        assert_eq!(done.phase, Some(Phase::Succeeded));
    }

    #[test]
    fn a_rejection_is_not_copied_into_every_result() {
        let spec = spec(&[1, 2], true);
        let claimed = claim(&JobStopRequestStatus::default(), &spec, 1, "op-a", &time(0));
        let error = RequestError {
            http_status: Some(400),
            code: Some("DLI.0001".into()),
            message: "x".repeat(2000),
        };
        let status = rejected(&claimed, &spec, 1, error, None, &time(1));
        for result in &status.results {
            assert_eq!(
                result.message.as_deref(),
                Some("not stopped: DLI rejected the request (DLI.0001); see status.error")
            );
        }
    }

    #[test]
    fn while_resolving_a_failed_stop_counts_as_delivered_and_failed() {
        let spec = spec(&[1, 2], true);
        let claimed = claim(&JobStopRequestStatus::default(), &spec, 1, "op-a", &time(0));
        let status = resolved(
            &claimed,
            &spec,
            1,
            &[
                observe(1, "job_cancel_fail"),
                observe(2, "job_cancel_success"),
            ],
            &time(11),
        );
        assert_eq!(status.phase, Some(Phase::PartiallyFailed));
        assert_eq!(condition(&status, STALLED), ("True", reason::JOBS_FAILED));
    }

    #[test]
    fn unknown_per_job_outcome_waits_for_confirmation_even_when_confirm_is_off() {
        let spec = spec(&[1, 2, 3], false);
        let (_, status) = claimed_and_answered(&spec, 1, &[(1, None), (2, None), (3, None)]);
        assert_eq!(status.phase, Some(Phase::Confirming));
        assert_eq!(status.results[0].is_success, None);
    }

    #[test]
    fn rejection_is_final_and_stalled() {
        let spec = spec(&[999], true);
        let claimed = claim(&JobStopRequestStatus::default(), &spec, 4, "op-a", &time(0));
        let error = RequestError {
            http_status: Some(400),
            code: Some("DLI.16001".into()),
            message: "The job does not exist: 999".into(),
        };
        let status = rejected(&claimed, &spec, 4, error, Some("req-9".into()), &time(1));
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(condition(&status, STALLED), ("True", reason::DLI_REJECTED));
        assert_eq!(
            condition(&status, SUBMITTED),
            ("False", reason::DLI_REJECTED)
        );
        assert_eq!(
            status.error.as_ref().and_then(|e| e.code.as_deref()),
            Some("DLI.16001")
        );
        assert_eq!(status.summary.map(|s| s.failed), Some(1));
    }

    #[test]
    fn unresolved_ambiguity_is_unknown_and_names_the_nonce() {
        let spec = spec(&[128, 137], true);
        let claimed = claim(&JobStopRequestStatus::default(), &spec, 1, "op-a", &time(0));
        let waiting = ambiguous(&claimed, 1, "timed out", &time(1));
        assert_eq!(
            condition(&waiting, RECONCILING),
            ("True", reason::RESOLVING_OUTCOME)
        );
        let status = resolved(
            &waiting,
            &spec,
            1,
            &[observe(128, "job_canceling"), observe(137, "job_running")],
            &time(11),
        );
        assert_eq!(status.phase, Some(Phase::Unknown));
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(
            condition(&status, STALLED),
            ("True", reason::OUTCOME_UNKNOWN)
        );
        let stalled = conditions::find(&status.conditions, STALLED).expect("stalled");
        assert!(
            stalled.message.contains("spec.nonce") && stalled.message.contains("137"),
            "{}",
            stalled.message
        );
    }

    #[test]
    fn ambiguity_resolved_by_job_states_continues_to_confirmation() {
        let spec = spec(&[128, 137], true);
        let claimed = claim(&JobStopRequestStatus::default(), &spec, 1, "op-a", &time(0));
        let status = resolved(
            &claimed,
            &spec,
            1,
            &[
                observe(128, "job_cancel_success"),
                observe(137, "job_savepointing"),
            ],
            &time(11),
        );
        assert_eq!(status.phase, Some(Phase::Confirming));
        assert_eq!(status.results[0].is_success, Some(true));
        assert_eq!(
            status.summary.map(|s| (s.succeeded, s.pending)),
            Some((1, 1))
        );
    }

    #[test]
    fn confirm_timeout_fails_the_jobs_still_running() {
        let spec = spec(&[128, 137], true);
        let (_, accepted) = claimed_and_accepted(&spec);
        let status = confirmed(
            &accepted,
            &spec,
            1,
            &[
                observe(128, "job_cancel_success"),
                observe(137, "job_canceling"),
            ],
            true,
            &time(61),
        );
        assert_eq!(status.phase, Some(Phase::PartiallyFailed));
        assert_eq!(
            condition(&status, STALLED),
            ("True", reason::CONFIRM_TIMEOUT)
        );
        assert_eq!(
            status.summary,
            Some(Summary {
                total: 2,
                succeeded: 1,
                failed: 1,
                pending: 0
            })
        );
    }

    #[test]
    fn finished_jobs_are_counted_once_when_the_generation_ends() {
        let spec = spec(&[128, 137], true);
        let (claimed, accepted) = claimed_and_accepted(&spec);
        assert!(newly_finished_jobs(Some(&claimed), &accepted, &spec).is_empty());
        let observed = [
            observe(128, "job_cancel_success"),
            observe(137, "job_canceling"),
        ];
        let timed_out = confirmed(&accepted, &spec, 1, &observed, true, &time(61));
        assert_eq!(
            newly_finished_jobs(Some(&accepted), &timed_out, &spec),
            vec![("stopped", 1), ("timeout", 1)]
        );
        assert!(newly_finished_jobs(Some(&timed_out), &timed_out, &spec).is_empty());
    }

    #[test]
    fn connection_problems_keep_the_request_pending() {
        let status = waiting_for_connection(
            &JobStopRequestStatus::default(),
            &spec(&[128], false),
            1,
            reason::CONNECTION_INVALID,
            "Secret key `projectId` is missing",
            &time(0),
        );
        assert_eq!(status.phase, Some(Phase::Pending));
        assert_eq!(
            condition(&status, READY),
            ("False", reason::CONNECTION_INVALID)
        );
        assert!(status.submission.is_none());
        assert_eq!(status.summary.map(|s| s.total), Some(1));
    }

    #[test]
    fn jobs_outside_the_scope_end_the_generation_without_a_claim() {
        let status = jobs_not_allowed(
            &JobStopRequestStatus::default(),
            &call_jobs(&JobStopRequestStatus::default(), &spec(&[128, 999], true)),
            1,
            &[999],
            "outside allowedJobIds",
            &time(7),
        );
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.observed_generation, Some(1));
        assert!(status.submission.is_none(), "nothing was claimed");
        assert_eq!(
            condition(&status, STALLED),
            ("True", reason::JOBS_NOT_ALLOWED)
        );
        assert_eq!(
            condition(&status, SUBMITTED),
            ("False", reason::JOBS_NOT_ALLOWED)
        );
        assert_eq!(status.finished_at, Some(time(7)));
        assert!(status.results.iter().all(|r| r.is_success == Some(false)));
        assert!(
            status.results[1]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("outside the connection's allowedJobIds"))
        );
        let summary = status.summary.expect("summary");
        assert_eq!((summary.total, summary.failed), (2, 2));
        assert_eq!(
            crate::controller::plan::next_step(
                Some(&status),
                &crate::controller::plan::Situation {
                    generation: 1,
                    fingerprint: "",
                    holder: "op",
                    now: jiff::Timestamp::UNIX_EPOCH,
                    claim_grace: Duration::from_secs(40),
                    delivery_deadline: Duration::from_secs(3600),
                },
            ),
            crate::controller::plan::Step::CallDone,
            "a widened scope later never sends this generation's stop"
        );
    }

    #[test]
    fn a_new_generation_waiting_for_its_connection_shows_no_old_results() {
        let first = spec(&[128, 137], false);
        let (_, done) = claimed_and_answered(&first, 1, &[(128, Some(true)), (137, Some(false))]);
        let second = spec(&[200], false);
        let waiting = waiting_for_connection(
            &done,
            &second,
            2,
            reason::CONNECTION_INVALID,
            "Secret is missing",
            &time(5),
        );
        assert_eq!(waiting.phase, Some(Phase::Pending));
        let jobs: Vec<(i64, Option<bool>)> = waiting
            .results
            .iter()
            .map(|r| (r.job_id, r.is_success))
            .collect();
        assert_eq!(jobs, [(200, None)]);
        assert!(waiting.response.is_empty());
        let summary = waiting.summary.expect("summary");
        assert_eq!(
            (summary.total, summary.succeeded, summary.failed),
            (1, 0, 0)
        );
        // The first generation's claim record stays: it is the audit of the call made.
        assert_eq!(waiting.submission.map(|s| s.generation), Some(1));
    }
}
