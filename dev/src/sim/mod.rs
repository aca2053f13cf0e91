//! A DLI stand-in: a real HTTP(S) server speaking the DLI endpoints the operator uses (batch
//! stop, job detail, job list) and IAM's token endpoint, for tests and the local demo.
//!
//! It verifies AK/SK signatures (recomputed from what it received, answering `APIGW.0301` with
//! the canonical request like the real gateway) and tokens, moves jobs through their states
//! over time, injects faults on demand and counts the stop calls it received, so tests can
//! prove the once-per-generation promise.
//!
//! It models two layers: the API gateway, which may refuse a call before forwarding it (DLI
//! never sees it) or lose DLI's answer after DLI acted (502, 504, a cut connection), and DLI,
//! which acts. Counting rule: a stop call counts (once) when it passed authentication, had a
//! well-formed body and was forwarded to DLI, even when a fault then cut, held, replaced or
//! garbled the answer.
//!
//! The `/_sim/` admin API (see [`admin`]) drives it from another process; it is not
//! authenticated, so the stand-in must only ever listen on loopback.

pub mod admin;
mod auth;
mod credentials;
mod dli_api;
mod faults;
mod http;
mod iam;
mod jobs;
mod respond;
mod server;
mod shared;
mod state;
mod tls;
mod wire;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::{FaultSpec, StatsBody};
pub use faults::{Fault, Loss, Operation, RandomFaults, Refusal};
pub use jobs::{STOP_DELIVERED, StopOutcome};
pub use state::{AnswerShape, StopCall};
pub use tls::TlsError;

use jobs::{JOB_RUNNING, Timing};
use shared::Shared;
use state::SimState;

/// How a stand-in starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub project_id: String,
    /// The project name IAM token requests may scope to instead of the id.
    pub project_name: String,
    /// From `job_canceling` to the final status.
    pub stop_delay: Duration,
    /// From `job_savepointing` to `job_canceling`, when a savepoint was asked for.
    pub savepoint_delay: Duration,
    pub token_ttl: Duration,
    /// Serve HTTPS with a certificate from a fresh CA (see [`DliSim::ca_pem`]).
    pub tls: bool,
    /// A path the DLI and IAM APIs are served under, as it appears in URLs (percent-encoded,
    /// e.g. `/dli%20gw`), like a gateway that routes by path; empty for none.
    pub path_prefix: String,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            project_id: "0123456789abcdef0123456789abcdef".to_owned(),
            project_name: "eu-de".to_owned(),
            stop_delay: Duration::from_secs(2),
            savepoint_delay: Duration::from_secs(2),
            token_ttl: Duration::from_secs(24 * 3600),
            tls: false,
            path_prefix: String::new(),
        }
    }
}

/// A running stand-in. Clones share it; it stops when the last clone is dropped or on
/// [`DliSim::shutdown`].
#[derive(Clone)]
pub struct DliSim {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    endpoint: String,
    ca_pem: Option<String>,
    // Dropping the sender (with the last handle) stops the server.
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for DliSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DliSim")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl DliSim {
    /// Starts on a free loopback port.
    pub async fn start(config: SimConfig) -> std::io::Result<DliSim> {
        DliSim::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<DliSim> {
        let tls = if config.tls {
            Some(tls::generate().map_err(std::io::Error::other)?)
        } else {
            None
        };
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://{local}{}", config.path_prefix);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let timing = Timing {
            stop_delay: config.stop_delay,
            savepoint_delay: config.savepoint_delay,
        };
        let state = SimState::new(
            config.project_id,
            config.project_name,
            timing,
            config.token_ttl,
        );
        let shared = Arc::new(Shared::new(state, shutdown_rx.clone()));
        let router = http::router(shared.clone(), &config.path_prefix)
            .map_err(|message| std::io::Error::new(std::io::ErrorKind::InvalidInput, message))?;
        let (acceptor, ca_pem) = match tls {
            Some(material) => (Some(material.acceptor), Some(material.ca_pem)),
            None => (None, None),
        };
        let task = tokio::spawn(server::serve(
            listener,
            acceptor,
            router,
            shared.clone(),
            shutdown_rx,
        ));
        tracing::info!(%endpoint, "DLI stand-in listening");
        Ok(DliSim {
            inner: Arc::new(Handle {
                shared,
                endpoint,
                ca_pem,
                shutdown,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// The base URL of DLI and IAM, e.g. `http://127.0.0.1:43117`, with the path prefix if any.
    pub fn endpoint(&self) -> String {
        self.inner.endpoint.clone()
    }

    pub fn project_id(&self) -> String {
        self.state().project_id.clone()
    }

    /// The CA to trust when serving TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.inner.ca_pem.clone()
    }

    pub fn add_ak_sk(&self, ak: &str, sk: &str) {
        self.state().creds.add_ak_sk(ak, sk);
    }

    /// Temporary credentials: calls must also carry `X-Security-Token: token`.
    pub fn add_temporary_ak_sk(&self, ak: &str, sk: &str, token: &str) {
        self.state().creds.add_temporary_ak_sk(ak, sk, token);
    }

    pub fn add_iam_user(&self, domain: &str, user: &str, password: &str) {
        self.state().creds.add_iam_user(domain, user, password);
    }

    /// A token accepted as `X-Auth-Token` without ever expiring.
    pub fn add_static_token(&self, token: &str) {
        self.state().creds.add_static_token(token);
    }

    pub fn add_running_jobs(&self, ids: &[i64]) {
        for id in ids {
            self.add_job(*id, JOB_RUNNING);
        }
    }

    /// Adds or resets a job with `status` (any DLI status string).
    pub fn add_job(&self, id: i64, status: &str) {
        self.state().put_job(id, status, Timestamp::now());
    }

    /// Adds or resets a job with its name and queue.
    pub fn add_named_job(&self, id: i64, name: &str, queue_name: &str, status: &str) {
        self.state()
            .put_named_job(id, name, queue_name, status, Timestamp::now());
    }

    /// Deletes a job, as deleting it in DLI does.
    pub fn remove_job(&self, id: i64) {
        self.state().remove_job(id);
    }

    /// How the next stops of `id` end.
    pub fn set_job_stop_outcome(&self, id: i64, outcome: StopOutcome) {
        self.state().outcomes.insert(id, outcome);
    }

    pub fn set_answer_shape(&self, shape: AnswerShape) {
        self.state().answer_shape = shape;
    }

    /// Whether job detail and list answers carry `null` for every optional field.
    pub fn set_null_optional_fields(&self, null: bool) {
        self.state().null_optional_fields = null;
    }

    /// Moves the gateway's clock (signature date check and `Date` header) off real time.
    pub fn set_clock_skew(&self, skew: SignedDuration) {
        self.state().clock_skew = skew;
    }

    /// Queues a one-shot fault for the next `op` call.
    pub fn inject(&self, op: Operation, fault: Fault) {
        self.state().faults.push(op, fault);
    }

    /// Faults still queued for `op`.
    pub fn pending_faults(&self, op: Operation) -> usize {
        self.state().faults.pending(op)
    }

    /// Drops the faults still queued for `op`.
    pub fn clear_faults(&self, op: Operation) {
        self.state().faults.clear(op);
    }

    pub fn set_random_faults(&self, random: RandomFaults) {
        self.state().faults.set_random(Some(random));
    }

    pub fn clear_random_faults(&self) {
        self.state().faults.set_random(None);
    }

    /// Releases every request held by [`Fault::Hold`] so far.
    pub fn release_held(&self) {
        self.inner.shared.release_held();
    }

    /// Requests currently held by [`Fault::Hold`].
    pub fn held_requests(&self) -> usize {
        self.inner.shared.held()
    }

    /// Waits until at least `count` requests are held; false if that did not happen within
    /// `timeout`. Release only after this, since a release lets go of requests held *so far*.
    pub async fn wait_held(&self, count: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.held_requests() < count {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stop calls that named `job_id` (see the counting rule in the module docs).
    pub fn stop_calls(&self, job_id: i64) -> usize {
        self.state()
            .stats
            .stop_calls
            .get(&job_id)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_stop_calls(&self) -> usize {
        self.state().stats.total_stop_calls
    }

    pub fn stop_call_log(&self) -> Vec<StopCall> {
        self.state().stats.stop_log.clone()
    }

    /// The status DLI reports for the job now.
    pub fn job_status(&self, job_id: i64) -> Option<String> {
        self.state()
            .view(job_id, Timestamp::now())
            .map(|(_, view)| view.status)
    }

    /// Whether DLI, as the stand-in plays it, took a stop for the job that is to succeed: its
    /// own record of what it did, not a reading of the statuses it reports.
    pub fn stopped_by_a_call(&self, job_id: i64) -> bool {
        self.state()
            .jobs
            .get(&job_id)
            .and_then(|job| job.stop.as_ref())
            .is_some_and(|stop| stop.outcome == StopOutcome::Succeed)
    }

    /// The savepoint path DLI reports for the job now.
    pub fn savepoint_path(&self, job_id: i64) -> Option<String> {
        self.state()
            .view(job_id, Timestamp::now())
            .and_then(|(_, view)| view.savepoint_path)
    }

    pub fn token_issues(&self) -> usize {
        self.state().stats.token_issues
    }

    pub fn detail_calls(&self) -> usize {
        self.state().stats.detail_calls
    }

    pub fn list_calls(&self) -> usize {
        self.state().stats.list_calls
    }

    /// Stops serving (for every clone) and waits until the listener is closed.
    pub async fn shutdown(self) {
        self.inner.shutdown.send_replace(true);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "the DLI stand-in's server task failed");
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.inner.shared.state()
    }
}
