//! What the `dli-bench` and `dli-chaos` mains share: a control plane with the CRD, and how a
//! run's outcome becomes the process's exit code.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::error::HarnessError;
use super::world;
use crate::testenv::ControlPlane;

/// Starts etcd and kube-apiserver `starts` times (at least once), timing each start, and keeps
/// the last control plane, with the CRD installed, for the measurements.
pub async fn start_control_plane(
    starts: usize,
) -> Result<(ControlPlane, Vec<Duration>), HarnessError> {
    let mut times = Vec::new();
    loop {
        let began = Instant::now();
        let cp = ControlPlane::start().await?;
        times.push(began.elapsed());
        if times.len() >= starts.max(1) {
            world::install_crd(&cp).await?;
            return Ok((cp, times));
        }
    }
}

/// Runs a harness main: installs the TLS crypto provider first, then exits 0 when `main` kept
/// every promise, 1 when it found a broken one, and 1 with the message when it could not run.
pub async fn run_main<F>(program: &str, main: F) -> ExitCode
where
    F: Future<Output = Result<bool, String>>,
{
    dli_stop_operator::run::install_crypto_provider();
    match main.await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("{program} failed: {message}");
            ExitCode::FAILURE
        }
    }
}
