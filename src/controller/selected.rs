//! How a selector's generation ends when its selection leaves nothing to call DLI with: no job
//! a stop applies to (the desired state already holds), a named job that does not exist, or
//! more jobs than one request may stop. No claim, no call; final. Pure, like `status`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::status::{Verdict, apply_verdict, listed_skipped, summarize};
use crate::api::conditions::reason;
use crate::api::{JobStopRequestStatus, MAX_JOB_IDS, Phase};
use crate::selection::Selection;

/// The verdict a selection forces before any claim, or `None` when there are jobs to stop.
/// Names that match no job at all come first: the request names something that is not there,
/// which must not read as success even if nothing else would run.
pub fn forced_verdict(selection: &Selection) -> Option<Verdict> {
    if selection.too_many() {
        return Some(Verdict {
            phase: Phase::Failed,
            reason: reason::TOO_MANY_JOBS,
            message: format!(
                "The selector matches more than {MAX_JOB_IDS} running jobs, more than one request \
                 may stop; nothing was sent. Narrow spec.jobSelector (add names, or split the \
                 queue's jobs over several requests)"
            ),
            submitted: false,
        });
    }
    if !selection.unmatched_names.is_empty() {
        return Some(Verdict {
            phase: Phase::Failed,
            reason: reason::JOBS_NOT_FOUND,
            message: format!(
                "No DLI job is named {} (names match exactly){}; nothing was sent. Fix \
                 spec.jobSelector.names, then change spec.nonce if the names were right",
                quoted(&selection.unmatched_names),
                skipped_note(selection),
            ),
            submitted: false,
        });
    }
    if selection.stop.is_empty() {
        return Some(Verdict {
            phase: Phase::Succeeded,
            reason: reason::NOTHING_TO_STOP,
            message: format!(
                "No selected job is running, so nothing was sent{}",
                skipped_note(selection)
            ),
            submitted: false,
        });
    }
    None
}

/// `generation` ends with `verdict` and no call: the selection's findings recorded, no results.
pub fn ended_by_selection(
    old: &JobStopRequestStatus,
    selection: &Selection,
    verdict: Verdict,
    generation: i64,
    now: &Time,
) -> JobStopRequestStatus {
    let mut status = old.clone();
    status.observed_generation = Some(generation);
    status.results.clear();
    status.response.clear();
    status.error = None;
    status.skipped = if selection.too_many() {
        Vec::new()
    } else {
        listed_skipped(selection)
    };
    status.unmatched_names = selection.unmatched_names.clone();
    status.summary = Some(summarize(&[], false, false));
    apply_verdict(&mut status, verdict, generation, now);
    status
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn skipped_note(selection: &Selection) -> String {
    match selection.skipped.len() {
        0 => String::new(),
        count => format!("; {count} matching job(s) skipped for their state (status.skipped)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SkippedJob;
    use crate::api::conditions::{self, READY, STALLED};
    use crate::controller::fixtures::time;
    use crate::controller::status::MAX_SKIPPED_LISTED;
    use crate::selection::Target;

    fn skipped(id: i64) -> SkippedJob {
        SkippedJob {
            job_id: id,
            name: format!("job-{id}"),
            state: "job_cancel_success".into(),
        }
    }

    fn end(selection: &Selection) -> JobStopRequestStatus {
        let verdict = forced_verdict(selection).expect("a forced verdict");
        ended_by_selection(
            &JobStopRequestStatus::default(),
            selection,
            verdict,
            2,
            &time(0),
        )
    }

    fn condition(status: &JobStopRequestStatus, type_: &str) -> (String, String) {
        let found = conditions::find(&status.conditions, type_).expect("condition");
        (found.status.clone(), found.reason.clone())
    }

    #[test]
    fn nothing_running_is_ready_because_the_desired_state_holds() {
        let selection = Selection {
            skipped: vec![skipped(1)],
            ..Selection::default()
        };
        let status = end(&selection);
        assert_eq!(status.phase, Some(Phase::Succeeded));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            condition(&status, READY),
            ("True".into(), "NothingToStop".into())
        );
        assert_eq!(condition(&status, STALLED).0, "False");
        assert_eq!(status.skipped, vec![skipped(1)]);
    }

    #[test]
    fn a_name_that_matches_no_job_fails_and_is_named() {
        let selection = Selection {
            stop: vec![Target {
                job_id: 3,
                name: "orders".into(),
            }],
            unmatched_names: vec!["billing".into()],
            ..Selection::default()
        };
        let status = end(&selection);
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(
            condition(&status, STALLED),
            ("True".into(), "JobsNotFound".into())
        );
        assert_eq!(status.unmatched_names, vec!["billing".to_string()]);
        let ready = conditions::find(&status.conditions, READY).expect("ready");
        assert!(ready.message.contains("`billing`"), "{}", ready.message);
        assert!(status.results.is_empty(), "nothing was sent");
    }

    #[test]
    fn too_many_jobs_fail_without_listing_them() {
        let count = i64::try_from(MAX_JOB_IDS).expect("fits") + 1;
        let selection = Selection {
            stop: (1..=count)
                .map(|job_id| Target {
                    job_id,
                    name: format!("j{job_id}"),
                })
                .collect(),
            skipped: vec![skipped(9_999)],
            ..Selection::default()
        };
        let status = end(&selection);
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(condition(&status, READY).1, "TooManyJobs");
        assert!(status.skipped.is_empty() && status.results.is_empty());
    }

    #[test]
    fn jobs_to_stop_force_nothing() {
        let selection = Selection {
            stop: vec![Target {
                job_id: 1,
                name: "a".into(),
            }],
            ..Selection::default()
        };
        assert!(forced_verdict(&selection).is_none());
    }

    #[test]
    fn the_status_lists_a_bounded_number_of_skipped_jobs() {
        let selection = Selection {
            skipped: (1..=200).map(skipped).collect(),
            ..Selection::default()
        };
        let status = end(&selection);
        assert_eq!(status.skipped.len(), MAX_SKIPPED_LISTED);
        let ready = conditions::find(&status.conditions, READY).expect("ready");
        assert!(
            ready.message.contains("200 matching job(s) skipped"),
            "{}",
            ready.message
        );
    }
}
