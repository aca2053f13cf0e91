//! The bench report for a terminal and as JSON.

use std::path::PathBuf;

use super::BenchReport;
use crate::harness::HarnessError;

/// The report as a table for a terminal.
pub fn render(report: &BenchReport) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "{:<26} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "run",
        "conc",
        "reqs",
        "wall s",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "DLI",
        "cpu s",
        "hwm MiB"
    ));
    let runs = std::iter::once(("operator (main)", &report.main))
        .chain(report.sweep.iter().map(|run| ("operator (sweep)", run)));
    for (label, run) in runs {
        line(format!(
            "{:<26} {:>6} {:>6} {:>8.2} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8} {:>8} {:>8}",
            label,
            run.concurrency,
            run.requests,
            run.wall_seconds,
            run.throughput_per_second,
            run.latency.p50_ms,
            run.latency.p95_ms,
            run.latency.p99_ms,
            run.dli_calls,
            run.usage
                .map_or("-".to_string(), |u| format!("{:.2}", u.cpu_seconds)),
            run.usage
                .map_or("-".to_string(), |u| format!("{:.1}", u.peak_rss_mib)),
        ));
    }
    for (label, floor) in [
        ("API server floor", &report.floor),
        ("floor + 1 event/request", &report.floor_with_events),
    ] {
        line(format!(
            "{:<26} {:>6} {:>6} {:>8.2} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8} {:>8} {:>8}",
            label,
            floor.concurrency,
            floor.requests,
            floor.wall_seconds,
            floor.throughput_per_second,
            floor.latency.p50_ms,
            floor.latency.p95_ms,
            floor.latency.p99_ms,
            "-",
            "-",
            "-"
        ));
    }
    for (index, round) in report.rounds.iter().enumerate() {
        line(format!(
            "round {}: operator {:.1}, floor {:.1}, floor + events {:.1} req/s; operator/floor {:.2}, operator/(floor + events) {:.2}",
            index + 1,
            round.operator_per_second,
            round.floor_per_second,
            round.floor_with_events_per_second,
            round.ratio,
            round.ratio_with_events
        ));
    }
    line(format!(
        "operator / floor throughput: {:.2} (median of {} round(s); the table shows that round)",
        report.ratio,
        report.rounds.len()
    ));
    line(format!(
        "operator / (floor + events) throughput: {:.2} (median)",
        report.ratio_with_events
    ));
    line(format!(
        "load average (1m 5m 15m): {} at start, {} at end",
        report.load_average[0], report.load_average[1]
    ));
    if let Some(cpu) = report.main.cpu_ms_per_request {
        line(format!("operator CPU per request: {cpu:.2} ms"));
    }
    for (what, startup) in [
        ("operator (spawn to /readyz)", &report.operator_startup),
        ("etcd + kube-apiserver", &report.control_plane_startup),
    ] {
        line(format!(
            "start-up of {what}: median {:.0} ms, max {:.0} ms ({} start(s))",
            startup.p50_ms, startup.max_ms, startup.count
        ));
    }
    let cpu: Vec<String> = report
        .main
        .cpu_seconds_by_process
        .iter()
        .map(|(name, seconds)| format!("{name} {seconds:.2}"))
        .collect();
    line(format!(
        "CPU seconds during the main run: {}",
        cpu.join(", ")
    ));
    if let Some(mean) = report.main.batch_stop_mean_ms {
        line(format!("DLI batch stop round trip: mean {mean:.1} ms"));
    }
    if let Some(mean) = report.main.reconcile_mean_ms {
        line(format!(
            "reconciles: {:.0} ({:.2} per request), mean {mean:.1} ms",
            report.main.reconciles.unwrap_or(0.0),
            report.main.reconciles.unwrap_or(0.0) / report.main.requests.max(1) as f64
        ));
    }
    line("API server calls per request (main run, harness create and watch included):".to_string());
    for call in &report.main.api_calls {
        let what = if call.subresource.is_empty() {
            call.resource.clone()
        } else {
            format!("{}/{}", call.resource, call.subresource)
        };
        line(format!(
            "  {:<8} {:<30} {:>8.3}  mean {}",
            call.verb,
            what,
            call.per_request,
            call.mean_ms
                .map_or("-".to_string(), |ms| format!("{ms:.1} ms"))
        ));
    }
    if let Some(rest) = &report.rest {
        line(format!(
            "at rest: {} finished requests preloaded in {:.1}s, synced in {:.1}s, {}",
            rest.requests,
            rest.preload_seconds,
            rest.sync_seconds,
            rest.usage
                .map_or("no /proc figures".to_string(), |u| format!(
                    "RSS {:.1} MiB (peak {:.1} MiB), {:.2} cpu s, {} DLI calls",
                    u.rss_mib, u.peak_rss_mib, u.cpu_seconds, rest.dli_calls
                ))
        ));
    }
    if let Some(backlog) = &report.backlog {
        for text in super::backlog::render(backlog) {
            line(text);
        }
    }
    for problem in &report.problems {
        line(format!("PROBLEM: {problem}"));
    }
    out
}

/// Writes the report as `latest.json` and a timestamped copy under `dir`.
pub fn write_json(report: &BenchReport, dir: &std::path::Path) -> Result<PathBuf, HarnessError> {
    let write_error = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| HarnessError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .map_err(write_error(dir))?;
    let stamp = report.started_at.replace(':', "-");
    let dated = dir.join(format!("bench-{stamp}.json"));
    std::fs::write(&dated, &json).map_err(write_error(&dated))?;
    let latest = dir.join("latest.json");
    std::fs::write(&latest, &json).map_err(write_error(&latest))?;
    Ok(latest)
}
