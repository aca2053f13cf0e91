//! The DLI and IAM endpoints of the stand-in.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::sim::auth::{Received, authenticate, parse_query};
use crate::sim::faults::{Fault, Operation};
use crate::sim::shared::Shared;
use crate::sim::state::StopAnswer;
use crate::sim::wire::{
    BatchStopBody, MALFORMED_BODY, error_body, iam_error_body, job_detail_body, job_list_body,
    oversized_body,
};

/// The largest request body the stand-in reads.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// DLI's maximum page size for the list API.
const MAX_LIST_LIMIT: usize = 100;
const DEFAULT_LIST_LIMIT: usize = 10;

/// The id the server gave the request being handled; it is also sent as `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Marks an answer that must not be sent: the connection is dropped instead.
#[derive(Debug, Clone, Copy)]
pub struct CutConnection;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1.0/{project_id}/streaming/jobs/stop", post(batch_stop))
        .route(
            "/v1.0/{project_id}/streaming/jobs/{job_id}",
            get(job_detail),
        )
        .route("/v1.0/{project_id}/streaming/jobs", get(list_jobs))
        .route("/v3/auth/tokens", post(iam_token))
        .nest("/_sim", crate::sim::admin::router())
        .fallback(no_such_api)
        .with_state(shared)
}

/// A request with its body read in full, as the gateway sees it.
pub struct Incoming {
    request_id: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Incoming {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let body = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
            .await
            .map_err(|e| {
                dli_error(
                    StatusCode::BAD_REQUEST,
                    "DLI.0001",
                    &format!("Cannot read the request body: {e}"),
                )
            })?;
        Ok(Incoming {
            request_id,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }
}

impl Incoming {
    fn received(&self) -> Received<'_> {
        Received {
            method: self.method.as_str(),
            path: self.uri.path(),
            raw_query: self.uri.query(),
            headers: &self.headers,
            body: &self.body,
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, Json(body)).into_response()
}

fn dli_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &error_body(code, message, None))
}

fn gateway_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    json_response(status, &error_body(code, message, Some(request_id)))
}

async fn no_such_api(req: Incoming) -> Response {
    gateway_error(
        StatusCode::NOT_FOUND,
        "APIGW.0101",
        "The API does not exist or has not been published in the environment.",
        &req.request_id,
    )
}

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
            err.from_gateway().then_some(req.request_id.as_str()),
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

/// Answers with `work` as `fault` dictates. `work` performs the operation and builds the
/// normal answer; it runs at most once, and not at all when the fault prevents the operation.
async fn respond<W>(
    shared: &Arc<Shared>,
    request_id: &str,
    fault: Option<Fault>,
    work: W,
) -> Response
where
    W: FnOnce() -> Response + Send + 'static,
{
    let Some(fault) = fault else {
        return work();
    };
    tracing::info!(request_id, ?fault, "injecting a fault");
    match fault {
        Fault::Latency(delay) => {
            tokio::time::sleep(delay).await;
            work()
        }
        Fault::Status429 { retry_after_secs } => {
            let mut response = gateway_error(
                StatusCode::TOO_MANY_REQUESTS,
                "APIGW.0308",
                "The throttling threshold has been reached.",
                request_id,
            );
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Fault::Status500 => dli_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "DLI.0999",
            "Server-side errors occur.",
        ),
        Fault::Status502 => gateway_error(
            StatusCode::BAD_GATEWAY,
            "APIGW.0202",
            "Backend unavailable.",
            request_id,
        ),
        Fault::Status503 => gateway_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "APIGW.0203",
            "Service unavailable.",
            request_id,
        ),
        Fault::CutAfterRequest { applied } => {
            if applied {
                drop(work());
            }
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(CutConnection);
            response
        }
        Fault::MalformedBody => {
            drop(work());
            raw_json(MALFORMED_BODY.to_owned())
        }
        Fault::OversizedBody(bytes) => {
            drop(work());
            raw_json(oversized_body(bytes))
        }
        Fault::Hold { applied } => hold(shared.clone(), applied, work).await,
    }
}

fn raw_json(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

/// Holds the answer until released. The operation runs in its own task so that what happens
/// to it does not depend on whether the client is still connected.
async fn hold<W>(shared: Arc<Shared>, applied: bool, work: W) -> Response
where
    W: FnOnce() -> Response + Send + 'static,
{
    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let answer = if applied {
            let answer = work();
            shared.hold().await;
            answer
        } else if shared.hold().await {
            work()
        } else {
            return;
        };
        // The client may have gone away meanwhile; the operation's effect stays either way.
        let _ = answer_tx.send(answer);
    });
    answer_rx.await.unwrap_or_else(|_| {
        dli_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "DLI.0999",
            "The stand-in shut down while holding the request.",
        )
    })
}

async fn batch_stop(
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

async fn job_detail(
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
            Some((job, view)) => json_response(StatusCode::OK, &job_detail_body(job, &view)),
            None => dli_error(
                StatusCode::BAD_REQUEST,
                "DLI.16001",
                &format!("The job does not exist: {job_id}"),
            ),
        }
    };
    respond(&shared, &req.request_id, fault, work).await
}

async fn list_jobs(
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
        status,
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
        let page =
            work_shared
                .state()
                .list_jobs(Timestamp::now(), limit, offset, status.as_deref());
        json_response(StatusCode::OK, &job_list_body(page.job_count, page.jobs))
    };
    respond(&shared, &req.request_id, fault, work).await
}

#[derive(Debug, PartialEq, Eq)]
struct ListParams {
    limit: usize,
    offset: usize,
    status: Option<String>,
}

/// Reads `limit`, `offset` and `status` of a list call; the error says what is wrong.
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
    Ok(ListParams {
        limit,
        offset: number("offset", 0)?,
        status: param("status"),
    })
}

/// The parts of a password-method token request the stand-in checks.
struct PasswordAuth {
    domain: String,
    user: String,
    password: String,
    project_id: Option<String>,
    project_name: Option<String>,
}

fn parse_password_auth(body: &Value) -> Option<PasswordAuth> {
    let identity = &body["auth"]["identity"];
    let uses_password = identity["methods"]
        .as_array()?
        .iter()
        .any(|m| m == "password");
    if !uses_password {
        return None;
    }
    let user = &identity["password"]["user"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let project = &body["auth"]["scope"]["project"];
    Some(PasswordAuth {
        domain: text(&user["domain"]["name"])?,
        user: text(&user["name"])?,
        password: text(&user["password"])?,
        project_id: text(&project["id"]),
        project_name: text(&project["name"]),
    })
}

async fn iam_token(State(shared): State<Arc<Shared>>, req: Incoming) -> Response {
    let iam_error = |status: StatusCode, message: &str| {
        let title = status.canonical_reason().unwrap_or("Error");
        json_response(status, &iam_error_body(status.as_u16(), title, message))
    };
    let parsed = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .as_ref()
        .and_then(parse_password_auth);
    let Some(auth) = parsed else {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "The request body must use the password method with user name, password and domain name.",
        );
    };
    let (fault, project) = {
        let mut state = shared.state();
        if !state
            .creds
            .password_matches(&auth.domain, &auth.user, &auth.password)
        {
            return iam_error(
                StatusCode::UNAUTHORIZED,
                "The username or password is wrong.",
            );
        }
        let project = match (&auth.project_id, &auth.project_name) {
            (None, None) => None,
            (Some(id), _) if *id == state.project_id => {
                Some((state.project_id.clone(), state.project_name.clone()))
            }
            (None, Some(name)) if *name == state.project_name => {
                Some((state.project_id.clone(), state.project_name.clone()))
            }
            _ => {
                return iam_error(
                    StatusCode::BAD_REQUEST,
                    "The project in the scope does not exist.",
                );
            }
        };
        (state.faults.next(Operation::IamToken), project)
    };
    let work_shared = shared.clone();
    let work = move || {
        let token = format!(
            "MIIsim{}{}",
            work_shared.ids.next_hex(),
            work_shared.ids.next_hex()
        );
        let now = Timestamp::now();
        let expires_at = work_shared.state().issue_token(
            token.clone(),
            project.as_ref().map(|(id, _)| id.clone()),
            now,
        );
        let mut body = json!({"token": {
            "expires_at": iam_time(expires_at),
            "issued_at": iam_time(now),
            "methods": ["password"],
            "user": {"name": auth.user, "domain": {"name": auth.domain}},
        }});
        if let Some((id, name)) = project {
            body["token"]["project"] = json!({"id": id, "name": name});
        }
        let mut response = json_response(StatusCode::CREATED, &body);
        match HeaderValue::from_str(&token) {
            Ok(value) => {
                response.headers_mut().insert("x-subject-token", value);
                response
            }
            // The token is built from hex digits above, so it is always a valid header value.
            Err(_) => iam_error(StatusCode::INTERNAL_SERVER_ERROR, "token encoding failed"),
        }
    };
    respond(&shared, &req.request_id, fault, work).await
}

/// IAM's timestamp format: `2026-11-29T10:00:00.000000Z`.
fn iam_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
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
                status: None
            })
        );
        assert_eq!(
            parse_list_params("limit=100&offset=5&status=job_running"),
            Ok(ListParams {
                limit: 100,
                offset: 5,
                status: Some("job_running".into())
            })
        );
        assert!(parse_list_params("limit=101").is_err());
        assert!(parse_list_params("offset=-1").is_err());
    }

    #[test]
    fn iam_times_have_microseconds_and_a_z() {
        let at: Timestamp = "2026-11-29T10:00:00.5Z".parse().unwrap();
        assert_eq!(iam_time(at), "2026-11-29T10:00:00.500000Z");
    }

    #[test]
    fn password_auth_needs_every_field_and_reads_the_project_scope() {
        let body = json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"name": "u", "password": "p", "domain": {"name": "d"}}}},
            "scope": {"project": {"name": "eu-de"}}}});
        let auth = parse_password_auth(&body).unwrap();
        assert_eq!(
            (
                auth.domain.as_str(),
                auth.user.as_str(),
                auth.password.as_str()
            ),
            ("d", "u", "p")
        );
        assert_eq!(auth.project_name.as_deref(), Some("eu-de"));
        assert_eq!(auth.project_id, None);
        let mut no_password = body.clone();
        no_password["auth"]["identity"]["methods"] = json!(["token"]);
        assert!(parse_password_auth(&no_password).is_none());
        let mut no_domain = body;
        no_domain["auth"]["identity"]["password"]["user"]["domain"] = json!({});
        assert!(parse_password_auth(&no_domain).is_none());
    }
}
