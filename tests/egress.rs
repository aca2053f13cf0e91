//! The endpoint guard inside the DLI client, over real sockets: a guarded client never opens a
//! connection to a loopback address, whether the endpoint names it literally or through a name
//! that resolves to it, for DLI and for IAM alike. A listener on loopback counts what reaches it;
//! every test first shows that an unguarded client does reach it, so a count of zero means
//! something. Only loopback is ever dialled.

use std::time::Duration;

use dli_stop_dev::counting_listener::CountingListener;
use dli_stop_operator::dli::connection::{Auth, Connection, SecretValue};
use dli_stop_operator::dli::{ClientBuildError, ClientOptions, DliClient, DliError};
use dli_stop_operator::egress::{EndpointPolicy, SpecialRange};

fn connection(endpoint: String, auth: Auth) -> Connection {
    Connection {
        endpoint: endpoint.parse().expect("endpoint URL"),
        project_id: "0123456789abcdef".into(),
        auth,
        ca_bundle: None,
    }
}

fn token() -> Auth {
    Auth::Token(SecretValue::new("t"))
}

fn iam(iam_endpoint: String) -> Auth {
    Auth::IamPassword {
        iam_endpoint: iam_endpoint.parse().expect("IAM URL"),
        username: "u".into(),
        password: SecretValue::new("p"),
        domain_name: "d".into(),
    }
}

fn options(policy: EndpointPolicy) -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        endpoint_policy: policy,
        ..ClientOptions::default()
    }
}

/// Waits (generously) for the listener to have counted `expected` connections.
async fn wait_for_count(listener: &CountingListener, expected: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while listener.count() < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener counted {} connections, expected {expected}",
            listener.count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_never_dialled() {
    let listener = CountingListener::start().await;
    let endpoint = format!("http://localhost:{}", listener.port);

    let open = DliClient::new(
        connection(endpoint.clone(), token()),
        options(EndpointPolicy::AnyAddress),
    )
    .expect("client builds");
    assert!(open.list_jobs(1).await.is_err(), "the listener hangs up");
    wait_for_count(&listener, 1).await;

    let guarded = DliClient::new(
        connection(endpoint, token()),
        options(EndpointPolicy::PublicOnly),
    )
    .expect("a name is checked when it is resolved, not when the client is built");
    let error = guarded.list_jobs(1).await.expect_err("refused");
    match &error {
        DliError::Connect { detail, .. } => assert!(
            detail.contains("localhost resolves to") && detail.contains("a loopback address"),
            "{detail}"
        ),
        other => panic!("a refused endpoint must be a connection that was never made: {other:?}"),
    }
    // The stop call's protocol reads this as certainly not delivered: nothing was sent.
    let credential = guarded
        .credential()
        .await
        .expect("a static token needs no fetch");
    let stop = guarded
        .batch_stop(&credential, &[1], false)
        .await
        .expect_err("refused");
    assert!(matches!(stop, DliError::Connect { .. }), "{stop:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(listener.count(), 1, "the guarded client connected");
}

#[tokio::test]
async fn an_iam_endpoint_on_loopback_is_never_dialled() {
    let dli = CountingListener::start().await;
    let iam_listener = CountingListener::start().await;
    let endpoint = format!("http://localhost:{}", dli.port);
    let iam_by_name = format!("http://localhost:{}", iam_listener.port);

    let open = DliClient::new(
        connection(endpoint.clone(), iam(iam_by_name.clone())),
        options(EndpointPolicy::AnyAddress),
    )
    .expect("client builds");
    assert!(open.list_jobs(1).await.is_err());
    wait_for_count(&iam_listener, 1).await;

    let guarded = DliClient::new(
        connection(endpoint, iam(iam_by_name)),
        options(EndpointPolicy::PublicOnly),
    )
    .expect("client builds");
    let error = guarded.list_jobs(1).await.expect_err("refused");
    assert!(
        matches!(&error, DliError::IamToken { detail, .. } if detail.contains("localhost resolves to")),
        "{error:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(iam_listener.count(), 1, "the guarded client reached IAM");
    assert_eq!(dli.count(), 0, "the guarded client reached DLI");
}

#[tokio::test]
async fn a_literal_loopback_address_is_refused_before_a_client_exists() {
    let listener = CountingListener::start().await;
    let by_ip = format!("http://127.0.0.1:{}", listener.port);

    let open = DliClient::new(
        connection(by_ip.clone(), token()),
        options(EndpointPolicy::AnyAddress),
    )
    .expect("client builds");
    assert!(open.list_jobs(1).await.is_err());
    wait_for_count(&listener, 1).await;

    for (connection, key) in [
        (connection(by_ip.clone(), token()), "endpoint"),
        (
            connection(format!("http://localhost:{}", listener.port), iam(by_ip)),
            "iamEndpoint",
        ),
    ] {
        match DliClient::new(connection, options(EndpointPolicy::PublicOnly)) {
            Err(ClientBuildError::EndpointRefused(refused)) => {
                assert_eq!(refused.key, Some(key));
                assert_eq!(refused.range, SpecialRange::Loopback);
            }
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("a client for a literal loopback {key} was built"),
        }
    }
    assert_eq!(listener.count(), 1);
}
