//! `dli-stop-operator check` as users run it: the real binary, `DLI_*` variables, the stand-in.

use std::process::Output;

use dli_stop_dev::sim::{DliSim, SimConfig};
use jiff::SignedDuration;

const AK: &str = "CHECKACCESSKEY";
const SK: &str = "check-secret-key";

async fn sim_with(config: SimConfig) -> DliSim {
    let sim = DliSim::start(config).await.expect("stand-in starts");
    sim.add_ak_sk(AK, SK);
    sim.add_running_jobs(&[128]);
    sim
}

async fn sim() -> DliSim {
    sim_with(SimConfig::default()).await
}

/// Runs `check` with exactly these `DLI_*` variables (none inherited from the test's own
/// environment).
async fn check(vars: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dli-stop-operator"));
    command.arg("check");
    for (name, _) in std::env::vars() {
        if name.starts_with("DLI_") {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().await.expect("the binary runs");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn base(sim: &DliSim) -> Vec<(&'static str, String)> {
    vec![
        ("DLI_ENDPOINT", sim.endpoint()),
        ("DLI_PROJECT_ID", sim.project_id()),
    ]
}

fn ak_sk(sim: &DliSim, secret_key: &str) -> Vec<(&'static str, String)> {
    let mut vars = base(sim);
    vars.push(("DLI_ACCESS_KEY", AK.into()));
    vars.push(("DLI_SECRET_KEY", secret_key.into()));
    vars
}

async fn run(vars: &[(&'static str, String)]) -> (bool, String, String) {
    let borrowed: Vec<(&str, &str)> = vars
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    check(&borrowed).await
}

#[tokio::test]
async fn ak_sk_succeeds_and_prints_what_it_used() {
    let sim = sim().await;
    let (ok, stdout, stderr) = run(&ak_sk(&sim, SK)).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("endpoint:   {}", sim.endpoint())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("project:    {}", sim.project_id())),
        "{stdout}"
    );
    assert!(
        stdout.contains("auth:       AK/SK signature (access key CHEC...)"),
        "{stdout}"
    );
    assert!(stdout.contains("request id: "), "{stdout}");
    // The count comes from `job_list.total_count`, the layout DLI documents.
    assert!(
        stdout.contains("jobs:       1 Flink job(s) visible"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
    assert!(!stdout.contains(SK) && !stderr.contains(SK));
    assert_eq!(sim.list_calls(), 1);
    assert_eq!(sim.total_stop_calls(), 0, "check must never stop anything");
}

#[tokio::test]
async fn temporary_ak_sk_succeeds() {
    let sim = sim().await;
    sim.add_temporary_ak_sk("TEMPAK", "TEMPSK", "TEMPTOKEN");
    let mut vars = base(&sim);
    vars.push(("DLI_ACCESS_KEY", "TEMPAK".into()));
    vars.push(("DLI_SECRET_KEY", "TEMPSK".into()));
    vars.push(("DLI_SECURITY_TOKEN", "TEMPTOKEN".into()));
    let (ok, stdout, stderr) = run(&vars).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("temporary AK/SK"), "{stdout}");
    assert!(!stdout.contains("TEMPTOKEN") && !stderr.contains("TEMPTOKEN"));
}

#[tokio::test]
async fn iam_password_succeeds() {
    let sim = sim().await;
    sim.add_iam_user("acme", "operator", "pa55word");
    let mut vars = base(&sim);
    vars.push(("DLI_IAM_ENDPOINT", sim.endpoint()));
    vars.push(("DLI_USERNAME", "operator".into()));
    vars.push(("DLI_PASSWORD", "pa55word".into()));
    vars.push(("DLI_DOMAIN_NAME", "acme".into()));
    let (ok, stdout, stderr) = run(&vars).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("IAM password"), "{stdout}");
    assert!(!stdout.contains("pa55word") && !stderr.contains("pa55word"));
    assert_eq!(sim.token_issues(), 1);
}

#[tokio::test]
async fn a_wrong_secret_key_is_diagnosed_as_a_key_mismatch() {
    let sim = sim().await;
    let (ok, stdout, stderr) = run(&ak_sk(&sim, "not-the-key")).await;
    assert!(!ok);
    assert!(
        stdout.contains("FAILED:     the API gateway rejected the AK/SK signature"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Both sides built the same canonical request"),
        "{stdout}"
    );
    assert!(stderr.contains("APIGW.0301"), "{stderr}");
    assert!(!stdout.contains("not-the-key") && !stderr.contains("not-the-key"));
}

#[tokio::test]
async fn a_skewed_clock_is_diagnosed() {
    let sim = sim().await;
    sim.set_clock_skew(SignedDuration::from_mins(45));
    let (ok, stdout, stderr) = run(&ak_sk(&sim, SK)).await;
    assert!(!ok);
    assert!(
        stdout.contains("FAILED:     this machine's clock is too far from the API gateway's"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("min (this machine is behind)"), "{stdout}");
}

#[tokio::test]
async fn a_wrong_project_is_diagnosed() {
    let sim = sim().await;
    let mut vars = ak_sk(&sim, SK);
    vars[1].1 = "ffffffffffffffffffffffffffffffff".into();
    let (ok, stdout, stderr) = run(&vars).await;
    assert!(!ok);
    assert!(
        stdout.contains("FAILED:     DLI does not know project ffffffffffffffffffffffffffffffff"),
        "{stdout}{stderr}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_suggests_a_ca_bundle_and_the_bundle_fixes_it() {
    let sim = sim_with(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .await;
    let (ok, stdout, _) = run(&ak_sk(&sim, SK)).await;
    assert!(!ok);
    assert!(stdout.contains("is not trusted"), "{stdout}");
    assert!(stdout.contains("caBundle"), "{stdout}");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, sim.ca_pem().expect("TLS stand-in has a CA")).expect("write CA");
    let mut vars = ak_sk(&sim, SK);
    vars.push(("DLI_CA_BUNDLE", path.display().to_string()));
    let (ok, stdout, stderr) = run(&vars).await;
    assert!(ok, "{stdout}{stderr}");
}

#[tokio::test]
async fn missing_variables_are_named() {
    let (ok, stdout, stderr) = check(&[("DLI_ENDPOINT", "http://127.0.0.1:1")]).await;
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr.trim(),
        "error: the DLI_* variables: variable `DLI_PROJECT_ID` is missing"
    );
}

#[tokio::test]
async fn a_refused_connection_is_diagnosed() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address").port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let (ok, stdout, _) = check(&[
        ("DLI_ENDPOINT", &endpoint),
        ("DLI_PROJECT_ID", "abc"),
        ("DLI_TOKEN", "t"),
    ])
    .await;
    assert!(!ok);
    assert!(
        stdout.contains("FAILED:     cannot open a connection to"),
        "{stdout}"
    );
}

/// `check --secret NAMESPACE/NAME` against a real Kubernetes API.
mod from_a_secret {
    use std::collections::BTreeMap;

    use dli_stop_dev::testenv::ControlPlane;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, ObjectMeta, PostParams};

    use super::*;

    async fn check_secret(cp: &ControlPlane, reference: &str) -> (bool, String, String) {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dli-stop-operator"));
        command
            .args(["check", "--secret", reference])
            .env("KUBECONFIG", cp.kubeconfig_path());
        for (name, _) in std::env::vars() {
            if name.starts_with("DLI_") {
                command.env_remove(name);
            }
        }
        let output = command.output().await.expect("the binary runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    async fn create_secret(
        cp: &ControlPlane,
        namespace: &str,
        name: &str,
        data: &[(&str, String)],
    ) {
        let secrets: Api<Secret> = Api::namespaced(cp.client(), namespace);
        let string_data: BTreeMap<String, String> = data
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        secrets
            .create(
                &PostParams::default(),
                &Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        ..ObjectMeta::default()
                    },
                    string_data: Some(string_data),
                    ..Secret::default()
                },
            )
            .await
            .expect("create Secret");
    }

    #[tokio::test]
    async fn a_secret_connection_is_checked_and_its_problems_named() {
        let cp = ControlPlane::shared().await.expect("control plane");
        let namespace = cp.create_namespace("check").await.expect("namespace");
        let sim = sim().await;
        let good = [
            ("endpoint", sim.endpoint()),
            ("projectId", sim.project_id()),
            ("accessKey", AK.to_owned()),
            ("secretKey", SK.to_owned()),
        ];
        create_secret(cp, &namespace, "dli-good", &good).await;
        create_secret(
            cp,
            &namespace,
            "dli-no-project",
            &[good[0].clone(), good[2].clone(), good[3].clone()],
        )
        .await;

        let (ok, stdout, stderr) = check_secret(cp, &format!("{namespace}/dli-good")).await;
        assert!(ok, "{stdout}{stderr}");
        assert!(stdout.trim_end().ends_with("OK"), "{stdout}");

        let (ok, _, stderr) = check_secret(cp, &format!("{namespace}/dli-no-project")).await;
        assert!(!ok);
        assert_eq!(
            stderr.trim(),
            format!("error: Secret {namespace}/dli-no-project: Secret key `projectId` is missing")
        );

        let (ok, _, stderr) = check_secret(cp, &format!("{namespace}/absent")).await;
        assert!(!ok);
        assert_eq!(
            stderr.trim(),
            format!("error: Secret {namespace}/absent does not exist")
        );
    }
}
