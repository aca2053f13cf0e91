//! The DLI client over real HTTP(S) against the stand-in: every outcome class of the stop call,
//! every way to authenticate, and TLS with a private CA.

use std::time::Duration;

use dli_stop_dev::sim::{AnswerShape, DliSim, Fault, Loss, Operation, Refusal, SimConfig};
use dli_stop_operator::dli::connection::{Auth, Connection, SecretValue};
use dli_stop_operator::dli::{
    ClientOptions, DliClient, DliError, JobStatus, OutcomeClass, StopAnswer, StopOutcome, classify,
};

const AK: &str = "TESTACCESSKEY";
const SK: &str = "test-secret-key";

async fn start(config: SimConfig) -> DliSim {
    let sim = DliSim::start(config).await.expect("stand-in starts");
    sim.add_ak_sk(AK, SK);
    sim.add_running_jobs(&[128, 137]);
    sim
}

async fn sim() -> DliSim {
    start(SimConfig::default()).await
}

fn connection(sim: &DliSim, auth: Auth) -> Connection {
    Connection {
        endpoint: sim.endpoint().parse().expect("endpoint URL"),
        project_id: sim.project_id(),
        auth,
        ca_bundle: sim.ca_pem(),
    }
}

fn ak_sk(access_key: &str, secret_key: &str) -> Auth {
    Auth::AkSk {
        access_key: access_key.into(),
        secret_key: SecretValue::new(secret_key),
        security_token: None,
    }
}

/// Temporary credentials of the access key `TEMPAK`.
fn temporary(secret_key: &str, security_token: &str) -> Auth {
    Auth::AkSk {
        access_key: "TEMPAK".into(),
        secret_key: SecretValue::new(secret_key),
        security_token: Some(SecretValue::new(security_token)),
    }
}

fn client_with(connection: Connection, options: ClientOptions) -> DliClient {
    DliClient::new(connection, options).expect("client builds")
}

fn client(sim: &DliSim) -> DliClient {
    client_with(connection(sim, ak_sk(AK, SK)), ClientOptions::default())
}

/// One stop try as the operator makes it: the credential first, then the call.
async fn stop(
    client: &DliClient,
    job_ids: &[i64],
    trigger_savepoint: bool,
) -> Result<StopAnswer, DliError> {
    let credential = client.credential().await?;
    client
        .batch_stop(&credential, job_ids, trigger_savepoint)
        .await
}

async fn stop_error(client: &DliClient, job_ids: &[i64]) -> DliError {
    stop(client, job_ids, false)
        .await
        .expect_err("the stop call fails")
}

#[tokio::test]
async fn a_delivered_stop_maps_one_element_per_job_and_records_the_request_id() {
    let sim = sim().await;
    let answer = stop(&client(&sim), &[128, 137], true)
        .await
        .expect("delivered");
    assert_eq!(answer.http_status, 200);
    assert!(
        answer
            .request_id
            .as_deref()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(answer.elements.len(), 2);
    assert_eq!(
        answer
            .jobs
            .iter()
            .map(|job| (job.job_id, job.is_success))
            .collect::<Vec<_>>(),
        [(128, Some(true)), (137, Some(true))]
    );
    assert_eq!(sim.stop_calls(128), 1);
    assert_eq!(sim.stop_calls(137), 1);
    assert!(sim.stop_call_log()[0].trigger_savepoint);
}

#[tokio::test]
async fn a_single_element_answer_applies_to_every_job() {
    let sim = sim().await;
    sim.set_answer_shape(AnswerShape::SingleElement);
    let answer = stop(&client(&sim), &[128, 137], false)
        .await
        .expect("delivered");
    assert_eq!(answer.elements.len(), 1);
    assert!(answer.jobs.iter().all(|job| job.is_success == Some(true)));
    assert_eq!(answer.jobs.len(), 2);
}

#[tokio::test]
async fn a_single_object_answer_is_the_verdict_for_every_job() {
    let sim = sim().await;
    sim.set_answer_shape(AnswerShape::Object);
    let answer = stop(&client(&sim), &[128, 137], false)
        .await
        .expect("delivered");
    assert_eq!(answer.elements.len(), 1);
    assert_eq!(answer.jobs.len(), 2);
    assert!(answer.jobs.iter().all(|job| job.is_success == Some(true)));
    assert_eq!(sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn an_endpoint_with_a_path_needing_percent_encoding_is_signed_as_the_gateway_does() {
    for prefix in ["/dli%20gw", "/dl%C3%B6", "/a+b:c"] {
        let sim = start(SimConfig {
            path_prefix: prefix.to_owned(),
            ..SimConfig::default()
        })
        .await;
        let client = client(&sim);
        client.list_jobs(1).await.expect("list under the prefix");
        client
            .job_detail(128)
            .await
            .expect("detail under the prefix");
        stop(&client, &[128], false)
            .await
            .expect("stop under the prefix");
        assert_eq!(sim.total_stop_calls(), 1, "{prefix}");
    }
}

#[tokio::test]
async fn sparse_jobs_with_null_fields_are_read() {
    let sim = sim().await;
    sim.set_null_optional_fields(true);
    let client = client(&sim);
    let detail = client.job_detail(128).await.expect("sparse detail");
    assert_eq!(detail.status, Some(JobStatus::Running));
    assert_eq!(detail.name, "");
    let list = client.list_jobs(10).await.expect("sparse list");
    assert_eq!(list.jobs.len(), 2);
}
#[tokio::test]
async fn a_parameter_error_is_rejected_and_final() {
    let sim = sim().await;
    let error = stop_error(&client(&sim), &[]).await;
    assert_eq!(error.class(), OutcomeClass::Rejected);
    assert_eq!(error.error_code(), Some("DLI.0001"));
    assert_eq!(error.http_status(), Some(400));
    assert!(
        error
            .to_string()
            .starts_with("DLI rejected the request: DLI.0001"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unknown_job_is_rejected_with_dli_16001() {
    let sim = sim().await;
    let error = stop_error(&client(&sim), &[999]).await;
    assert_eq!(error.class(), OutcomeClass::Rejected);
    assert_eq!(error.error_code(), Some("DLI.16001"));
    assert!(matches!(classify(Err(error)), StopOutcome::Rejected(_)));
}

#[tokio::test]
async fn a_wrong_secret_key_is_not_delivered_and_shows_the_gateways_canonical_request() {
    let sim = sim().await;
    let client = client_with(
        connection(&sim, ak_sk(AK, "wrong")),
        ClientOptions::default(),
    );
    let error = stop_error(&client, &[128]).await;
    assert_eq!(error.class(), OutcomeClass::NotDelivered);
    assert_eq!(error.error_code(), Some("APIGW.0301"));
    assert!(error.request_id().is_some());
    let message = error.to_string();
    assert!(
        message.contains("check the access key/secret key"),
        "{message}"
    );
    assert!(message.contains("canonicalRequest:POST|"), "{message}");
    assert!(
        !message.contains("wrong"),
        "the secret key leaked: {message}"
    );
    assert_eq!(sim.total_stop_calls(), 0);
}

#[tokio::test]
async fn throttling_is_not_delivered_and_carries_retry_after() {
    let sim = sim().await;
    sim.inject(
        Operation::BatchStop,
        Fault::GatewayRefuses(Refusal::Throttled {
            retry_after_secs: Some(3),
        }),
    );
    match classify(stop(&client(&sim), &[128], false).await) {
        StopOutcome::NotDelivered { retry_after, error } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)));
            assert_eq!(error.http_status(), Some(429));
        }
        other => panic!("expected NotDelivered, got {other:?}"),
    }
    assert_eq!(sim.total_stop_calls(), 0);
}

#[tokio::test]
async fn a_gateway_refusal_before_forwarding_is_not_delivered() {
    let sim = sim().await;
    sim.inject(
        Operation::BatchStop,
        Fault::GatewayRefuses(Refusal::Unavailable),
    );
    let error = stop_error(&client(&sim), &[128]).await;
    assert_eq!(error.class(), OutcomeClass::NotDelivered, "{error}");
    assert_eq!(error.http_status(), Some(503));
    assert_eq!(sim.total_stop_calls(), 0);
}

#[tokio::test]
async fn a_gateway_failure_after_dli_acted_is_ambiguous() {
    let sim = sim().await;
    for loss in [Loss::BadGateway, Loss::GatewayTimeout, Loss::Cut] {
        sim.inject(
            Operation::BatchStop,
            Fault::AnswerLost {
                loss,
                dli_acted: true,
            },
        );
        let error = stop_error(&client(&sim), &[128]).await;
        assert_eq!(error.class(), OutcomeClass::Ambiguous, "{loss:?}: {error}");
    }
    assert_eq!(sim.total_stop_calls(), 3, "every call reached DLI");
    assert_eq!(sim.job_status(128).as_deref(), Some("job_canceling"));
}

#[tokio::test]
async fn a_server_error_is_ambiguous() {
    let sim = sim().await;
    sim.inject(Operation::BatchStop, Fault::DliFails { dli_acted: false });
    let error = stop_error(&client(&sim), &[128]).await;
    assert_eq!(error.class(), OutcomeClass::Ambiguous);
    assert_eq!(error.error_code(), Some("DLI.0999"));
}

#[tokio::test]
async fn a_connection_cut_after_the_request_is_ambiguous() {
    let sim = sim().await;
    sim.inject(
        Operation::BatchStop,
        Fault::AnswerLost {
            loss: Loss::Cut,
            dli_acted: true,
        },
    );
    let error = stop_error(&client(&sim), &[128]).await;
    assert_eq!(error.class(), OutcomeClass::Ambiguous, "{error}");
    assert_eq!(sim.stop_calls(128), 1, "the cut call did reach DLI");
}

#[tokio::test]
async fn a_malformed_success_body_is_ambiguous() {
    let sim = sim().await;
    sim.inject(Operation::BatchStop, Fault::MalformedBody);
    let error = stop_error(&client(&sim), &[128]).await;
    assert!(
        matches!(error, DliError::Malformed { status: 200, .. }),
        "{error}"
    );
    assert_eq!(error.class(), OutcomeClass::Ambiguous);
    assert!(error.request_id().is_some());
}

#[tokio::test]
async fn an_oversized_answer_is_refused_and_ambiguous() {
    let sim = sim().await;
    sim.inject(Operation::BatchStop, Fault::OversizedBody(200_000));
    let options = ClientOptions {
        max_response_bytes: 64 * 1024,
        ..ClientOptions::default()
    };
    let client = client_with(connection(&sim, ak_sk(AK, SK)), options);
    let error = stop_error(&client, &[128]).await;
    assert!(
        matches!(
            error,
            DliError::TooLarge {
                status: 200,
                limit: 65536,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.class(), OutcomeClass::Ambiguous);
}

#[tokio::test]
async fn an_answer_later_than_the_request_timeout_is_ambiguous() {
    let sim = sim().await;
    sim.inject(Operation::BatchStop, Fault::Latency(Duration::from_secs(3)));
    let options = ClientOptions {
        request_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let client = client_with(connection(&sim, ak_sk(AK, SK)), options);
    let error = stop_error(&client, &[128]).await;
    assert!(matches!(error, DliError::Timeout { .. }), "{error}");
    assert_eq!(error.class(), OutcomeClass::Ambiguous);
}

#[tokio::test]
async fn a_refused_connection_is_not_delivered() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address").port()
    };
    let connection = Connection {
        endpoint: format!("http://127.0.0.1:{port}").parse().expect("url"),
        project_id: "abc".into(),
        auth: ak_sk(AK, SK),
        ca_bundle: None,
    };
    let error = stop_error(&client_with(connection, ClientOptions::default()), &[1]).await;
    assert!(matches!(error, DliError::Connect { .. }), "{error}");
    assert_eq!(error.class(), OutcomeClass::NotDelivered);
}

#[tokio::test]
async fn a_wrong_project_is_rejected() {
    let sim = sim().await;
    let mut wrong = connection(&sim, ak_sk(AK, SK));
    wrong.project_id = "ffffffffffffffffffffffffffffffff".into();
    let error = client_with(wrong, ClientOptions::default())
        .list_jobs(1)
        .await
        .expect_err("unknown project");
    assert_eq!(error.class(), OutcomeClass::Rejected);
    assert_eq!(error.error_code(), Some("DLI.0002"));
}

#[tokio::test]
async fn temporary_credentials_send_their_security_token() {
    let sim = sim().await;
    sim.add_temporary_ak_sk("TEMPAK", "TEMPSK", "TEMPTOKEN");
    let client = client_with(
        connection(&sim, temporary("TEMPSK", "TEMPTOKEN")),
        ClientOptions::default(),
    );
    stop(&client, &[128], false).await.expect("delivered");
    let without = client_with(
        connection(&sim, ak_sk("TEMPAK", "TEMPSK")),
        ClientOptions::default(),
    );
    let error = without.job_detail(128).await.expect_err("token missing");
    assert_eq!(error.http_status(), Some(401));
}

#[tokio::test]
async fn a_refused_signature_never_echoes_the_security_token() {
    let sim = sim().await;
    sim.add_temporary_ak_sk("TEMPAK", "TEMPSK", "STS-SECRET-TOKEN-VALUE");
    let wrong_key = temporary("wrong", "STS-SECRET-TOKEN-VALUE");
    let client = client_with(connection(&sim, wrong_key), ClientOptions::default());
    let error = stop_error(&client, &[128]).await;
    assert_eq!(error.error_code(), Some("APIGW.0301"));
    let message = error.to_string();
    assert!(
        message.contains("x-security-token:[redacted]"),
        "the gateway's echo is still shown: {message}"
    );
    assert!(
        !message.contains("STS-SECRET-TOKEN-VALUE"),
        "the security token leaked: {message}"
    );
    // What `check` sets beside the gateway's echo is redacted the same way.
    let ours = client
        .list_jobs_canonical_request(1, "20240101T000000Z")
        .expect("AK/SK");
    assert!(ours.contains("x-security-token:[redacted]"), "{ours}");
}

fn iam(sim: &DliSim, password: &str) -> Auth {
    Auth::IamPassword {
        iam_endpoint: sim.endpoint().parse().expect("url"),
        username: "operator".into(),
        password: SecretValue::new(password),
        domain_name: "acme".into(),
    }
}

#[tokio::test]
async fn an_iam_token_is_issued_once_and_shared_by_concurrent_calls() {
    let sim = sim().await;
    sim.add_iam_user("acme", "operator", "pa55word");
    let client = client_with(
        connection(&sim, iam(&sim, "pa55word")),
        ClientOptions::default(),
    );
    let details = futures::future::join_all((0..5).map(|_| client.job_detail(128))).await;
    for detail in details {
        assert_eq!(detail.expect("job detail").job_id, 128);
    }
    stop(&client, &[128, 137], false).await.expect("delivered");
    assert_eq!(sim.token_issues(), 1);
}

#[tokio::test]
async fn token_fetches_are_counted_in_the_operators_metrics() {
    let sim = sim().await;
    sim.add_iam_user("acme", "operator", "pa55word");
    let metrics = dli_stop_operator::metrics::Metrics::new();
    let client = client_with(
        connection(&sim, iam(&sim, "pa55word")),
        ClientOptions::default(),
    )
    .with_metrics(metrics.clone());
    client.job_detail(128).await.expect("job detail");
    client.job_detail(137).await.expect("job detail");
    let page = metrics.encode();
    assert!(
        page.contains("dli_stop_operator_token_refreshes_total{outcome=\"ok\"} 1"),
        "{page}"
    );
}

#[tokio::test]
async fn a_short_lived_iam_token_is_refreshed_before_it_expires() {
    let sim = start(SimConfig {
        token_ttl: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await;
    sim.add_iam_user("acme", "operator", "pa55word");
    let client = client_with(
        connection(&sim, iam(&sim, "pa55word")),
        ClientOptions::default(),
    );
    client.job_detail(128).await.expect("first call");
    client.job_detail(128).await.expect("cached token");
    assert_eq!(sim.token_issues(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.job_detail(128).await.expect("refreshed token");
    assert_eq!(sim.token_issues(), 2);
}

#[tokio::test]
async fn a_refused_iam_token_is_replaced_once_and_the_call_retried_once() {
    let sim = sim().await;
    sim.add_iam_user("acme", "operator", "pa55word");
    let client = client_with(
        connection(&sim, iam(&sim, "pa55word")),
        ClientOptions::default(),
    );
    client.job_detail(128).await.expect("first token works");
    assert_eq!(sim.token_issues(), 1);

    // The gateway's clock jumps past every token's expiry: the cached one is refused, a new
    // one is fetched once, and that is refused too; the client must not loop.
    sim.set_clock_skew(jiff::SignedDuration::from_hours(25));
    let error = client
        .job_detail(128)
        .await
        .expect_err("expired at the gateway");
    assert_eq!(error.http_status(), Some(401));
    assert_eq!(sim.token_issues(), 2);

    sim.set_clock_skew(jiff::SignedDuration::ZERO);
    client
        .job_detail(128)
        .await
        .expect("the replacement token is kept");
    assert_eq!(sim.token_issues(), 2);
}

/// IAM fails once while five calls wait for a token: they all take that one failure instead
/// of each fetching in turn (with IAM hanging, each would wait a full request timeout).
#[tokio::test]
async fn callers_waiting_for_a_token_share_one_failed_fetch() {
    let sim = sim().await;
    sim.add_iam_user("acme", "operator", "pa55word");
    sim.inject(Operation::IamToken, Fault::DliFails { dli_acted: false });
    let metrics = dli_stop_operator::metrics::Metrics::new();
    let client = client_with(
        connection(&sim, iam(&sim, "pa55word")),
        ClientOptions::default(),
    )
    .with_metrics(metrics.clone());
    let details = futures::future::join_all((0..5).map(|_| client.job_detail(128))).await;
    for detail in details {
        let error = detail.expect_err("no token");
        assert!(matches!(error, DliError::IamToken { .. }), "{error}");
    }
    let page = metrics.encode();
    assert!(
        page.contains("dli_stop_operator_token_refreshes_total{outcome=\"error\"} 1"),
        "{page}"
    );
    assert_eq!(sim.token_issues(), 0);
    client
        .job_detail(128)
        .await
        .expect("a later call fetches again");
    assert_eq!(sim.token_issues(), 1);
}

/// A stop refused for its token is one try that did not reach DLI: it is not resent within
/// the try (that would stretch the time after the claim), and the next try has a new token.
#[tokio::test]
async fn a_stop_refused_for_its_token_is_not_resent_and_the_next_try_gets_a_new_token() {
    let sim = sim().await;
    sim.add_iam_user("acme", "operator", "pa55word");
    let client = client_with(
        connection(&sim, iam(&sim, "pa55word")),
        ClientOptions::default(),
    );
    let credential = client.credential().await.expect("token");
    assert_eq!(sim.token_issues(), 1);
    sim.set_clock_skew(jiff::SignedDuration::from_hours(25));
    let error = client
        .batch_stop(&credential, &[128], false)
        .await
        .expect_err("the token expired at the gateway");
    assert_eq!(error.http_status(), Some(401));
    assert_eq!(error.class(), OutcomeClass::NotDelivered);
    assert_eq!(sim.token_issues(), 1, "no new token within the try");
    assert_eq!(sim.total_stop_calls(), 0);

    sim.set_clock_skew(jiff::SignedDuration::ZERO);
    stop(&client, &[128], false).await.expect("delivered");
    assert_eq!(sim.token_issues(), 2);
    assert_eq!(sim.total_stop_calls(), 1);
}

#[tokio::test]
async fn a_wrong_iam_password_means_the_stop_was_never_sent() {
    let sim = sim().await;
    sim.add_iam_user("acme", "operator", "pa55word");
    let client = client_with(
        connection(&sim, iam(&sim, "nope")),
        ClientOptions::default(),
    );
    let error = stop_error(&client, &[128]).await;
    assert!(
        matches!(
            error,
            DliError::IamToken {
                status: Some(401),
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.class(), OutcomeClass::NotDelivered);
    assert!(!error.to_string().contains("nope"));
    assert_eq!(sim.total_stop_calls(), 0);
}

#[tokio::test]
async fn a_static_token_is_sent_as_is() {
    let sim = sim().await;
    sim.add_static_token("static-token");
    let good = client_with(
        connection(&sim, Auth::Token(SecretValue::new("static-token"))),
        ClientOptions::default(),
    );
    let detail = good.job_detail(137).await.expect("job detail");
    assert_eq!(detail.status, Some(JobStatus::Running));
    let bad = client_with(
        connection(&sim, Auth::Token(SecretValue::new("other-token"))),
        ClientOptions::default(),
    );
    let error = bad.job_detail(137).await.expect_err("unknown token");
    assert_eq!(error.http_status(), Some(401));
    assert_eq!(error.class(), OutcomeClass::NotDelivered);
}

#[tokio::test]
async fn job_detail_follows_a_stop_to_its_end_with_the_savepoint() {
    let sim = start(SimConfig {
        stop_delay: Duration::from_millis(200),
        savepoint_delay: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim);
    stop(&client, &[128], true).await.expect("delivered");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let detail = loop {
        let detail = client.job_detail(128).await.expect("job detail");
        if detail.status == Some(JobStatus::CancelSuccess) || tokio::time::Instant::now() > deadline
        {
            break detail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(detail.status, Some(JobStatus::CancelSuccess));
    assert_eq!(detail.savepoint_path, sim.savepoint_path(128));
    assert!(detail.savepoint_path.is_some());
}

#[tokio::test]
async fn list_jobs_reports_the_request_id() {
    let sim = sim().await;
    let list = client(&sim).list_jobs(1).await.expect("job list");
    assert_eq!(list.http_status, 200);
    assert!(list.request_id.is_some());
    assert_eq!(list.jobs.len(), 1);
    assert_eq!(list.total_count, Some(2));
    assert_eq!(sim.list_calls(), 1);
}

#[tokio::test]
async fn tls_with_the_stand_ins_ca_works_and_fails_without_it() {
    let sim = start(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .await;
    assert!(sim.endpoint().starts_with("https://"));
    client(&sim)
        .list_jobs(1)
        .await
        .expect("trusted via caBundle");

    let mut untrusted = connection(&sim, ak_sk(AK, SK));
    untrusted.ca_bundle = None;
    let error = client_with(untrusted, ClientOptions::default())
        .list_jobs(1)
        .await
        .expect_err("unknown CA");
    match &error {
        DliError::Connect { tls: Some(tls), .. } => {
            assert!(tls.to_lowercase().contains("certificate"), "{tls}")
        }
        other => panic!("expected a TLS connect error, got {other:?}"),
    }
    assert_eq!(error.class(), OutcomeClass::NotDelivered);
}

#[tokio::test]
async fn a_credential_http_cannot_carry_is_refused_before_sending() {
    let sim = sim().await;
    let client = client_with(
        connection(&sim, Auth::Token(SecretValue::new("line\nbreak"))),
        ClientOptions::default(),
    );
    let error = stop_error(&client, &[128]).await;
    assert!(matches!(error, DliError::Unsendable { .. }), "{error}");
    assert_eq!(error.class(), OutcomeClass::NotDelivered);
    assert!(!error.to_string().contains("break"), "{error}");
    assert_eq!(sim.total_stop_calls(), 0);
}
