//! `dli-bench`: how fast the operator turns JobStopRequests Ready, what it costs, and how that
//! compares with the API server's own floor for the same writes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;

use super::error::HarnessError;
use super::process::{OperatorProcess, Usage, free_port};
use super::ready::ReadyTracker;
use super::stats::{self, Latencies};
use super::world::{self, OperatorOptions};
use crate::sim::DliSim;
use crate::testenv::ControlPlane;
use dli_stop_operator::api::{JobStopRequest, JobStopRequestStatus};
use dli_stop_operator::controller::events;
use dli_stop_operator::controller::status as transition;
use dli_stop_operator::dli::{AnswerElement, JobAnswer, StopAnswer};

pub mod backlog;
mod report;
mod sampling;

pub use report::{render, write_json};
use sampling::{MachineCpu, load_average, mean_ms, per_request};

/// Creates the harness keeps in flight while loading requests for the operator.
const CREATE_CONCURRENCY: usize = 16;

/// What to measure.
#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    /// Requests of the main run.
    pub requests: usize,
    /// The operator's `--concurrency` in the main run and the floor's concurrency.
    pub concurrency: u16,
    /// Rounds of floor, floor with events and operator; the ratios are their medians.
    pub rounds: usize,
    /// `--concurrency` values of the throughput sweep.
    pub sweep: Vec<u16>,
    /// Requests of each sweep run.
    pub sweep_requests: usize,
    /// Finished requests in the cache for the memory-at-rest run (0 skips it).
    pub rest_requests: usize,
    /// Requests of the backlog runs, created before the drainer starts (0 skips them).
    pub backlog_requests: usize,
    /// Longest wait for one run's requests to become Ready.
    #[serde(skip)]
    pub timeout: Duration,
    /// `RUST_LOG` of the operator.
    pub rust_log: String,
    #[serde(skip)]
    pub operator_binary: PathBuf,
    /// Where operator logs go.
    #[serde(skip)]
    pub log_dir: PathBuf,
    /// Where the client-go floor is built.
    #[serde(skip)]
    pub build_dir: PathBuf,
}

/// API calls per request of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct ApiCalls {
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub per_request: f64,
    /// Mean time the API server took for one call of this kind.
    pub mean_ms: Option<f64>,
}

/// One operator run: N requests created, waited for until Ready.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorRun {
    pub concurrency: u16,
    pub requests: usize,
    /// From spawning the process until `/readyz` answered 200.
    pub startup_ms: f64,
    pub ready: usize,
    pub wall_seconds: f64,
    pub throughput_per_second: f64,
    pub latency: Latencies,
    pub dli_calls: usize,
    pub usage: Option<Usage>,
    pub cpu_ms_per_request: Option<f64>,
    /// Mean time of one reconcile, from the operator's own histogram.
    pub reconcile_mean_ms: Option<f64>,
    pub reconciles: Option<f64>,
    /// Mean round trip of one DLI batch stop, from the operator's own histogram.
    pub batch_stop_mean_ms: Option<f64>,
    /// CPU seconds each process on the machine spent during the run: where the time goes.
    pub cpu_seconds_by_process: BTreeMap<String, f64>,
    /// API server requests per JobStopRequest (the harness's own create and watch included).
    pub api_calls: Vec<ApiCalls>,
}

/// The same writes by a bare client: create, claim `replace_status`, result `replace_status`.
#[derive(Debug, Clone, Serialize)]
pub struct FloorRun {
    pub concurrency: u16,
    pub requests: usize,
    pub wall_seconds: f64,
    pub throughput_per_second: f64,
    pub latency: Latencies,
}

/// Memory with many finished requests in the operator's cache.
#[derive(Debug, Clone, Serialize)]
pub struct RestRun {
    pub requests: usize,
    pub preload_seconds: f64,
    /// From start until every request had been reconciled once.
    pub sync_seconds: f64,
    /// Measured 5 s after the sync.
    pub usage: Option<Usage>,
    pub dli_calls: usize,
}

/// One round of the comparison: the floor, the floor with events and the operator, one after
/// the other, so all three meet about the same load on a shared machine.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub operator_per_second: f64,
    pub floor_per_second: f64,
    pub floor_with_events_per_second: f64,
    /// Operator throughput / floor throughput.
    pub ratio: f64,
    /// Operator throughput / throughput of the floor with events.
    pub ratio_with_events: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub started_at: String,
    /// Start-up of the local etcd + kube-apiserver the bench ran on, one sample per start.
    pub control_plane_startup: Latencies,
    /// Start-up of the operator (spawn to `/readyz` 200), one sample per operator run.
    pub operator_startup: Latencies,
    /// `/proc/loadavg` at the start and the end: other work on the machine skews every figure.
    pub load_average: [String; 2],
    pub config: BenchConfig,
    /// Every round; the figures below come from the one with the median ratio.
    pub rounds: Vec<Round>,
    pub main: OperatorRun,
    pub floor: FloorRun,
    /// Median over the rounds of operator throughput / floor throughput.
    pub ratio: f64,
    /// The floor plus the Event the operator publishes for a request answered at once.
    pub floor_with_events: FloorRun,
    /// Median over the rounds of operator throughput / throughput of the floor with events.
    pub ratio_with_events: f64,
    pub sweep: Vec<OperatorRun>,
    pub rest: Option<RestRun>,
    /// The operator and the client-go floor draining a backlog.
    pub backlog: Option<backlog::BacklogReport>,
    /// Figures that break a promise (e.g. DLI calls != requests); non-empty fails the run.
    pub problems: Vec<String>,
}

/// Runs every measurement on `cp`, started by
/// [`start_control_plane`](crate::harness::startup::start_control_plane) in `control_plane_starts`.
pub async fn run(
    cp: &ControlPlane,
    control_plane_starts: &[Duration],
    config: BenchConfig,
) -> Result<BenchReport, HarnessError> {
    dli_stop_operator::run::install_crypto_provider();
    let started_at = jiff::Timestamp::now().to_string();
    let load_before = load_average();
    let mut problems = Vec::new();

    // The first writes pay for TLS handshakes, discovery and a cold watch cache; neither side
    // of the comparison should.
    floor_run(
        cp,
        config.requests.min(200),
        config.concurrency,
        false,
        config.timeout,
    )
    .await?;
    let backlog = if config.backlog_requests > 0 {
        say("building the client-go floor (tests/bench-floor)");
        let floor = backlog::build_floor(&config.build_dir).await?;
        let report = backlog::run(cp, &config, &floor).await?;
        for round in &report.rounds {
            check_backlog(&round.operator, &mut problems);
        }
        Some(report)
    } else {
        None
    };
    let mut rounds = Vec::new();
    for round in 1..=config.rounds.max(1) {
        say(&format!(
            "round {round}/{}: floor, floor with events, operator; {} requests each at concurrency {}",
            config.rounds.max(1),
            config.requests,
            config.concurrency
        ));
        let floor = floor_run(
            cp,
            config.requests,
            config.concurrency,
            false,
            config.timeout,
        )
        .await?;
        let floor_with_events = floor_run(
            cp,
            config.requests,
            config.concurrency,
            true,
            config.timeout,
        )
        .await?;
        let main = operator_run(cp, &config, config.concurrency, config.requests).await?;
        check_run(&main, &mut problems);
        rounds.push((main, floor, floor_with_events));
    }
    let figures: Vec<Round> = rounds
        .iter()
        .map(|(main, floor, with_events)| Round {
            operator_per_second: main.throughput_per_second,
            floor_per_second: floor.throughput_per_second,
            floor_with_events_per_second: with_events.throughput_per_second,
            ratio: throughput_ratio(main, floor),
            ratio_with_events: throughput_ratio(main, with_events),
        })
        .collect();
    let ratio_with_events = median(figures.iter().map(|r| r.ratio_with_events));
    let median_round = median_index(&figures);
    let mut operator_startups: Vec<Duration> =
        rounds.iter().map(|(main, _, _)| main.startup()).collect();
    let (main, floor, floor_with_events) = rounds.swap_remove(median_round);
    let mut sweep = Vec::new();
    for &concurrency in &config.sweep {
        say(&format!(
            "sweep: {} requests, operator --concurrency {concurrency}",
            config.sweep_requests
        ));
        let run = operator_run(cp, &config, concurrency, config.sweep_requests).await?;
        check_run(&run, &mut problems);
        operator_startups.push(run.startup());
        sweep.push(run);
    }
    let rest = if config.rest_requests > 0 {
        say(&format!(
            "rest: {} finished requests in the cache",
            config.rest_requests
        ));
        let rest = rest_run(cp, &config).await?;
        if rest.dli_calls != 0 {
            problems.push(format!(
                "rest: {} DLI calls for requests that were already finished",
                rest.dli_calls
            ));
        }
        Some(rest)
    } else {
        None
    };
    Ok(BenchReport {
        ratio: figures[median_round].ratio,
        started_at,
        control_plane_startup: stats::latencies(control_plane_starts),
        operator_startup: stats::latencies(&operator_startups),
        load_average: [load_before, load_average()],
        config,
        rounds: figures,
        main,
        floor,
        floor_with_events,
        ratio_with_events,
        sweep,
        rest,
        backlog,
        problems,
    })
}

fn throughput_ratio(run: &OperatorRun, floor: &FloorRun) -> f64 {
    if floor.throughput_per_second > 0.0 {
        run.throughput_per_second / floor.throughput_per_second
    } else {
        0.0
    }
}

/// The round whose operator/floor ratio is the median (the lower middle one of an even count).
fn median_index(rounds: &[Round]) -> usize {
    let ratio = median(rounds.iter().map(|r| r.ratio));
    rounds
        .iter()
        .position(|r| r.ratio.total_cmp(&ratio).is_eq())
        .unwrap_or(0)
}

/// The nearest-rank median, as the latency percentiles are taken.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    stats::percentile(&values, 0.5)
}

fn check_run(run: &OperatorRun, problems: &mut Vec<String>) {
    if run.ready != run.requests {
        problems.push(format!(
            "concurrency {}: only {} of {} requests became Ready",
            run.concurrency, run.ready, run.requests
        ));
    }
    if run.dli_calls != run.requests {
        problems.push(format!(
            "concurrency {}: {} DLI stop calls for {} requests (must be equal)",
            run.concurrency, run.dli_calls, run.requests
        ));
    }
}

fn check_backlog(run: &backlog::BacklogRun, problems: &mut Vec<String>) {
    if run.ready != run.requests || run.dli_calls != run.requests {
        problems.push(format!(
            "backlog: {} of {} requests became Ready with {} DLI stop calls (must all be equal)",
            run.ready, run.requests, run.dli_calls
        ));
    }
}

fn say(line: &str) {
    eprintln!("[bench] {line}");
}

fn request_name(index: usize) -> String {
    format!("r-{index:05}")
}

/// Job id of request `index`: one distinct job per request, so calls map to requests.
fn job_id(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX - 1) + 1
}

/// The operator under test in `namespace`, with its metrics on a free port (returned).
fn start_operator(
    cp: &ControlPlane,
    config: &BenchConfig,
    namespace: &str,
    sim: &DliSim,
    concurrency: u16,
) -> Result<(OperatorProcess, u16), HarnessError> {
    let port = free_port().map_err(HarnessError::StandIn)?;
    let options = OperatorOptions {
        concurrency,
        metrics_port: port,
        rust_log: config.rust_log.clone(),
        extra: Vec::new(),
        login: world::Login::AkSk,
        kubeconfig: None,
    };
    let log = config.log_dir.join(format!("operator-{namespace}.log"));
    let spec = world::operator_spec(&config.operator_binary, cp, namespace, sim, &options, &log);
    Ok((OperatorProcess::start(spec)?, port))
}

async fn operator_run(
    cp: &ControlPlane,
    config: &BenchConfig,
    concurrency: u16,
    requests: usize,
) -> Result<OperatorRun, HarnessError> {
    let client = cp.client();
    let namespace = cp
        .create_namespace(&format!("bench-c{concurrency}"))
        .await?;
    let jobs: Vec<i64> = (0..requests).map(job_id).collect();
    let sim = world::start_sim(world::instant_sim(), &jobs).await?;
    let api: Api<JobStopRequest> = Api::namespaced(client.clone(), &namespace);
    let http = reqwest::Client::new();
    let spawned = Instant::now();
    let (mut operator, port) = start_operator(cp, config, &namespace, &sim, concurrency)?;
    wait_ready(&http, port, &mut operator).await?;
    let startup = spawned.elapsed();

    let tracker = ReadyTracker::spawn(api.clone());
    let before = world::apiserver_figures(&client).await?;
    let machine = MachineCpu::snapshot(cp);
    let started = Instant::now();
    let created: HashMap<String, Instant> = futures::stream::iter(0..requests)
        .map(|index| {
            let api = api.clone();
            async move {
                let object =
                    world::request(&request_name(index), vec![job_id(index)], false, false);
                let at = Instant::now();
                api.create(&PostParams::default(), &object)
                    .await
                    .map(|created| (created.name_any(), at))
                    .map_err(HarnessError::kube("create a request"))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect()
        .await?;
    let ready = tracker.wait_for(requests, config.timeout).await;
    operator.check_alive()?;
    let (wall, samples) = ready_figures(&tracker, &created, started);
    let after = world::apiserver_figures(&client).await?;
    let mut cpu_seconds_by_process = machine.since();
    let usage = operator.usage();
    if let Some(usage) = usage {
        cpu_seconds_by_process.insert("dli-stop-operator".to_string(), usage.cpu_seconds);
    }
    let page = world::operator_metrics(&http, port)
        .await
        .unwrap_or_default();
    operator.terminate(Duration::from_secs(10)).await;
    drop(tracker);
    let dli_calls = sim.total_stop_calls();
    sim.shutdown().await;
    world::delete_all(&api).await?;

    let reconciles = world::sample(&page, "dli_stop_operator_reconcile_duration_seconds_count");
    let reconcile_sum = world::sample(&page, "dli_stop_operator_reconcile_duration_seconds_sum");
    let batch_stops = world::sample(
        &page,
        "dli_stop_operator_dli_request_duration_seconds_count{operation=\"batch_stop\"}",
    );
    let batch_stop_sum = world::sample(
        &page,
        "dli_stop_operator_dli_request_duration_seconds_sum{operation=\"batch_stop\"}",
    );
    Ok(OperatorRun {
        concurrency,
        requests,
        startup_ms: startup.as_secs_f64() * 1000.0,
        ready,
        wall_seconds: wall.as_secs_f64(),
        throughput_per_second: stats::per_second(ready, wall),
        latency: stats::latencies(&samples),
        dli_calls,
        usage,
        cpu_ms_per_request: usage.map(|u| u.cpu_seconds * 1000.0 / requests.max(1) as f64),
        reconcile_mean_ms: mean_ms(reconciles, reconcile_sum),
        reconciles,
        batch_stop_mean_ms: mean_ms(batch_stops, batch_stop_sum),
        cpu_seconds_by_process,
        api_calls: per_request(&before, &after, requests),
    })
}

impl OperatorRun {
    fn startup(&self) -> Duration {
        Duration::from_secs_f64(self.startup_ms / 1000.0)
    }
}

/// Waits until the operator's `/readyz` answers 200, failing early if it exits.
async fn wait_ready(
    http: &reqwest::Client,
    port: u16,
    operator: &mut OperatorProcess,
) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    loop {
        operator.check_alive()?;
        let answer = http.get(&readyz).send().await;
        if answer.is_ok_and(|answer| answer.status().is_success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout {
                what: "the operator to answer /readyz".to_string(),
                seconds: 30,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The status the operator writes when it claims a generation.
fn claim_status(object: &JobStopRequest) -> JobStopRequestStatus {
    transition::claim(
        &JobStopRequestStatus::default(),
        &object.spec,
        object.metadata.generation.unwrap_or(1),
        "dli-bench",
        &Time(jiff::Timestamp::now()),
    )
}

/// The status the operator writes when DLI accepted every job.
fn delivered_status(object: &JobStopRequest) -> JobStopRequestStatus {
    let message = "The request for stopping DLI jobs is delivered successfully.".to_string();
    let answer = StopAnswer {
        elements: vec![AnswerElement {
            is_success: true,
            message: message.clone(),
        }],
        jobs: object
            .spec
            .job_ids
            .iter()
            .map(|&job_id| JobAnswer {
                job_id,
                is_success: Some(true),
                message: Some(message.clone()),
            })
            .collect(),
        request_id: Some("dli-bench".to_string()),
        http_status: 200,
    };
    transition::delivered(
        &object.status.clone().unwrap_or_default(),
        &object.spec,
        object.metadata.generation.unwrap_or(1),
        &answer,
        &Time(jiff::Timestamp::now()),
    )
}

/// Creates a request and writes the operator's two status writes for it, then, when
/// `recorder` is given, the one Event the operator publishes for a call answered at once.
/// Returns the request's name and when its creation started.
async fn create_and_finish(
    api: &Api<JobStopRequest>,
    index: usize,
    recorder: Option<&Recorder>,
) -> Result<(String, Instant), HarnessError> {
    let started = Instant::now();
    let object = world::request(&request_name(index), vec![job_id(index)], false, false);
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .map_err(HarnessError::kube("create a request"))?;
    let claimed = world::write_status(api, &created, claim_status(&created)).await?;
    let done = world::write_status(api, &claimed, delivered_status(&claimed)).await?;
    if let Some(recorder) = recorder {
        publish_outcome(recorder, &claimed, &done).await?;
    }
    Ok((done.name_any(), started))
}

/// When the last request was seen Ready after `started`, and each request's create-to-Ready
/// time, as the tracker saw them.
fn ready_figures(
    tracker: &ReadyTracker,
    created: &HashMap<String, Instant>,
    started: Instant,
) -> (Duration, Vec<Duration>) {
    let seen = tracker.snapshot();
    let last = seen.values().max().copied().unwrap_or(started);
    let samples = seen
        .iter()
        .filter_map(|(name, at)| Some(at.duration_since(*created.get(name)?)))
        .collect();
    (last.duration_since(started), samples)
}

/// Publishes the Event the operator publishes when a claim's outcome is written.
async fn publish_outcome(
    recorder: &Recorder,
    claimed: &JobStopRequest,
    done: &JobStopRequest,
) -> Result<(), HarnessError> {
    let Some(outcome) = done
        .status
        .as_ref()
        .and_then(|status| events::transition(claimed.status.as_ref(), status))
    else {
        return Ok(());
    };
    recorder
        .publish(&outcome.event, &done.object_ref(&()))
        .await
        .map_err(HarnessError::kube("publish an Event"))
}

/// The same writes by a bare client, watched by the same tracker as the operator's runs so
/// both sides pay for one observer and are timed the same way.
async fn floor_run(
    cp: &ControlPlane,
    requests: usize,
    concurrency: u16,
    events: bool,
    timeout: Duration,
) -> Result<FloorRun, HarnessError> {
    let namespace = cp.create_namespace("bench-floor").await?;
    let client = cp.client();
    let api: Api<JobStopRequest> = Api::namespaced(client.clone(), &namespace);
    let recorder = events.then(|| {
        Recorder::new(
            client,
            Reporter {
                controller: "dli-bench".into(),
                instance: None,
            },
        )
    });
    let tracker = ReadyTracker::spawn(api.clone());
    let started = Instant::now();
    let created: HashMap<String, Instant> = futures::stream::iter(0..requests)
        .map(|index| {
            let api = api.clone();
            let recorder = recorder.as_ref();
            async move { create_and_finish(&api, index, recorder).await }
        })
        .buffer_unordered(usize::from(concurrency.max(1)))
        .try_collect()
        .await?;
    let ready = tracker.wait_for(requests, timeout).await;
    let (wall, samples) = ready_figures(&tracker, &created, started);
    drop(tracker);
    world::delete_all(&api).await?;
    Ok(FloorRun {
        concurrency,
        requests,
        wall_seconds: wall.as_secs_f64(),
        throughput_per_second: stats::per_second(ready, wall),
        latency: stats::latencies(&samples),
    })
}

/// Preloads finished requests while no operator runs, then starts one and measures its memory
/// once it has reconciled each of them (a no-op for a finished request).
async fn rest_run(cp: &ControlPlane, config: &BenchConfig) -> Result<RestRun, HarnessError> {
    let requests = config.rest_requests;
    let namespace = cp.create_namespace("bench-rest").await?;
    let api: Api<JobStopRequest> = Api::namespaced(cp.client(), &namespace);
    let preload = Instant::now();
    futures::stream::iter(0..requests)
        .map(|index| {
            let api = api.clone();
            async move { create_and_finish(&api, index, None).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let preload_seconds = preload.elapsed().as_secs_f64();

    let sim = world::start_sim(world::instant_sim(), &[]).await?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let (mut operator, port) = start_operator(cp, config, &namespace, &sim, config.concurrency)?;
    // Finished requests are not reconciled again (nor kept in the operator's cache); the
    // operator has taken them all in once its requests-by-phase gauge counts them.
    let known = "dli_stop_operator_requests{phase=\"Succeeded\"}";
    loop {
        operator.check_alive()?;
        let page = world::operator_metrics(&http, port)
            .await
            .unwrap_or_default();
        if world::sample(&page, known).unwrap_or(0.0) >= requests as f64 {
            break;
        }
        if started.elapsed() > config.timeout {
            return Err(HarnessError::Timeout {
                what: format!("the operator to take in {requests} finished requests"),
                seconds: config.timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sync_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let usage = operator.usage();
    operator.terminate(Duration::from_secs(10)).await;
    let dli_calls = sim.total_stop_calls();
    sim.shutdown().await;
    world::delete_all(&api).await?;
    Ok(RestRun {
        requests,
        preload_seconds,
        sync_seconds,
        usage,
        dli_calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dli_stop_operator::api::Phase;

    #[test]
    fn the_floor_writes_the_statuses_the_operator_writes() {
        let mut object = world::request("r-1", vec![7], false, false);
        object.metadata.generation = Some(1);
        let claimed = claim_status(&object);
        assert_eq!(claimed.phase, Some(Phase::Submitting));
        object.status = Some(claimed);
        let done = delivered_status(&object);
        assert_eq!(done.phase, Some(Phase::Succeeded));
        assert_eq!(done.observed_generation, Some(1));
        assert_eq!(done.results.len(), 1);
        let outcome = events::transition(object.status.as_ref(), &done)
            .expect("the outcome is a transition with an Event");
        assert!(
            !outcome.short_lived,
            "published at once, like the operator's"
        );
    }

    #[test]
    fn the_reported_round_is_the_one_with_the_median_ratio() {
        let round = |ratio| Round {
            operator_per_second: 100.0 * ratio,
            floor_per_second: 100.0,
            floor_with_events_per_second: 100.0,
            ratio,
            ratio_with_events: ratio,
        };
        assert_eq!(median_index(&[round(0.9), round(0.7), round(0.8)]), 2);
        assert_eq!(median_index(&[round(0.9), round(0.7)]), 1);
        assert_eq!(median_index(&[round(0.5)]), 0);
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
    }

    #[test]
    fn each_request_has_its_own_job() {
        assert_eq!(job_id(0), 1);
        assert_ne!(job_id(1), job_id(2));
        assert_eq!(request_name(42), "r-00042");
    }
}
