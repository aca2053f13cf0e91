//! Which listed DLI jobs a selector chooses. Pure: DLI's list filters are only hints (its name
//! filter matches loosely), so every job is checked here, exactly.

use std::collections::BTreeSet;

use crate::api::{JobSelector, MAX_JOB_IDS, SkippedJob};
use crate::dli::{JobDetail, JobStatus};

/// A job a selector chose, to be stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub job_id: i64,
    pub name: String,
}

/// What a selector resolved to at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// The jobs to stop, by id.
    pub stop: Vec<Target>,
    /// Jobs that matched but are in a state no stop applies to.
    pub skipped: Vec<SkippedJob>,
    /// Selector names that matched no job at all, in the selector's order.
    pub unmatched_names: Vec<String>,
}

impl Selection {
    /// More jobs than one request may stop: refused before any call.
    pub fn too_many(&self) -> bool {
        self.stop.len() > MAX_JOB_IDS
    }

    /// The ids to stop, in order.
    pub fn job_ids(&self) -> Vec<i64> {
        self.stop.iter().map(|target| target.job_id).collect()
    }
}

/// Whether a stop applies to a job in `status`: the job runs, is starting or idle, or its last
/// stop failed (it is still alive). DLI documents the states but not which accept a stop, so
/// this is the operator's rule: a job already stopping or stopped, never started or finished
/// is skipped.
pub fn stoppable(status: &JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Running
            | JobStatus::RunningException
            | JobStatus::Submitting
            | JobStatus::Idle
            | JobStatus::CancelFail
    )
}

/// Whether `job` is one `selector` names: its exact name (when names are given) and its exact
/// queue (when a queue is given).
pub fn matches(selector: &JobSelector, job: &JobDetail) -> bool {
    let name_matches = selector.names.is_empty() || selector.names.contains(&job.name);
    let queue_matches = selector
        .queue_name
        .as_ref()
        .is_none_or(|queue| *queue == job.queue_name);
    name_matches && queue_matches
}

/// The selection `selector` makes among `jobs` (a job listed twice, as paging may do while
/// jobs change, counts once). Jobs to stop are ordered by id.
pub fn select(selector: &JobSelector, jobs: &[JobDetail]) -> Selection {
    let mut seen = BTreeSet::new();
    let mut selection = Selection::default();
    let mut found_names = BTreeSet::new();
    for job in jobs {
        if !matches(selector, job) || !seen.insert(job.job_id) {
            continue;
        }
        found_names.insert(job.name.as_str());
        match &job.status {
            Some(status) if stoppable(status) => selection.stop.push(Target {
                job_id: job.job_id,
                name: job.name.clone(),
            }),
            status => selection.skipped.push(SkippedJob {
                job_id: job.job_id,
                name: job.name.clone(),
                state: status
                    .as_ref()
                    .map_or_else(|| "unknown".to_string(), |s| s.as_str().to_string()),
            }),
        }
    }
    selection.stop.sort_by_key(|target| target.job_id);
    selection.skipped.sort_by_key(|job| job.job_id);
    selection.unmatched_names = selector
        .names
        .iter()
        .filter(|name| !found_names.contains(name.as_str()))
        .cloned()
        .collect();
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, name: &str, queue: &str, status: &str) -> JobDetail {
        serde_json::from_value(serde_json::json!({
            "job_id": id, "name": name, "queue_name": queue, "status": status
        }))
        .expect("a job")
    }

    fn selector(names: &[&str], queue: Option<&str>) -> JobSelector {
        JobSelector {
            names: names.iter().map(|n| (*n).to_string()).collect(),
            queue_name: queue.map(str::to_string),
        }
    }

    #[test]
    fn names_match_exactly_not_loosely() {
        let jobs = [
            job(1, "orders", "q", "job_running"),
            job(2, "orders-enrichment", "q", "job_running"),
            job(3, "old-orders", "q", "job_running"),
        ];
        let selection = select(&selector(&["orders"], None), &jobs);
        assert_eq!(selection.job_ids(), vec![1]);
        assert!(selection.unmatched_names.is_empty());
    }

    #[test]
    fn a_queue_selects_its_running_jobs_and_skips_the_others_with_their_state() {
        let jobs = [
            job(5, "a", "flink-prod", "job_running"),
            job(4, "b", "flink-prod", "job_cancel_success"),
            job(3, "c", "flink-dev", "job_running"),
            job(2, "d", "flink-prod", "job_cancel_fail"),
            job(1, "e", "flink-prod", "job_canceling"),
        ];
        let selection = select(&selector(&[], Some("flink-prod")), &jobs);
        assert_eq!(selection.job_ids(), vec![2, 5]);
        assert_eq!(
            selection
                .skipped
                .iter()
                .map(|s| (s.job_id, s.state.as_str()))
                .collect::<Vec<_>>(),
            vec![(1, "job_canceling"), (4, "job_cancel_success")]
        );
    }

    #[test]
    fn names_and_queue_together_select_the_named_jobs_on_that_queue() {
        let jobs = [
            job(1, "orders", "flink-dev", "job_running"),
            job(2, "orders", "flink-prod", "job_running"),
            job(3, "clicks", "flink-prod", "job_running"),
        ];
        let selection = select(&selector(&["orders", "billing"], Some("flink-prod")), &jobs);
        assert_eq!(selection.job_ids(), vec![2]);
        assert_eq!(selection.unmatched_names, vec!["billing".to_string()]);
    }

    #[test]
    fn a_stopped_named_job_is_skipped_not_unmatched() {
        let jobs = [job(1, "orders", "q", "job_cancel_success")];
        let selection = select(&selector(&["orders"], None), &jobs);
        assert!(selection.stop.is_empty());
        assert!(selection.unmatched_names.is_empty());
        assert_eq!(selection.skipped.len(), 1);
    }

    #[test]
    fn a_job_listed_twice_counts_once() {
        let jobs = [
            job(1, "orders", "q", "job_running"),
            job(1, "orders", "q", "job_running"),
        ];
        assert_eq!(
            select(&selector(&["orders"], None), &jobs).job_ids(),
            vec![1]
        );
    }

    #[test]
    fn more_than_the_maximum_is_too_many() {
        let count = i64::try_from(MAX_JOB_IDS).expect("fits") + 1;
        let jobs: Vec<JobDetail> = (1..=count)
            .map(|id| job(id, &format!("j{id}"), "q", "job_running"))
            .collect();
        assert!(select(&selector(&[], Some("q")), &jobs).too_many());
        assert!(!select(&selector(&[], Some("q")), &jobs[1..]).too_many());
    }
}
