//! `make bench`: measures the operator on a fresh local control plane with the DLI stand-in at
//! zero latency. Prints a table and writes JSON under `target/bench/`; exits non-zero when a
//! figure breaks a promise (e.g. DLI calls != requests).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dli_stop_dev::harness::{bench, process, startup};
use dli_stop_operator::error_chain::ErrorChain;

/// Benchmarks the operator binary against a private control plane and the DLI stand-in.
#[derive(Debug, Parser)]
#[command(name = "dli-bench")]
struct Args {
    /// Requests of the main run (and of the API server floor).
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// The operator's --concurrency in the main run; also the floor's concurrency.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// --concurrency values of the throughput sweep (`--sweep` with no value: no sweep).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "1,4,16,64")]
    sweep: Vec<u16>,
    /// Rounds of floor / floor with events / operator runs; the ratios printed are medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Requests of each sweep run.
    #[arg(long, default_value_t = 500)]
    sweep_requests: usize,
    /// Times the local etcd + kube-apiserver start this often; the last one is measured on.
    #[arg(long, default_value_t = 5)]
    control_plane_starts: usize,
    /// Finished requests in the cache for the memory-at-rest figure (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    rest_requests: usize,
    /// Requests of each backlog run (created before the operator, or the client-go floor,
    /// starts to drain them; 0 skips the backlog runs).
    #[arg(long, default_value_t = 1000)]
    backlog_requests: usize,
    /// Longest wait for one run, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// RUST_LOG of the operator (its log is part of what it costs).
    #[arg(long, default_value = "info,kube=warn")]
    operator_log: String,
    /// The operator binary (default: beside this one).
    #[arg(long)]
    operator_bin: Option<PathBuf>,
    /// Where the JSON report and the operator logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    startup::run_main("dli-bench", bench_main(Args::parse())).await
}

async fn bench_main(args: Args) -> Result<bool, String> {
    let log_dir = args.out.join("logs");
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    let config = bench::BenchConfig {
        requests: args.requests,
        concurrency: args.concurrency,
        rounds: args.rounds,
        sweep: args.sweep,
        sweep_requests: args.sweep_requests,
        rest_requests: args.rest_requests,
        backlog_requests: args.backlog_requests,
        timeout: Duration::from_secs(args.timeout),
        rust_log: args.operator_log,
        operator_binary: args
            .operator_bin
            .unwrap_or_else(process::default_operator_binary),
        log_dir,
        build_dir: args.out.join("bin"),
    };
    eprintln!(
        "[bench] starting etcd and kube-apiserver ({} timed starts)",
        args.control_plane_starts.max(1)
    );
    let (cp, starts) = startup::start_control_plane(args.control_plane_starts)
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    let report = bench::run(&cp, &starts, config)
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    print!("{}", bench::render(&report));
    let path = bench::write_json(&report, &args.out).map_err(|e| ErrorChain(&e).to_string())?;
    println!("report: {}", path.display());
    Ok(report.problems.is_empty())
}
