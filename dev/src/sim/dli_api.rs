//! The DLI endpoints: batch stop, job detail and job list.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::Value;

use crate::sim::auth::{authenticate, parse_query};
use crate::sim::faults::{Fault, Operation};
use crate::sim::http::{Incoming, dli_error, json_response};
use crate::sim::jobs::ListFilter;
use crate::sim::respond::respond;
use crate::sim::shared::Shared;
use crate::sim::state::StopAnswer;
use crate::sim::wire::{BatchStopBody, error_body, job_detail_body, job_list_body};

/// DLI's maximum page size for the list API.
const MAX_LIST_LIMIT: usize = 100;
const DEFAULT_LIST_LIMIT: usize = 10;
/// The longest `name` filter the SDK's `ListFlinkJobsRequest` documents.
const MAX_NAME_FILTER_CHARS: usize = 57;

/// An answer given before the operation runs.
struct Refusal {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// Authenticates a DLI call, checks its project and draws its fault.
fn admit(
    shared: &Shared,
    op: Operation,
    project_id: &str,
    req: &Incoming,
) -> Result<Option<Fault>, Refusal> {
    let mut state = shared.state();
    let now = state.gateway_now(Timestamp::now());
    if let Err(err) = authenticate(&state.creds, &req.received(), project_id, now) {
        tracing::debug!(request_id = %req.request_id, error = %err, "refused a DLI call");
        let body = error_body(
            err.code(),
            &err.to_string(),
            err.is_from_gateway().then_some(req.request_id.as_str()),
        );
        return Err(Refusal {
            status: err.status(),
            body,
        });
    }
    if project_id != state.project_id {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            body: error_body(
                "DLI.0002",
                &format!("The project {project_id} does not exist."),
                None,
            ),
        });
    }
    Ok(state.faults.next(op))
}

pub async fn batch_stop(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    req: Incoming,
) -> Response {
    let fault = match admit(&shared, Operation::BatchStop, &project_id, &req) {
        Ok(fault) => fault,
        Err(refusal) => return refusal.into_response(),
    };
    let body: BatchStopBody = match serde_json::from_slice(&req.body) {
        Ok(body) => body,
        Err(e) => {
            return dli_error(
                StatusCode::BAD_REQUEST,
                "DLI.0001",
                &format!("Parameter check failed: {e}"),
            );
        }
    };
    if body.job_ids.is_empty() {
        return dli_error(
            StatusCode::BAD_REQUEST,
            "DLI.0001",
            "Parameter check failed: job_ids must not be empty.",
        );
    }
    if fault.as_ref().is_none_or(Fault::reaches_dli) {
        let call = shared.state().record_stop_call(&body, Timestamp::now());
        tracing::info!(request_id = %req.request_id, job_ids = ?body.job_ids, trigger_savepoint = body.trigger_savepoint, "batch stop received");
        let work_shared = shared.clone();
        let work = move || {
            let answer = work_shared
                .state()
                .batch_stop(call, &body, Timestamp::now());
            match answer {
                StopAnswer::Elements(elements) => (StatusCode::OK, Json(elements)).into_response(),
                StopAnswer::Object(element) => (StatusCode::OK, Json(element)).into_response(),
                StopAnswer::UnknownJob(id) => dli_error(
                    StatusCode::BAD_REQUEST,
                    "DLI.16001",
                    &format!("The job does not exist: {id}"),
                ),
            }
        };
        return respond(&shared, &req.request_id, fault, work).await;
    }
    respond(&shared, &req.request_id, fault, Response::default).await
}

pub async fn job_detail(
    State(shared): State<Arc<Shared>>,
    Path((project_id, job_id)): Path<(String, String)>,
    req: Incoming,
) -> Response {
    let fault = match admit(&shared, Operation::JobDetail, &project_id, &req) {
        Ok(fault) => fault,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(job_id) = job_id.parse::<i64>() else {
        return dli_error(
            StatusCode::BAD_REQUEST,
            "DLI.0001",
            &format!("Parameter check failed: job_id {job_id} is not a number."),
        );
    };
    if fault.as_ref().is_none_or(Fault::reaches_dli) {
        shared.state().stats.detail_calls += 1;
    }
    let work_shared = shared.clone();
    let work = move || {
        let state = work_shared.state();
        match state.view(job_id, Timestamp::now()) {
            Some((job, view)) => json_response(
                StatusCode::OK,
                &job_detail_body(job, &view, state.null_optional_fields),
            ),
            None => dli_error(
                StatusCode::BAD_REQUEST,
                "DLI.16001",
                &format!("The job does not exist: {job_id}"),
            ),
        }
    };
    respond(&shared, &req.request_id, fault, work).await
}

pub async fn list_jobs(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    req: Incoming,
) -> Response {
    let fault = match admit(&shared, Operation::ListJobs, &project_id, &req) {
        Ok(fault) => fault,
        Err(refusal) => return refusal.into_response(),
    };
    let ListParams {
        limit,
        offset,
        filter,
    } = match parse_list_params(req.uri.query().unwrap_or_default()) {
        Ok(params) => params,
        Err(message) => {
            return dli_error(
                StatusCode::BAD_REQUEST,
                "DLI.0001",
                &format!("Parameter check failed: {message}"),
            );
        }
    };
    if fault.as_ref().is_none_or(Fault::reaches_dli) {
        shared.state().stats.list_calls += 1;
    }
    let work_shared = shared.clone();
    let work = move || {
        let page = work_shared
            .state()
            .list_jobs(Timestamp::now(), limit, offset, &filter);
        json_response(StatusCode::OK, &job_list_body(page.total_count, page.jobs))
    };
    respond(&shared, &req.request_id, fault, work).await
}

#[derive(Debug, PartialEq, Eq)]
struct ListParams {
    limit: usize,
    offset: usize,
    filter: ListFilter,
}

/// Reads `limit`, `offset` and the `status`, `name` and `queue_name` filters of a list call;
/// the error says what is wrong.
fn parse_list_params(raw_query: &str) -> Result<ListParams, String> {
    let params = parse_query(raw_query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let number = |name: &str, default: usize| match param(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("{name}={v} is not a number.")),
    };
    let limit = number("limit", DEFAULT_LIST_LIMIT)?;
    if limit > MAX_LIST_LIMIT {
        return Err(format!("limit must be between 0 and {MAX_LIST_LIMIT}."));
    }
    let name = param("name");
    if name
        .as_ref()
        .is_some_and(|name| name.chars().count() > MAX_NAME_FILTER_CHARS)
    {
        return Err(format!(
            "name must be at most {MAX_NAME_FILTER_CHARS} characters."
        ));
    }
    Ok(ListParams {
        limit,
        offset: number("offset", 0)?,
        filter: ListFilter {
            status: param("status"),
            name,
            queue_name: param("queue_name"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters_have_defaults_and_bounds() {
        assert_eq!(
            parse_list_params(""),
            Ok(ListParams {
                limit: 10,
                offset: 0,
                filter: ListFilter::default(),
            })
        );
        assert_eq!(
            parse_list_params("limit=100&offset=5&status=job_running&name=orders&queue_name=q1"),
            Ok(ListParams {
                limit: 100,
                offset: 5,
                filter: ListFilter {
                    status: Some("job_running".into()),
                    name: Some("orders".into()),
                    queue_name: Some("q1".into()),
                },
            })
        );
        assert!(parse_list_params(&format!("name={}", "x".repeat(58))).is_err());
        assert!(parse_list_params("limit=101").is_err());
        assert!(parse_list_params("offset=-1").is_err());
    }
}
