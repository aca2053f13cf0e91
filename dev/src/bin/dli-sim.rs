//! `dli-sim`: runs the DLI stand-in as a process, for `make demo` and chaos runs.
//!
//! Prints the endpoint on stdout (logs go to stderr) and serves until SIGTERM or Ctrl-C.
//! Drive it through the unauthenticated `/_sim/` admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use dli_stop_dev::sim::{AnswerShape, DliSim, SimConfig};
use dli_stop_operator::error_chain::ErrorChain;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A DLI stand-in server for tests and demos (loopback only)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Listen on a non-loopback address although the admin API is unauthenticated.
    #[arg(long)]
    allow_remote: bool,
    /// Serve HTTPS with a certificate from a freshly generated CA.
    #[arg(long)]
    tls: bool,
    /// Where to write the CA certificate (PEM) with --tls.
    #[arg(long, requires = "tls")]
    ca_out: Option<PathBuf>,
    /// The project id DLI answers for (default: the stand-in's default).
    #[arg(long)]
    project_id: Option<String>,
    /// An access key to accept, with --secret-key.
    #[arg(long, env = "DLI_ACCESS_KEY", requires = "secret_key")]
    access_key: Option<String>,
    /// The secret key of --access-key.
    #[arg(
        long,
        env = "DLI_SECRET_KEY",
        hide_env_values = true,
        requires = "access_key"
    )]
    secret_key: Option<String>,
    /// A static X-Auth-Token to accept (repeatable).
    #[arg(long = "static-token", hide_env_values = true)]
    static_tokens: Vec<String>,
    /// Running jobs to create: ids and ranges, e.g. `100-199,250`.
    #[arg(long, value_parser = parse_job_ids)]
    jobs: Option<JobIds>,
    /// Time from job_canceling to the final status.
    #[arg(long, default_value_t = 2000)]
    stop_delay_ms: u64,
    /// Time spent in job_savepointing when a savepoint is asked for.
    #[arg(long, default_value_t = 2000)]
    savepoint_delay_ms: u64,
    /// Layout of the batch-stop answer.
    #[arg(long, value_enum, default_value_t = Shape::PerJob)]
    answer_shape: Shape,
    /// Serve the DLI and IAM APIs under this path, as written in a URL (e.g. `/dli%20gw`).
    #[arg(long, default_value = "")]
    path_prefix: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shape {
    PerJob,
    Single,
    Object,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct JobIds(Vec<i64>);

/// Parses `100-199,250` into the ids it names.
fn parse_job_ids(spec: &str) -> Result<JobIds, String> {
    let mut ids = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let number = |s: &str| {
            s.trim()
                .parse::<i64>()
                .ok()
                .filter(|id| *id >= 1)
                .ok_or_else(|| format!("`{s}` is not a job id (a positive integer)"))
        };
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                if first > last {
                    return Err(format!("the range `{part}` is empty"));
                }
                ids.extend(first..=last);
            }
            None => ids.push(number(part)?),
        }
    }
    if ids.is_empty() {
        return Err("no job ids given".to_owned());
    }
    Ok(JobIds(ids))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if !args.listen.ip().is_loopback() {
        if !args.allow_remote {
            return Err(format!(
                "refusing to listen on {}: the admin API is unauthenticated; pass --allow-remote to insist",
                args.listen
            ));
        }
        tracing::warn!(listen = %args.listen, "listening beyond loopback with an unauthenticated admin API");
    }
    let defaults = SimConfig::default();
    let config = SimConfig {
        project_id: args.project_id.unwrap_or(defaults.project_id.clone()),
        stop_delay: Duration::from_millis(args.stop_delay_ms),
        savepoint_delay: Duration::from_millis(args.savepoint_delay_ms),
        tls: args.tls,
        path_prefix: args.path_prefix.clone(),
        ..defaults
    };
    let sim = DliSim::start_on(config, args.listen)
        .await
        .map_err(|e| format!("cannot start on {}: {}", args.listen, ErrorChain(&e)))?;
    if let (Some(ak), Some(sk)) = (&args.access_key, &args.secret_key) {
        sim.add_ak_sk(ak, sk);
    }
    for token in &args.static_tokens {
        sim.add_static_token(token);
    }
    if let Some(JobIds(ids)) = &args.jobs {
        sim.add_running_jobs(ids);
    }
    sim.set_answer_shape(match args.answer_shape {
        Shape::PerJob => AnswerShape::PerJob,
        Shape::Single => AnswerShape::SingleElement,
        Shape::Object => AnswerShape::Object,
    });
    if let (Some(path), Some(pem)) = (&args.ca_out, sim.ca_pem()) {
        std::fs::write(path, pem)
            .map_err(|e| format!("cannot write the CA to {}: {e}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote the CA certificate");
    }
    println!("{}", sim.endpoint());
    tracing::info!(
        endpoint = %sim.endpoint(),
        project_id = %sim.project_id(),
        jobs = args.jobs.as_ref().map_or(0, |j| j.0.len()),
        "DLI stand-in ready"
    );
    wait_for_signal().await?;
    tracing::info!("stopping");
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> Result<(), String> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.map_err(|e| format!("cannot listen for Ctrl-C: {e}")),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_accept_ranges_and_single_ids() {
        assert_eq!(
            parse_job_ids("100-102, 7"),
            Ok(JobIds(vec![100, 101, 102, 7]))
        );
        assert_eq!(parse_job_ids("5"), Ok(JobIds(vec![5])));
    }

    #[test]
    fn job_ids_reject_nonsense() {
        assert!(parse_job_ids("").is_err());
        assert!(parse_job_ids("9-3").is_err());
        assert!(parse_job_ids("0").is_err());
        assert!(parse_job_ids("a-b").is_err());
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
