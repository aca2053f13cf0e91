//! The stand-in's routes, the request extractor and the answer helpers every endpoint uses.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::sim::auth::Received;
use crate::sim::dli_api::{batch_stop, job_detail, list_jobs};
use crate::sim::iam::iam_token;
use crate::sim::shared::Shared;
use crate::sim::wire::error_body;

/// The largest request body the stand-in reads.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The id the server gave the request being handled; it is also sent as `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Marks an answer that must not be sent: the connection is dropped instead.
#[derive(Debug, Clone, Copy)]
pub struct CutConnection;

/// The DLI and IAM APIs under `path_prefix` (empty, or `/` and segments without a trailing
/// `/`), the admin API at `/_sim` always.
pub fn router(shared: Arc<Shared>, path_prefix: &str) -> Result<Router, String> {
    let api = Router::new()
        .route("/v1.0/{project_id}/streaming/jobs/stop", post(batch_stop))
        .route(
            "/v1.0/{project_id}/streaming/jobs/{job_id}",
            get(job_detail),
        )
        .route("/v1.0/{project_id}/streaming/jobs", get(list_jobs))
        .route("/v3/auth/tokens", post(iam_token));
    let api = match path_prefix {
        "" => api,
        prefix if prefix.starts_with('/') && !prefix.ends_with('/') && prefix != "/_sim" => {
            Router::new().nest(prefix, api)
        }
        prefix => {
            return Err(format!(
                "path prefix {prefix:?} must start with / and not end with one"
            ));
        }
    };
    Ok(api
        .nest("/_sim", crate::sim::admin::router())
        .fallback(no_such_api)
        .with_state(shared))
}

/// A request with its body read in full, as the gateway sees it.
pub struct Incoming {
    pub request_id: String,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Incoming {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        // A nested router sees its path without the prefix; signatures cover the whole path.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
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
            uri,
            headers: parts.headers,
            body,
        })
    }
}

impl Incoming {
    pub fn received(&self) -> Received<'_> {
        Received {
            method: self.method.as_str(),
            path: self.uri.path(),
            raw_query: self.uri.query(),
            headers: &self.headers,
            body: &self.body,
        }
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, Json(body)).into_response()
}

pub fn dli_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &error_body(code, message, None))
}

pub fn gateway_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
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

pub fn raw_json(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}
