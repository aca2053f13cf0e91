//! Prometheus metrics of the operator, served as OpenMetrics text on `/metrics`.
//!
//! Every family is prefixed `dli_stop_operator_`. Label values are a small fixed vocabulary
//! (results, operations, outcomes, phases): never object names or ids, so cardinality stays flat
//! however many requests users create.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of what [`Metrics::encode`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const PREFIX: &str = "dli_stop_operator";

/// How one reconcile ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    /// Finished; the object needs nothing until it changes.
    Success,
    /// Failed; the error policy schedules a retry.
    Error,
    /// Finished a step and asked to be called again later (confirming, backing off).
    Requeue,
}

impl ReconcileResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Requeue => "requeue",
        }
    }
}

/// A DLI (or IAM) API operation the operator performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DliOperation {
    /// `POST .../streaming/jobs/stop`.
    BatchStop,
    /// `GET .../streaming/jobs/{id}`.
    JobDetail,
    /// `POST .../v3/auth/tokens` on IAM.
    IamToken,
}

impl DliOperation {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BatchStop => "batch_stop",
            Self::JobDetail => "job_detail",
            Self::IamToken => "iam_token",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DliCallLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Histogram buckets for DLI round trips: 5 ms .. ~82 s, doubling.
#[derive(Clone, Copy)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.005, 2.0, 15))
    }
}

struct Inner {
    registry: Registry,
    reconciliations: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    dli_requests: Family<DliCallLabels, Counter>,
    dli_request_duration: Family<OperationLabels, Histogram, LatencyBuckets>,
    jobs_finished: Family<ResultLabels, Counter>,
    requests_by_phase: Family<PhaseLabels, Gauge>,
    reported_phases: Mutex<BTreeSet<&'static str>>,
    leader: Gauge,
    token_refreshes: Family<OutcomeLabels, Counter>,
    invalid_requests: Gauge,
}

/// The operator's metrics. Cheap to clone; all clones feed the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered. Labelled families appear on the page
    /// once they have a sample; reconcile results start at 0 so `rate()` works from the start.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);

        let build = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        });
        registry.register("build", "Version of the running operator", build);

        let reconciliations = Family::<ResultLabels, Counter>::default();
        for result in [
            ReconcileResult::Success,
            ReconcileResult::Error,
            ReconcileResult::Requeue,
        ] {
            // Creating the series is the point; the returned handle is not needed.
            drop(reconciliations.get_or_create(&ResultLabels {
                result: result.as_str(),
            }));
        }
        registry.register(
            "reconciliations",
            "Reconciles of JobStopRequest objects, by result",
            reconciliations.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "reconcile_duration",
            "Time spent in one reconcile",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        let dli_requests = Family::<DliCallLabels, Counter>::default();
        registry.register(
            "dli_requests",
            "Calls to the DLI and IAM APIs, by operation and outcome",
            dli_requests.clone(),
        );
        let dli_request_duration = Family::new_with_constructor(LatencyBuckets);
        registry.register_with_unit(
            "dli_request_duration",
            "Round-trip time of calls to the DLI and IAM APIs",
            Unit::Seconds,
            dli_request_duration.clone(),
        );
        let jobs_finished = Family::<ResultLabels, Counter>::default();
        registry.register(
            "jobs_finished",
            "DLI jobs whose stop reached a final result, by result",
            jobs_finished.clone(),
        );
        let requests_by_phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "requests",
            "JobStopRequest objects currently known, by status phase",
            requests_by_phase.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease and reconciles, 0 otherwise",
            leader.clone(),
        );
        let token_refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "token_refreshes",
            "IAM token fetches and refreshes, by outcome",
            token_refreshes.clone(),
        );

        let invalid_requests = Gauge::default();
        registry.register(
            "invalid_requests",
            "JobStopRequest objects the operator cannot read and skips",
            invalid_requests.clone(),
        );

        Self {
            inner: Arc::new(Inner {
                registry,
                reconciliations,
                reconcile_duration,
                dli_requests,
                dli_request_duration,
                jobs_finished,
                requests_by_phase,
                reported_phases: Mutex::new(BTreeSet::new()),
                leader,
                token_refreshes,
                invalid_requests,
            }),
        }
    }

    /// Counts one reconcile and records how long it took.
    pub fn reconcile(&self, result: ReconcileResult, elapsed: Duration) {
        self.inner
            .reconciliations
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
        self.inner.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one DLI/IAM call with its outcome
    /// (`delivered`, `rejected`, `not_delivered`, `ambiguous`, `ok`, `error`) and latency.
    pub fn dli_call(&self, operation: DliOperation, outcome: &'static str, latency: Duration) {
        let operation = operation.as_str();
        self.inner
            .dli_requests
            .get_or_create(&DliCallLabels { operation, outcome })
            .inc();
        self.inner
            .dli_request_duration
            .get_or_create(&OperationLabels { operation })
            .observe(latency.as_secs_f64());
    }

    /// Counts `count` jobs that reached a final result (`stopped`, `failed`, `unknown`, `timeout`).
    pub fn job_finished(&self, result: &'static str, count: u64) {
        self.inner
            .jobs_finished
            .get_or_create(&ResultLabels { result })
            .inc_by(count);
    }

    /// Replaces the per-phase object counts. Phases reported earlier but missing now drop to 0,
    /// so a series does not freeze at its last value when the last object of a phase goes away.
    pub fn set_requests_by_phase(&self, counts: &[(&'static str, i64)]) {
        let mut reported = self.reported_phases();
        for phase in reported.iter() {
            if !counts.iter().any(|(p, _)| p == phase) {
                self.inner
                    .requests_by_phase
                    .get_or_create(&PhaseLabels { phase })
                    .set(0);
            }
        }
        for &(phase, count) in counts {
            self.inner
                .requests_by_phase
                .get_or_create(&PhaseLabels { phase })
                .set(count);
            reported.insert(phase);
        }
    }

    /// Drops the per-phase counts. A replica that stops leading no longer watches the
    /// requests; series frozen at their last values would contradict the new leader's.
    pub fn forget_requests_by_phase(&self) {
        let mut reported = self.reported_phases();
        reported.clear();
        self.inner.requests_by_phase.clear();
    }

    fn reported_phases(&self) -> std::sync::MutexGuard<'_, BTreeSet<&'static str>> {
        // A poisoned lock only means another thread panicked mid-update; the set is still usable.
        self.inner
            .reported_phases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records whether this replica currently leads.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// How many stored requests the operator cannot read.
    pub fn set_invalid_requests(&self, count: usize) {
        self.inner
            .invalid_requests
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Counts one IAM token fetch/refresh (`ok`, `error`).
    pub fn token_refresh(&self, outcome: &'static str) {
        self.inner
            .token_refreshes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The whole registry in OpenMetrics text format (see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error could only come from a broken metric
        // encoder, and a partial page is more useful to a scraper than none.
        if let Err(error) = encode(&mut out, &self.inner.registry) {
            tracing::error!(%error, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|line| line.starts_with(prefix))
    }

    #[test]
    fn a_fresh_registry_shows_the_unlabelled_families_and_zeroed_results() {
        let text = Metrics::new().encode();
        for line in [
            "# TYPE dli_stop_operator_reconciliations counter",
            "dli_stop_operator_reconciliations_total{result=\"success\"} 0",
            "dli_stop_operator_reconciliations_total{result=\"error\"} 0",
            "dli_stop_operator_reconciliations_total{result=\"requeue\"} 0",
            "# TYPE dli_stop_operator_reconcile_duration_seconds histogram",
            "dli_stop_operator_reconcile_duration_seconds_count 0",
            "# TYPE dli_stop_operator_build info",
            "dli_stop_operator_leader 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            text.ends_with("# EOF\n"),
            "OpenMetrics needs the EOF marker"
        );
    }

    #[test]
    fn reconciles_are_counted_by_result_and_timed() {
        let metrics = Metrics::new();
        metrics.reconcile(ReconcileResult::Success, Duration::from_millis(20));
        metrics.reconcile(ReconcileResult::Success, Duration::from_millis(30));
        metrics.reconcile(ReconcileResult::Error, Duration::from_millis(5));
        let text = metrics.encode();
        assert_eq!(
            sample_line(
                &text,
                "dli_stop_operator_reconciliations_total{result=\"success\"}"
            ),
            Some("dli_stop_operator_reconciliations_total{result=\"success\"} 2")
        );
        assert_eq!(
            sample_line(
                &text,
                "dli_stop_operator_reconciliations_total{result=\"error\"}"
            ),
            Some("dli_stop_operator_reconciliations_total{result=\"error\"} 1")
        );
        assert_eq!(
            sample_line(&text, "dli_stop_operator_reconcile_duration_seconds_count"),
            Some("dli_stop_operator_reconcile_duration_seconds_count 3")
        );
    }

    #[test]
    fn dli_calls_carry_operation_and_outcome() {
        let metrics = Metrics::new();
        metrics.dli_call(
            DliOperation::BatchStop,
            "delivered",
            Duration::from_millis(120),
        );
        metrics.dli_call(DliOperation::JobDetail, "ok", Duration::from_millis(40));
        let text = metrics.encode();
        assert!(text.contains(
            "dli_stop_operator_dli_requests_total{operation=\"batch_stop\",outcome=\"delivered\"} 1"
        ));
        assert!(text.contains(
            "dli_stop_operator_dli_requests_total{operation=\"job_detail\",outcome=\"ok\"} 1"
        ));
        assert!(text.contains(
            "dli_stop_operator_dli_request_duration_seconds_count{operation=\"batch_stop\"} 1"
        ));
        assert!(text.contains(
            "dli_stop_operator_dli_request_duration_seconds_bucket{le=\"0.16\",operation=\"batch_stop\"} 1"
        ));
    }

    #[test]
    fn finished_jobs_add_up_by_result() {
        let metrics = Metrics::new();
        metrics.job_finished("stopped", 3);
        metrics.job_finished("stopped", 2);
        metrics.job_finished("timeout", 1);
        let text = metrics.encode();
        assert!(text.contains("dli_stop_operator_jobs_finished_total{result=\"stopped\"} 5"));
        assert!(text.contains("dli_stop_operator_jobs_finished_total{result=\"timeout\"} 1"));
    }

    #[test]
    fn phase_gauge_is_replaced_and_vanished_phases_drop_to_zero() {
        let metrics = Metrics::new();
        metrics.set_requests_by_phase(&[("Confirming", 2), ("Succeeded", 4)]);
        metrics.set_requests_by_phase(&[("Succeeded", 6)]);
        let text = metrics.encode();
        assert!(text.contains("dli_stop_operator_requests{phase=\"Succeeded\"} 6"));
        assert!(text.contains("dli_stop_operator_requests{phase=\"Confirming\"} 0"));
    }

    #[test]
    fn forgotten_phase_counts_leave_no_series_and_come_back_when_set() {
        let metrics = Metrics::new();
        metrics.set_requests_by_phase(&[("Unknown", 1), ("Succeeded", 4)]);
        metrics.forget_requests_by_phase();
        assert!(!metrics.encode().contains("dli_stop_operator_requests{"));
        metrics.set_requests_by_phase(&[("Succeeded", 5)]);
        let text = metrics.encode();
        assert!(text.contains("dli_stop_operator_requests{phase=\"Succeeded\"} 5"));
        assert!(!text.contains("phase=\"Unknown\""));
    }

    #[test]
    fn leader_gauge_follows_the_lease() {
        let metrics = Metrics::new();
        metrics.set_leader(true);
        assert!(metrics.encode().contains("dli_stop_operator_leader 1\n"));
        metrics.set_leader(false);
        assert!(metrics.encode().contains("dli_stop_operator_leader 0\n"));
    }

    #[test]
    fn token_refreshes_and_build_info_are_exposed() {
        let metrics = Metrics::new();
        metrics.token_refresh("ok");
        metrics.token_refresh("error");
        let text = metrics.clone().encode();
        assert!(text.contains("dli_stop_operator_token_refreshes_total{outcome=\"ok\"} 1"));
        assert!(text.contains("dli_stop_operator_token_refreshes_total{outcome=\"error\"} 1"));
        assert!(text.contains(&format!(
            "dli_stop_operator_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn clones_share_one_registry() {
        let metrics = Metrics::new();
        metrics.clone().set_leader(true);
        assert!(metrics.encode().contains("dli_stop_operator_leader 1\n"));
    }
}
