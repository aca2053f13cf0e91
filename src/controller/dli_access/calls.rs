//! The controller's side of DLI calls: each call timed and counted in metrics, and its
//! outcome translated into the terms the status speaks.

use std::time::{Duration, Instant};

use crate::api::RequestError;
use crate::controller::status::{JobObservation, NotDeliveredReason};
use crate::dli::{Credential, DliClient, DliError, StopAnswer, StopOutcome, classify};
use crate::metrics::{DliOperation, Metrics};

/// What one batch-stop try came to.
#[derive(Clone, Debug)]
pub enum CallOutcome {
    Delivered(StopAnswer),
    Rejected {
        error: RequestError,
        request_id: Option<String>,
    },
    NotDelivered {
        why: NotDeliveredReason,
        message: String,
        retry_after: Option<Duration>,
    },
    Ambiguous {
        message: String,
    },
}

impl CallOutcome {
    fn label(&self) -> &'static str {
        match self {
            CallOutcome::Delivered(_) => "delivered",
            CallOutcome::Rejected { .. } => "rejected",
            CallOutcome::NotDelivered { .. } => "not_delivered",
            CallOutcome::Ambiguous { .. } => "ambiguous",
        }
    }
}

/// The one batch-stop call of a try, with the credential taken before its claim.
pub async fn batch_stop(
    dli: &DliClient,
    metrics: &Metrics,
    credential: &Credential,
    job_ids: &[i64],
    trigger_savepoint: bool,
) -> CallOutcome {
    let started = Instant::now();
    let sent = dli.batch_stop(credential, job_ids, trigger_savepoint).await;
    let outcome = match classify(sent) {
        StopOutcome::Delivered(answer) => CallOutcome::Delivered(answer),
        StopOutcome::Rejected(error) => CallOutcome::Rejected {
            request_id: error.request_id().map(str::to_string),
            error: RequestError {
                http_status: error.http_status(),
                code: error.error_code().map(str::to_string),
                message: error
                    .error_message()
                    .map_or_else(|| error.to_string(), str::to_string),
            },
        },
        StopOutcome::NotDelivered { error, retry_after } => CallOutcome::NotDelivered {
            why: not_delivered_reason(&error),
            message: error.to_string(),
            retry_after,
        },
        StopOutcome::Ambiguous(error) => CallOutcome::Ambiguous {
            message: error.to_string(),
        },
    };
    metrics.dli_call(DliOperation::BatchStop, outcome.label(), started.elapsed());
    outcome
}

/// Why `error` kept a try from reaching DLI, as a condition reason.
pub fn not_delivered_reason(error: &DliError) -> NotDeliveredReason {
    match error.http_status() {
        Some(401 | 403) => NotDeliveredReason::Unauthorized,
        Some(429) => NotDeliveredReason::Throttled,
        _ if matches!(error, DliError::IamToken { .. }) => NotDeliveredReason::Unauthorized,
        _ => NotDeliveredReason::Unavailable,
    }
}

/// Job detail of one job. A job DLI does not know (HTTP 400 `DLI.16001`) is an observation
/// without a status rather than an error: it cannot be running. A detail without a status
/// (the field is optional) is no observation at all: it tells nothing about the stop.
pub async fn job_detail(
    dli: &DliClient,
    metrics: &Metrics,
    job_id: i64,
) -> Result<Option<JobObservation>, DliError> {
    let started = Instant::now();
    let result = dli.job_detail(job_id).await;
    let label = if result.is_ok() { "ok" } else { "error" };
    metrics.dli_call(DliOperation::JobDetail, label, started.elapsed());
    match result {
        Ok(detail) => Ok(detail.status.map(|status| JobObservation {
            job_id,
            status: Some(status.as_str().to_string()),
            savepoint_path: detail.savepoint_path,
        })),
        Err(error) if error.error_code() == Some("DLI.16001") => Ok(Some(JobObservation {
            job_id,
            status: None,
            savepoint_path: None,
        })),
        Err(error) => Err(error),
    }
}
