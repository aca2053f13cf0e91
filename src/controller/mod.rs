//! The controller: watches `JobStopRequest`s and runs the once-per-generation protocol.

mod adoption;
mod cache;
mod capped;
pub mod config;
mod deadlines;
mod dli_access;
pub mod error;
mod error_streaks;
pub mod events;
#[cfg(test)]
mod fixtures;
mod guard;
mod held_answers;
pub mod job_scope;
pub mod plan;
#[cfg(test)]
mod played_api_server;
mod reconcile;
pub mod selected;
pub mod status;
pub mod tenancy;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tracing::{Instrument, error, info, info_span, warn};

use cache::SettledRequests;
pub use config::RunArgs;
use dli_access::Connections;
pub use dli_access::DefaultConnection;
pub use error::Error;
use error_streaks::ErrorStreaks;
use events::{Announcer, Transition};
use guard::{Guarded, InvalidRequests, Unreadable};
use held_answers::HeldAnswers;
use plan::TryBounds;
pub use tenancy::Tenancy;

use crate::api::{JobStopRequest, Phase};
use crate::dli::ClientOptions;
use crate::error_chain::ErrorChain;
use crate::metrics::{Metrics, ReconcileResult};

/// Requests per page when the watch lists them.
const LIST_PAGE_SIZE: u32 = 100;
/// How often answers held from a leadership term are retried while not leading.
const HELD_ANSWER_RETRY: Duration = Duration::from_secs(2);
/// How long the last try for held answers may take on the way out.
const HELD_ANSWER_LAST_TRY: Duration = Duration::from_secs(15);

/// Timing knobs of the protocol.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The time bounds of one try, from which the claim grace follows.
    pub try_bounds: TryBounds,
    /// How long an unanswered call is resolved through job detail before it ends `Unknown`.
    pub resolve_timeout: Duration,
    pub retry_initial_backoff: Duration,
    pub retry_max_backoff: Duration,
    pub confirm_poll_interval: Duration,
    /// How often a request without a usable connection looks again.
    pub connection_retry: Duration,
    /// First delay after a reconcile error; it doubles with each failure in a row, up to
    /// `retry_max_backoff`.
    pub error_retry: Duration,
    /// How long a Submitting Event waits to be replaced by the call's outcome.
    pub submitting_event_delay: Duration,
}

impl Settings {
    pub fn from_args(args: &RunArgs) -> Self {
        Self {
            try_bounds: TryBounds::new(args.dli_connect_timeout, args.dli_request_timeout),
            resolve_timeout: args.resolve_timeout,
            retry_initial_backoff: args.retry_initial_backoff,
            retry_max_backoff: args.retry_max_backoff,
            confirm_poll_interval: args.confirm_poll_interval,
            connection_retry: Duration::from_secs(30).min(args.retry_max_backoff),
            error_retry: Duration::from_secs(10).min(args.retry_max_backoff),
            submitting_event_delay: args.submitting_event_delay,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    connections: Connections,
    announcer: Announcer,
    metrics: Metrics,
    /// Names this process in the claims it writes: pod name plus a per-process suffix, so a
    /// restarted container never mistakes its predecessor's claim for its own.
    holder: String,
    settings: Settings,
    error_streaks: ErrorStreaks,
    invalid: InvalidRequests,
    /// Answers of this process's tries not yet written.
    held: HeldAnswers,
}

impl Context {
    pub fn new(
        client: Client,
        default_connection: DefaultConnection,
        options: ClientOptions,
        tenancy: Tenancy,
        metrics: Metrics,
        holder: String,
        settings: Settings,
    ) -> Self {
        let reporter = Reporter {
            controller: "dli-stop-operator".into(),
            instance: Some(holder.clone()),
        };
        Self {
            connections: Connections::new(
                client.clone(),
                default_connection,
                options,
                tenancy,
                metrics.clone(),
            ),
            announcer: Announcer::new(
                Recorder::new(client.clone(), reporter),
                settings.submitting_event_delay,
            ),
            client,
            metrics,
            holder,
            settings,
            error_streaks: ErrorStreaks::default(),
            invalid: InvalidRequests::default(),
            held: HeldAnswers::default(),
        }
    }

    /// Tells the user about a request the operator cannot read: a log line and a Warning
    /// Event on the object (the gauge follows with the phase counts).
    fn report_unreadable(&self, unreadable: Unreadable) {
        warn!(
            namespace = unreadable.reference.namespace.as_deref().unwrap_or_default(),
            name = unreadable.reference.name.as_deref().unwrap_or_default(),
            error = %unreadable.error,
            "cannot read this request; skipping it until it is fixed or deleted"
        );
        let event = unreadable.event();
        self.announcer.announce(
            unreadable.reference,
            Transition {
                event,
                short_lived: false,
                repeats_status: false,
            },
        );
    }
}

fn error_policy(request: Arc<JobStopRequest>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx
        .error_streaks
        .failed(request.uid().as_deref().unwrap_or_default());
    let delay = plan::retry_backoff(
        failures,
        ctx.settings.error_retry,
        ctx.settings.retry_max_backoff,
        None,
    );
    warn!(
        namespace = request.namespace().unwrap_or_default(),
        name = request.name_any(),
        generation = request.metadata.generation.unwrap_or_default(),
        kind = error.label(),
        failures,
        retry_in_secs = delay.as_secs(),
        error = %ErrorChain(error),
        "reconcile failed; retrying"
    );
    Action::requeue(delay)
}

/// Runs the controller until `shutdown` resolves. Reconciles in flight finish first, so a stop
/// call that was made always gets its answer written.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Guarded, so one object that does not deserialize is skipped instead of failing every
    // list and watch of the kind.
    let api: Api<Guarded> = match namespace {
        Some(namespace) => Api::namespaced(ctx.client.clone(), namespace),
        None => Api::all(ctx.client.clone()),
    };
    let (reader, writer) = reflector::store();
    // Status writes do not change the generation; filtering on it keeps the operator's own
    // writes from triggering reconciles. Follow-ups are scheduled with requeues instead.
    // Relists come in small pages: a page is buffered and parsed whole, and the allocator
    // keeps what a large page needed (pages of 500 held 10 MiB more at rest than pages of
    // 100 with 10,000 finished requests).
    let settled = SettledRequests::default();
    let filter = settled.clone();
    let guard_ctx = ctx.clone();
    let stream = watcher(api, watcher::Config::default().page_size(LIST_PAGE_SIZE))
        .default_backoff()
        .try_filter_map(move |event| {
            let (readable, report) = guard_ctx.invalid.unguard(event);
            if let Some(unreadable) = report {
                guard_ctx.report_unreadable(unreadable);
            }
            futures::future::ready(Ok(readable))
        })
        .try_filter_map(move |event| futures::future::ready(Ok(filter.filter(event))))
        .modify(slim_for_cache)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let phases = tokio::spawn(report_phases(
        reader.clone(),
        settled,
        ctx.invalid.clone(),
        ctx.metrics.clone(),
    ));
    Controller::for_stream(stream, reader)
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(
            |request, ctx| {
                let span = info_span!(
                    "reconcile",
                    namespace = request.namespace().unwrap_or_default(),
                    name = request.name_any(),
                    generation = request.metadata.generation.unwrap_or_default(),
                );
                reconcile::reconcile(request, ctx).instrument(span)
            },
            error_policy,
            ctx.clone(),
        )
        .for_each(|result| {
            if let Err(error) = result {
                match error {
                    // Counted by the reconcile and logged by the error policy already.
                    kube::runtime::controller::Error::ReconcilerFailed(..)
                    | kube::runtime::controller::Error::ObjectNotFound(_) => {}
                    other => {
                        ctx.metrics
                            .reconcile(ReconcileResult::Error, Duration::ZERO);
                        warn!(error = %other, "controller error");
                    }
                }
            }
            futures::future::ready(())
        })
        .await;
    phases.abort();
    // Wait for the task to end, so no count it was writing can land after they are forgotten.
    let _ = phases.await;
    ctx.metrics.forget_requests_by_phase();
    info!("controller stopped");
}

/// Drops what the controller never reads from cached objects: managed fields, and the copy of
/// the whole manifest that client-side `kubectl apply` (and Argo CD) keep in an annotation.
/// Status writes go to the status subresource, which ignores metadata, so nothing is lost.
fn slim_for_cache(request: &mut JobStopRequest) {
    request.managed_fields_mut().clear();
    request
        .annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// Keeps the requests-by-phase gauge current from the watch cache and the settled requests,
/// and the count of unreadable requests.
async fn report_phases(
    reader: reflector::Store<JobStopRequest>,
    settled: SettledRequests,
    invalid: InvalidRequests,
    metrics: Metrics,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(5));
    loop {
        interval.tick().await;
        let mut counts: Vec<(&'static str, i64)> = Phase::ALL
            .iter()
            .map(|p| (p.as_str(), settled.count(*p)))
            .collect();
        for request in reader.state() {
            let phase = request
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .unwrap_or(Phase::Pending);
            if let Some(entry) = counts.iter_mut().find(|(name, _)| *name == phase.as_str()) {
                entry.1 += 1;
            }
        }
        metrics.set_requests_by_phase(&counts);
        metrics.set_invalid_requests(invalid.count());
    }
}

/// Runs the controller only while `leader` is true, and writes the answers this process
/// still holds while it is not and on the way out; returns when `shutdown` fires.
pub async fn run_while_leader(
    ctx: Arc<Context>,
    namespace: Option<String>,
    concurrency: u16,
    mut leader: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Answers held from the last term are written at once, and again every little while
        // as long as another replica leads.
        reconcile::write_held_answers(&ctx).await;
        tokio::select! {
            changed = leader.wait_for(|is_leader| *is_leader) => {
                if changed.is_err() {
                    error!("leader election ended; stopping");
                    break;
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => break,
            () = tokio::time::sleep(HELD_ANSWER_RETRY) => continue,
        }
        info!("leading: starting the controller");
        let mut lost = leader.clone();
        let mut stop = shutdown.clone();
        let until = async move {
            tokio::select! {
                _ = lost.wait_for(|is_leader| !*is_leader) => info!("lost the lease: stopping the controller"),
                _ = stop.wait_for(|stop| *stop) => {},
            }
        };
        run(ctx.clone(), namespace.as_deref(), concurrency, until).await;
    }
    // A last try for answers still held, within the shutdown grace.
    if tokio::time::timeout(HELD_ANSWER_LAST_TRY, reconcile::write_held_answers(&ctx))
        .await
        .is_err()
    {
        warn!("some stop call answers could not be written before exit");
    }
}
