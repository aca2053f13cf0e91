//! `make demo`: the whole operator on a laptop with no cluster and no cloud account. Starts a
//! private kube-apiserver + etcd, the DLI stand-in and the operator, applies the examples,
//! waits for them and shows what users see; then keeps everything up to explore.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dli_stop_dev::sim::{DliSim, SimConfig};
use dli_stop_dev::testenv::ControlPlane;
use dli_stop_operator::error_chain::ErrorChain;

const ACCESS_KEY: &str = "DEMOACCESSKEY";
const SECRET_KEY: &str = "demo-secret-key";
const OPERATOR_NAMESPACE: &str = "dli-stop-operator";
const NAMESPACE: &str = "analytics";
const RUNNING_JOBS: [i64; 8] = [128, 137, 201, 202, 203, 301, 401, 402];

/// Runs the operator against a local control plane and the DLI stand-in.
#[derive(Debug, Parser)]
#[command(name = "dli-demo")]
struct Args {
    /// Stop after showing the results instead of waiting for Ctrl-C.
    #[arg(long)]
    once: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match demo(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo failed: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(args: Args) -> Result<(), String> {
    dli_stop_operator::run::install_crypto_provider();
    // crds/ and examples/ live in the repository root, one level above this crate.
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    say("starting etcd and kube-apiserver");
    let cp = ControlPlane::start()
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    say("installing the CRD from crds/");
    kubectl(&cp, &["apply", "-f", &path(&repo.join("crds"))], None).await?;
    kubectl(
        &cp,
        &[
            "wait",
            "--for=condition=Established",
            "crd/jobstoprequests.dli.stop-operator.io",
            "--timeout=60s",
        ],
        None,
    )
    .await?;

    say("starting the DLI stand-in");
    let sim = DliSim::start(SimConfig {
        stop_delay: Duration::from_secs(3),
        savepoint_delay: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await
    .map_err(|e| format!("the DLI stand-in cannot start: {}", ErrorChain(&e)))?;
    sim.add_ak_sk(ACCESS_KEY, SECRET_KEY);
    sim.add_running_jobs(&RUNNING_JOBS);

    for namespace in [OPERATOR_NAMESPACE, NAMESPACE] {
        kubectl(&cp, &["create", "namespace", namespace], None).await?;
    }
    // The team's own connection may stop job 301 only (examples/jobstoprequest-connectionref.yaml).
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: dli-prod\n  namespace: {NAMESPACE}\nstringData:\n  \
         endpoint: {}\n  projectId: {}\n  accessKey: {ACCESS_KEY}\n  secretKey: {SECRET_KEY}\n  \
         allowedJobIds: \"301\"\n",
        sim.endpoint(),
        sim.project_id()
    );
    kubectl(&cp, &["apply", "-f", "-"], Some(&secret)).await?;

    say("starting the operator");
    let operator_binary = sibling_binary("dli-stop-operator")?;
    let mut operator = tokio::process::Command::new(&operator_binary)
        .args([
            "run",
            "--operator-namespace",
            OPERATOR_NAMESPACE,
            "--metrics-addr",
            "127.0.0.1:0",
            "--confirm-poll-interval",
            "2s",
            // The examples use the default connection from their namespace...
            "--default-connection-namespaces",
            NAMESPACE,
            // ...and a Secret of their own that points at the stand-in on 127.0.0.1.
            "--allow-private-endpoints",
        ])
        .env("KUBECONFIG", cp.kubeconfig_path())
        .env("DLI_ENDPOINT", sim.endpoint())
        .env("DLI_PROJECT_ID", sim.project_id())
        .env("DLI_ACCESS_KEY", ACCESS_KEY)
        .env("DLI_SECRET_KEY", SECRET_KEY)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", operator_binary.display()))?;

    say("applying the example requests from examples/");
    for example in [
        "jobstoprequest.yaml",
        "jobstoprequest-savepoint.yaml",
        "jobstoprequest-connectionref.yaml",
        "jobstoprequest-ttl.yaml",
    ] {
        kubectl(
            &cp,
            &[
                "apply",
                "-n",
                NAMESPACE,
                "-f",
                &path(&repo.join("examples").join(example)),
            ],
            None,
        )
        .await?;
    }
    say("waiting for every request to be Ready (kubectl wait --for=condition=Ready jsr --all)");
    kubectl(
        &cp,
        &[
            "wait",
            "-n",
            NAMESPACE,
            "--for=condition=Ready",
            "jsr",
            "--all",
            "--timeout=120s",
        ],
        None,
    )
    .await?;

    println!("\n$ kubectl get jsr -n {NAMESPACE} -o wide");
    print!(
        "{}",
        kubectl(&cp, &["get", "jsr", "-n", NAMESPACE, "-o", "wide"], None).await?
    );
    println!("\n$ kubectl get jsr stop-with-savepoint -n {NAMESPACE} -o jsonpath='{{.status}}'");
    let status = kubectl(
        &cp,
        &[
            "get",
            "jsr",
            "stop-with-savepoint",
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.status}",
        ],
        None,
    )
    .await?;
    let pretty = serde_json::from_str::<serde_json::Value>(&status)
        .and_then(|v| serde_saphyr::to_string(&v).map_err(serde::ser::Error::custom))
        .unwrap_or(status);
    println!("{pretty}");
    println!(
        "DLI stop calls received by the stand-in: {} (one per request)",
        sim.total_stop_calls()
    );

    if args.once {
        let _ = operator.kill().await;
        return Ok(());
    }
    println!("\nEverything keeps running so you can explore:");
    println!("  export KUBECONFIG={}", cp.kubeconfig_path().display());
    println!("  alias kubectl={}", cp.kubectl_path().display());
    println!("  kubectl get jsr -A; kubectl describe jsr -n {NAMESPACE} nightly-maintenance");
    println!(
        "  DLI stand-in: {} (project {})",
        sim.endpoint(),
        sim.project_id()
    );
    println!("Press Ctrl-C to stop and clean up.");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        exit = operator.wait() => println!("the operator exited: {exit:?}"),
    }
    let _ = operator.kill().await;
    Ok(())
}

fn say(message: &str) {
    println!("==> {message}");
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

/// The operator binary built next to this one (`cargo build --bins`).
fn sibling_binary(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let candidate = me.with_file_name(name);
    if candidate.exists() {
        Ok(candidate)
    } else {
        Err(format!(
            "{} is missing: build it first with `cargo build --workspace --bins` (make demo does)",
            candidate.display()
        ))
    }
}

async fn kubectl(cp: &ControlPlane, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    cp.run_kubectl_with_input(args, stdin)
        .await
        .map_err(|e| e.to_string())
}
