// Shared by several test binaries (`#[path]`); each uses its own part of it.
#![allow(dead_code)]
//! The real consumers of a request's status: Argo CD's Lua sandbox, kstatus and Flux, as the
//! Go programs of `tests/gitops-consumers` run them. Each is built on first use, once per test
//! binary, with the Go toolchain (pinned modules, `go.sum` checked) into the cargo target
//! directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use dli_stop_dev::testenv::{go_build_command, go_build_outcome};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::OnceCell;

/// The consumer programs, each built on first use.
static ARGOCD_HEALTH: OnceCell<PathBuf> = OnceCell::const_new();
static KSTATUS: OnceCell<PathBuf> = OnceCell::const_new();
static FLUX_HEALTH: OnceCell<PathBuf> = OnceCell::const_new();

/// What a consumer says about an object.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub status: String,
    pub message: String,
}

/// What Flux says, and whether kstatus or the CEL health check said it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct FluxVerdict {
    pub status: String,
    pub message: String,
    pub reader: String,
}

/// The shipped Argo CD health check.
pub fn health_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd/health.lua")
}

/// Builds `tests/gitops-consumers/cmd/<program>` into the cargo target directory.
async fn build(program: &str) -> PathBuf {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("gitops-consumers")
        .join(env!("CARGO_CRATE_NAME"));
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gitops-consumers");
    let command = go_build_command(&module, &[&format!("./cmd/{program}")], &out_dir);
    let output = Command::from(command).output().await;
    go_build_outcome(&module, output).expect("the consumer program builds");
    out_dir.join(program)
}

/// Runs the program built once in `cell` with `args` and `object` (JSON) on stdin, and returns
/// what it printed.
async fn run(cell: &OnceCell<PathBuf>, program: &str, args: &[&Path], object: &str) -> String {
    let path = cell.get_or_init(|| build(program)).await;
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", path.display()));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(object.as_bytes())
        .await
        .expect("the object is written");
    drop(stdin);
    let output = child.wait_with_output().await.expect("the program ends");
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn parse<T: serde::de::DeserializeOwned>(program: &str, printed: &str) -> T {
    serde_json::from_str(printed).unwrap_or_else(|e| panic!("{program} printed {printed}: {e}"))
}

/// The health Argo CD shows for `object` with `script` as the kind's health check; `None` when
/// the script returns nothing (Argo CD then falls back to its built-in checks).
pub async fn argocd_health_with(script: &Path, object: &str) -> Option<Verdict> {
    parse(
        "argocd-health",
        &run(&ARGOCD_HEALTH, "argocd-health", &[script], object).await,
    )
}

/// The health Argo CD shows for `object` with the shipped health check.
pub async fn argocd_health(object: &str) -> Verdict {
    argocd_health_with(&health_script(), object)
        .await
        .expect("the health check returns a table")
}

/// `status.Compute` of kstatus (`sigs.k8s.io/cli-utils`).
pub async fn kstatus(object: &str) -> Verdict {
    parse("kstatus", &run(&KSTATUS, "kstatus", &[], object).await)
}

/// What Flux's kustomize-controller sees: its kstatus, or with `health_check` (one
/// `spec.healthCheckExprs` entry of a Kustomization) its CEL evaluator.
pub async fn flux(object: &str, health_check: Option<&serde_json::Value>) -> FluxVerdict {
    let Some(check) = health_check else {
        return parse(
            "flux-health",
            &run(&FLUX_HEALTH, "flux-health", &[], object).await,
        );
    };
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), check.to_string()).expect("the health check is written");
    parse(
        "flux-health",
        &run(&FLUX_HEALTH, "flux-health", &[file.path()], object).await,
    )
}
