//! Flags of `dli-stop-operator run`; every flag can also come from the environment.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::tenancy::{DefaultConnectionNamespaces, Tenancy, parse_namespaces};
use crate::telemetry::LogFormat;

/// Parses a flag's duration: a bare number is whole seconds (`30`), anything else is read by
/// jiff's friendly or ISO 8601 format (`30s`, `5m`, `1h30m`, `500ms`, `PT5M`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let signed: jiff::SignedDuration = value
        .parse()
        .map_err(|_| format!("`{value}` is not a duration: write e.g. 30s, 5m, 1h30m or 500ms"))?;
    Duration::try_from(signed).map_err(|_| format!("`{value}` is negative: write 0s or more"))
}

/// Settings of the controller process.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Watch JobStopRequests in this namespace only (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// The namespace the operator runs in; holds the default connection Secret and the Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "dli-stop-operator")]
    pub operator_namespace: String,

    /// Secret in the operator namespace used when a request names no connectionRef
    /// (ignored when DLI_ENDPOINT is set: the DLI_* variables are the default then).
    #[arg(long, env = "DLI_CONNECTION_SECRET", default_value = "dli-connection")]
    pub default_connection_secret: String,

    /// Namespaces whose requests may use the default connection: names separated by commas,
    /// or `*` for all (default: the operator namespace only; it always may).
    #[arg(long, env = "DEFAULT_CONNECTION_NAMESPACES", value_name = "NAMES|*", value_parser = parse_namespaces)]
    pub default_connection_namespaces: Option<DefaultConnectionNamespaces>,

    /// Let connection Secrets of requests' namespaces reach loopback, link-local, private and
    /// other special addresses (a DLI stand-in, a private gateway); refused by default.
    #[arg(long, env = "ALLOW_PRIVATE_ENDPOINTS")]
    pub allow_private_endpoints: bool,

    /// How many requests are reconciled at once.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,

    /// Timeout to connect to DLI or IAM.
    #[arg(long, env = "DLI_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub dli_connect_timeout: Duration,

    /// Timeout of one DLI call, answer included.
    #[arg(long, env = "DLI_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub dli_request_timeout: Duration,

    /// First delay before retrying a stop call that did not reach DLI.
    #[arg(long, env = "RETRY_INITIAL_BACKOFF", default_value = "2s", value_parser = parse_duration)]
    pub retry_initial_backoff: Duration,

    /// Longest delay between retries of a stop call that did not reach DLI.
    #[arg(long, env = "RETRY_MAX_BACKOFF", default_value = "5m", value_parser = parse_duration)]
    pub retry_max_backoff: Duration,

    /// Shortest delay between two job-detail polls while confirming (and before resolving an
    /// unanswered call); the last poll before the confirm timeout may come sooner.
    #[arg(long, env = "CONFIRM_POLL_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub confirm_poll_interval: Duration,

    /// How long an unanswered stop call is resolved through job detail (counted from its
    /// try) before the request ends Unknown with the last error; the call is never resent.
    #[arg(long, env = "RESOLVE_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub resolve_timeout: Duration,

    /// How long a claim's Submitting Event waits for the call's outcome, which replaces it when
    /// it comes first; 0s publishes every Submitting Event at once.
    #[arg(long, env = "SUBMITTING_EVENT_DELAY", default_value = "2s", value_parser = parse_duration)]
    pub submitting_event_delay: Duration,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Reconcile only while holding a Lease, so several replicas can run.
    #[arg(long, env = "LEADER_ELECT")]
    pub leader_elect: bool,

    /// Name of the Lease used for leader election.
    #[arg(long, env = "LEASE_NAME", default_value = "dli-stop-operator")]
    pub lease_name: String,

    /// Namespace of the Lease (default: the operator namespace).
    #[arg(long, env = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a Lease stays valid without renewal.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// Name of this replica, for the Lease and the claims it writes.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
}

// Here rather than in `tenancy`, so the flags depend on the tenancy rules and not both ways.
impl Tenancy {
    pub fn from_args(args: &RunArgs) -> Tenancy {
        Tenancy {
            operator_namespace: args.operator_namespace.clone(),
            default_connection_namespaces: args
                .default_connection_namespaces
                .clone()
                .unwrap_or_else(|| DefaultConnectionNamespaces::Only(BTreeSet::new())),
            allow_private_endpoints: args.allow_private_endpoints,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubernetes_flags() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-5s").unwrap_err().contains("negative"));
        assert!(parse_duration("").is_err());
    }

    /// The README's configuration table is where users find flags: one missing there does
    /// not exist for them.
    #[test]
    fn every_flag_and_its_variable_are_in_the_readme() {
        let readme = include_str!("../../README.md");
        let command = <RunArgs as clap::Args>::augment_args(clap::Command::new("run"));
        let mut flags = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else {
                continue;
            };
            flags += 1;
            let row = format!("| `--{long}` |");
            assert!(readme.contains(&row), "README has no row for --{long}");
            if let Some(env) = arg.get_env() {
                let env = format!("`{}`", env.to_string_lossy());
                assert!(
                    readme.contains(&env),
                    "README does not name {env} of --{long}"
                );
            }
        }
        assert!(flags > 10, "only {flags} flags found");
    }
}
