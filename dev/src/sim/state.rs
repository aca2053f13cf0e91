//! Everything the stand-in knows, and what each DLI/IAM operation does to it.
//!
//! Methods take the current time as an argument so the behaviour is testable without a server.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sim::credentials::{Credentials, IssuedToken};
use crate::sim::faults::FaultBook;
use crate::sim::jobs::{
    Job, JobView, ListFilter, STOP_DELIVERED, StopDecision, StopOutcome, Timing, accept_stop,
    decide_stop, observe,
};
use crate::sim::wire::{BatchStopBody, StopElement, job_json};

/// How the batch-stop answer is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerShape {
    /// One element per job id, in request order.
    #[default]
    PerJob,
    /// One element for the whole batch, like the documentation's example.
    SingleElement,
    /// One JSON object, not an array, for the whole batch, as a regional reference shows.
    Object,
}

/// One batch-stop call that reached DLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopCall {
    pub job_ids: Vec<i64>,
    pub trigger_savepoint: bool,
    pub at: Timestamp,
    /// Whether the call changed any job (false for refused, cut-before-apply or still-held calls).
    pub applied: bool,
}

/// The result of a batch stop that DLI processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopAnswer {
    Elements(Vec<StopElement>),
    /// The whole batch's verdict as one object ([`AnswerShape::Object`]).
    Object(StopElement),
    /// DLI refuses the whole call when one id is unknown.
    UnknownJob(i64),
}

/// The result of a list call.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// Jobs matching the query over all pages.
    pub total_count: usize,
    pub jobs: Vec<Value>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub stop_calls: BTreeMap<i64, usize>,
    pub total_stop_calls: usize,
    pub stop_log: Vec<StopCall>,
    pub detail_calls: usize,
    pub list_calls: usize,
    pub token_issues: usize,
}

#[derive(Debug)]
pub struct SimState {
    pub project_id: String,
    pub project_name: String,
    pub timing: Timing,
    pub token_ttl: Duration,
    pub jobs: BTreeMap<i64, Job>,
    pub outcomes: HashMap<i64, StopOutcome>,
    pub creds: Credentials,
    pub faults: FaultBook,
    pub answer_shape: AnswerShape,
    /// Answer `null` for every optional job field, as the SDK's models allow.
    pub null_optional_fields: bool,
    pub clock_skew: SignedDuration,
    pub stats: Stats,
}

impl SimState {
    pub fn new(
        project_id: String,
        project_name: String,
        timing: Timing,
        token_ttl: Duration,
    ) -> SimState {
        SimState {
            project_id,
            project_name,
            timing,
            token_ttl,
            jobs: BTreeMap::new(),
            outcomes: HashMap::new(),
            creds: Credentials::default(),
            faults: FaultBook::default(),
            answer_shape: AnswerShape::default(),
            null_optional_fields: false,
            clock_skew: SignedDuration::ZERO,
            stats: Stats::default(),
        }
    }

    /// The time on the gateway's clock, which tests may set off from real time.
    pub fn gateway_now(&self, now: Timestamp) -> Timestamp {
        now.checked_add(self.clock_skew).unwrap_or(now)
    }

    pub fn put_job(&mut self, id: i64, status: &str, now: Timestamp) {
        self.jobs.insert(id, Job::new(id, status, now));
    }

    /// Adds or resets a job with its name and queue.
    pub fn put_named_job(
        &mut self,
        id: i64,
        name: &str,
        queue_name: &str,
        status: &str,
        now: Timestamp,
    ) {
        let job = Job {
            name: name.to_owned(),
            queue_name: queue_name.to_owned(),
            ..Job::new(id, status, now)
        };
        self.jobs.insert(id, job);
    }

    /// Removes a job, as deleting it in DLI does.
    pub fn remove_job(&mut self, id: i64) {
        self.jobs.remove(&id);
    }

    pub fn view(&self, id: i64, now: Timestamp) -> Option<(&Job, JobView)> {
        let job = self.jobs.get(&id)?;
        Some((job, observe(job, now, &self.timing)))
    }

    /// Counts a stop call that reached DLI; returns its index in the log.
    pub fn record_stop_call(&mut self, body: &BatchStopBody, now: Timestamp) -> usize {
        for id in &body.job_ids {
            *self.stats.stop_calls.entry(*id).or_default() += 1;
        }
        self.stats.total_stop_calls += 1;
        self.stats.stop_log.push(StopCall {
            job_ids: body.job_ids.clone(),
            trigger_savepoint: body.trigger_savepoint,
            at: now,
            applied: false,
        });
        self.stats.stop_log.len() - 1
    }

    /// Processes the stop call logged at `call`: all ids must exist, then each job decides.
    pub fn batch_stop(&mut self, call: usize, body: &BatchStopBody, now: Timestamp) -> StopAnswer {
        if let Some(unknown) = body.job_ids.iter().find(|id| !self.jobs.contains_key(id)) {
            return StopAnswer::UnknownJob(*unknown);
        }
        let mut decisions = Vec::with_capacity(body.job_ids.len());
        for id in &body.job_ids {
            let Some((job, view)) = self.view(*id, now) else {
                continue;
            };
            let decision = decide_stop(*id, &view);
            if decision == StopDecision::Accepted {
                let outcome = self.outcomes.get(id).copied().unwrap_or_default();
                let stopped = accept_stop(job, now, body.trigger_savepoint, outcome);
                self.jobs.insert(*id, stopped);
            }
            decisions.push(decision);
        }
        if let Some(logged) = self.stats.stop_log.get_mut(call) {
            logged.applied = decisions.contains(&StopDecision::Accepted);
        }
        shape_answer(self.answer_shape, decisions)
    }

    pub fn list_jobs(
        &self,
        now: Timestamp,
        limit: usize,
        offset: usize,
        filter: &ListFilter,
    ) -> JobPage {
        let matching: Vec<Value> = self
            .jobs
            .values()
            .map(|job| (job, observe(job, now, &self.timing)))
            .filter(|(job, view)| filter.admits(&job.name, &job.queue_name, &view.status))
            .map(|(job, view)| job_json(job, &view, self.null_optional_fields))
            .collect();
        JobPage {
            total_count: matching.len(),
            jobs: matching.into_iter().skip(offset).take(limit).collect(),
        }
    }

    /// Issues an IAM token scoped to `project_id`; returns its expiry.
    pub fn issue_token(
        &mut self,
        token: String,
        project_id: Option<String>,
        now: Timestamp,
    ) -> Timestamp {
        let ttl = SignedDuration::try_from(self.token_ttl).unwrap_or(SignedDuration::MAX);
        let expires_at = now.checked_add(ttl).unwrap_or(Timestamp::MAX);
        self.creds.record_issued_token(
            token,
            IssuedToken {
                project_id,
                expires_at,
            },
        );
        self.stats.token_issues += 1;
        expires_at
    }
}

fn shape_answer(shape: AnswerShape, decisions: Vec<StopDecision>) -> StopAnswer {
    let element = |decision: StopDecision| match decision {
        StopDecision::Accepted => StopElement::new(true, STOP_DELIVERED.to_owned()),
        StopDecision::Refused { message } => StopElement::new(false, message),
    };
    let batch_verdict = |decisions: Vec<StopDecision>| {
        let refusals: Vec<String> = decisions
            .into_iter()
            .filter_map(|d| match d {
                StopDecision::Refused { message } => Some(message),
                StopDecision::Accepted => None,
            })
            .collect();
        if refusals.is_empty() {
            StopElement::new(true, STOP_DELIVERED.to_owned())
        } else {
            StopElement::new(false, refusals.join(" "))
        }
    };
    match shape {
        AnswerShape::PerJob => StopAnswer::Elements(decisions.into_iter().map(element).collect()),
        AnswerShape::SingleElement => StopAnswer::Elements(vec![batch_verdict(decisions)]),
        AnswerShape::Object => StopAnswer::Object(batch_verdict(decisions)),
    }
}

/// Unique, unguessable identifiers for request ids and tokens.
#[derive(Debug)]
pub struct IdSource {
    hasher: RandomState,
    counter: AtomicU64,
}

impl Default for IdSource {
    fn default() -> IdSource {
        IdSource {
            hasher: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }
}

impl IdSource {
    /// 32 lowercase hex digits; the counter half makes every id unique.
    pub fn next_hex(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{:016x}", self.hasher.hash_one(n), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::jobs::{JOB_CANCEL_SUCCESS, JOB_CANCELING, JOB_RUNNING};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn state() -> SimState {
        let timing = Timing {
            stop_delay: Duration::from_secs(2),
            savepoint_delay: Duration::from_secs(2),
        };
        let mut state = SimState::new("p".into(), "eu-de".into(), timing, Duration::from_secs(60));
        state.put_job(1, JOB_RUNNING, t(0));
        state.put_job(2, JOB_RUNNING, t(0));
        state.put_job(3, JOB_CANCEL_SUCCESS, t(0));
        state
    }

    fn stop(state: &mut SimState, ids: &[i64], at: i64) -> StopAnswer {
        let body = BatchStopBody {
            job_ids: ids.to_vec(),
            trigger_savepoint: false,
        };
        let call = state.record_stop_call(&body, t(at));
        state.batch_stop(call, &body, t(at))
    }

    fn elements(answer: StopAnswer) -> Vec<(&'static str, String)> {
        match answer {
            StopAnswer::Elements(e) => e.into_iter().map(|e| (e.is_success, e.message)).collect(),
            other => panic!("expected elements, got {other:?}"),
        }
    }

    #[test]
    fn per_job_answers_accept_running_jobs_and_refuse_stopped_ones() {
        let mut state = state();
        let answer = elements(stop(&mut state, &[1, 3], 1));
        assert_eq!(answer[0], ("true", STOP_DELIVERED.to_owned()));
        assert_eq!(answer[1].0, "false");
        assert_eq!(state.view(1, t(1)).unwrap().1.status, JOB_CANCELING);
        assert!(state.stats.stop_log[0].applied);
    }

    #[test]
    fn single_element_answers_summarise_the_batch() {
        let mut state = state();
        state.answer_shape = AnswerShape::SingleElement;
        assert_eq!(
            elements(stop(&mut state, &[1, 2], 1)),
            vec![("true", STOP_DELIVERED.to_owned())]
        );
        let again = elements(stop(&mut state, &[1, 2], 1));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0, "false");
    }

    #[test]
    fn object_answers_give_the_batch_verdict_as_one_object() {
        let mut state = state();
        state.answer_shape = AnswerShape::Object;
        assert_eq!(
            stop(&mut state, &[1, 2], 1),
            StopAnswer::Object(StopElement::new(true, STOP_DELIVERED.to_owned()))
        );
        assert!(matches!(
            stop(&mut state, &[1], 1),
            StopAnswer::Object(element) if element.is_success == "false"
        ));
    }

    #[test]
    fn an_unknown_job_refuses_the_whole_call_and_changes_nothing() {
        let mut state = state();
        assert_eq!(stop(&mut state, &[1, 99], 1), StopAnswer::UnknownJob(99));
        assert_eq!(state.view(1, t(1)).unwrap().1.status, JOB_RUNNING);
        assert!(!state.stats.stop_log[0].applied);
        assert_eq!(state.stats.stop_calls.get(&1), Some(&1));
        assert_eq!(state.stats.total_stop_calls, 1);
    }

    #[test]
    fn configured_outcomes_apply_to_the_next_stop() {
        let mut state = state();
        state.outcomes.insert(1, StopOutcome::Hang);
        stop(&mut state, &[1], 0);
        assert_eq!(state.view(1, t(1000)).unwrap().1.status, JOB_CANCELING);
    }

    #[test]
    fn listing_filters_by_status_and_pages() {
        let state = state();
        let running = ListFilter {
            status: Some(JOB_RUNNING.into()),
            ..ListFilter::default()
        };
        let page = state.list_jobs(t(0), 1, 1, &running);
        assert_eq!(page.total_count, 2);
        assert_eq!(page.jobs.len(), 1);
        assert_eq!(page.jobs[0]["job_id"], 2);
    }

    #[test]
    fn the_name_filter_matches_loosely_and_the_queue_filter_exactly() {
        let mut state = state();
        state.put_named_job(10, "orders", "flink-prod", JOB_RUNNING, t(0));
        state.put_named_job(11, "Orders-Enrichment", "flink-prod", JOB_RUNNING, t(0));
        state.put_named_job(12, "orders", "flink-prod-2", JOB_RUNNING, t(0));
        let ids = |filter: ListFilter| -> Vec<i64> {
            let page = state.list_jobs(t(0), 100, 0, &filter);
            page.jobs
                .iter()
                .filter_map(|job| job["job_id"].as_i64())
                .collect()
        };
        let by_name = ListFilter {
            name: Some("orders".into()),
            ..ListFilter::default()
        };
        assert_eq!(ids(by_name.clone()), vec![10, 11, 12]);
        let on_queue = ListFilter {
            queue_name: Some("flink-prod".into()),
            ..by_name
        };
        assert_eq!(ids(on_queue), vec![10, 11]);
    }

    #[test]
    fn tokens_expire_after_the_ttl_and_are_counted() {
        let mut state = state();
        let expires = state.issue_token("tok".into(), Some("p".into()), t(0));
        assert_eq!(expires, t(60));
        assert_eq!(state.stats.token_issues, 1);
    }

    #[test]
    fn ids_are_unique() {
        let ids = IdSource::default();
        let a = ids.next_hex();
        assert_eq!(a.len(), 32);
        assert_ne!(a, ids.next_hex());
    }
}
