//! The job model of the stand-in: what DLI reports for a job at a given instant.
//!
//! A job keeps the status it was created with plus the stop request it received, if any;
//! everything DLI reports afterwards (`job_savepointing` -> `job_canceling` -> final) is
//! computed from the elapsed time, so the HTTP layer never has to run timers.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

pub const JOB_RUNNING: &str = "job_running";
pub const JOB_CANCELING: &str = "job_canceling";
pub const JOB_SAVEPOINTING: &str = "job_savepointing";
pub const JOB_CANCEL_SUCCESS: &str = "job_cancel_success";
pub const JOB_CANCEL_FAIL: &str = "job_cancel_fail";

/// DLI's answer element for a stop that was delivered.
pub const STOP_DELIVERED: &str = "The request for stopping DLI jobs is delivered successfully.";

/// The queue a job runs on unless a test names another.
pub const DEFAULT_QUEUE: &str = "dli-sim-queue";

/// The bucket the stand-in pretends savepoints are written to.
pub const SAVEPOINT_BUCKET: &str = "dli-sim-bucket";

/// Statuses from which DLI accepts a stop. `job_cancel_fail` is included because a job whose
/// stop failed is still alive and may be stopped again.
const STOPPABLE: [&str; 5] = [
    JOB_RUNNING,
    "job_running_exception",
    "job_submitting",
    "job_idle",
    JOB_CANCEL_FAIL,
];

/// How a job reacts to the next stop it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopOutcome {
    /// Ends in `job_cancel_success` (with a savepoint when one was asked for).
    #[default]
    Succeed,
    /// Ends in `job_cancel_fail`.
    FailToStop,
    /// Stays in `job_canceling` forever.
    Hang,
}

/// How long the asynchronous phases of a stop take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub stop_delay: Duration,
    pub savepoint_delay: Duration,
}

/// A stop DLI accepted for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequest {
    pub at: Timestamp,
    pub savepoint: bool,
    pub outcome: StopOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub queue_name: String,
    /// The status before any stop, as set up by the test.
    pub status: String,
    pub created_at: Timestamp,
    /// When `status` was set.
    pub status_since: Timestamp,
    pub stop: Option<StopRequest>,
}

impl Job {
    pub fn new(id: i64, status: &str, now: Timestamp) -> Job {
        Job {
            id,
            name: format!("dli-sim-job-{id}"),
            queue_name: DEFAULT_QUEUE.to_owned(),
            status: status.to_owned(),
            created_at: now,
            status_since: now,
            stop: None,
        }
    }
}

/// What a job list asks for, besides the page: DLI's `status`, `name` and `queue_name` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub status: Option<String>,
    pub name: Option<String>,
    pub queue_name: Option<String>,
}

impl ListFilter {
    /// Whether a job with `name` on `queue_name`, reporting `status`, is listed. DLI's name
    /// filter matches loosely: any job whose name contains the text, ignoring case, so a
    /// client wanting one name must check each job it gets. Status and queue match exactly.
    pub fn admits(&self, name: &str, queue_name: &str, status: &str) -> bool {
        let name_matches = self
            .name
            .as_ref()
            .is_none_or(|wanted| name.to_lowercase().contains(&wanted.to_lowercase()));
        name_matches
            && self.queue_name.as_deref().is_none_or(|q| q == queue_name)
            && self.status.as_deref().is_none_or(|s| s == status)
    }
}

/// What DLI reports about a job at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub status: String,
    pub updated_at: Timestamp,
    pub savepoint_path: Option<String>,
}

/// What DLI answers for one job of a batch stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopDecision {
    Accepted,
    Refused { message: String },
}

/// The status DLI reports for `job` at `now`.
pub fn observe(job: &Job, now: Timestamp, timing: &Timing) -> JobView {
    let Some(stop) = &job.stop else {
        return JobView {
            status: job.status.clone(),
            updated_at: job.status_since,
            savepoint_path: None,
        };
    };
    let view = |status: &str, since: Timestamp, savepoint_path: Option<String>| JobView {
        status: status.to_owned(),
        updated_at: since,
        savepoint_path,
    };
    let canceling_since = if stop.savepoint {
        let done = after(stop.at, timing.savepoint_delay);
        if now < done {
            return view(JOB_SAVEPOINTING, stop.at, None);
        }
        done
    } else {
        stop.at
    };
    let finished_at = after(canceling_since, timing.stop_delay);
    if stop.outcome == StopOutcome::Hang || now < finished_at {
        return view(JOB_CANCELING, canceling_since, None);
    }
    match stop.outcome {
        StopOutcome::FailToStop => view(JOB_CANCEL_FAIL, finished_at, None),
        StopOutcome::Succeed | StopOutcome::Hang => {
            let path = stop
                .savepoint
                .then(|| savepoint_path(job.id, canceling_since));
            view(JOB_CANCEL_SUCCESS, finished_at, path)
        }
    }
}

/// Whether DLI accepts a stop for a job that currently reports `view`.
pub fn decide_stop(job_id: i64, view: &JobView) -> StopDecision {
    if STOPPABLE.contains(&view.status.as_str()) {
        return StopDecision::Accepted;
    }
    let message = match view.status.as_str() {
        JOB_CANCELING | JOB_SAVEPOINTING => format!("The job {job_id} is being stopped."),
        status => format!("The job {job_id} cannot be stopped in status {status}."),
    };
    StopDecision::Refused { message }
}

/// `job` after DLI accepted a stop at `now` that will end in `outcome`.
pub fn accept_stop(job: &Job, now: Timestamp, savepoint: bool, outcome: StopOutcome) -> Job {
    Job {
        stop: Some(StopRequest {
            at: now,
            savepoint,
            outcome,
        }),
        ..job.clone()
    }
}

/// Where DLI writes the savepoint of a job, under the job's OBS bucket.
pub fn savepoint_path(job_id: i64, taken_at: Timestamp) -> String {
    format!(
        "obs://{SAVEPOINT_BUCKET}/jobs/savepoint/{job_id}/{}/",
        taken_at.as_millisecond()
    )
}

fn after(at: Timestamp, delay: Duration) -> Timestamp {
    // A delay too large for a timestamp means "never": the latest representable instant.
    SignedDuration::try_from(delay)
        .ok()
        .and_then(|d| at.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        stop_delay: Duration::from_secs(2),
        savepoint_delay: Duration::from_secs(3),
    };

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn running() -> Job {
        Job::new(128, JOB_RUNNING, t(0))
    }

    fn status_at(job: &Job, secs: i64) -> String {
        observe(job, t(secs), &TIMING).status
    }

    #[test]
    fn a_job_without_stop_reports_its_own_status() {
        let view = observe(&running(), t(100), &TIMING);
        assert_eq!(view.status, JOB_RUNNING);
        assert_eq!(view.updated_at, t(0));
        assert_eq!(view.savepoint_path, None);
    }

    #[test]
    fn a_plain_stop_cancels_then_succeeds_after_the_stop_delay() {
        let job = accept_stop(&running(), t(10), false, StopOutcome::Succeed);
        assert_eq!(status_at(&job, 10), JOB_CANCELING);
        assert_eq!(status_at(&job, 11), JOB_CANCELING);
        let done = observe(&job, t(12), &TIMING);
        assert_eq!(done.status, JOB_CANCEL_SUCCESS);
        assert_eq!(done.updated_at, t(12));
        assert_eq!(done.savepoint_path, None);
    }

    #[test]
    fn a_stop_with_savepoint_goes_through_savepointing_and_records_the_path() {
        let job = accept_stop(&running(), t(10), true, StopOutcome::Succeed);
        assert_eq!(status_at(&job, 10), JOB_SAVEPOINTING);
        assert_eq!(status_at(&job, 12), JOB_SAVEPOINTING);
        let canceling = observe(&job, t(13), &TIMING);
        assert_eq!(canceling.status, JOB_CANCELING);
        assert_eq!(canceling.updated_at, t(13));
        let done = observe(&job, t(15), &TIMING);
        assert_eq!(done.status, JOB_CANCEL_SUCCESS);
        let expected = format!(
            "obs://dli-sim-bucket/jobs/savepoint/128/{}/",
            t(13).as_millisecond()
        );
        assert_eq!(done.savepoint_path.as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn a_job_set_to_fail_ends_in_cancel_fail_without_savepoint() {
        let job = accept_stop(&running(), t(0), true, StopOutcome::FailToStop);
        let done = observe(&job, t(5), &TIMING);
        assert_eq!(done.status, JOB_CANCEL_FAIL);
        assert_eq!(done.savepoint_path, None);
    }

    #[test]
    fn a_hanging_job_stays_canceling_forever() {
        let job = accept_stop(&running(), t(0), false, StopOutcome::Hang);
        assert_eq!(status_at(&job, 1_000_000), JOB_CANCELING);
    }

    #[test]
    fn only_live_jobs_accept_a_stop() {
        let view = |status: &str| JobView {
            status: status.to_owned(),
            updated_at: t(0),
            savepoint_path: None,
        };
        assert_eq!(decide_stop(1, &view(JOB_RUNNING)), StopDecision::Accepted);
        assert_eq!(
            decide_stop(1, &view(JOB_CANCEL_FAIL)),
            StopDecision::Accepted
        );
        assert_eq!(
            decide_stop(7, &view(JOB_CANCELING)),
            StopDecision::Refused {
                message: "The job 7 is being stopped.".into()
            }
        );
        assert_eq!(
            decide_stop(7, &view(JOB_CANCEL_SUCCESS)),
            StopDecision::Refused {
                message: "The job 7 cannot be stopped in status job_cancel_success.".into()
            }
        );
    }

    #[test]
    fn an_absurd_delay_never_finishes_instead_of_overflowing() {
        let timing = Timing {
            stop_delay: Duration::MAX,
            savepoint_delay: Duration::ZERO,
        };
        let job = accept_stop(&running(), t(0), false, StopOutcome::Succeed);
        assert_eq!(observe(&job, t(1_000_000), &timing).status, JOB_CANCELING);
    }
}
