// Shared by several test binaries (`#[path]`); each uses its own part of it.
#![allow(dead_code)]
//! What every end-to-end test stands on: the shared control plane with the CRD installed, a
//! fresh namespace, a DLI stand-in of its own, and the real operator binary run as a process.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use dli_stop_dev::sim::{DliSim, SimConfig};
use dli_stop_dev::testenv::ControlPlane;
use dli_stop_operator::api::{JobStopRequest, Phase, conditions};
use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

pub const ACCESS_KEY: &str = "E2EACCESSKEY";
pub const SECRET_KEY: &str = "e2e-secret-key";

/// How long a test waits for the operator before failing.
pub const WAIT: Duration = Duration::from_secs(60);

static CRD_INSTALLED: OnceCell<()> = OnceCell::const_new();

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// One test's world.
pub struct Env {
    pub cp: &'static ControlPlane,
    pub namespace: String,
    pub sim: DliSim,
    pub operator: Operator,
}

impl Env {
    /// A namespace, a stand-in with running jobs `ids` that stop within a second, and an
    /// operator watching the namespace with the stand-in as its default connection.
    pub async fn start(prefix: &str, ids: &[i64]) -> Env {
        let config = SimConfig {
            stop_delay: Duration::from_millis(500),
            savepoint_delay: Duration::from_millis(500),
            ..SimConfig::default()
        };
        let cp = ControlPlane::shared().await.expect("control plane starts");
        install_crd(cp).await;
        let namespace = cp
            .create_namespace(prefix)
            .await
            .expect("namespace is created");
        let sim = DliSim::start(config).await.expect("stand-in starts");
        sim.add_ak_sk(ACCESS_KEY, SECRET_KEY);
        sim.add_running_jobs(ids);
        let operator = Operator::start(cp, &namespace, &sim).await;
        Env {
            cp,
            namespace,
            sim,
            operator,
        }
    }

    pub fn client(&self) -> Client {
        self.cp.client()
    }

    pub fn requests(&self) -> Api<JobStopRequest> {
        Api::namespaced(self.client(), &self.namespace)
    }

    /// `kubectl apply -f -` of `yaml` in the test namespace, as a user would.
    pub async fn apply(&self, yaml: &str) {
        if let Err(error) = self.try_apply(yaml).await {
            panic!("kubectl apply failed: {error}");
        }
    }

    /// `kubectl apply`, returning kubectl's error output on failure.
    pub async fn try_apply(&self, yaml: &str) -> Result<String, String> {
        run_kubectl(
            self.cp,
            &["apply", "-n", &self.namespace, "-f", "-"],
            Some(yaml),
        )
        .await
    }

    pub async fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-n", self.namespace.as_str()];
        full.extend_from_slice(args);
        run_kubectl(self.cp, &full, None).await
    }

    /// Waits until the request satisfies `check`, failing with its last status and the
    /// operator's log when it does not in time.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&JobStopRequest) -> bool,
    ) -> JobStopRequest {
        let api = self.requests();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let current = api.get_opt(name).await.expect("request can be read");
            if let Some(request) = &current
                && check(request)
            {
                return request.clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{name} never became {what}; last seen: {}\noperator log:\n{}",
                    serde_json::to_string_pretty(&current.and_then(|r| r.status))
                        .unwrap_or_default(),
                    self.operator.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_phase(&self, name: &str, phase: Phase) -> JobStopRequest {
        self.wait_for(name, phase.as_str(), |r| {
            let status = r.status.as_ref();
            status.and_then(|s| s.phase) == Some(phase)
                && status.and_then(|s| s.observed_generation) == r.metadata.generation
        })
        .await
    }

    pub async fn wait_ready(&self, name: &str) -> JobStopRequest {
        self.wait_for(name, "Ready", |r| {
            r.status.as_ref().is_some_and(|s| {
                conditions::find(&s.conditions, conditions::READY).is_some_and(|c| {
                    c.status == "True" && c.observed_generation == r.metadata.generation
                })
            })
        })
        .await
    }

    /// The Events recorded for a request, oldest first.
    pub async fn events(&self, name: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.client(), &self.namespace);
        let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
        let mut list = events
            .list(&params)
            .await
            .expect("events can be listed")
            .items;
        list.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        list
    }

    /// Reasons of the Events recorded for a request, oldest first.
    pub async fn event_reasons(&self, name: &str) -> Vec<String> {
        self.events(name)
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }

    /// Gives the operator time to (wrongly) act, for tests that assert nothing happens.
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// Runs kubectl against the control plane; `Ok(stdout)` or `Err(what kubectl said)`.
pub async fn run_kubectl(
    cp: &ControlPlane,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, String> {
    cp.run_kubectl_with_input(args, stdin)
        .await
        .map_err(|e| e.to_string())
}

/// Installs the CRD from `crds/` once per test binary and waits until it is served.
pub async fn install_crd(cp: &ControlPlane) {
    CRD_INSTALLED
        .get_or_init(|| async {
            cp.apply_file(repo_path("crds"))
                .await
                .expect("CRD installs");
            wait_crd_established(cp).await;
        })
        .await;
}

/// Waits until the API server serves the JobStopRequest CRD.
pub async fn wait_crd_established(cp: &ControlPlane) {
    cp.wait_crd_established(
        "jobstoprequests.dli.stop-operator.io",
        Duration::from_secs(60),
    )
    .await
    .expect("CRD is established");
}

/// Flags that make the operator react within a second or two.
pub const FAST_TIMINGS: [&str; 10] = [
    "--confirm-poll-interval",
    "1s",
    "--retry-initial-backoff",
    "500ms",
    "--retry-max-backoff",
    "5s",
    "--dli-request-timeout",
    "3s",
    "--dli-connect-timeout",
    "2s",
];

/// The `DLI_*` variables that make `sim` the default connection.
pub fn dli_env(sim: &DliSim) -> Vec<(String, String)> {
    vec![
        ("DLI_ENDPOINT".to_string(), sim.endpoint()),
        ("DLI_PROJECT_ID".to_string(), sim.project_id()),
        ("DLI_ACCESS_KEY".to_string(), ACCESS_KEY.to_string()),
        ("DLI_SECRET_KEY".to_string(), SECRET_KEY.to_string()),
    ]
}

/// The operator binary, run as users run it.
pub struct Operator {
    child: Option<Child>,
    command: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
    /// Where `/metrics` answers, when the test chose the port.
    metrics_port: Option<u16>,
}

impl Operator {
    /// The operator watching `namespace` with `sim` as its default connection, with timings
    /// short enough for tests. `namespace` is the operator's own, so it may use the default
    /// connection; its connection Secrets may point at the stand-in on loopback.
    pub async fn start(cp: &ControlPlane, namespace: &str, sim: &DliSim) -> Operator {
        let port = dli_stop_dev::harness::process::free_port().expect("a free port");
        let metrics_addr = format!("127.0.0.1:{port}");
        let mut args = vec![
            "--namespace",
            namespace,
            "--operator-namespace",
            namespace,
            "--metrics-addr",
            &metrics_addr,
            "--allow-private-endpoints",
        ];
        args.extend(FAST_TIMINGS);
        let mut operator = Operator::start_with(cp.kubeconfig_path(), &args, &dli_env(sim));
        operator.metrics_port = Some(port);
        operator
    }

    /// `dli-stop-operator run ARGS` with `kubeconfig` and `envs` only (no inherited environment).
    pub fn start_with(
        kubeconfig: &std::path::Path,
        args: &[&str],
        envs: &[(String, String)],
    ) -> Operator {
        let mut command = vec!["run".to_string()];
        command.extend(args.iter().map(|s| s.to_string()));
        let mut all_envs = vec![
            ("KUBECONFIG".to_string(), kubeconfig.display().to_string()),
            ("RUST_LOG".to_string(), "info,kube=warn".to_string()),
        ];
        all_envs.extend(envs.iter().cloned());
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = log_dir.path().join("operator.log");
        let mut operator = Operator {
            child: None,
            command,
            envs: all_envs,
            log,
            _log_dir: log_dir,
            metrics_port: None,
        };
        operator.spawn();
        operator
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Environment without the default connection, so requests must name a Secret.
    pub fn without_default_connection(&mut self) {
        self.envs.retain(|(k, _)| !k.starts_with("DLI_"));
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file opens");
        let err = log.try_clone().expect("log file clones");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dli-stop-operator"));
        command
            .args(&self.command)
            .env_clear()
            .envs(self.envs.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true);
        self.child = Some(command.spawn().expect("operator starts"));
    }

    /// SIGKILL: no graceful shutdown, like a node dying.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("operator is running");
        let pid = child.id().expect("operator has a pid");
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("operator exits after SIGTERM")
            .expect("operator exit status")
    }

    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn();
    }

    /// The running process's `/metrics` page; `None` while it does not answer yet.
    pub async fn metrics(&self) -> Option<String> {
        let port = self.metrics_port.expect("the test chose the metrics port");
        reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    /// Waits until the running process reports `requests` requests in `phase`. Every process
    /// starts without counts, so after a restart this proves the new process read the
    /// requests and judged them, not only that the old status is still there.
    pub async fn wait_counted(&self, phase: Phase, requests: u32) {
        let sample = format!(
            "dli_stop_operator_requests{{phase=\"{}\"}} {requests}",
            phase.as_str()
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self
                .metrics()
                .await
                .is_some_and(|page| page.lines().any(|line| line == sample))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the operator process never reported {sample}; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
