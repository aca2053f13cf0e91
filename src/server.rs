//! The operator's own HTTP endpoint: `/metrics` for Prometheus, `/healthz` and `/readyz` for
//! the kubelet probes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::{CONTENT_TYPE, Metrics};

#[derive(Debug)]
struct Probes {
    live: bool,
    ready: bool,
    not_ready_reason: String,
}

/// Liveness and readiness as the probes report them. Cheap to clone; all clones share state.
///
/// Starts live and not ready. Ready should mean "this replica can do its job", which for a
/// standby replica is waiting for the lease: keep standbys ready too, or a PodDisruptionBudget
/// would count them as down and block node drains.
#[derive(Clone, Debug)]
pub struct Health {
    probes: Arc<Mutex<Probes>>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Live, not ready ("starting").
    pub fn new() -> Self {
        Self {
            probes: Arc::new(Mutex::new(Probes {
                live: true,
                ready: false,
                not_ready_reason: "starting".to_owned(),
            })),
        }
    }

    /// Marks the process ready (or not ready, without a specific reason).
    pub fn set_ready(&self, ready: bool) {
        let mut probes = self.lock();
        probes.ready = ready;
        if !ready {
            "not ready".clone_into(&mut probes.not_ready_reason);
        }
    }

    /// Marks the process not ready and says why, for whoever reads `/readyz`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        let mut probes = self.lock();
        probes.ready = false;
        probes.not_ready_reason = reason.into();
    }

    /// Marks the process live or dead; a dead process gets restarted by the kubelet.
    pub fn set_live(&self, live: bool) {
        self.lock().live = live;
    }

    /// Whether `/healthz` answers 200.
    pub fn is_live(&self) -> bool {
        self.lock().live
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.lock().ready
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Probes> {
        // The guarded data is three plain fields, always consistent, so a panic elsewhere
        // while holding the lock does not make it unusable.
        self.probes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    health: Health,
}

/// The routes, without a listener: for embedding and for tests.
pub fn router(metrics: Metrics, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, health })
}

/// Binds a TCP listener; with port 0 the caller learns the chosen port from `local_addr()`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Binds `addr` and serves until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = bind(addr).await?;
    serve_listener(listener, metrics, health, shutdown).await
}

/// Serves on an already bound listener (see [`bind`]) until `shutdown` completes.
pub async fn serve_listener(
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.health.is_live() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not live\n")
    }
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let probes = state.health.lock();
    if probes.ready {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", probes.not_ready_reason),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, Option<String>, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn metrics_are_served_as_openmetrics_text() {
        let metrics = Metrics::new();
        metrics.set_leader(true);
        let (status, content_type, body) = get(router(metrics, Health::new()), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE));
        assert!(body.contains("dli_stop_operator_leader 1\n"), "{body}");
    }

    #[tokio::test]
    async fn a_new_process_is_live_but_not_ready() {
        let health = Health::new();
        let app = router(Metrics::new(), health.clone());
        assert_eq!(get(app.clone(), "/healthz").await.0, StatusCode::OK);
        let (status, _, body) = get(app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "not ready: starting\n");
    }

    #[tokio::test]
    async fn readiness_follows_the_controller_and_says_why_not() {
        let health = Health::new();
        let app = router(Metrics::new(), health.clone());
        health.set_ready(true);
        assert_eq!(
            get(app.clone(), "/readyz").await,
            (
                StatusCode::OK,
                Some("text/plain; charset=utf-8".into()),
                "ok\n".into()
            )
        );
        health.set_not_ready("watch on JobStopRequest failed");
        let (status, _, body) = get(app.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "not ready: watch on JobStopRequest failed\n");
        health.set_ready(false);
        assert_eq!(get(app, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_dead_process_fails_liveness() {
        let health = Health::new();
        let app = router(Metrics::new(), health.clone());
        health.set_live(false);
        let (status, _, body) = get(app, "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "not live\n");
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        let app = router(Metrics::new(), Health::new());
        assert_eq!(get(app, "/debug").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn serves_on_loopback_and_stops_on_shutdown() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = Health::new();
        health.set_ready(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_listener(listener, Metrics::new(), health, async {
            let _ = stopped.await;
        }));

        // reqwest is built without a default TLS provider; plain HTTP still wants one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let response = client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let metrics = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert!(metrics.text().await.unwrap().contains("# EOF"));

        stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("server stops after shutdown")
            .unwrap()
            .unwrap();
    }
}
