//! Accepts connections (plain or TLS) and serves the router on each, adding the headers every
//! answer carries and dropping connections whose answer is marked [`CutConnection`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::sim::http::{CutConnection, RequestId};
use crate::sim::shared::Shared;

/// Why a connection was closed without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection cut on purpose by an injected fault")]
struct Cut;

/// Serves until `shutdown` turns true or its sender is dropped; open connections are dropped then.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, tls.clone(), router.clone(), shared.clone()));
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut shutdown) => break,
        }
    }
}

/// Resolves once the stand-in is told to stop or all its handles are gone.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which is a stop too.
    let _ = shutdown.wait_for(|stopped| *stopped).await;
}

async fn serve_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    router: Router,
    shared: Arc<Shared>,
) {
    match tls {
        None => serve_io(stream, router, shared).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(stream) => serve_io(stream, router, shared).await,
            Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
        },
    }
}

async fn serve_io<S>(io: S, router: Router, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |mut req: Request<Incoming>| {
        let router = router.clone();
        let shared = shared.clone();
        async move {
            let request_id = shared.ids.next_hex();
            req.extensions_mut().insert(RequestId(request_id.clone()));
            tracing::debug!(%request_id, method = %req.method(), uri = %req.uri(), "request");
            let Ok(mut response) = router.oneshot(req).await;
            if response.extensions().get::<CutConnection>().is_some() {
                return Err(Cut);
            }
            let date = shared.state().gateway_now(Timestamp::now());
            add_standard_headers(&mut response, &request_id, date);
            Ok::<_, Cut>(response)
        }
    });
    if let Err(e) = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
    {
        tracing::debug!(error = %e, "connection closed");
    }
}

fn add_standard_headers<B>(response: &mut Response<B>, request_id: &str, date: Timestamp) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&http_date(date)) {
        headers.insert(axum::http::header::DATE, value);
    }
}

/// RFC 9110 IMF-fixdate, from the gateway's (possibly skewed) clock.
fn http_date(at: Timestamp) -> String {
    at.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdate() {
        let at: Timestamp = "1994-11-06T08:49:37Z".parse().unwrap();
        assert_eq!(http_date(at), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
