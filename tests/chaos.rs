//! A short chaos round in the test suite: 30 requests, 3 SIGKILLs (some mid-call) and random
//! DLI faults; fails on any broken promise of the once-per-generation protocol.

use std::time::Duration;

use dli_stop_dev::harness::{chaos, world};
use dli_stop_dev::testenv::ControlPlane;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_operators_never_stop_a_generation_twice() {
    dli_stop_operator::run::install_crypto_provider();
    let cp = ControlPlane::shared().await.expect("control plane starts");
    world::install_crd(cp).await.expect("CRD installs");
    let logs = tempfile::tempdir().expect("temp dir");
    let config = chaos::ChaosConfig {
        requests: 30,
        kills: 3,
        window: Duration::from_secs(12),
        replicas: 1,
        seed: 20261128,
        fault_probability: 0.2,
        hold_probability: 0.67,
        respec_probability: 0.2,
        iam: true,
        outages: 1,
        settle_timeout: Duration::from_secs(75),
        operator_binary: env!("CARGO_BIN_EXE_dli-stop-operator").into(),
        log_dir: logs.path().to_path_buf(),
        rust_log: "info,kube=warn".to_string(),
    };
    let report = chaos::run(cp, config).await.expect("the chaos round runs");
    let rendered = chaos::render(&report);
    eprintln!("{rendered}");
    assert_eq!(report.kills, 3, "{rendered}");
    assert!(
        report.respecs > 0,
        "the round changes some specs: {rendered}"
    );
    assert!(
        report.violations.is_empty(),
        "{rendered}\nlast operator log lines:\n{}",
        last_lines(&report.logs[0], 40)
    );
    assert_eq!(report.phases.values().sum::<usize>(), 30, "{rendered}");
    // A process SIGKILLed while the API server is away takes the answers it holds with it;
    // one that lives on writes every answer it got.
    assert!(
        report.answers_lost.by_a_live_process.is_empty(),
        "answers were lost: {rendered}"
    );
    // Safety alone is cheap: ending every request Unknown breaks no promise above. Most
    // requests must succeed; the faults that leave a call's outcome unknown are a minority.
    let count = |phase: &str| report.phases.get(phase).copied().unwrap_or(0);
    assert!(
        count("Succeeded") >= 20 && count("Unknown") <= 8,
        "too few requests succeeded: {rendered}"
    );
}

fn last_lines(path: &std::path::Path, count: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}
