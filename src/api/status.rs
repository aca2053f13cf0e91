//! What the operator reports back on a `JobStopRequest`.
//!
//! Fields are optional or defaulted when read, except the few every writer sets together (a
//! summary's counts, a result's job id, a submission's generation, an answer element's
//! `isSuccess`), so a status written by an older or newer operator still deserializes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a `JobStopRequest`.
// The default gives a request the operator has not written to yet `observedGeneration: 0`
// (the API server fills it in on every read): kstatus, and so Flux, reads such an object as in
// progress, where an object without status would count as ready at once.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(
    transform = crate::api::schema::for_kubernetes,
    extend("default" = {"observedGeneration": 0})
)]
pub struct JobStopRequestStatus {
    /// The generation whose stop call has finished; 0 until the operator has finished one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Where the request stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Write-ahead record of the stop call for one generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission: Option<Submission>,

    /// One entry per job id, in spec order. For a selector, the jobs it resolved to, written
    /// with the claim before the call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["jobId".into()]))]
    pub results: Vec<JobResult>,

    /// Jobs a selector matched that were not stopped because no stop applies in their state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["jobId".into()]))]
    pub skipped: Vec<SkippedJob>,

    /// Names in `spec.jobSelector.names` that matched no DLI job at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched_names: Vec<String>,

    /// The raw answer elements DLI returned, for audit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response: Vec<ResponseElement>,

    /// Request-level failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RequestError>,

    /// Counts over `results`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,

    /// When the current generation reached a final phase; the TTL counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,

    /// Ready, Reconciling, Stalled, Submitted and Finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Lifecycle of a request.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Waiting for something before the stop call can be made (e.g. a valid connection).
    Pending,
    /// The generation is claimed and the stop call is being made or retried.
    Submitting,
    /// DLI accepted the stop; waiting for the jobs to reach a stopped state.
    Confirming,
    /// Every job stopped (or was accepted, when confirmation is off).
    Succeeded,
    /// Some jobs stopped, others did not.
    PartiallyFailed,
    /// No job stopped, or DLI refused the request.
    Failed,
    /// A call may have reached DLI but its outcome could not be established.
    Unknown,
}

impl Phase {
    /// All phases, for metrics.
    pub const ALL: [Phase; 7] = [
        Phase::Pending,
        Phase::Submitting,
        Phase::Confirming,
        Phase::Succeeded,
        Phase::PartiallyFailed,
        Phase::Failed,
        Phase::Unknown,
    ];

    /// Whether nothing more will happen for this generation.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Phase::Succeeded | Phase::PartiallyFailed | Phase::Failed | Phase::Unknown
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Submitting => "Submitting",
            Phase::Confirming => "Confirming",
            Phase::Succeeded => "Succeeded",
            Phase::PartiallyFailed => "PartiallyFailed",
            Phase::Failed => "Failed",
            Phase::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The write-ahead record of the stop call for one generation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The generation this call belongs to.
    pub generation: i64,
    /// When the generation was claimed, written before the first call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Time>,
    /// Which operator process holds the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// When the latest try was claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Time>,
    /// Where the call stands.
    #[serde(default)]
    pub state: SubmissionState,
    /// When DLI answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Time>,
    /// `X-Request-Id` of DLI's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// HTTP status of DLI's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Tries made; tries that certainly did not reach DLI are retried.
    #[serde(default)]
    pub attempts: u32,
    /// Digest of what the call sends (job ids, savepoint flag, connection, nonce). A later
    /// generation with the same digest keeps this call's outcome instead of calling again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Where the stop call of a claimed generation stands.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubmissionState {
    /// A call may be under way: whoever finds this without its claimant must not resend.
    #[default]
    InFlight,
    /// The last try certainly did not reach DLI; the next try is safe.
    NotDelivered,
    /// DLI answered.
    Answered,
    /// A call may have reached DLI without an answer; resolved read-only through job detail.
    Ambiguous,
}

/// What is known about one job.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    /// The DLI job id.
    pub job_id: i64,
    /// The DLI job name, for jobs chosen by `spec.jobSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What DLI said for this job; absent while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_success: Option<bool>,
    /// DLI's message for this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last DLI job status seen while confirming or resolving an unknown outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The savepoint DLI reported for this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_path: Option<String>,
}

/// A job a selector matched but did not stop.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SkippedJob {
    pub job_id: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The DLI job status that no stop applies to (e.g. `job_cancel_success`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
}

/// One raw element of DLI's answer array.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseElement {
    pub is_success: bool,
    #[serde(default)]
    pub message: String,
}

/// A failure of the whole request.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default)]
    pub message: String,
}

/// Counts over the per-job results.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub pending: u32,
}
