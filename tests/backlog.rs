//! The backlog scenario of `make bench` on a small backlog: the operator and the client-go
//! floor (`tests/bench-floor`) each drain it, so the floor the README's ratio is measured
//! against keeps making exactly the operator's writes and every request ends Ready.

use std::time::Duration;

use dli_stop_dev::harness::bench::{BenchConfig, backlog};
use dli_stop_dev::harness::world;
use dli_stop_dev::testenv::ControlPlane;

const REQUESTS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_and_the_client_go_floor_both_drain_a_backlog() {
    dli_stop_operator::run::install_crypto_provider();
    let cp = ControlPlane::shared().await.expect("control plane starts");
    world::install_crd(cp).await.expect("CRD installs");
    let work = tempfile::tempdir().expect("temp dir");
    let config = BenchConfig {
        requests: 0,
        concurrency: 4,
        rounds: 1,
        sweep: Vec::new(),
        sweep_requests: 0,
        rest_requests: 0,
        backlog_requests: REQUESTS,
        timeout: Duration::from_secs(120),
        rust_log: "info,kube=warn".to_string(),
        operator_binary: env!("CARGO_BIN_EXE_dli-stop-operator").into(),
        log_dir: work.path().to_path_buf(),
        build_dir: work.path().to_path_buf(),
    };
    let floor = backlog::build_floor(work.path())
        .await
        .expect("the client-go floor builds");
    let report = backlog::run(cp, &config, &floor)
        .await
        .expect("the backlog rounds run");
    let rendered = backlog::render(&report).join("\n");
    let round = &report.rounds[0];
    assert_eq!(round.operator.ready, REQUESTS, "{rendered}");
    assert_eq!(round.operator.dli_calls, REQUESTS, "{rendered}");
    assert_eq!(round.floor.ready, REQUESTS, "{rendered}");
    assert_eq!(round.floor.dli_calls, 0, "{rendered}");
    assert!(report.ratio > 0.0, "{rendered}");
}
