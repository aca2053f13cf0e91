//! `dli-stop-operator run`: wires the controller, the HTTP server and leader election into
//! one process that stops cleanly on SIGTERM.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::controller::{self, Context, DefaultConnection, RunArgs, Settings, Tenancy};
use crate::dli::connection::Connection;
use crate::dli::{ClientOptions, DliClient};
use crate::error_chain::ErrorChain;
use crate::leader::{self, LeaderConfig};
use crate::metrics::Metrics;
use crate::server::{self, Health};

/// Why the operator could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot reach the Kubernetes API (check KUBECONFIG or the in-cluster service account)")]
    Kubernetes(#[source] kube::Error),
    #[error("the DLI_* environment variables do not make a valid connection: {0}")]
    EnvConnection(String),
    #[error("cannot serve metrics and health on {addr}")]
    Server {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("leader election failed")]
    Leader(#[source] leader::LeaderError),
}

/// Installs the process-wide TLS crypto provider. kube and the DLI client both use rustls with
/// ring; installing it once, first, keeps rustls from having to guess.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A name for this process: the pod name (or host name) plus a per-process suffix.
pub fn process_identity(pod_name: Option<&str>) -> String {
    let base = pod_name
        .map(str::to_string)
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "dli-stop-operator".to_string());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{base}/{}-{started}", std::process::id())
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    install_crypto_provider();
    let client = kube::Client::try_default()
        .await
        .map_err(RunError::Kubernetes)?;
    let metrics = Metrics::new();
    let health = Health::new();
    let holder = process_identity(args.pod_name.as_deref());
    let options = ClientOptions {
        connect_timeout: args.dli_connect_timeout,
        request_timeout: args.dli_request_timeout,
        ..ClientOptions::default()
    };
    let default_connection = default_connection(&args, &options, &metrics)?;
    info!(
        identity = %holder,
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        default_connection = %describe(&default_connection),
        "starting dli-stop-operator"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown signal received: finishing reconciles in flight");
        let _ = stop_tx.send(true);
    });

    let listener = server::bind(args.metrics_addr)
        .await
        .map_err(|source| RunError::Server {
            addr: args.metrics_addr,
            source,
        })?;
    let mut server_stop = stop_rx.clone();
    let server_task = tokio::spawn(server::serve_listener(
        listener,
        metrics.clone(),
        health.clone(),
        async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        },
    ));

    // Without leader election this process always leads; the sender lives as long as `run`.
    let (_always_leader, always_leader_rx) = watch::channel(true);
    let (leader_rx, leader_handle) = if args.leader_elect {
        let namespace = args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| args.operator_namespace.clone());
        let config = LeaderConfig {
            lease_duration: args.lease_duration,
            // A third of the duration leaves two renewals before the lease expires.
            renew_interval: (args.lease_duration / 3).max(std::time::Duration::from_secs(1)),
            ..LeaderConfig::new(args.lease_name.clone(), namespace, holder.clone())
        };
        let (rx, handle) = leader::elect(client.clone(), config, metrics.clone())
            .await
            .map_err(RunError::Leader)?;
        (rx, Some(handle))
    } else {
        metrics.set_leader(true);
        (always_leader_rx, None)
    };

    let ctx = Arc::new(Context::new(
        client,
        default_connection,
        options,
        Tenancy::from_args(&args),
        metrics,
        holder,
        Settings::from_args(&args),
    ));
    health.set_ready(true);
    controller::run_while_leader(
        ctx,
        args.namespace.clone(),
        args.concurrency,
        leader_rx,
        stop_rx,
    )
    .await;
    health.set_ready(false);
    if let Some(handle) = leader_handle {
        handle.release().await;
    }
    match server_task.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "the HTTP server stopped with an error"),
        Err(error) => error!(%error, "the HTTP server task failed"),
    }
    info!("dli-stop-operator stopped");
    Ok(())
}

fn default_connection(
    args: &RunArgs,
    options: &ClientOptions,
    metrics: &Metrics,
) -> Result<DefaultConnection, RunError> {
    if std::env::var_os("DLI_ENDPOINT").is_some() {
        let connection = Connection::from_env(|key| std::env::var(key).ok())
            .map_err(|e| RunError::EnvConnection(ErrorChain(&e).to_string()))?;
        let client = DliClient::new(connection, options.clone())
            .map_err(|e| RunError::EnvConnection(ErrorChain(&e).to_string()))?
            .with_metrics(metrics.clone());
        return Ok(DefaultConnection::Env(Arc::new(client)));
    }
    Ok(DefaultConnection::Secret {
        namespace: args.operator_namespace.clone(),
        name: args.default_connection_secret.clone(),
    })
}

fn describe(connection: &DefaultConnection) -> String {
    match connection {
        DefaultConnection::Env(_) => "DLI_* environment variables".to_string(),
        DefaultConnection::Secret { namespace, name } => format!("Secret {namespace}/{name}"),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
