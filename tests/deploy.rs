//! The shipped manifests on a real API server: `kubectl apply -f crds/ && kubectl apply -k deploy/`
//! installs cleanly (schemas, Pod Security "restricted" without warnings), and the RBAC grants
//! the operator's ServiceAccount exactly what it needs: asked through `kubectl auth can-i`.
//!
//! `deploy/monitoring/` then applies against the Prometheus Operator's own CRDs with strict
//! validation; `tests/monitoring.rs` checks what its alerts say.
//!
//! One test on purpose: all parts install into the cluster-wide `dli-stop-operator` namespace.

use std::process::Output;

use dli_stop_dev::testenv::ControlPlane;

const OPERATOR: &str = "system:serviceaccount:dli-stop-operator:dli-stop-operator";
const JSR: &str = "jobstoprequests.dli.stop-operator.io";

async fn kubectl(cp: &ControlPlane, args: &[&str]) -> Output {
    cp.kubectl().args(args).output().await.unwrap()
}

/// Applies and returns stderr, failing on a refusal.
async fn apply(cp: &ControlPlane, args: &[&str]) -> String {
    let output = kubectl(cp, args).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "kubectl {args:?} failed: {stderr}");
    stderr
}

async fn assert_operator_can(cp: &ControlPlane, cases: &[(&[&str], bool)]) {
    let mut wrong = Vec::new();
    for (args, expected) in cases {
        if cp.can_i(OPERATOR, &[], args).await != *expected {
            wrong.push(format!("{args:?} should be {expected}"));
        }
    }
    assert!(wrong.is_empty(), "RBAC differs:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn the_manifests_install_and_grant_least_privilege() {
    let cp = ControlPlane::shared().await.unwrap();

    let crd_stderr = apply(cp, &["apply", "-f", "crds/"]).await;
    assert!(
        crd_stderr.is_empty(),
        "a user's first command prints nothing on stderr (no schema format warnings):\n{crd_stderr}"
    );
    cp.wait_crd_established(JSR, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let warnings = apply(cp, &["apply", "-k", "deploy/"]).await;
    assert!(
        warnings.is_empty(),
        "the base installs without a word on stderr (Pod Security restricted included):\n{warnings}"
    );
    let deployment = kubectl(
        cp,
        &[
            "-n",
            "dli-stop-operator",
            "get",
            "deployment/dli-stop-operator",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].args} {.spec.template.spec.terminationGracePeriodSeconds}",
        ],
    )
    .await;
    // The grace period outlasts a token fetch and a stop call at the default timeouts
    // (2 x (5s connect + 30s request)), so SIGTERM never cuts a call from its answer.
    assert_eq!(
        String::from_utf8_lossy(&deployment.stdout),
        r#"2 ["run","--leader-elect"] 90"#
    );

    let ns = ["-n", "dli-stop-operator"];
    let elsewhere = ["-n", "analytics"];
    let base: Vec<(Vec<&str>, bool)> = vec![
        // What the controller does.
        (vec!["list", JSR, "-A"], true),
        (vec!["watch", JSR, "-A"], true),
        (vec!["get", JSR, "-n", "analytics"], true),
        (vec!["delete", JSR, "-n", "analytics"], true),
        (
            vec!["update", JSR, "--subresource=status", "-n", "analytics"],
            true,
        ),
        (
            vec!["patch", JSR, "--subresource=status", "-n", "analytics"],
            true,
        ),
        (
            vec!["create", "events.events.k8s.io", "-n", "analytics"],
            true,
        ),
        (
            vec!["patch", "events.events.k8s.io", "-n", "analytics"],
            true,
        ),
        (vec!["create", "events", "-n", "analytics"], true),
        (
            [&["create", "leases.coordination.k8s.io"][..], &ns].concat(),
            true,
        ),
        (
            [
                &["update", "leases.coordination.k8s.io/dli-stop-operator"][..],
                &ns,
            ]
            .concat(),
            true,
        ),
        ([&["get", "secrets/dli-connection"][..], &ns].concat(), true),
        // What it must not do.
        (vec!["create", JSR, "-n", "analytics"], false),
        (vec!["update", JSR, "-n", "analytics"], false),
        ([&["get", "secrets/someone-elses"][..], &ns].concat(), false),
        ([&["list", "secrets"][..], &ns].concat(), false),
        (
            [&["get", "secrets/dli-prod"][..], &elsewhere].concat(),
            false,
        ),
        (
            [
                &["update", "leases.coordination.k8s.io/other-lease"][..],
                &ns,
            ]
            .concat(),
            false,
        ),
        (vec!["list", "pods", "-A"], false),
    ];
    let cases: Vec<(&[&str], bool)> = base.iter().map(|(a, e)| (a.as_slice(), *e)).collect();
    assert_operator_can(cp, &cases).await;

    install_monitoring(cp).await;

    apply(cp, &["apply", "-k", "deploy/overlays/cluster-secrets/"]).await;
    assert_operator_can(
        cp,
        &[
            (&["get", "secrets/dli-prod", "-n", "analytics"], true),
            (&["list", "secrets", "-n", "analytics"], false),
            (&["watch", "secrets", "-A"], false),
        ],
    )
    .await;
}

/// Installs the Prometheus Operator's CRDs, then `deploy/monitoring/` with unknown fields
/// refused.
async fn install_monitoring(cp: &ControlPlane) {
    cp.install_monitoring_crds().await.unwrap();
    let warnings = apply(
        cp,
        &["apply", "--validate=strict", "-k", "deploy/monitoring/"],
    )
    .await;
    assert!(
        !warnings.contains("Warning"),
        "deploy/monitoring/ applies without warnings:\n{warnings}"
    );
}
