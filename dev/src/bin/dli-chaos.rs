//! `make chaos`: SIGKILLs the operator at random moments while the DLI stand-in injects faults,
//! then checks the once-per-generation promise. Bounded in time and count; exits non-zero on
//! any violation, printing the offending requests and the seed to replay them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dli_stop_dev::harness::{chaos, process, startup};
use dli_stop_operator::error_chain::ErrorChain;

/// Breaks the operator on purpose on a private control plane and checks what it promised.
#[derive(Debug, Parser)]
#[command(name = "dli-chaos")]
struct Args {
    /// JobStopRequests to create (each with its own DLI jobs).
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// SIGKILLs of an operator process.
    #[arg(long, default_value_t = 12)]
    kills: usize,
    /// Seconds during which requests are created (first 80%) and kills happen.
    #[arg(long, default_value_t = 60)]
    window: u64,
    /// Operator processes; 2 or more run with --leader-elect.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Seed of every random choice; print by a failing run to replay it (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Chance that a DLI call meets a random 429/500/502/503, cut connection or latency.
    #[arg(long, default_value_t = 0.2)]
    fault_probability: f64,
    /// Chance that a kill happens while a stop call is held open.
    #[arg(long, default_value_t = 0.4)]
    hold_probability: f64,
    /// Chance that a request's spec changes (fresh job ids, a new generation) soon after it
    /// is created.
    #[arg(long, default_value_t = 0.1)]
    respec_probability: f64,
    /// Operators log in with an IAM password, and half the kills leave IAM slow or down for
    /// the token fetches that follow.
    #[arg(long)]
    iam: bool,
    /// Times the API server goes away (5 s) just as DLI answers a stop call.
    #[arg(long, default_value_t = 4)]
    outages: usize,
    /// Seconds to wait, after the window, for every request to finish.
    #[arg(long, default_value_t = 180)]
    settle_timeout: u64,
    /// The operator binary (default: beside this one).
    #[arg(long)]
    operator_bin: Option<PathBuf>,
    /// Where operator logs and the JSON report go.
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    startup::run_main("dli-chaos", chaos_main(Args::parse())).await
}

async fn chaos_main(args: Args) -> Result<bool, String> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let config = chaos::ChaosConfig {
        requests: args.requests,
        kills: args.kills,
        window: Duration::from_secs(args.window),
        replicas: args.replicas.max(1),
        seed,
        fault_probability: args.fault_probability,
        hold_probability: args.hold_probability,
        respec_probability: args.respec_probability,
        iam: args.iam,
        outages: args.outages,
        settle_timeout: Duration::from_secs(args.settle_timeout),
        operator_binary: args
            .operator_bin
            .unwrap_or_else(process::default_operator_binary),
        log_dir: args.out.join("logs"),
        rust_log: "info,kube=warn".to_string(),
    };
    eprintln!("[chaos] starting etcd and kube-apiserver");
    let (cp, _) = startup::start_control_plane(1)
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    let report = chaos::run(&cp, config)
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    print!("{}", chaos::render(&report));
    let path = args.out.join("latest.json");
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("report: {}", path.display());
    Ok(report.violations.is_empty())
}
