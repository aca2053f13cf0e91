//! The API server as the reconcile tests play it: one `JobStopRequest` stored the way the real
//! one stores it. Every write bumps `resourceVersion`; an update carrying a stale
//! `resourceVersion` or another uid, and a delete whose preconditions do not match, are
//! refused with 409 Conflict; an update without a `resourceVersion` is applied
//! unconditionally, as the real API server applies it. Failures are injected per operation.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

use crate::api::{JobStopRequest, JobStopRequestStatus};

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// What a request does to the stored object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    WriteStatus,
    Delete,
}

/// How the API server misbehaves on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Answers 500 and does nothing (etcd unavailable).
    Unavailable,
    /// Does it, then the connection is cut: the client never learns that it happened.
    AnswerLost,
    /// Does it after this long.
    Slow(Duration),
}

#[derive(Default)]
struct Store {
    object: Option<Value>,
    resource_version: u64,
    /// Per request, in order: the operation it applies to and the failure, if any (`None`
    /// lets one request of that operation through untouched).
    failures: VecDeque<(Op, Option<Failure>)>,
    status_writes: Vec<Value>,
}

/// The played API server; clones share the stored object.
#[derive(Clone)]
pub struct PlayedApiServer {
    store: Arc<Mutex<Store>>,
}

impl PlayedApiServer {
    /// Serves `handle` with `object` stored (its `resourceVersion` is taken as given).
    pub fn start(mut handle: Handle, object: Value) -> PlayedApiServer {
        let resource_version = object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let server = PlayedApiServer {
            store: Arc::new(Mutex::new(Store {
                object: Some(object),
                resource_version,
                ..Store::default()
            })),
        };
        let serving = server.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let server = serving.clone();
                tokio::spawn(async move {
                    match server.answer(request).await {
                        Some(response) => respond.send_response(response),
                        None => respond.send_error("connection cut before the answer"),
                    }
                });
            }
        });
        server
    }

    /// The object as stored now.
    pub fn object(&self) -> Option<JobStopRequest> {
        let object = self.lock().object.clone()?;
        Some(serde_json::from_value(object).expect("the stored object deserializes"))
    }

    pub fn status(&self) -> JobStopRequestStatus {
        self.object()
            .and_then(|object| object.status)
            .unwrap_or_default()
    }

    /// Every status written, in order.
    pub fn status_writes(&self) -> Vec<JobStopRequestStatus> {
        self.lock()
            .status_writes
            .iter()
            .map(|status| serde_json::from_value(status.clone()).expect("status"))
            .collect()
    }

    /// The next `times` requests doing `op` meet `failure`.
    pub fn fail(&self, op: Op, failure: Failure, times: usize) {
        self.fail_after(op, 0, failure, times);
    }

    /// After `after` requests doing `op` went through, the next `times` meet `failure`.
    pub fn fail_after(&self, op: Op, after: usize, failure: Failure, times: usize) {
        let mut store = self.lock();
        for _ in 0..after {
            store.failures.push_back((op, None));
        }
        for _ in 0..times {
            store.failures.push_back((op, Some(failure)));
        }
    }

    /// No more injected failures.
    pub fn heal(&self) {
        self.lock().failures.clear();
    }

    /// Changes the stored object as another writer would (a user, another operator process):
    /// a new `resourceVersion`, and a new generation when the spec changed.
    pub fn edit(&self, change: impl FnOnce(&mut Value)) {
        let mut store = self.lock();
        store.resource_version += 1;
        let version = store.resource_version.to_string();
        let Some(object) = store.object.as_mut() else {
            return;
        };
        let spec = object["spec"].clone();
        change(object);
        if object["spec"] != spec {
            let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
            object["metadata"]["generation"] = json!(generation + 1);
        }
        object["metadata"]["resourceVersion"] = json!(version);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The response, or `None` for a cut connection.
    async fn answer(&self, request: Request<Body>) -> Option<Response<Body>> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let body = request
            .into_body()
            .collect_bytes()
            .await
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        // Events and anything else: the reconcile must not depend on them.
        if !path.contains("/jobstoprequests/") {
            return Some(respond(
                StatusCode::FORBIDDEN,
                &failure_status(403, "Forbidden"),
            ));
        }
        let op = match method {
            Method::GET => Op::Read,
            Method::PUT if path.ends_with("/status") => Op::WriteStatus,
            Method::DELETE => Op::Delete,
            _ => {
                return Some(respond(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &failure_status(405, "MethodNotAllowed"),
                ));
            }
        };
        let failure = {
            let mut store = self.lock();
            let index = store.failures.iter().position(|(o, _)| *o == op);
            index
                .and_then(|index| store.failures.remove(index))
                .and_then(|(_, failure)| failure)
        };
        if let Some(Failure::Slow(delay)) = failure {
            tokio::time::sleep(delay).await;
        }
        if failure == Some(Failure::Unavailable) {
            return Some(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                &failure_status(500, "InternalError"),
            ));
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (code, answer) = self.apply(op, &body);
        if failure == Some(Failure::AnswerLost) {
            return None;
        }
        Some(respond(code, &answer))
    }

    fn apply(&self, op: Op, body: &Value) -> (StatusCode, Value) {
        let mut store = self.lock();
        let Some(stored) = store.object.clone() else {
            return (StatusCode::NOT_FOUND, failure_status(404, "NotFound"));
        };
        let stored_version = store.resource_version.to_string();
        match op {
            Op::Read => (StatusCode::OK, stored),
            Op::WriteStatus => {
                let version = body["metadata"]["resourceVersion"].as_str();
                let uid = body["metadata"]["uid"].as_str();
                if version.is_some_and(|v| v != stored_version)
                    || uid.is_some_and(|u| Some(u) != stored["metadata"]["uid"].as_str())
                {
                    return (StatusCode::CONFLICT, failure_status(409, "Conflict"));
                }
                store.resource_version += 1;
                let mut written = stored;
                written["status"] = body["status"].clone();
                written["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
                store.status_writes.push(body["status"].clone());
                store.object = Some(written.clone());
                (StatusCode::OK, written)
            }
            Op::Delete => {
                let preconditions = &body["preconditions"];
                let uid = preconditions["uid"].as_str();
                let version = preconditions["resourceVersion"].as_str();
                if uid.is_some_and(|u| Some(u) != stored["metadata"]["uid"].as_str())
                    || version.is_some_and(|v| v != stored_version)
                {
                    return (StatusCode::CONFLICT, failure_status(409, "Conflict"));
                }
                store.object = None;
                (
                    StatusCode::OK,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Success", "code": 200}),
                )
            }
        }
    }
}

fn failure_status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("played API server: {reason}"), "reason": reason, "code": code})
}

fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(serde_json::to_vec(body).expect("json")));
    *response.status_mut() = code;
    response
}
