//! `dli-chaos`: requests pour in while operator processes are SIGKILLed at random moments (some
//! while a stop call is held open, some with IAM slow or down for the processes that come
//! next), the API server goes away right after DLI answered, and the stand-in injects random
//! faults; afterwards every promise of the once-per-generation protocol is checked (see
//! [`invariants`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde::Serialize;

use super::error::HarnessError;
use super::invariants::{self, LostAnswers, Observed, StandInJob, Violation};
use super::process::{OperatorProcess, free_port};
use super::relay::Relay;
use super::rng::SeededRng;
use super::world::{self, Login, OperatorOptions};
use crate::sim::{DliSim, Fault, Loss, Operation, RandomFaults, Refusal, SimConfig};
use crate::testenv::ControlPlane;
use dli_stop_operator::api::{JobStopRequest, Phase};

/// How hard to shake the operator.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosConfig {
    pub requests: usize,
    pub kills: usize,
    /// Requests are created during the first 80% of this window, so most kills find stop calls
    /// in flight to hold; kills happen during all of it.
    #[serde(skip)]
    pub window: Duration,
    /// Operator processes; more than one runs with `--leader-elect`.
    pub replicas: usize,
    pub seed: u64,
    /// Chance that a DLI call meets a random fault.
    pub fault_probability: f64,
    /// Chance that a kill happens while a stop call is held open by the stand-in.
    pub hold_probability: f64,
    /// Chance that a request's spec changes soon after it is created: fresh job ids, so a
    /// new generation that must get its own single call.
    pub respec_probability: f64,
    /// Operators log in with an IAM password (a token fetched before each claim), and half
    /// the kills leave IAM slow or down for the next token fetches.
    pub iam: bool,
    /// Times the API server goes away for [`OUTAGE`] just as DLI answers a stop call.
    pub outages: usize,
    /// Longest wait, after the window, for every request to finish.
    #[serde(skip)]
    pub settle_timeout: Duration,
    #[serde(skip)]
    pub operator_binary: PathBuf,
    #[serde(skip)]
    pub log_dir: PathBuf,
    pub rust_log: String,
}

/// What happened and what broke.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub config: ChaosConfig,
    pub kills: usize,
    /// Kills made while a stop call was held open.
    pub kills_mid_call: usize,
    /// Spec changes made (each a new generation).
    pub respecs: usize,
    /// API-server outages, and those that began as a held stop call's answer went out.
    pub outages: usize,
    pub outages_after_an_answer: usize,
    pub stop_calls: usize,
    pub phases: BTreeMap<String, usize>,
    /// `Unknown` requests whose call never reached DLI: the process died between the claim
    /// and the call, the price of never resending.
    pub unknown_without_call: usize,
    /// DLI answers an operator logged as received whose status never recorded them.
    pub answers_lost: LostAnswers,
    pub elapsed_seconds: f64,
    pub violations: Vec<Violation>,
    pub logs: Vec<PathBuf>,
}

/// One request of the plan.
#[derive(Debug, Clone, PartialEq)]
struct PlannedRequest {
    name: String,
    job_ids: Vec<i64>,
    confirm: bool,
    savepoint: bool,
}

/// One kill of the plan.
#[derive(Debug, Clone, PartialEq)]
struct PlannedKill {
    replica: usize,
    /// Hold a stop call open first; `Some(applied)` as in [`Fault::Hold`].
    hold: Option<bool>,
    restart_after: Duration,
    /// What IAM does to the token fetches that follow the kill.
    iam: Option<IamTrouble>,
}

/// IAM misbehaving while a process (a restarted one, or a new leader) needs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IamTrouble {
    /// Slower than the operator's request timeout.
    Slow,
    /// Refusing: the gateway's 503 for IAM unavailable.
    Down,
}

/// How long an API-server outage lasts: longer than one reconcile's tries to write an answer.
pub const OUTAGE: Duration = Duration::from_secs(5);

/// A spec change of the plan: the request's jobs replaced by fresh ones.
#[derive(Debug, Clone, PartialEq)]
struct PlannedRespec {
    name: String,
    job_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Create(PlannedRequest),
    Respec(PlannedRespec),
    Kill(PlannedKill),
    /// The API server goes away as a held stop call's answer is released.
    Outage,
}

impl Action {
    /// The job ids this action makes a request stop.
    fn job_ids(&self) -> &[i64] {
        match self {
            Action::Create(request) => &request.job_ids,
            Action::Respec(respec) => &respec.job_ids,
            Action::Kill(_) | Action::Outage => &[],
        }
    }
}

/// Everything random about a run, drawn from the seed up front so a run replays.
fn plan(config: &ChaosConfig, rng: &mut SeededRng) -> Vec<(Duration, Action)> {
    let mut next_job = 0i64;
    let mut fresh_jobs = |count: u64| -> Vec<i64> {
        (0..count)
            .map(|_| {
                next_job += 1;
                next_job
            })
            .collect()
    };
    let mut timeline = Vec::new();
    for index in 0..config.requests {
        let jobs = 1 + rng.below(2);
        let request = PlannedRequest {
            name: format!("chaos-{index:04}"),
            job_ids: fresh_jobs(jobs),
            confirm: rng.chance(0.5),
            savepoint: rng.chance(0.3),
        };
        let created_at = rng.duration_below(config.window.mul_f64(0.8));
        if rng.chance(config.respec_probability) {
            // Soon after the create, often while the first generation's call is in flight.
            let respec = PlannedRespec {
                name: request.name.clone(),
                job_ids: fresh_jobs(jobs),
            };
            timeline.push((
                created_at + rng.duration_below(Duration::from_secs(2)),
                Action::Respec(respec),
            ));
        }
        timeline.push((created_at, Action::Create(request)));
    }
    for _ in 0..config.kills {
        let replica = usize::try_from(rng.below(config.replicas.max(1) as u64)).unwrap_or(0);
        let hold = rng.chance(config.hold_probability).then(|| rng.chance(0.5));
        let restart_after = rng.duration_below(Duration::from_secs(1));
        // Drawn only when asked for, so the plans of earlier runs replay unchanged.
        let iam = (config.iam && rng.chance(0.5)).then(|| {
            if rng.chance(0.5) {
                IamTrouble::Slow
            } else {
                IamTrouble::Down
            }
        });
        let kill = PlannedKill {
            replica,
            hold,
            restart_after,
            iam,
        };
        timeline.push((rng.duration_below(config.window), Action::Kill(kill)));
    }
    for _ in 0..config.outages {
        timeline.push((rng.duration_below(config.window), Action::Outage));
    }
    // A create sorts before a respec of the same instant.
    timeline.sort_by_key(|(at, action)| (*at, !matches!(action, Action::Create(_))));
    timeline
}

/// The job ids of each request's earlier generations, oldest first, as the plan replaces them.
fn superseded_jobs(timeline: &[(Duration, Action)]) -> BTreeMap<String, Vec<Vec<i64>>> {
    let mut current: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut superseded: BTreeMap<String, Vec<Vec<i64>>> = BTreeMap::new();
    for (_, action) in timeline {
        match action {
            Action::Create(request) => {
                current.insert(request.name.clone(), request.job_ids.clone());
            }
            Action::Respec(respec) => {
                if let Some(old) = current.insert(respec.name.clone(), respec.job_ids.clone()) {
                    superseded.entry(respec.name.clone()).or_default().push(old);
                }
            }
            Action::Kill(_) | Action::Outage => {}
        }
    }
    superseded
}

/// Faults that leave the outcome of a call clear (the gateway refusing before forwarding) and
/// ones that do not: the gateway losing DLI's answer after DLI acted (502, 504, a cut
/// connection), DLI failing, answers slower than the operator waits.
fn random_faults(probability: f64, seed: u64) -> RandomFaults {
    let lost = |loss, dli_acted| Fault::AnswerLost { loss, dli_acted };
    RandomFaults {
        probability,
        seed,
        kinds: vec![
            Fault::Latency(Duration::from_millis(150)),
            Fault::Latency(Duration::from_millis(2500)),
            Fault::GatewayRefuses(Refusal::Throttled {
                retry_after_secs: None,
            }),
            Fault::GatewayRefuses(Refusal::Throttled {
                retry_after_secs: Some(1),
            }),
            Fault::GatewayRefuses(Refusal::Unavailable),
            Fault::GatewayRefuses(Refusal::Cut),
            lost(Loss::BadGateway, true),
            lost(Loss::GatewayTimeout, true),
            lost(Loss::Cut, true),
            lost(Loss::Cut, false),
            Fault::DliFails { dli_acted: true },
            Fault::DliFails { dli_acted: false },
        ],
    }
}

/// Timeouts short enough that a killed claim is resolved within seconds.
fn operator_flags(config: &ChaosConfig, namespace: &str, replica: usize) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--confirm-poll-interval",
        "1s",
        "--retry-initial-backoff",
        "200ms",
        "--retry-max-backoff",
        "2s",
        "--dli-request-timeout",
        "2s",
        "--dli-connect-timeout",
        "1s",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    flags.extend(["--pod-name".to_string(), format!("chaos-{replica}")]);
    if config.replicas > 1 {
        flags.extend(
            [
                "--leader-elect",
                "--lease-namespace",
                namespace,
                "--lease-duration",
                "4s",
            ]
            .iter()
            .map(ToString::to_string),
        );
    }
    flags
}

struct Cluster {
    replicas: Vec<OperatorProcess>,
    exits: Vec<Violation>,
}

impl Cluster {
    /// Notes and restarts replicas that exited without being killed.
    async fn check(&mut self) -> Result<(), HarnessError> {
        for (index, replica) in self.replicas.iter_mut().enumerate() {
            if let Err(HarnessError::OperatorExited { status, .. }) = replica.check_alive() {
                self.exits.push(Violation::OperatorExited {
                    replica: index,
                    status,
                });
            }
        }
        for replica in &mut self.replicas {
            if !replica.is_running() {
                replica.restart().await?;
            }
        }
        Ok(())
    }
}

fn say(line: &str) {
    eprintln!("[chaos] {line}");
}

/// Runs one chaos round on `cp` (CRD installed) and checks the invariants.
pub async fn run(cp: &ControlPlane, config: ChaosConfig) -> Result<ChaosReport, HarnessError> {
    dli_stop_operator::run::install_crypto_provider();
    let started = Instant::now();
    let mut rng = SeededRng::new(config.seed);
    let timeline = plan(&config, &mut rng);
    let fault_seed = rng.next_u64();
    let namespace = cp.create_namespace("chaos").await?;
    let api: Api<JobStopRequest> = Api::namespaced(cp.client(), &namespace);
    let jobs: Vec<i64> = timeline
        .iter()
        .flat_map(|(_, action)| action.job_ids().iter().copied())
        .collect();
    let superseded = superseded_jobs(&timeline);
    let sim = world::start_sim(
        SimConfig {
            stop_delay: Duration::from_millis(300),
            savepoint_delay: Duration::from_millis(300),
            ..SimConfig::default()
        },
        &jobs,
    )
    .await?;
    std::fs::create_dir_all(&config.log_dir).map_err(|source| HarnessError::Write {
        path: config.log_dir.clone(),
        source,
    })?;
    let mut cluster = Cluster {
        replicas: Vec::new(),
        exits: Vec::new(),
    };
    // The operators reach the API server through a relay that outages take down.
    let relay = Relay::start(api_server_addr(cp)?)
        .await
        .map_err(HarnessError::StandIn)?;
    let kubeconfig = config
        .log_dir
        .join(format!("operator-{namespace}.kubeconfig"));
    world::kubeconfig_via(cp, &relay.url(), &kubeconfig)?;
    let mut logs = Vec::new();
    for replica in 0..config.replicas.max(1) {
        let options = OperatorOptions {
            concurrency: 16,
            metrics_port: free_port().map_err(HarnessError::StandIn)?,
            rust_log: config.rust_log.clone(),
            extra: operator_flags(&config, &namespace, replica),
            login: if config.iam {
                Login::IamPassword
            } else {
                Login::AkSk
            },
            kubeconfig: Some(kubeconfig.clone()),
        };
        let log = config
            .log_dir
            .join(format!("operator-{namespace}-{replica}.log"));
        logs.push(log.clone());
        let spec = world::operator_spec(
            &config.operator_binary,
            cp,
            &namespace,
            &sim,
            &options,
            &log,
        );
        cluster.replicas.push(OperatorProcess::start(spec)?);
    }
    say(&format!(
        "seed {}: {} requests, {} kills, {} API-server outages over {}s, {} replica(s), {}, namespace {namespace}",
        config.seed,
        config.requests,
        config.kills,
        config.outages,
        config.window.as_secs(),
        config.replicas,
        if config.iam { "IAM password" } else { "AK/SK" }
    ));
    sim.set_random_faults(random_faults(config.fault_probability, fault_seed));

    let mut kills = 0;
    let mut kills_mid_call = 0;
    let mut respecs = 0;
    let mut outages = 0;
    let mut outages_after_an_answer = 0;
    for (at, action) in timeline {
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        cluster.check().await?;
        match action {
            Action::Create(request) => create(&api, &request).await?,
            Action::Respec(change) => {
                respec(&api, &change).await?;
                respecs += 1;
            }
            Action::Kill(kill) => {
                if kill_one(&sim, &mut cluster, &kill).await? {
                    kills_mid_call += 1;
                }
                kills += 1;
            }
            Action::Outage => {
                if outage(&sim, &relay).await {
                    outages_after_an_answer += 1;
                }
                outages += 1;
            }
        }
    }
    say("window over: faults off, waiting for every request to finish");
    sim.clear_random_faults();
    sim.release_held();
    cluster.check().await?;
    let finished = settle(
        &api,
        &mut cluster,
        &sim,
        config.requests,
        config.settle_timeout,
    )
    .await?;
    if !finished {
        say("settle timeout: checking what there is");
    }
    for replica in &mut cluster.replicas {
        replica.terminate(Duration::from_secs(10)).await;
    }
    sim.release_held();

    let observed = observe(&world::list_all(&api).await?, &superseded);
    let calls: Vec<Vec<i64>> = sim
        .stop_call_log()
        .into_iter()
        .map(|call| call.job_ids)
        .collect();
    let stand_in: BTreeMap<i64, StandInJob> = jobs
        .iter()
        .filter_map(|&id| {
            let job = StandInJob {
                status: sim.job_status(id)?,
                stopped: sim.stopped_by_a_call(id),
            };
            Some((id, job))
        })
        .collect();
    let texts: Vec<(String, String)> = logs
        .iter()
        .map(|path| {
            (
                path.display().to_string(),
                std::fs::read_to_string(path).unwrap_or_default(),
            )
        })
        .collect();
    let mut violations = cluster.exits.clone();
    violations.extend(invariants::check(&observed, &calls, &stand_in, &texts));
    let mut phases = BTreeMap::new();
    for request in &observed {
        let phase = request
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(Phase::Pending);
        *phases.entry(phase.as_str().to_string()).or_insert(0) += 1;
    }
    let stop_calls = calls.len();
    let answers_lost = invariants::answers_lost(&observed, &texts);
    let unknown_without_call = observed
        .iter()
        .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(Phase::Unknown))
        .filter(|r| invariants::calls_naming(&calls, &r.job_ids) == 0)
        .count();
    sim.shutdown().await;
    Ok(ChaosReport {
        config,
        kills,
        kills_mid_call,
        respecs,
        outages,
        outages_after_an_answer,
        stop_calls,
        phases,
        unknown_without_call,
        answers_lost,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        violations,
        logs,
    })
}

async fn create(api: &Api<JobStopRequest>, request: &PlannedRequest) -> Result<(), HarnessError> {
    let object = world::request(
        &request.name,
        request.job_ids.clone(),
        request.confirm,
        request.savepoint,
    );
    api.create(&PostParams::default(), &object)
        .await
        .map_err(HarnessError::kube(format!("create {}", request.name)))?;
    Ok(())
}

/// Replaces the request's jobs, as a user editing the spec in Git would: a new generation.
async fn respec(api: &Api<JobStopRequest>, change: &PlannedRespec) -> Result<(), HarnessError> {
    let patch = serde_json::json!({ "spec": { "jobIds": change.job_ids } });
    api.patch(&change.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(HarnessError::kube(format!(
            "change the spec of {}",
            change.name
        )))?;
    Ok(())
}

/// SIGKILLs one replica, first holding a stop call open when the plan says so; returns whether
/// a call was held at the moment of the kill.
async fn kill_one(
    sim: &DliSim,
    cluster: &mut Cluster,
    kill: &PlannedKill,
) -> Result<bool, HarnessError> {
    // A hold queued by an earlier kill that no call picked up in time may hold a call now;
    // let it go so that call is not left hanging until the client times out.
    sim.release_held();
    let mut held = false;
    if let Some(applied) = kill.hold {
        sim.inject(Operation::BatchStop, Fault::Hold { applied });
        held = sim.wait_held(1, Duration::from_secs(3)).await;
    }
    let index = kill.replica.min(cluster.replicas.len().saturating_sub(1));
    let Some(replica) = cluster.replicas.get_mut(index) else {
        return Ok(false);
    };
    replica.kill().await;
    if held {
        // The answer goes nowhere; with `applied: false` the stop takes effect only now,
        // after its caller died.
        sim.release_held();
    }
    if let Some(trouble) = kill.iam {
        // The next token fetches: the restarted process's, or a new leader's.
        let fault = match trouble {
            IamTrouble::Slow => Fault::Latency(Duration::from_secs(3)),
            IamTrouble::Down => Fault::GatewayRefuses(Refusal::Unavailable),
        };
        for _ in 0..2 {
            sim.inject(Operation::IamToken, fault.clone());
        }
    }
    tokio::time::sleep(kill.restart_after).await;
    replica.restart().await?;
    Ok(held)
}

/// Holds the next stop call, takes the API server away, lets DLI's answer go to the operator
/// (whose write of it now fails), and brings the API server back after [`OUTAGE`]. Returns
/// whether a call was held, i.e. the outage began right after an answer.
async fn outage(sim: &DliSim, relay: &Relay) -> bool {
    sim.release_held();
    sim.inject(Operation::BatchStop, Fault::Hold { applied: true });
    let held = sim.wait_held(1, Duration::from_secs(3)).await;
    relay.set_up(false);
    sim.release_held();
    tokio::time::sleep(OUTAGE).await;
    relay.set_up(true);
    held
}

/// Where the control plane's API server listens.
fn api_server_addr(cp: &ControlPlane) -> Result<SocketAddr, HarnessError> {
    let url = cp.server_url();
    let authority = url.trim_start_matches("https://");
    authority
        .parse()
        .map_err(|_| HarnessError::ApiServerUrl(url.clone()))
}

/// Waits until `expected` requests are final for their generation, restarting replicas that
/// exit by themselves. Returns whether they all finished in time.
async fn settle(
    api: &Api<JobStopRequest>,
    cluster: &mut Cluster,
    sim: &DliSim,
    expected: usize,
    timeout: Duration,
) -> Result<bool, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = world::list_all(api).await?;
        let done = all.iter().filter(|r| is_final(r)).count();
        if done >= expected {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        sim.release_held();
        cluster.check().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn is_final(request: &JobStopRequest) -> bool {
    request.status.as_ref().is_some_and(|s| {
        s.phase.is_some_and(Phase::is_final) && s.observed_generation == request.metadata.generation
    })
}

fn observe(
    requests: &[JobStopRequest],
    superseded: &BTreeMap<String, Vec<Vec<i64>>>,
) -> Vec<Observed> {
    requests
        .iter()
        .map(|request| Observed {
            name: request.name_any(),
            uid: request.uid().unwrap_or_default(),
            generation: request.metadata.generation.unwrap_or_default(),
            job_ids: request.spec.job_ids.clone(),
            superseded_job_ids: superseded
                .get(&request.name_any())
                .cloned()
                .unwrap_or_default(),
            status: request.status.clone(),
        })
        .collect()
}

/// The report for a terminal: counts, then each violation with its request's status.
pub fn render(report: &ChaosReport) -> String {
    let mut out = format!(
        "seed {}: {} requests, {} spec changes, {} replica(s), {}, {} kills ({} mid-call), {} API-server outages ({} right after an answer), {} stop calls reached DLI, {:.1}s\n",
        report.config.seed,
        report.config.requests,
        report.respecs,
        report.config.replicas,
        if report.config.iam {
            "IAM password"
        } else {
            "AK/SK"
        },
        report.kills,
        report.kills_mid_call,
        report.outages,
        report.outages_after_an_answer,
        report.stop_calls,
        report.elapsed_seconds
    );
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|(phase, count)| format!("{phase} {count}"))
        .collect();
    out.push_str(&format!(
        "phases: {} ({} Unknown without any call reaching DLI)\n",
        phases.join(", "),
        report.unknown_without_call
    ));
    let list = |lost: &[(String, i64)]| -> String {
        let names: Vec<String> = lost
            .iter()
            .map(|(name, generation)| format!("{name}/{generation}"))
            .collect();
        if names.is_empty() {
            "0".to_string()
        } else {
            format!("{} ({})", names.len(), names.join(", "))
        }
    };
    out.push_str(&format!(
        "answers received from DLI but never recorded: {} by a process that lived on, {} with their process killed\n",
        list(&report.answers_lost.by_a_live_process),
        list(&report.answers_lost.with_their_process)
    ));
    if report.violations.is_empty() {
        out.push_str("invariants: all hold\n");
    } else {
        out.push_str(&format!(
            "invariants: {} violation(s)\n",
            report.violations.len()
        ));
        for violation in &report.violations {
            out.push_str(&format!("  VIOLATION {violation}\n"));
        }
        out.push_str(&format!(
            "replay with --seed {}; operator logs: {}\n",
            report.config.seed,
            report
                .logs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> ChaosConfig {
        ChaosConfig {
            requests: 20,
            kills: 4,
            window: Duration::from_secs(10),
            replicas: 2,
            seed,
            fault_probability: 0.2,
            hold_probability: 0.5,
            respec_probability: 0.3,
            iam: false,
            outages: 0,
            settle_timeout: Duration::from_secs(60),
            operator_binary: PathBuf::new(),
            log_dir: PathBuf::new(),
            rust_log: "info".to_string(),
        }
    }

    #[test]
    fn a_seed_replays_the_same_plan() {
        let draw = |seed| plan(&config(seed), &mut SeededRng::new(seed));
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }

    #[test]
    fn the_plan_has_every_request_with_disjoint_jobs_and_every_kill_in_order() {
        let timeline = plan(&config(9), &mut SeededRng::new(9));
        let mut jobs = Vec::new();
        let mut kills = 0;
        let mut outages = 0;
        let mut created = Vec::new();
        for (at, action) in &timeline {
            jobs.extend(action.job_ids().iter().copied());
            match action {
                Action::Create(request) => {
                    assert!(*at < Duration::from_secs(10));
                    created.push(request.name.clone());
                }
                Action::Respec(respec) => {
                    assert!(created.contains(&respec.name), "respec before create");
                }
                Action::Kill(kill) => {
                    assert!(*at < Duration::from_secs(10));
                    assert!(kill.replica < 2);
                    assert_eq!(kill.iam, None, "no IAM trouble without IAM");
                    kills += 1;
                }
                Action::Outage => outages += 1,
            }
        }
        let count = jobs.len();
        jobs.sort_unstable();
        jobs.dedup();
        assert_eq!(jobs.len(), count, "job ids are shared between requests");
        assert_eq!(kills, 4);
        assert_eq!(outages, 0);
        assert!(timeline.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn the_new_faults_come_when_asked_for() {
        let mut asked = config(9);
        asked.iam = true;
        asked.outages = 3;
        let timeline = plan(&asked, &mut SeededRng::new(9));
        let outages = timeline
            .iter()
            .filter(|(_, action)| *action == Action::Outage)
            .count();
        assert_eq!(outages, 3);
        let iam_troubles = timeline
            .iter()
            .filter(|(_, action)| matches!(action, Action::Kill(kill) if kill.iam.is_some()))
            .count();
        assert!(iam_troubles > 0, "{timeline:?}");
    }

    #[test]
    fn a_respec_supersedes_the_jobs_of_the_generation_before() {
        let timeline = plan(&config(9), &mut SeededRng::new(9));
        let superseded = superseded_jobs(&timeline);
        assert!(!superseded.is_empty(), "the plan changes some specs");
        for (_, action) in &timeline {
            if let Action::Respec(respec) = action {
                let earlier = &superseded[&respec.name];
                assert_eq!(earlier.len(), 1);
                assert!(earlier[0].iter().all(|id| !respec.job_ids.contains(id)));
            }
        }
    }

    #[test]
    fn leader_election_flags_come_with_several_replicas() {
        let mut single = config(1);
        single.replicas = 1;
        assert!(!operator_flags(&single, "ns", 0).contains(&"--leader-elect".to_string()));
        let flags = operator_flags(&config(1), "ns", 1);
        assert!(flags.contains(&"--leader-elect".to_string()));
        assert!(flags.contains(&"chaos-1".to_string()));
    }
}
