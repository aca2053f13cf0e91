//! Bounds on the text a status carries. DLI's messages, paths and ids are copied into the
//! status; uncapped, one long message repeated over 500 jobs makes a status the API server
//! refuses to store, and a request whose outcome cannot be written ends `Unknown`. Pure.

use crate::api::JobStopRequestStatus;
use crate::dli::client::cap_chars;

/// Longest message (a condition's, a job's, DLI's error) in characters; longer ones are cut
/// and end in a marker.
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// The messages of one list (`results`, `response`) share this many characters, so a list of
/// 500 entries stays small; each still gets at least [`MIN_SHARE`].
const LIST_MESSAGE_BUDGET: usize = 64 * 1024;
/// The savepoint paths of `results` share this many characters.
const LIST_PATH_BUDGET: usize = 128 * 1024;
const MIN_SHARE: usize = 64;
/// DLI's job statuses are short words; anything longer is not one.
const MAX_STATE_CHARS: usize = 64;
const MAX_REQUEST_ID_CHARS: usize = 128;
/// DLI job names are up to 57 characters; a longer one is shown cut (names a selector matched
/// exactly are within its own bound, so only names shown for a queue can be cut).
const MAX_NAME_CHARS: usize = 128;

/// `status` with every text field within its bound. Capping twice changes nothing.
pub fn cap_status(mut status: JobStopRequestStatus) -> JobStopRequestStatus {
    let jobs = status.results.len();
    let message_share = share(LIST_MESSAGE_BUDGET, jobs);
    let path_share = share(LIST_PATH_BUDGET, jobs);
    for result in &mut status.results {
        cap_optional(&mut result.name, MAX_NAME_CHARS);
        cap_optional(&mut result.message, message_share);
        cap_optional(&mut result.state, MAX_STATE_CHARS);
        cap_optional(&mut result.savepoint_path, path_share);
    }
    for skipped in &mut status.skipped {
        cap(&mut skipped.name, MAX_NAME_CHARS);
        cap(&mut skipped.state, MAX_STATE_CHARS);
    }
    let element_share = share(LIST_MESSAGE_BUDGET, status.response.len());
    for element in &mut status.response {
        cap(&mut element.message, element_share);
    }
    if let Some(error) = status.error.as_mut() {
        cap(&mut error.message, MAX_MESSAGE_CHARS);
    }
    if let Some(submission) = status.submission.as_mut() {
        cap_optional(&mut submission.request_id, MAX_REQUEST_ID_CHARS);
    }
    for condition in &mut status.conditions {
        cap(&mut condition.message, MAX_MESSAGE_CHARS);
    }
    status
}

/// Each entry's part of `budget` over `entries` entries.
fn share(budget: usize, entries: usize) -> usize {
    (budget / entries.max(1)).clamp(MIN_SHARE, MAX_MESSAGE_CHARS)
}

fn cap(text: &mut String, max: usize) {
    if text.chars().count() > max {
        *text = cap_chars(text, max);
    }
}

fn cap_optional(text: &mut Option<String>, max: usize) {
    if let Some(text) = text.as_mut() {
        cap(text, max);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;
    use crate::api::{JobResult, RequestError, ResponseElement, Submission, Summary};

    fn long(text: &str) -> String {
        text.repeat(20_000 / text.len())
    }

    /// A status as large as DLI could make it at 500 jobs: every text field 20,000 characters.
    fn worst_status(jobs: i64) -> JobStopRequestStatus {
        JobStopRequestStatus {
            observed_generation: Some(i64::MAX),
            submission: Some(Submission {
                generation: i64::MAX,
                request_id: Some(long("r")),
                claimed_by: Some("dli-stop-operator-7d9f8c6b5-x2x9z/4242-1800000000000".into()),
                ..Submission::default()
            }),
            results: (1..=jobs)
                .map(|job_id| JobResult {
                    job_id: i64::MAX - job_id,
                    name: Some(long("orders-enrichment-")),
                    is_success: Some(false),
                    message: Some(long("the job is not running; ")),
                    state: Some(long("job_running")),
                    savepoint_path: Some(long("obs://bucket/")),
                })
                .collect(),
            response: (1..=jobs)
                .map(|_| ResponseElement {
                    is_success: false,
                    message: long("refused "),
                })
                .collect(),
            error: Some(RequestError {
                http_status: Some(400),
                code: Some("DLI.0001".into()),
                message: long("bad "),
            }),
            summary: Some(Summary::default()),
            conditions: ["Ready", "Reconciling", "Stalled", "Submitted"]
                .iter()
                .map(|type_| Condition {
                    type_: (*type_).into(),
                    status: "False".into(),
                    reason: "JobsFailed".into(),
                    message: long("500 of 500 job(s) failed to stop: "),
                    observed_generation: Some(i64::MAX),
                    last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                })
                .collect(),
            ..JobStopRequestStatus::default()
        }
    }

    /// The API server stores objects up to 1.5 MiB (etcd's request limit); the whole status
    /// at the most jobs a request may name stays well under a third of it.
    #[test]
    fn the_status_of_500_jobs_stays_well_under_the_object_size_limit() {
        let status = cap_status(worst_status(
            i64::try_from(crate::api::MAX_JOB_IDS).unwrap(),
        ));
        let bytes = serde_json::to_vec(&status).expect("json").len();
        assert!(bytes < 512 * 1024, "{bytes} bytes");
        let uncapped = serde_json::to_vec(&worst_status(500)).expect("json").len();
        assert!(
            uncapped > 3 * 1024 * 1024,
            "the test status is not large: {uncapped}"
        );
    }

    #[test]
    fn every_message_is_capped_with_a_marker() {
        let status = cap_status(worst_status(1));
        let marked = |text: &str, max: usize| {
            text.ends_with("... [cut]") && text.chars().count() <= max + "... [cut]".len()
        };
        assert!(marked(
            status.results[0].message.as_deref().unwrap(),
            MAX_MESSAGE_CHARS
        ));
        assert!(marked(&status.response[0].message, MAX_MESSAGE_CHARS));
        assert!(marked(
            &status.error.as_ref().unwrap().message,
            MAX_MESSAGE_CHARS
        ));
        for condition in &status.conditions {
            assert!(marked(&condition.message, MAX_MESSAGE_CHARS));
        }
        assert!(marked(
            status.results[0].state.as_deref().unwrap(),
            MAX_STATE_CHARS
        ));
    }

    #[test]
    fn short_text_is_left_alone_and_capping_twice_changes_nothing() {
        let mut short = worst_status(2);
        for result in &mut short.results {
            result.message = Some("delivered".into());
        }
        let capped = cap_status(short.clone());
        assert_eq!(capped.results[0].message.as_deref(), Some("delivered"));
        let worst = cap_status(worst_status(500));
        assert_eq!(cap_status(worst.clone()), worst);
    }
}
