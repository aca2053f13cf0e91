//! The backlog scenario: N requests exist before anyone starts draining them, so nothing but
//! the API server paces the drain. The operator drains one backlog; a client-go program making
//! exactly the operator's two status writes per request (`tests/bench-floor`) drains another,
//! and the ratio of their drain times says how close the operator comes to the ecosystem's
//! reference client on the same API server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::sampling::{MachineCpu, per_request, sum_of};
use super::{
    ApiCalls, BenchConfig, CREATE_CONCURRENCY, claim_status, delivered_status, job_id, median,
    request_name, say, start_operator, wait_ready,
};
use crate::harness::HarnessError;
use crate::harness::ready::ReadyTracker;
use crate::harness::world;
use crate::testenv::{ControlPlane, go_build_command, go_build_outcome};
use dli_stop_operator::api::JobStopRequest;

/// Bytes of the request bodies the API server read (creates, updates, patches).
const BODY_BYTES: &str = "apiserver_request_body_size_bytes_sum";
/// Bytes of the watch events the API server sent: the fan-out of every write to its watchers.
const WATCH_BYTES: &str = "apiserver_watch_events_sizes_sum";

/// What draining one backlog cost, by whoever drained it.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogRun {
    pub requests: usize,
    /// Requests seen Ready by the harness's watch.
    pub ready: usize,
    /// From starting the drainer's process until the last request was seen Ready.
    pub drain_seconds: f64,
    pub per_second: f64,
    /// kube-apiserver's own CPU time during the drain, per request.
    pub apiserver_cpu_ms_per_request: Option<f64>,
    /// Request bodies the API server read during the drain, per request.
    pub body_bytes_per_request: f64,
    /// Watch events the API server sent during the drain, per request.
    pub watch_bytes_per_request: f64,
    /// CPU time of the drainer's process, per request.
    pub cpu_ms_per_request: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    /// DLI stop calls (the operator's only; the floor makes none).
    pub dli_calls: usize,
    /// API server requests per JobStopRequest during the drain (the harness's watch included).
    pub api_calls: Vec<ApiCalls>,
}

/// The operator and the floor, one after the other on equal backlogs.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogRound {
    pub operator: BacklogRun,
    pub floor: BacklogRun,
    /// Floor drain time / operator drain time: 1.0 drains as fast as client-go.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BacklogReport {
    /// Workers of the floor, `--concurrency` of the operator.
    pub concurrency: u16,
    pub rounds: Vec<BacklogRound>,
    /// Median of the rounds' ratios.
    pub ratio: f64,
}

/// What the floor program prints when it is done.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FloorOutput {
    cpu_seconds: f64,
    max_rss_ki_b: u64,
}

/// Builds the client-go floor from the repository's Go module into `out_dir`.
pub async fn build_floor(out_dir: &Path) -> Result<PathBuf, HarnessError> {
    // The Go module lives with the other Go programs in the repository's tests/.
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bench-floor");
    // `go build` runs in the module's directory: a relative output path would land there.
    let out_dir = std::path::absolute(out_dir).map_err(|e| HarnessError::Floor {
        what: "be built",
        detail: format!("{}: {e}", out_dir.display()),
    })?;
    let command = go_build_command(&module, &["./cmd/floor"], &out_dir);
    let output = tokio::process::Command::from(command).output().await;
    go_build_outcome(&module, output).map_err(|e| HarnessError::Floor {
        what: "be built",
        detail: e.to_string(),
    })?;
    Ok(out_dir.join("floor"))
}

/// `rounds` rounds of operator then floor, each on a fresh backlog of `requests`.
pub async fn run(
    cp: &ControlPlane,
    config: &BenchConfig,
    floor_binary: &Path,
) -> Result<BacklogReport, HarnessError> {
    let requests = config.backlog_requests;
    let mut rounds = Vec::new();
    for round in 1..=config.rounds.max(1) {
        say(&format!(
            "backlog round {round}/{}: {requests} requests created first, drained by the operator, then by client-go",
            config.rounds.max(1)
        ));
        let operator = operator_drain(cp, config, requests).await?;
        let floor = floor_drain(cp, config, floor_binary, requests).await?;
        let ratio = if operator.drain_seconds > 0.0 {
            floor.drain_seconds / operator.drain_seconds
        } else {
            0.0
        };
        rounds.push(BacklogRound {
            operator,
            floor,
            ratio,
        });
    }
    Ok(BacklogReport {
        concurrency: config.concurrency,
        ratio: median(rounds.iter().map(|round| round.ratio)),
        rounds,
    })
}

/// A namespace holding `requests` requests nobody has reconciled yet.
async fn backlog(
    cp: &ControlPlane,
    prefix: &str,
    requests: usize,
) -> Result<(String, Vec<JobStopRequest>), HarnessError> {
    let namespace = cp.create_namespace(prefix).await?;
    let api: Api<JobStopRequest> = Api::namespaced(cp.client(), &namespace);
    let created = futures::stream::iter(0..requests)
        .map(|index| {
            let api = api.clone();
            async move {
                let object =
                    world::request(&request_name(index), vec![job_id(index)], false, false);
                api.create(&PostParams::default(), &object)
                    .await
                    .map_err(HarnessError::kube("create a request"))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok((namespace, created))
}

/// The API server's figures and the machine's CPU when a drain starts.
struct DrainStart {
    figures: world::ApiServerFigures,
    page: String,
    machine: MachineCpu,
    at: Instant,
}

impl DrainStart {
    async fn now(cp: &ControlPlane) -> Result<DrainStart, HarnessError> {
        let client = cp.client();
        Ok(DrainStart {
            figures: world::apiserver_figures(&client).await?,
            page: world::apiserver_page(&client).await?,
            machine: MachineCpu::snapshot(cp),
            at: Instant::now(),
        })
    }

    /// The run's figures once `tracker` saw the drain end; `drainer` is the drainer's own CPU
    /// seconds and peak RSS.
    async fn finish(
        &self,
        cp: &ControlPlane,
        tracker: &ReadyTracker,
        requests: usize,
        drainer: Option<(f64, f64)>,
        dli_calls: usize,
    ) -> Result<BacklogRun, HarnessError> {
        let client = cp.client();
        let figures = world::apiserver_figures(&client).await?;
        let page = world::apiserver_page(&client).await?;
        let apiserver_cpu = self.machine.since().get("kube-apiserver").copied();
        let seen = tracker.snapshot();
        let last = seen.values().max().copied().unwrap_or(self.at);
        let drain = last.duration_since(self.at);
        let per = |total: f64| total / requests.max(1) as f64;
        Ok(BacklogRun {
            requests,
            ready: seen.len(),
            drain_seconds: drain.as_secs_f64(),
            per_second: crate::harness::stats::per_second(seen.len(), drain),
            apiserver_cpu_ms_per_request: apiserver_cpu.map(|seconds| per(seconds * 1000.0)),
            body_bytes_per_request: per(sum_of(&page, BODY_BYTES) - sum_of(&self.page, BODY_BYTES)),
            watch_bytes_per_request: per(
                sum_of(&page, WATCH_BYTES) - sum_of(&self.page, WATCH_BYTES)
            ),
            cpu_ms_per_request: drainer.map(|(cpu, _)| per(cpu * 1000.0)),
            peak_rss_mib: drainer.map(|(_, rss)| rss),
            dli_calls,
            api_calls: per_request(&self.figures, &figures, requests),
        })
    }
}

async fn operator_drain(
    cp: &ControlPlane,
    config: &BenchConfig,
    requests: usize,
) -> Result<BacklogRun, HarnessError> {
    let (namespace, _) = backlog(cp, "backlog-operator", requests).await?;
    let api: Api<JobStopRequest> = Api::namespaced(cp.client(), &namespace);
    let jobs: Vec<i64> = (0..requests).map(job_id).collect();
    let sim = world::start_sim(world::instant_sim(), &jobs).await?;
    let tracker = ReadyTracker::spawn(api.clone());
    let start = DrainStart::now(cp).await?;
    let (mut operator, port) = start_operator(cp, config, &namespace, &sim, config.concurrency)?;
    wait_ready(&reqwest::Client::new(), port, &mut operator).await?;
    tracker.wait_for(requests, config.timeout).await;
    operator.check_alive()?;
    let usage = operator
        .usage()
        .map(|usage| (usage.cpu_seconds, usage.peak_rss_mib));
    let run = start
        .finish(cp, &tracker, requests, usage, sim.total_stop_calls())
        .await?;
    operator.terminate(Duration::from_secs(10)).await;
    drop(tracker);
    sim.shutdown().await;
    world::delete_all(&api).await?;
    Ok(run)
}

async fn floor_drain(
    cp: &ControlPlane,
    config: &BenchConfig,
    floor_binary: &Path,
    requests: usize,
) -> Result<BacklogRun, HarnessError> {
    let (namespace, created) = backlog(cp, "backlog-floor", requests).await?;
    let api: Api<JobStopRequest> = Api::namespaced(cp.client(), &namespace);
    let statuses = floor_statuses(&created)?;
    let tracker = ReadyTracker::spawn(api.clone());
    let start = DrainStart::now(cp).await?;
    let output = run_floor(
        floor_binary,
        cp.kubeconfig_path(),
        &namespace,
        config.concurrency,
        &statuses,
    )
    .await?;
    tracker.wait_for(requests, config.timeout).await;
    let usage = (output.cpu_seconds, output.max_rss_ki_b as f64 / 1024.0);
    let run = start.finish(cp, &tracker, requests, Some(usage), 0).await?;
    drop(tracker);
    world::delete_all(&api).await?;
    Ok(run)
}

/// Each request's claim and outcome, as the operator would write them, by name.
fn floor_statuses(created: &[JobStopRequest]) -> Result<Vec<u8>, HarnessError> {
    let writes: HashMap<String, [dli_stop_operator::api::JobStopRequestStatus; 2]> = created
        .iter()
        .map(|object| {
            let claim = claim_status(object);
            let mut claimed = object.clone();
            claimed.status = Some(claim.clone());
            (object.name_any(), [claim, delivered_status(&claimed)])
        })
        .collect();
    serde_json::to_vec(&writes).map_err(|e| HarnessError::Floor {
        what: "be given its statuses",
        detail: e.to_string(),
    })
}

async fn run_floor(
    binary: &Path,
    kubeconfig: &Path,
    namespace: &str,
    workers: u16,
    statuses: &[u8],
) -> Result<FloorOutput, HarnessError> {
    let failed = |what| {
        move |e: std::io::Error| HarnessError::Floor {
            what,
            detail: e.to_string(),
        }
    };
    let mut child = tokio::process::Command::new(binary)
        .arg(format!("-kubeconfig={}", kubeconfig.display()))
        .arg(format!("-namespace={namespace}"))
        .arg(format!("-workers={workers}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(failed("start"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(statuses)
            .await
            .map_err(failed("read its statuses"))?;
    }
    let output = child.wait_with_output().await.map_err(failed("finish"))?;
    if !output.status.success() {
        return Err(HarnessError::Floor {
            what: "drain the backlog",
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    serde_json::from_slice(&output.stdout).map_err(|e| HarnessError::Floor {
        what: "report its figures",
        detail: e.to_string(),
    })
}

/// The backlog figures for a terminal.
pub fn render(report: &BacklogReport) -> Vec<String> {
    let mut lines = vec![format!(
        "backlog ({} workers / --concurrency): {:<10} {:>6} {:>8} {:>8} {:>12} {:>10} {:>10} {:>10} {:>8}",
        report.concurrency,
        "drainer",
        "reqs",
        "drain s",
        "req/s",
        "apisrv ms/r",
        "body B/r",
        "watch B/r",
        "cpu ms/r",
        "hwm MiB"
    )];
    for (index, round) in report.rounds.iter().enumerate() {
        for (label, run) in [("operator", &round.operator), ("client-go", &round.floor)] {
            lines.push(format!(
                "backlog round {:<21} {:<10} {:>6} {:>8.2} {:>8.1} {:>12} {:>10.0} {:>10.0} {:>10} {:>8}",
                index + 1,
                label,
                run.requests,
                run.drain_seconds,
                run.per_second,
                optional(run.apiserver_cpu_ms_per_request, 2),
                run.body_bytes_per_request,
                run.watch_bytes_per_request,
                optional(run.cpu_ms_per_request, 2),
                optional(run.peak_rss_mib, 1),
            ));
        }
        lines.push(format!(
            "backlog round {}: operator drain / client-go floor = {:.2}",
            index + 1,
            round.ratio
        ));
    }
    lines.push(format!(
        "backlog: operator / client-go floor = {:.2} (median of {} round(s); 1.0 = as fast as client-go)",
        report.ratio,
        report.rounds.len()
    ));
    lines
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_string(), |value| format!("{value:.decimals$}"))
}
