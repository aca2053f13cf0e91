//! The `JobStopRequest` custom resource: what users commit to Git.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::status::JobStopRequestStatus;

/// Most job ids one request may carry. DLI documents no maximum; 500 keeps one request's
/// status well inside etcd's object size limit and one call well inside DLI's timeouts.
pub const MAX_JOB_IDS: usize = 500;
/// Default for `spec.confirm.timeoutSeconds`.
pub const DEFAULT_CONFIRM_TIMEOUT_SECONDS: i64 = 900;
/// Most names one selector may list.
pub const MAX_SELECTOR_NAMES: usize = 100;
/// Default for `spec.deliveryDeadlineSeconds`.
pub const DEFAULT_DELIVERY_DEADLINE_SECONDS: i64 = 3600;

/// Stops a batch of DLI Flink jobs, once per generation of this object.
// Printer columns legitimately repeat `type_`; clippy reads them as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dli.stop-operator.io",
    version = "v1alpha1",
    kind = "JobStopRequest",
    plural = "jobstoprequests",
    shortname = "jsr",
    category = "dli",
    namespaced,
    status = "JobStopRequestStatus",
    derive = "PartialEq",
    doc = "Stops a batch of Data Lake Insight (DLI) Flink jobs, calling the batch-stop API once per generation.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Jobs", type_ = "integer", json_path = ".status.summary.total"),
    printcolumn(
        name = "Succeeded",
        type_ = "integer",
        json_path = ".status.summary.succeeded"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.summary.failed"
    ),
    printcolumn(
        name = "Queue",
        type_ = "string",
        priority = 1,
        json_path = ".spec.jobSelector.queueName"
    ),
    printcolumn(
        name = "Savepoint",
        type_ = "boolean",
        json_path = ".spec.triggerSavepoint"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::api::schema::for_kubernetes)]
#[x_kube(validation = Rule::new("has(self.jobIds) != has(self.jobSelector)").message("set exactly one of spec.jobIds (DLI job ids) and spec.jobSelector (job names and/or a queue)"))]
pub struct JobStopRequestSpec {
    /// DLI Flink job ids to stop (1 to 500 distinct ids, each at least 1). Exactly one of
    /// `jobIds` and `jobSelector`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 500), inner(range(min = 1)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub job_ids: Vec<i64>,

    /// The jobs to stop by name and/or queue, resolved to ids once per generation. Exactly one
    /// of `jobIds` and `jobSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_selector: Option<JobSelector>,

    /// Take a savepoint before stopping each job (DLI `trigger_savepoint`).
    #[serde(default)]
    pub trigger_savepoint: bool,

    /// A Secret in this request's namespace holding the DLI connection. Without it the
    /// operator's default connection is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<ConnectionRef>,

    /// Wait until DLI reports the jobs stopped before calling the request finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<ConfirmSpec>,

    /// Change this value to send the same stop again; any change makes a new generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub nonce: Option<String>,

    /// Delete this request that many seconds after it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 31_536_000))]
    pub ttl_seconds_after_finished: Option<i64>,

    /// Stop retrying a stop call that keeps failing to reach DLI this many seconds after the
    /// first try (10 to 2592000); the request then fails, the stop never sent. Default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 2_592_000))]
    pub delivery_deadline_seconds: Option<i64>,
}

/// Jobs chosen the way people know them: by exact name, by queue, or both (the named jobs on
/// that queue). Only jobs a stop applies to are selected (running, starting, idle, or whose
/// last stop failed); the others are listed in `status.skipped`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.names) || has(self.queueName)").message("jobSelector needs names, queueName or both"))]
pub struct JobSelector {
    /// Exact DLI job names (1 to 100 distinct names).
    // The bound is MAX_SELECTOR_NAMES; schemars takes a literal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 57)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub names: Vec<String>,

    /// Every job on this DLI queue (with `names`: only the named jobs on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub queue_name: Option<String>,
}

/// Names the Secret that holds a DLI connection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRef {
    /// Name of a Secret in the request's own namespace.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("connectionRef.name must be a Secret name in this namespace: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (a DNS-1123 subdomain)"))]
    #[schemars(length(max = 253))]
    pub name: String,
}

/// How the operator confirms that the jobs really stopped.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmSpec {
    /// Poll DLI job detail until every job is stopped. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Give up confirming after this many seconds (30 to 86400). Default 900.
    #[serde(default = "default_confirm_timeout")]
    #[schemars(range(min = 30, max = 86_400))]
    pub timeout_seconds: i64,
}

impl Default for ConfirmSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout_seconds: DEFAULT_CONFIRM_TIMEOUT_SECONDS,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_confirm_timeout() -> i64 {
    DEFAULT_CONFIRM_TIMEOUT_SECONDS
}

impl JobStopRequestSpec {
    /// The confirmation settings in force, defaults filled in.
    pub fn confirm(&self) -> ConfirmSpec {
        self.confirm.clone().unwrap_or_default()
    }

    /// How long tries that do not reach DLI are repeated, default filled in.
    pub fn delivery_deadline(&self) -> std::time::Duration {
        let seconds = self
            .delivery_deadline_seconds
            .unwrap_or(DEFAULT_DELIVERY_DEADLINE_SECONDS);
        std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    }
}
