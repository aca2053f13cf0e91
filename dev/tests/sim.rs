//! The DLI stand-in over real HTTP: what a DLI client sees when it talks to it.

use std::time::{Duration, Instant};

use dli_stop_dev::sim::{
    AnswerShape, DliSim, Fault, Loss, Operation, RandomFaults, Refusal, STOP_DELIVERED, SimConfig,
    StatsBody, StopOutcome,
};
use dli_stop_operator::dli::signer::{
    SigningRequest, authorization, canonical_query, canonical_request, sdk_date, signature,
    signed_headers, string_to_sign,
};
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const AK: &str = "SIMACCESSKEY";
const SK: &str = "sim-secret-key";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Stopping jobs stay in their transitional status for the whole test unless it waits.
fn slow_config() -> SimConfig {
    SimConfig {
        stop_delay: Duration::from_secs(5),
        savepoint_delay: Duration::from_secs(5),
        ..SimConfig::default()
    }
}

/// Stops finish quickly, for tests that wait for the final status.
fn quick_config() -> SimConfig {
    SimConfig {
        stop_delay: Duration::from_millis(300),
        savepoint_delay: Duration::from_millis(300),
        ..SimConfig::default()
    }
}

async fn sim_with(config: SimConfig) -> DliSim {
    let sim = DliSim::start(config).await.unwrap();
    sim.add_ak_sk(AK, SK);
    sim.add_running_jobs(&[128, 137]);
    sim
}

async fn sim() -> DliSim {
    sim_with(slow_config()).await
}

/// A signing DLI client, the way the SDKs sign: host, content-type and x-sdk-date.
struct Caller {
    http: reqwest::Client,
    endpoint: String,
    project: String,
    ak: String,
    sk: String,
    date: Timestamp,
    extra_headers: Vec<(String, String)>,
}

impl Caller {
    fn new(sim: &DliSim) -> Caller {
        Caller {
            http: client(),
            endpoint: sim.endpoint(),
            project: sim.project_id(),
            ak: AK.into(),
            sk: SK.into(),
            date: Timestamp::now(),
            extra_headers: Vec::new(),
        }
    }

    fn dli_path(&self, rest: &str) -> String {
        format!("/v1.0/{}/streaming/{rest}", self.project)
    }

    /// The URL and headers of a signed request.
    fn sign(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> (String, Vec<(String, String)>) {
        let host = self.endpoint.split("://").nth(1).unwrap().to_owned();
        let date = sdk_date(self.date);
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("host".to_owned(), host),
            ("x-sdk-date".to_owned(), date.clone()),
        ];
        headers.extend(self.extra_headers.iter().cloned());
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let req = SigningRequest {
            method: method.as_str(),
            path,
            query: &query,
            headers: &headers,
            body,
        };
        let sig = signature(&self.sk, &string_to_sign(&date, &canonical_request(&req)));
        let auth = authorization(&self.ak, &signed_headers(&req), &sig);
        headers.retain(|(name, _)| name != "host");
        headers.push(("authorization".to_owned(), auth));
        let mut url = format!("{}{path}", self.endpoint);
        if !query.is_empty() {
            url = format!("{url}?{}", canonical_query(&query));
        }
        (url, headers)
    }

    fn send_to(
        &self,
        method: Method,
        url: String,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let mut builder = self.http.request(method, url).body(body.to_vec());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        builder
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let (url, headers) = self.sign(&method, path, query, body);
        self.send_to(method, url, headers, body)
    }

    async fn stop(&self, ids: &[i64], savepoint: bool) -> reqwest::Result<reqwest::Response> {
        let body = json!({"job_ids": ids, "trigger_savepoint": savepoint}).to_string();
        self.request(
            Method::POST,
            &self.dli_path("jobs/stop"),
            &[],
            body.as_bytes(),
        )
        .send()
        .await
    }

    async fn detail(&self, id: i64) -> reqwest::Response {
        self.request(Method::GET, &self.dli_path(&format!("jobs/{id}")), &[], b"")
            .send()
            .await
            .unwrap()
    }

    async fn list(&self, query: &[(&str, &str)]) -> reqwest::Response {
        self.request(Method::GET, &self.dli_path("jobs"), query, b"")
            .send()
            .await
            .unwrap()
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap();
    (status, body)
}

async fn status_after(caller: &Caller, id: i64) -> Value {
    json_of(caller.detail(id).await).await.1["job_detail"].clone()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- authentication ---

#[tokio::test]
async fn a_signed_stop_is_accepted_and_counted() {
    let sim = sim().await;
    let caller = Caller::new(&sim);
    let response = caller.stop(&[128, 137], false).await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    assert!(response.headers().contains_key("date"));
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([
            {"is_success": "true", "message": STOP_DELIVERED},
            {"is_success": "true", "message": STOP_DELIVERED},
        ])
    );
    assert_eq!(sim.job_status(128).as_deref(), Some("job_canceling"));
    assert_eq!(
        (
            sim.stop_calls(128),
            sim.stop_calls(137),
            sim.total_stop_calls()
        ),
        (1, 1, 1)
    );
    let log = sim.stop_call_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].job_ids, vec![128, 137]);
    assert!(!log[0].trigger_savepoint);
    assert!(log[0].applied);
}

#[tokio::test]
async fn a_bad_signature_is_refused_with_the_canonical_request_echoed() {
    let sim = sim().await;
    let caller = Caller {
        sk: "wrong-secret".into(),
        ..Caller::new(&sim)
    };
    let response = caller.stop(&[128], false).await.unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], "APIGW.0301");
    assert_eq!(body["request_id"], request_id.as_str());
    let message = body["error_msg"].as_str().unwrap();
    let expected = format!(
        "verify aksk signature fail, canonicalRequest:POST|/v1.0/{}/streaming/jobs/stop/||content-type:application/json|host:",
        sim.project_id()
    );
    assert!(message.contains(&expected), "{message}");
    assert_eq!(sim.total_stop_calls(), 0);
    assert_eq!(sim.job_status(128).as_deref(), Some("job_running"));
}

#[tokio::test]
async fn signed_query_parameters_are_verified() {
    let sim = sim().await;
    let caller = Caller::new(&sim);
    let (status, body) = json_of(
        caller
            .list(&[("limit", "1"), ("status", "job_running")])
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (url, headers) = caller.sign(
        &Method::GET,
        &caller.dli_path("jobs"),
        &[("limit", "1")],
        b"",
    );
    let tampered = caller
        .send_to(Method::GET, format!("{url}&offset=1"), headers, b"")
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unknown_access_key_or_missing_credentials_are_refused() {
    let sim = sim().await;
    let stranger = Caller {
        ak: "NOBODY".into(),
        ..Caller::new(&sim)
    };
    let (status, body) = json_of(stranger.stop(&[128], false).await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIGW.0301"))
    );
    let url = format!(
        "{}/v1.0/{}/streaming/jobs/128",
        sim.endpoint(),
        sim.project_id()
    );
    let (status, body) = json_of(client().get(url).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("DLI.0013"))
    );
}

#[tokio::test]
async fn the_signing_date_must_be_within_fifteen_minutes_of_the_gateway_clock() {
    let sim = sim().await;
    let stale = Caller {
        date: Timestamp::now() - SignedDuration::from_mins(20),
        ..Caller::new(&sim)
    };
    let (status, body) = json_of(stale.detail(128).await).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIGW.0301"))
    );
    // A gateway whose clock runs 20 minutes behind accepts it, and refuses a current date.
    sim.set_clock_skew(SignedDuration::from_mins(-20));
    assert_eq!(stale.detail(128).await.status(), StatusCode::OK);
    assert_eq!(
        Caller::new(&sim).detail(128).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_date_header_follows_the_gateway_clock() {
    let sim = sim().await;
    sim.set_clock_skew(SignedDuration::from_hours(-48));
    let response = client()
        .get(format!("{}/anything", sim.endpoint()))
        .send()
        .await
        .unwrap();
    let date = response.headers()["date"].to_str().unwrap().to_owned();
    let expected = (Timestamp::now() - SignedDuration::from_hours(48))
        .strftime("%a, %d %b %Y")
        .to_string();
    assert!(date.starts_with(&expected), "{date} vs {expected}");
}

#[tokio::test]
async fn temporary_credentials_need_their_security_token() {
    let sim = sim().await;
    sim.add_temporary_ak_sk("TEMPAK", "temp-sk", "sts-token");
    let without = Caller {
        ak: "TEMPAK".into(),
        sk: "temp-sk".into(),
        ..Caller::new(&sim)
    };
    assert_eq!(without.detail(128).await.status(), StatusCode::UNAUTHORIZED);
    let with = Caller {
        extra_headers: vec![("x-security-token".into(), "sts-token".into())],
        ..without
    };
    assert_eq!(with.detail(128).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_project_is_refused_naming_the_project() {
    let sim = sim().await;
    let caller = Caller {
        project: "ffffffffffffffffffffffffffffffff".into(),
        ..Caller::new(&sim)
    };
    let (status, body) = json_of(caller.detail(128).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_msg"]
            .as_str()
            .unwrap()
            .contains("ffffffffffffffffffffffffffffffff"),
        "{body}"
    );
}

// --- jobs ---

/// Polls job detail until `last` shows up; returns the distinct statuses seen, in order.
async fn statuses_until(caller: &Caller, id: i64, last: &str) -> (Vec<String>, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let detail = status_after(caller, id).await;
        let status = detail["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == last {
            return (seen, detail);
        }
        assert!(
            Instant::now() < deadline,
            "{id} never reached {last}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Phases long enough that a loaded machine still observes each one.
fn observable_config() -> SimConfig {
    SimConfig {
        stop_delay: Duration::from_millis(800),
        savepoint_delay: Duration::from_millis(800),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn a_stop_without_savepoint_cancels_then_succeeds() {
    let sim = sim_with(observable_config()).await;
    let caller = Caller::new(&sim);
    caller.stop(&[128], false).await.unwrap();
    let (seen, detail) = statuses_until(&caller, 128, "job_cancel_success").await;
    assert_eq!(seen, ["job_canceling", "job_cancel_success"]);
    assert_eq!(detail["job_id"], 128);
    assert_eq!(detail["has_savepoint"], false);
    assert_eq!(detail["savepoint_path"], "");
    assert_eq!(status_after(&caller, 137).await["status"], "job_running");
    assert!(sim.detail_calls() >= 3);
}

#[tokio::test]
async fn a_stop_with_savepoint_writes_a_savepoint_path() {
    let sim = sim_with(observable_config()).await;
    let caller = Caller::new(&sim);
    caller.stop(&[137], true).await.unwrap();
    let (seen, detail) = statuses_until(&caller, 137, "job_cancel_success").await;
    assert_eq!(
        seen,
        ["job_savepointing", "job_canceling", "job_cancel_success"]
    );
    assert_eq!(detail["has_savepoint"], true);
    let path = detail["savepoint_path"].as_str().unwrap();
    assert!(
        path.starts_with("obs://dli-sim-bucket/jobs/savepoint/137/"),
        "{path}"
    );
    assert!(path.ends_with('/'));
    assert_eq!(sim.savepoint_path(137).as_deref(), Some(path));
    assert!(sim.stop_call_log()[0].trigger_savepoint);
}

#[tokio::test]
async fn an_unknown_job_refuses_the_whole_call() {
    let sim = sim().await;
    let caller = Caller::new(&sim);
    let (status, body) = json_of(caller.stop(&[128, 999], false).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error_code": "DLI.16001", "error_msg": "The job does not exist: 999"})
    );
    assert_eq!(sim.job_status(128).as_deref(), Some("job_running"));
    assert!(!sim.stop_call_log()[0].applied);
    let (status, body) = json_of(caller.detail(999).await).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("DLI.16001"))
    );
}

#[tokio::test]
async fn a_stopped_job_is_reported_per_element() {
    let sim = sim().await;
    sim.add_job(5, "job_cancel_success");
    let caller = Caller::new(&sim);
    let (status, body) = json_of(caller.stop(&[128, 5], false).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["is_success"], "true");
    assert_eq!(body[1]["is_success"], "false");
    assert!(
        body[1]["message"]
            .as_str()
            .unwrap()
            .contains("job_cancel_success")
    );
}

#[tokio::test]
async fn the_single_element_shape_answers_once_for_the_batch() {
    let sim = sim().await;
    sim.set_answer_shape(AnswerShape::SingleElement);
    let caller = Caller::new(&sim);
    let (_, body) = json_of(caller.stop(&[128, 137], false).await.unwrap()).await;
    assert_eq!(
        body,
        json!([{"is_success": "true", "message": "The request for stopping DLI jobs is delivered successfully."}])
    );
    assert_eq!(sim.job_status(137).as_deref(), Some("job_canceling"));
}

#[tokio::test]
async fn configured_outcomes_fail_or_hang_the_stop() {
    let sim = sim_with(quick_config()).await;
    sim.set_job_stop_outcome(128, StopOutcome::FailToStop);
    sim.set_job_stop_outcome(137, StopOutcome::Hang);
    Caller::new(&sim).stop(&[128, 137], false).await.unwrap();
    wait_until("the failing stop to end", || {
        sim.job_status(128).as_deref() == Some("job_cancel_fail")
    })
    .await;
    // Both stops started together, so the hanging one is past its stop delay too.
    assert_eq!(sim.job_status(137).as_deref(), Some("job_canceling"));
}

#[tokio::test]
async fn jobs_are_listed_with_paging_and_a_status_filter() {
    let sim = sim().await;
    sim.add_job(5, "job_cancel_success");
    let caller = Caller::new(&sim);
    let (status, body) = json_of(
        caller
            .list(&[("limit", "1"), ("offset", "1"), ("status", "job_running")])
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_success"], "true");
    let page = &body["job_list"];
    assert_eq!(page["total_count"], 2);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page["jobs"][0]["job_id"], 137);
    let (status, _) = json_of(caller.list(&[("limit", "101")]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Calls refused for their parameters are not counted.
    assert_eq!(sim.list_calls(), 1);
}

// --- faults ---

#[tokio::test]
async fn latency_delays_a_normal_answer() {
    let sim = sim().await;
    sim.inject(
        Operation::BatchStop,
        Fault::Latency(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let response = Caller::new(&sim).stop(&[128], false).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn gateway_refusals_before_forwarding_neither_count_nor_apply_the_stop() {
    let sim = sim().await;
    sim.inject(
        Operation::BatchStop,
        Fault::GatewayRefuses(Refusal::Throttled {
            retry_after_secs: Some(7),
        }),
    );
    sim.inject(
        Operation::BatchStop,
        Fault::GatewayRefuses(Refusal::Unavailable),
    );
    sim.inject(Operation::BatchStop, Fault::GatewayRefuses(Refusal::Cut));
    let caller = Caller::new(&sim);
    let throttled = caller.stop(&[128], false).await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "7");
    let (status, body) = json_of(caller.stop(&[128], false).await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("APIGW.0613"))
    );
    assert!(caller.stop(&[128], false).await.is_err(), "cut");
    assert_eq!(sim.total_stop_calls(), 0);
    assert_eq!(sim.job_status(128).as_deref(), Some("job_running"));
    assert_eq!(
        caller.stop(&[128], false).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(sim.stop_calls(128), 1);
}

#[tokio::test]
async fn the_gateway_can_lose_the_answer_after_dli_stopped_the_jobs() {
    let sim = sim().await;
    for loss in [Loss::BadGateway, Loss::GatewayTimeout] {
        sim.inject(
            Operation::BatchStop,
            Fault::AnswerLost {
                loss,
                dli_acted: true,
            },
        );
    }
    let caller = Caller::new(&sim);
    let (status, body) = json_of(caller.stop(&[128], false).await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("APIGW.0201"))
    );
    assert!(body["request_id"].is_string(), "{body}");
    let (status, _) = json_of(caller.stop(&[137], false).await.unwrap()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(sim.job_status(128).as_deref(), Some("job_canceling"));
    assert_eq!(sim.job_status(137).as_deref(), Some("job_canceling"));
    assert_eq!(sim.total_stop_calls(), 2);
    assert!(sim.stop_call_log().iter().all(|call| call.applied));
}

#[tokio::test]
async fn a_500_counts_the_call_but_does_not_apply_it() {
    let sim = sim().await;
    sim.inject(Operation::BatchStop, Fault::DliFails { dli_acted: false });
    let (status, body) = json_of(Caller::new(&sim).stop(&[128], false).await.unwrap()).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("DLI.0999"))
    );
    assert_eq!(sim.total_stop_calls(), 1);
    assert!(!sim.stop_call_log()[0].applied);
    assert_eq!(sim.job_status(128).as_deref(), Some("job_running"));
}

#[tokio::test]
async fn a_cut_connection_gives_no_answer_and_applies_as_configured() {
    let sim = sim().await;
    for dli_acted in [true, false] {
        sim.inject(
            Operation::BatchStop,
            Fault::AnswerLost {
                loss: Loss::Cut,
                dli_acted,
            },
        );
    }
    let caller = Caller::new(&sim);
    let err = caller.stop(&[128], false).await.unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    assert_eq!(sim.job_status(128).as_deref(), Some("job_canceling"));
    assert!(caller.stop(&[137], false).await.is_err());
    assert_eq!(sim.job_status(137).as_deref(), Some("job_running"));
    assert_eq!(sim.total_stop_calls(), 2);
    let applied: Vec<bool> = sim.stop_call_log().iter().map(|c| c.applied).collect();
    assert_eq!(applied, vec![true, false]);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_come_after_the_stop_took_effect() {
    let sim = sim().await;
    sim.inject(Operation::BatchStop, Fault::MalformedBody);
    sim.inject(Operation::BatchStop, Fault::OversizedBody(2 * 1024 * 1024));
    let caller = Caller::new(&sim);
    let malformed = caller.stop(&[128], false).await.unwrap();
    assert_eq!(malformed.status(), StatusCode::OK);
    let text = malformed.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(sim.job_status(128).as_deref(), Some("job_canceling"));
    let oversized = caller.stop(&[137], false).await.unwrap();
    assert_eq!(oversized.status(), StatusCode::OK);
    assert!(oversized.bytes().await.unwrap().len() >= 2 * 1024 * 1024);
    assert_eq!(sim.job_status(137).as_deref(), Some("job_canceling"));
    assert_eq!(sim.total_stop_calls(), 2);
}

#[tokio::test]
async fn a_held_stop_waits_for_release_and_applies_then() {
    let sim = sim().await;
    sim.inject(Operation::BatchStop, Fault::Hold { applied: false });
    let caller = Caller::new(&sim);
    let pending = tokio::spawn(async move { caller.stop(&[128], false).await.map(|r| r.status()) });
    assert!(sim.wait_held(1, Duration::from_secs(10)).await);
    assert_eq!(sim.total_stop_calls(), 1);
    assert_eq!(sim.job_status(128).as_deref(), Some("job_running"));
    sim.release_held();
    assert_eq!(pending.await.unwrap().unwrap(), StatusCode::OK);
    assert_eq!(sim.job_status(128).as_deref(), Some("job_canceling"));
    assert!(sim.stop_call_log()[0].applied);
}

#[tokio::test]
async fn a_held_stop_can_apply_on_arrival_and_survives_its_client() {
    let sim = sim().await;
    sim.inject(Operation::BatchStop, Fault::Hold { applied: true });
    sim.inject(Operation::BatchStop, Fault::Hold { applied: false });
    let caller = Caller::new(&sim);
    let first = tokio::spawn(async move { caller.stop(&[128], false).await });
    wait_until("the first stop to be held", || sim.held_requests() == 1).await;
    assert_eq!(sim.job_status(128).as_deref(), Some("job_canceling"));
    // The client gives up (an operator killed mid-call); releasing still runs the held stop.
    first.abort();
    let caller = Caller::new(&sim);
    let second = tokio::spawn(async move { caller.stop(&[137], false).await });
    wait_until("the second stop to be held", || sim.held_requests() == 2).await;
    second.abort();
    sim.release_held();
    wait_until("the held stop to apply", || {
        sim.job_status(137).as_deref() == Some("job_canceling")
    })
    .await;
    assert_eq!(sim.total_stop_calls(), 2);
}

#[tokio::test]
async fn faults_apply_to_reads_and_token_issues_too() {
    let sim = sim().await;
    sim.add_iam_user("acme", "alice", "pw");
    sim.inject(
        Operation::JobDetail,
        Fault::GatewayRefuses(Refusal::Unavailable),
    );
    sim.inject(Operation::ListJobs, Fault::MalformedBody);
    sim.inject(
        Operation::IamToken,
        Fault::AnswerLost {
            loss: Loss::BadGateway,
            dli_acted: false,
        },
    );
    let caller = Caller::new(&sim);
    assert_eq!(
        caller.detail(128).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(caller.detail(128).await.status(), StatusCode::OK);
    assert!(caller.list(&[]).await.json::<Value>().await.is_err());
    assert_eq!(
        issue_token(&sim, "alice", "pw").await.status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(sim.token_issues(), 0);
    assert_eq!(
        issue_token(&sim, "alice", "pw").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(sim.detail_calls(), 1);
    assert_eq!(sim.pending_faults(Operation::JobDetail), 0);
}

#[tokio::test]
async fn random_faults_follow_their_probability_until_cleared() {
    let sim = sim().await;
    sim.set_random_faults(RandomFaults {
        probability: 1.0,
        seed: 42,
        kinds: vec![Fault::GatewayRefuses(Refusal::Unavailable)],
    });
    let caller = Caller::new(&sim);
    for _ in 0..3 {
        assert_eq!(
            caller.detail(128).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    sim.clear_random_faults();
    assert_eq!(caller.detail(128).await.status(), StatusCode::OK);
}

// --- IAM ---

async fn issue_token(sim: &DliSim, user: &str, password: &str) -> reqwest::Response {
    let body = json!({"auth": {
        "identity": {"methods": ["password"],
            "password": {"user": {"name": user, "password": password, "domain": {"name": "acme"}}}},
        "scope": {"project": {"id": sim.project_id()}}}});
    client()
        .post(format!("{}/v3/auth/tokens?nocatalog=true", sim.endpoint()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn iam_issues_project_scoped_tokens_that_dli_accepts() {
    let sim = sim().await;
    sim.add_iam_user("acme", "alice", "pw");
    let response = issue_token(&sim, "alice", "pw").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token"]["project"]["id"], sim.project_id().as_str());
    let expires: Timestamp = body["token"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > Timestamp::now() + SignedDuration::from_hours(23));
    assert_eq!(sim.token_issues(), 1);

    let url = format!(
        "{}/v1.0/{}/streaming/jobs/stop",
        sim.endpoint(),
        sim.project_id()
    );
    let stop = client()
        .post(&url)
        .header("x-auth-token", &token)
        .json(&json!({"job_ids": [128]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), StatusCode::OK);
    assert_eq!(sim.stop_calls(128), 1);
    let forged = client()
        .post(&url)
        .header("x-auth-token", "forged")
        .json(&json!({"job_ids": [137]}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn iam_refuses_a_wrong_password() {
    let sim = sim().await;
    sim.add_iam_user("acme", "alice", "pw");
    let (status, body) = json_of(issue_token(&sim, "alice", "nope").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(sim.token_issues(), 0);
}

#[tokio::test]
async fn expired_tokens_are_refused_so_clients_must_refresh() {
    // Long enough for the first call to come in time on a loaded machine; the wait below
    // counts from before the token was issued, so it always outlasts it.
    let ttl = Duration::from_secs(3);
    let sim = sim_with(SimConfig {
        token_ttl: ttl,
        ..slow_config()
    })
    .await;
    sim.add_iam_user("acme", "alice", "pw");
    let issued = tokio::time::Instant::now();
    let token = issue_token(&sim, "alice", "pw").await.headers()["x-subject-token"].clone();
    let url = format!(
        "{}/v1.0/{}/streaming/jobs/128",
        sim.endpoint(),
        sim.project_id()
    );
    assert_eq!(
        client()
            .get(&url)
            .header("x-auth-token", token.clone())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    tokio::time::sleep_until(issued + ttl + Duration::from_millis(200)).await;
    let (status, body) = json_of(
        client()
            .get(&url)
            .header("x-auth-token", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("APIGW.0307"))
    );
    let fresh = issue_token(&sim, "alice", "pw").await.headers()["x-subject-token"].clone();
    assert_eq!(
        client()
            .get(&url)
            .header("x-auth-token", fresh)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(sim.token_issues(), 2);
}

#[tokio::test]
async fn static_tokens_are_accepted() {
    let sim = sim().await;
    sim.add_static_token("static-token");
    let url = format!(
        "{}/v1.0/{}/streaming/jobs?limit=1",
        sim.endpoint(),
        sim.project_id()
    );
    let response = client()
        .get(url)
        .header("x-auth-token", "static-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

// --- transport ---

#[tokio::test]
async fn tls_is_served_with_a_certificate_from_the_sims_ca() {
    let sim = sim_with(SimConfig {
        tls: true,
        ..slow_config()
    })
    .await;
    assert!(sim.endpoint().starts_with("https://127.0.0.1:"));
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().unwrap().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let caller = Caller {
        http: trusting,
        ..Caller::new(&sim)
    };
    assert_eq!(
        caller.stop(&[128], false).await.unwrap().status(),
        StatusCode::OK
    );
    let localhost = sim.endpoint().replace("127.0.0.1", "localhost");
    assert_eq!(
        caller
            .http
            .get(format!("{localhost}/_sim/stats"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let untrusting = Caller {
        http: reqwest::Client::builder()
            .tls_certs_only([])
            .build()
            .unwrap(),
        ..Caller::new(&sim)
    };
    assert!(untrusting.stop(&[137], false).await.is_err());
}

#[tokio::test]
async fn request_ids_are_unique() {
    let sim = sim().await;
    let caller = Caller::new(&sim);
    let mut ids = std::collections::HashSet::new();
    for _ in 0..5 {
        let response = caller.detail(128).await;
        ids.insert(
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 5);
}

#[tokio::test]
async fn the_server_stops_on_shutdown_and_when_the_last_handle_drops() {
    let sim = sim().await;
    let endpoint = sim.endpoint();
    sim.clone().shutdown().await;
    assert!(
        client()
            .get(format!("{endpoint}/_sim/stats"))
            .send()
            .await
            .is_err()
    );

    let other = DliSim::start(slow_config()).await.unwrap();
    let endpoint = other.endpoint();
    drop(other);
    wait_until_refused(&endpoint).await;
}

async fn wait_until_refused(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while client()
        .get(format!("{endpoint}/_sim/stats"))
        .send()
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "still serving after the last handle dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- admin API ---

#[tokio::test]
async fn the_admin_api_drives_the_sim_from_outside() {
    let sim = DliSim::start(quick_config()).await.unwrap();
    let http = client();
    let admin = |path: &str| format!("{}/_sim/{path}", sim.endpoint());
    let post = |path: &str, body: Value| http.post(admin(path)).json(&body).send();
    let setup = [
        ("jobs", json!({"ids": [1, 2]})),
        ("jobs", json!({"ids": [3], "status": "job_cancel_success"})),
        (
            "credentials",
            json!({"access_keys": [{"access_key": AK, "secret_key": SK}]}),
        ),
        ("outcomes", json!({"ids": [2], "outcome": "hang"})),
        ("settings", json!({"answer_shape": "single_element"})),
        (
            "faults",
            json!({"operation": "batch_stop", "fault": {"kind": "throttled", "retry_after_secs": 1}}),
        ),
        (
            "faults",
            json!({"operation": "batch_stop", "fault": {"kind": "hold", "applied": false}}),
        ),
    ];
    for (path, body) in setup {
        let status = post(path, body.clone()).await.unwrap().status();
        assert!(status.is_success(), "POST /_sim/{path} {body}: {status}");
    }

    let caller = Caller::new(&sim);
    assert_eq!(
        caller.stop(&[1, 2], false).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let held = tokio::spawn(async move {
        caller
            .stop(&[1, 2], false)
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    assert!(sim.wait_held(1, Duration::from_secs(10)).await);
    assert!(
        post("release", json!({}))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let answer = held.await.unwrap();
    assert_eq!(answer.as_array().unwrap().len(), 1);

    wait_until("job 1 to stop", || {
        sim.job_status(1).as_deref() == Some("job_cancel_success")
    })
    .await;
    let stats: StatsBody = http
        .get(admin("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.total_stop_calls, 1);
    assert_eq!(stats.stop_calls.get(&1), Some(&1));
    assert_eq!(
        stats.jobs.get(&1).map(String::as_str),
        Some("job_cancel_success")
    );
    assert_eq!(
        stats.jobs.get(&2).map(String::as_str),
        Some("job_canceling")
    );
    assert_eq!(
        stats.jobs.get(&3).map(String::as_str),
        Some("job_cancel_success")
    );
    assert_eq!(stats.held_requests, 0);
}

// --- the dli-sim binary ---

#[tokio::test]
async fn the_binary_serves_its_jobs_over_tls_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;

    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dli-sim"))
        .args(["--listen", "127.0.0.1:0", "--tls", "--jobs", "100-102,7"])
        .args([
            "--access-key",
            AK,
            "--secret-key",
            SK,
            "--answer-shape",
            "single",
        ])
        .arg("--ca-out")
        .arg(&ca_path)
        .env_remove("DLI_ACCESS_KEY")
        .env_remove("DLI_SECRET_KEY")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let endpoint = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path).unwrap()).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let caller = Caller {
        http: http.clone(),
        endpoint: endpoint.clone(),
        project: SimConfig::default().project_id,
        ak: AK.into(),
        sk: SK.into(),
        date: Timestamp::now(),
        extra_headers: Vec::new(),
    };
    let (status, body) = json_of(caller.stop(&[100, 7], false).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body.as_array().unwrap().len(),
        1,
        "single-element answers: {body}"
    );
    let stats: StatsBody = http
        .get(format!("{endpoint}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.jobs.len(), 4);
    assert_eq!(
        stats.jobs.get(&101).map(String::as_str),
        Some("job_running")
    );
    assert_eq!(stats.total_stop_calls, 1);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("dli-sim exits after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
