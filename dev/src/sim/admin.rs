//! The stand-in's own control API under `/_sim/`, for driving it from another process
//! (`dli-sim`, `make demo`, chaos runs).
//!
//! It is NOT authenticated: the stand-in is a loopback test tool and must never face a network.
//!
//! | Call | Body | Effect |
//! |------|------|--------|
//! | `POST /_sim/jobs` | `{"ids":[1,2],"status":"job_running","name":"orders","queue_name":"q"}` (all but ids optional) | add or reset jobs |
//! | `POST /_sim/outcomes` | `{"ids":[1],"outcome":"succeed"\|"fail_to_stop"\|"hang"}` | how their next stop ends |
//! | `POST /_sim/faults` | `{"operation":"batch_stop","fault":{"kind":"throttled","retry_after_secs":2}}` | queue a one-shot fault |
//! | `POST /_sim/random-faults` | `{"probability":0.2,"seed":7,"kinds":[{"kind":"gateway_timeout"}]}` or `null` | chaos mode on/off |
//! | `POST /_sim/settings` | `{"answer_shape":"per_job"\|"single_element"\|"object","null_optional_fields":true,"clock_skew_secs":-600}` | answer layout, sparse jobs, gateway clock |
//! | `POST /_sim/credentials` | `{"access_keys":[{"access_key":"AK","secret_key":"SK","security_token":null}],"iam_users":[{"domain":"d","user":"u","password":"p"}],"tokens":["t"]}` | accept credentials |
//! | `POST /_sim/release` | none | let held requests go on |
//! | `GET /_sim/stats` | | [`StatsBody`]: stop calls per job and in total, the call log, job statuses |
//!
//! Operations: `batch_stop`, `job_detail`, `list_jobs`, `iam_token`. Fault kinds, by layer
//! and moment (see [`FaultSpec`]): `latency` (`ms`); the gateway refusing before forwarding:
//! `throttled` (`retry_after_secs`), `unavailable`, `cut_before_forwarding`; DLI's answer lost
//! after forwarding (`dli_acted`, default true): `bad_gateway`, `gateway_timeout`,
//! `cut_after_forwarding`; DLI failing: `dli_error` (`dli_acted`), `malformed_body`,
//! `oversized_body` (`bytes`); `hold` (`applied`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::sim::faults::{Fault, Loss, Operation, RandomFaults, Refusal};
use crate::sim::jobs::{DEFAULT_QUEUE, JOB_RUNNING, StopOutcome};
use crate::sim::shared::Shared;
use crate::sim::state::{AnswerShape, StopCall};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/jobs", post(put_jobs))
        .route("/outcomes", post(put_outcomes))
        .route("/faults", post(put_fault))
        .route("/random-faults", post(put_random_faults))
        .route("/settings", post(put_settings))
        .route("/credentials", post(put_credentials))
        .route("/release", post(release))
        .route("/stats", get(stats))
}

/// A fault as written in JSON: `{"kind": "throttled", "retry_after_secs": 2}`.
///
/// Before forwarding (DLI never sees the call): `throttled`, `unavailable`,
/// `cut_before_forwarding`. After forwarding, DLI having acted unless `"dli_acted": false`:
/// `bad_gateway` (502), `gateway_timeout` (504), `cut_after_forwarding`, `dli_error` (500).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultSpec {
    Latency {
        ms: u64,
    },
    Throttled {
        retry_after_secs: Option<u64>,
    },
    Unavailable,
    CutBeforeForwarding,
    BadGateway {
        #[serde(default = "acted")]
        dli_acted: bool,
    },
    GatewayTimeout {
        #[serde(default = "acted")]
        dli_acted: bool,
    },
    CutAfterForwarding {
        #[serde(default = "acted")]
        dli_acted: bool,
    },
    DliError {
        #[serde(default = "acted")]
        dli_acted: bool,
    },
    MalformedBody,
    OversizedBody {
        bytes: usize,
    },
    Hold {
        applied: bool,
    },
}

/// A fault after forwarding assumes the worst case unless told otherwise: DLI acted.
fn acted() -> bool {
    true
}

impl From<FaultSpec> for Fault {
    fn from(spec: FaultSpec) -> Fault {
        let lost = |loss, dli_acted| Fault::AnswerLost { loss, dli_acted };
        match spec {
            FaultSpec::Latency { ms } => Fault::Latency(Duration::from_millis(ms)),
            FaultSpec::Throttled { retry_after_secs } => {
                Fault::GatewayRefuses(Refusal::Throttled { retry_after_secs })
            }
            FaultSpec::Unavailable => Fault::GatewayRefuses(Refusal::Unavailable),
            FaultSpec::CutBeforeForwarding => Fault::GatewayRefuses(Refusal::Cut),
            FaultSpec::BadGateway { dli_acted } => lost(Loss::BadGateway, dli_acted),
            FaultSpec::GatewayTimeout { dli_acted } => lost(Loss::GatewayTimeout, dli_acted),
            FaultSpec::CutAfterForwarding { dli_acted } => lost(Loss::Cut, dli_acted),
            FaultSpec::DliError { dli_acted } => Fault::DliFails { dli_acted },
            FaultSpec::MalformedBody => Fault::MalformedBody,
            FaultSpec::OversizedBody { bytes } => Fault::OversizedBody(bytes),
            FaultSpec::Hold { applied } => Fault::Hold { applied },
        }
    }
}

#[derive(Debug, Deserialize)]
struct JobsBody {
    ids: Vec<i64>,
    #[serde(default = "running")]
    status: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    queue_name: Option<String>,
}

fn running() -> String {
    JOB_RUNNING.to_owned()
}

async fn put_jobs(State(shared): State<Arc<Shared>>, Json(body): Json<JobsBody>) -> StatusCode {
    let now = Timestamp::now();
    let mut state = shared.state();
    for id in body.ids {
        let name = body
            .name
            .clone()
            .unwrap_or_else(|| format!("dli-sim-job-{id}"));
        let queue_name = body.queue_name.as_deref().unwrap_or(DEFAULT_QUEUE);
        state.put_named_job(id, &name, queue_name, &body.status, now);
    }
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct OutcomesBody {
    ids: Vec<i64>,
    outcome: StopOutcome,
}

async fn put_outcomes(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<OutcomesBody>,
) -> StatusCode {
    let mut state = shared.state();
    for id in body.ids {
        state.outcomes.insert(id, body.outcome);
    }
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct FaultBody {
    operation: Operation,
    fault: FaultSpec,
}

async fn put_fault(State(shared): State<Arc<Shared>>, Json(body): Json<FaultBody>) -> StatusCode {
    shared
        .state()
        .faults
        .push(body.operation, body.fault.into());
    StatusCode::NO_CONTENT
}

/// `null` turns random faults off.
#[derive(Debug, Deserialize)]
struct RandomFaultsBody {
    probability: f64,
    seed: u64,
    kinds: Vec<FaultSpec>,
}

async fn put_random_faults(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<Option<RandomFaultsBody>>,
) -> StatusCode {
    let random = body.map(|b| RandomFaults {
        probability: b.probability,
        seed: b.seed,
        kinds: b.kinds.into_iter().map(Fault::from).collect(),
    });
    shared.state().faults.set_random(random);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct SettingsBody {
    answer_shape: Option<AnswerShape>,
    null_optional_fields: Option<bool>,
    clock_skew_secs: Option<i64>,
}

async fn put_settings(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<SettingsBody>,
) -> StatusCode {
    let mut state = shared.state();
    if let Some(shape) = body.answer_shape {
        state.answer_shape = shape;
    }
    if let Some(null) = body.null_optional_fields {
        state.null_optional_fields = null;
    }
    if let Some(secs) = body.clock_skew_secs {
        state.clock_skew = SignedDuration::from_secs(secs);
    }
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct AccessKeyBody {
    access_key: String,
    secret_key: String,
    security_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IamUserBody {
    domain: String,
    user: String,
    password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CredentialsBody {
    access_keys: Vec<AccessKeyBody>,
    iam_users: Vec<IamUserBody>,
    tokens: Vec<String>,
}

async fn put_credentials(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<CredentialsBody>,
) -> StatusCode {
    let mut state = shared.state();
    for key in body.access_keys {
        match &key.security_token {
            Some(token) => state
                .creds
                .add_temporary_ak_sk(&key.access_key, &key.secret_key, token),
            None => state.creds.add_ak_sk(&key.access_key, &key.secret_key),
        }
    }
    for user in body.iam_users {
        state
            .creds
            .add_iam_user(&user.domain, &user.user, &user.password);
    }
    for token in body.tokens {
        state.creds.add_static_token(&token);
    }
    StatusCode::NO_CONTENT
}

async fn release(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.release_held();
    StatusCode::NO_CONTENT
}

/// What `GET /_sim/stats` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsBody {
    pub stop_calls: BTreeMap<i64, usize>,
    pub total_stop_calls: usize,
    pub stop_log: Vec<StopCall>,
    pub detail_calls: usize,
    pub list_calls: usize,
    pub token_issues: usize,
    pub held_requests: usize,
    /// The status every job reports now.
    pub jobs: BTreeMap<i64, String>,
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let held_requests = shared.held();
    let state = shared.state();
    let now = Timestamp::now();
    let jobs = state
        .jobs
        .keys()
        .filter_map(|id| state.view(*id, now).map(|(_, view)| (*id, view.status)))
        .collect();
    let stats = &state.stats;
    Json(StatsBody {
        stop_calls: stats.stop_calls.clone(),
        total_stop_calls: stats.total_stop_calls,
        stop_log: stats.stop_log.clone(),
        detail_calls: stats.detail_calls,
        list_calls: stats.list_calls,
        token_issues: stats.token_issues,
        held_requests,
        jobs,
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fault_specs_read_like_the_documentation() {
        let cases = [
            (
                json!({"kind": "latency", "ms": 1500}),
                Fault::Latency(Duration::from_millis(1500)),
            ),
            (
                json!({"kind": "throttled", "retry_after_secs": 3}),
                Fault::GatewayRefuses(Refusal::Throttled {
                    retry_after_secs: Some(3),
                }),
            ),
            (
                json!({"kind": "unavailable"}),
                Fault::GatewayRefuses(Refusal::Unavailable),
            ),
            (
                json!({"kind": "cut_before_forwarding"}),
                Fault::GatewayRefuses(Refusal::Cut),
            ),
            (
                json!({"kind": "gateway_timeout"}),
                Fault::AnswerLost {
                    loss: Loss::GatewayTimeout,
                    dli_acted: true,
                },
            ),
            (
                json!({"kind": "bad_gateway", "dli_acted": false}),
                Fault::AnswerLost {
                    loss: Loss::BadGateway,
                    dli_acted: false,
                },
            ),
            (
                json!({"kind": "cut_after_forwarding"}),
                Fault::AnswerLost {
                    loss: Loss::Cut,
                    dli_acted: true,
                },
            ),
            (
                json!({"kind": "dli_error", "dli_acted": false}),
                Fault::DliFails { dli_acted: false },
            ),
            (
                json!({"kind": "oversized_body", "bytes": 10}),
                Fault::OversizedBody(10),
            ),
            (
                json!({"kind": "hold", "applied": false}),
                Fault::Hold { applied: false },
            ),
        ];
        for (spec, fault) in cases {
            let parsed: FaultSpec = serde_json::from_value(spec.clone()).unwrap();
            assert_eq!(Fault::from(parsed), fault, "{spec}");
        }
    }
}
