//! DLI's answer to a batch stop, and the pure rules that turn it into per-job facts.

use super::wire::{AnswerElement, JobStatus};

/// What DLI answered to a batch stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopAnswer {
    /// The raw answer elements, for audit.
    pub elements: Vec<AnswerElement>,
    /// Per job, in the order sent (see [`map_answer`]).
    pub jobs: Vec<JobAnswer>,
    pub request_id: Option<String>,
    pub http_status: u16,
}

/// What the batch-stop answer says about one job. `None` fields: the answer did not say
/// (the element count matched neither the job count nor one), so only the job-detail API can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAnswer {
    pub job_id: i64,
    pub is_success: Option<bool>,
    pub message: Option<String>,
}

/// Maps the answer array onto the job ids sent.
///
/// The array is not keyed by job: N elements for N ids map by position;
/// a single element applies to the whole batch (the documented example answers two ids with one
/// element); any other count cannot be attributed, so every job's outcome stays unknown.
pub fn map_answer(job_ids: &[i64], elements: &[AnswerElement]) -> Vec<JobAnswer> {
    let element_for = |index: usize| -> Option<&AnswerElement> {
        if elements.len() == job_ids.len() {
            elements.get(index)
        } else if elements.len() == 1 {
            elements.first()
        } else {
            None
        }
    };
    job_ids
        .iter()
        .enumerate()
        .map(|(index, job_id)| {
            let element = element_for(index);
            JobAnswer {
                job_id: *job_id,
                is_success: element.map(|element| element.is_success),
                message: element.map(|element| element.message.clone()),
            }
        })
        .collect()
}

/// Where a job stands with respect to a stop, for confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStateClass {
    /// The job no longer runs: the stop is done.
    Stopped,
    /// DLI is working on the stop (taking a savepoint or cancelling): keep polling.
    Stopping,
    /// DLI tried and failed to stop the job.
    StopFailed,
    /// The job runs (or is starting) as if no stop had been asked for.
    Running,
    /// A status this operator does not know: keep polling until the confirm timeout.
    Unknown,
}

/// Classifies a job status for confirming a stop.
///
/// - Stopped: `job_cancel_success`, `job_finish` (it ended on its own, nothing runs),
///   `job_arrearage_stopped` (stopped for arrears, nothing runs), `job_init` (terraform's
///   provider treats it as the resting state a stopped job returns to), and `job_submit_fail`
///   (never started, so nothing runs).
/// - Stopping: `job_canceling`, `job_savepointing`: the documented in-between states.
/// - StopFailed: `job_cancel_fail`.
/// - Running: `job_running`, `job_running_exception` (still running, restarting),
///   `job_submitting`, `job_downloading`, `job_idle`, `job_arrearage_recovering`: each means
///   the job is (about to be) running, so a stop has not taken effect yet.
pub fn job_state_class(status: &JobStatus) -> JobStateClass {
    match status {
        JobStatus::CancelSuccess
        | JobStatus::Finish
        | JobStatus::ArrearageStopped
        | JobStatus::Init
        | JobStatus::SubmitFail => JobStateClass::Stopped,
        JobStatus::Canceling | JobStatus::Savepointing => JobStateClass::Stopping,
        JobStatus::CancelFail => JobStateClass::StopFailed,
        JobStatus::Running
        | JobStatus::RunningException
        | JobStatus::Submitting
        | JobStatus::Downloading
        | JobStatus::Idle
        | JobStatus::ArrearageRecovering => JobStateClass::Running,
        JobStatus::Other(_) => JobStateClass::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(is_success: bool, message: &str) -> AnswerElement {
        AnswerElement {
            is_success,
            message: message.to_owned(),
        }
    }

    #[test]
    fn one_element_per_job_maps_by_position() {
        let answers = map_answer(
            &[128, 137],
            &[element(true, "ok"), element(false, "no such job")],
        );
        assert_eq!(
            answers,
            [
                JobAnswer {
                    job_id: 128,
                    is_success: Some(true),
                    message: Some("ok".into())
                },
                JobAnswer {
                    job_id: 137,
                    is_success: Some(false),
                    message: Some("no such job".into())
                },
            ]
        );
    }

    #[test]
    fn a_single_element_applies_to_every_job() {
        let answers = map_answer(&[1, 2, 3], &[element(true, "delivered")]);
        assert_eq!(answers.len(), 3);
        assert!(
            answers
                .iter()
                .all(|a| a.is_success == Some(true) && a.message.as_deref() == Some("delivered"))
        );
        assert_eq!(
            answers.iter().map(|a| a.job_id).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn any_other_count_leaves_every_job_unknown() {
        for elements in [
            vec![],
            vec![element(true, "a"), element(true, "b")],
            vec![element(true, "a"); 4],
        ] {
            let answers = map_answer(&[1, 2, 3], &elements);
            assert_eq!(answers.len(), 3);
            assert!(
                answers
                    .iter()
                    .all(|a| a.is_success.is_none() && a.message.is_none()),
                "{elements:?}"
            );
        }
    }

    #[test]
    fn a_single_job_with_a_single_element_is_by_position() {
        let answers = map_answer(&[9], &[element(false, "refused")]);
        assert_eq!(answers[0].is_success, Some(false));
    }

    #[test]
    fn stop_confirmation_classes() {
        let class = |name: &str| job_state_class(&JobStatus::parse(name));
        for name in [
            "job_cancel_success",
            "job_finish",
            "job_arrearage_stopped",
            "job_init",
            "job_submit_fail",
        ] {
            assert_eq!(class(name), JobStateClass::Stopped, "{name}");
        }
        for name in ["job_canceling", "job_savepointing"] {
            assert_eq!(class(name), JobStateClass::Stopping, "{name}");
        }
        assert_eq!(class("job_cancel_fail"), JobStateClass::StopFailed);
        for name in [
            "job_running",
            "job_running_exception",
            "job_submitting",
            "job_downloading",
            "job_idle",
            "job_arrearage_recovering",
        ] {
            assert_eq!(class(name), JobStateClass::Running, "{name}");
        }
        assert_eq!(class("job_something_new"), JobStateClass::Unknown);
    }
}
