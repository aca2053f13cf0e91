//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! reconciles.
//!
//! kube-lease-manager acquires and renews the lease. It reports a change only when it sees
//! one, and a renewal that hangs or keeps failing is not such a change: left alone, a replica
//! cut off from the API server would go on believing it leads after its lease has expired and
//! another replica took over. So while this replica leads, it also reads the lease back every
//! half renew interval and stops leading, by its own clock, when the last renewal it has seen
//! is about to expire (what client-go calls the renew deadline).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerError, LeaseParams};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::error_chain::ErrorChain;
use crate::metrics::Metrics;

/// Leadership ends this long before the lease's expiry as seen by the local clock, to absorb
/// clock skew and the time another replica needs to notice.
const EXPIRY_MARGIN: Duration = Duration::from_secs(1);
/// First wait after a failed lease call; doubles up to the renew interval.
const MIN_ERROR_BACKOFF: Duration = Duration::from_millis(500);

/// Which lease to compete for and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderConfig {
    /// Name of the Lease object.
    pub lease_name: String,
    /// Namespace of the Lease object (normally the operator's own).
    pub lease_namespace: String,
    /// This replica's name in `spec.holderIdentity`; unique per process (the pod name, process
    /// id and start time).
    pub identity: String,
    /// How long a lease stays valid after its last renewal. At least 2s; fractions of a
    /// second are dropped (the Lease API counts whole seconds).
    pub lease_duration: Duration,
    /// How often the holder renews. At least 1s and shorter than `lease_duration`; fractions
    /// of a second are dropped.
    pub renew_interval: Duration,
}

impl LeaderConfig {
    /// Default lease duration: a crashed leader is replaced within this time.
    pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
    /// Default renew interval: a third of the duration leaves two tries before expiry.
    pub const DEFAULT_RENEW_INTERVAL: Duration = Duration::from_secs(5);

    /// A configuration with the default timings.
    pub fn new(
        lease_name: impl Into<String>,
        lease_namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            lease_name: lease_name.into(),
            lease_namespace: lease_namespace.into(),
            identity: identity.into(),
            lease_duration: Self::DEFAULT_LEASE_DURATION,
            renew_interval: Self::DEFAULT_RENEW_INTERVAL,
        }
    }
}

/// Why leader election could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The settings cannot work (bad timings, empty names).
    #[error("invalid leader election settings: {0}")]
    InvalidConfig(String),
    /// The Lease could not be read or created (RBAC, API server down, ...).
    #[error("cannot use lease {namespace}/{name}")]
    Lease {
        /// Namespace of the lease.
        namespace: String,
        /// Name of the lease.
        name: String,
        /// What the lease manager reported.
        #[source]
        source: LeaseManagerError,
    },
}

/// Lease timings in the whole seconds kube-lease-manager works with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timing {
    duration_secs: u64,
    /// Renew this long before expiry: `duration - renew_interval`.
    grace_secs: u64,
}

impl Timing {
    fn renew_interval(self) -> Duration {
        Duration::from_secs(self.duration_secs - self.grace_secs)
    }

    fn duration(self) -> Duration {
        Duration::from_secs(self.duration_secs)
    }
}

fn timing(config: &LeaderConfig) -> Result<Timing, LeaderError> {
    let invalid = |why: String| Err(LeaderError::InvalidConfig(why));
    if config.lease_name.is_empty() || config.lease_namespace.is_empty() {
        return invalid("the lease name and namespace must not be empty".into());
    }
    if config.identity.is_empty() {
        return invalid("the identity must not be empty (set POD_NAME)".into());
    }
    // The Lease API counts in whole seconds; fractions are dropped rather than refused so that
    // derived values (a third of the duration) just work.
    let duration_secs = config.lease_duration.as_secs();
    let renew_secs = config.renew_interval.as_secs();
    if duration_secs < 2 || duration_secs > i32::MAX as u64 {
        return invalid(format!(
            "lease duration must be at least 2s, got {duration_secs}s"
        ));
    }
    if renew_secs == 0 || renew_secs >= duration_secs {
        return invalid(format!(
            "renew interval must be at least 1s and shorter than the lease duration ({duration_secs}s), got {renew_secs}s"
        ));
    }
    Ok(Timing {
        duration_secs,
        grace_secs: duration_secs - renew_secs,
    })
}

/// How much longer `identity`'s hold on `lease` lasts at `now`, by the lease's own record:
/// `None` when someone else (or nobody) holds it or the hold has run out.
fn remaining_hold(
    lease: &Lease,
    identity: &str,
    fallback_duration: Duration,
    now: jiff::Timestamp,
) -> Option<Duration> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = spec
        .lease_duration_seconds
        .and_then(|secs| u64::try_from(secs).ok())
        .map_or(fallback_duration, Duration::from_secs);
    let expiry = renewed
        .checked_add(jiff::SignedDuration::try_from(duration).ok()?)
        .ok()?;
    let left = Duration::try_from(expiry.duration_since(now)).ok()?;
    (!left.is_zero()).then_some(left)
}

/// What this replica knows about its own leadership. Pure, so the rules can be tested.
#[derive(Debug, Default)]
struct Tracker {
    /// What kube-lease-manager last said.
    manager_holds: bool,
    /// Until when the last renewal we saw on the lease keeps us leader (margin applied).
    lead_until: Option<Instant>,
}

impl Tracker {
    fn on_manager_changed(&mut self, holds: bool) {
        self.manager_holds = holds;
        // Leadership starts only once the lease itself has been read back: the manager also
        // says "holder" for a lease a previous process with the same identity left behind.
        self.lead_until = None;
    }

    fn on_lease_read(&mut self, remaining: Option<Duration>, now: Instant) {
        self.lead_until = if self.manager_holds {
            remaining
                .and_then(|left| left.checked_sub(EXPIRY_MARGIN))
                .filter(|left| !left.is_zero())
                .map(|left| now + left)
        } else {
            None
        };
    }

    fn on_deadline(&mut self, now: Instant) {
        if self.lead_until.is_some_and(|until| until <= now) {
            self.lead_until = None;
        }
    }

    fn leading(&self, now: Instant) -> bool {
        self.manager_holds && self.lead_until.is_some_and(|until| now < until)
    }

    fn deadline(&self) -> Option<Instant> {
        self.lead_until
    }
}

/// Keeps the election running; dropping it or calling [`release`](Self::release) stops it
/// and gives the lease up.
#[derive(Debug)]
pub struct LeaderHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl LeaderHandle {
    /// Stops renewing, reports "not leader" and clears the lease's holder so another replica
    /// can take over without waiting for it to expire. Returns once that is done (or has
    /// failed, which only delays the hand-over to the lease expiry).
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LeaderHandle {
    fn drop(&mut self) {
        // The task sees the closed channel and releases the lease in the background.
        drop(self.stop.take());
    }
}

/// Starts competing for the lease. The receiver is `true` while this replica leads; it turns
/// `false` when the lease is lost or cannot be renewed in time, before it expires for others.
///
/// Fails only when the settings are invalid or the lease cannot be created or read at all
/// (missing RBAC, unreachable API server); later API errors are retried with backoff.
pub async fn elect(
    client: kube::Client,
    config: LeaderConfig,
    metrics: Metrics,
) -> Result<(watch::Receiver<bool>, LeaderHandle), LeaderError> {
    let timing = timing(&config)?;
    let params = LeaseParams::new(
        config.identity.clone(),
        timing.duration_secs,
        timing.grace_secs,
    );
    let manager = LeaseManager::new(
        client.clone(),
        config.lease_name.clone(),
        config.lease_namespace.clone(),
        params,
        LeaseCreateMode::AutoCreate,
    )
    .await
    .map_err(|source| LeaderError::Lease {
        namespace: config.lease_namespace.clone(),
        name: config.lease_name.clone(),
        source,
    })?;
    let leases: Api<Lease> = Api::namespaced(client, &config.lease_namespace);

    metrics.set_leader(false);
    let (sender, receiver) = watch::channel(false);
    let (stop, stopped) = oneshot::channel();
    let election = Election {
        manager,
        leases,
        config,
        timing,
        metrics,
        sender,
    };
    let task = tokio::spawn(election.run(stopped));
    Ok((
        receiver,
        LeaderHandle {
            stop: Some(stop),
            task: Some(task),
        },
    ))
}

struct Election {
    manager: LeaseManager,
    leases: Api<Lease>,
    config: LeaderConfig,
    timing: Timing,
    metrics: Metrics,
    sender: watch::Sender<bool>,
}

impl Election {
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let mut tracker = Tracker::default();
        let mut backoff: Option<Duration> = None;
        let mut read_back = tokio::time::interval(self.timing.renew_interval() / 2);
        read_back.set_missed_tick_behavior(MissedTickBehavior::Delay);

        'election: loop {
            let pause = backoff;
            let changed = async {
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
                self.manager.changed().await
            };
            tokio::pin!(changed);

            let outcome = loop {
                let deadline = tracker.deadline();
                tokio::select! {
                    biased;
                    _ = &mut stopped => break 'election,
                    outcome = &mut changed => break outcome,
                    () = sleep_until(deadline), if deadline.is_some() => {
                        tracker.on_deadline(Instant::now());
                        if !tracker.leading(Instant::now()) {
                            tracing::warn!(
                                lease = %self.config.lease_name,
                                "could not renew the leader lease before it expires; stepping down",
                            );
                        }
                    }
                    _ = read_back.tick(), if tracker.manager_holds => {
                        if let Some(remaining) = self.read_back().await {
                            tracker.on_lease_read(remaining, Instant::now());
                        }
                    }
                }
                self.publish(tracker.leading(Instant::now()));
            };

            match outcome {
                Ok(holds) => {
                    backoff = None;
                    tracker.on_manager_changed(holds);
                    if holds {
                        read_back.reset_immediately();
                    }
                }
                Err(error) => {
                    let next = backoff.map_or(MIN_ERROR_BACKOFF, |b| b * 2);
                    backoff = Some(next.min(self.timing.renew_interval()));
                    tracing::warn!(
                        lease = %self.config.lease_name,
                        error = %ErrorChain(&error),
                        "leader lease call failed; retrying",
                    );
                }
            }
            self.publish(tracker.leading(Instant::now()));
        }

        self.publish(false);
        match tokio::time::timeout(self.timing.renew_interval(), self.manager.release()).await {
            Ok(Ok(())) => {
                tracing::info!(lease = %self.config.lease_name, "released the leader lease")
            }
            Ok(Err(error)) => tracing::warn!(
                lease = %self.config.lease_name,
                error = %ErrorChain(&error),
                "could not release the leader lease; it expires by itself",
            ),
            Err(_) => tracing::warn!(
                lease = %self.config.lease_name,
                "releasing the leader lease timed out; it expires by itself",
            ),
        }
    }

    /// Reads the lease back: `Some(remaining hold)` when the read worked, `None` when it did
    /// not (the deadline from the last good read still applies).
    async fn read_back(&self) -> Option<Option<Duration>> {
        let read = tokio::time::timeout(
            self.timing.renew_interval(),
            self.leases.get_opt(&self.config.lease_name),
        )
        .await;
        match read {
            Ok(Ok(lease)) => Some(lease.and_then(|lease| {
                remaining_hold(
                    &lease,
                    &self.config.identity,
                    self.timing.duration(),
                    jiff::Timestamp::now(),
                )
            })),
            Ok(Err(error)) => {
                tracing::debug!(error = %ErrorChain(&error), "reading the leader lease back failed");
                None
            }
            Err(_) => {
                tracing::debug!("reading the leader lease back timed out");
                None
            }
        }
    }

    fn publish(&self, leading: bool) {
        let changed = self.sender.send_if_modified(|current| {
            let changed = *current != leading;
            *current = leading;
            changed
        });
        if changed {
            self.metrics.set_leader(leading);
            if leading {
                tracing::info!(
                    lease = %self.config.lease_name,
                    identity = %self.config.identity,
                    "became leader",
                );
            } else {
                tracing::info!(
                    lease = %self.config.lease_name,
                    identity = %self.config.identity,
                    "no longer leader",
                );
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn config(duration: u64, renew: u64) -> LeaderConfig {
        LeaderConfig {
            lease_duration: Duration::from_secs(duration),
            renew_interval: Duration::from_secs(renew),
            ..LeaderConfig::new("dli-stop-operator", "dli-stop-operator", "pod-a")
        }
    }

    fn lease(holder: Option<&str>, renewed: jiff::Timestamp, duration: Option<i32>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: duration,
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn defaults_renew_three_times_per_lease() {
        let timing = timing(&LeaderConfig::new("l", "ns", "me")).unwrap();
        assert_eq!(
            timing,
            Timing {
                duration_secs: 15,
                grace_secs: 10
            }
        );
        assert_eq!(timing.renew_interval(), Duration::from_secs(5));
    }

    #[test]
    fn fractions_of_a_second_are_dropped() {
        let mut derived = config(10, 1);
        derived.renew_interval = derived.lease_duration / 3;
        let timing = timing(&derived).unwrap();
        assert_eq!(
            timing,
            Timing {
                duration_secs: 10,
                grace_secs: 7
            }
        );
        assert_eq!(timing.renew_interval(), Duration::from_secs(3));
    }

    #[test]
    fn timings_that_cannot_keep_a_lease_are_refused() {
        for (duration, renew) in [(15, 15), (15, 20), (15, 0), (1, 1)] {
            let error = timing(&config(duration, renew)).unwrap_err();
            assert!(
                matches!(error, LeaderError::InvalidConfig(_)),
                "{duration}/{renew}"
            );
        }
        let mut too_short = config(15, 5);
        too_short.renew_interval = Duration::from_millis(900);
        assert!(timing(&too_short).is_err());
        let mut anonymous = config(15, 5);
        anonymous.identity.clear();
        assert!(
            timing(&anonymous)
                .unwrap_err()
                .to_string()
                .contains("POD_NAME")
        );
    }

    #[test]
    fn our_hold_lasts_until_renewal_plus_duration() {
        let now = jiff::Timestamp::now();
        let renewed = now - jiff::SignedDuration::from_secs(4);
        let left = remaining_hold(
            &lease(Some("pod-a"), renewed, Some(15)),
            "pod-a",
            Duration::from_secs(30),
            now,
        );
        assert_eq!(left, Some(Duration::from_secs(11)));
    }

    #[test]
    fn the_configured_duration_applies_when_the_lease_has_none() {
        let now = jiff::Timestamp::now();
        let left = remaining_hold(
            &lease(Some("pod-a"), now, None),
            "pod-a",
            Duration::from_secs(15),
            now,
        );
        assert_eq!(left, Some(Duration::from_secs(15)));
    }

    #[test]
    fn someone_elses_or_an_expired_lease_is_no_hold() {
        let now = jiff::Timestamp::now();
        let fallback = Duration::from_secs(15);
        assert_eq!(
            remaining_hold(&lease(Some("pod-b"), now, Some(15)), "pod-a", fallback, now),
            None
        );
        assert_eq!(
            remaining_hold(&lease(None, now, Some(15)), "pod-a", fallback, now),
            None
        );
        let old = now - jiff::SignedDuration::from_secs(16);
        assert_eq!(
            remaining_hold(&lease(Some("pod-a"), old, Some(15)), "pod-a", fallback, now),
            None
        );
        assert_eq!(
            remaining_hold(&Lease::default(), "pod-a", fallback, now),
            None
        );
    }

    #[test]
    fn leadership_starts_only_after_the_lease_is_read_back() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        tracker.on_manager_changed(true);
        assert!(!tracker.leading(now));
        tracker.on_lease_read(Some(Duration::from_secs(15)), now);
        assert!(tracker.leading(now));
        assert_eq!(tracker.deadline(), Some(now + Duration::from_secs(14)));
    }

    #[test]
    fn leadership_ends_before_the_last_seen_renewal_expires() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        tracker.on_manager_changed(true);
        tracker.on_lease_read(Some(Duration::from_secs(15)), now);
        let later = now + Duration::from_secs(14);
        tracker.on_deadline(later);
        assert!(!tracker.leading(later));
        assert_eq!(
            tracker.deadline(),
            None,
            "a passed deadline must not fire again"
        );
        // A renewal that went through after all restores leadership.
        tracker.on_lease_read(Some(Duration::from_secs(10)), later);
        assert!(tracker.leading(later));
    }

    #[test]
    fn a_lease_taken_by_another_replica_ends_leadership_at_once() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        tracker.on_manager_changed(true);
        tracker.on_lease_read(Some(Duration::from_secs(15)), now);
        tracker.on_lease_read(None, now);
        assert!(!tracker.leading(now));
    }

    #[test]
    fn a_lease_about_to_expire_gives_no_leadership() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        tracker.on_manager_changed(true);
        tracker.on_lease_read(Some(Duration::from_millis(800)), now);
        assert!(!tracker.leading(now));
    }

    #[test]
    fn the_manager_losing_the_lease_ends_leadership() {
        let now = Instant::now();
        let mut tracker = Tracker::default();
        tracker.on_manager_changed(true);
        tracker.on_lease_read(Some(Duration::from_secs(15)), now);
        tracker.on_manager_changed(false);
        assert!(!tracker.leading(now));
        tracker.on_lease_read(Some(Duration::from_secs(15)), now);
        assert!(
            !tracker.leading(now),
            "a stale read must not make a non-holder lead"
        );
    }
}
