//! Applies an injected fault to a call: when the operation runs and what the client gets back.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::sim::faults::{Fault, Loss, Refusal};
use crate::sim::http::{CutConnection, dli_error, gateway_error, raw_json};
use crate::sim::shared::Shared;
use crate::sim::wire::{MALFORMED_BODY, oversized_body};

/// Answers with `work` as `fault` dictates. `work` performs the operation and builds the
/// normal answer; it runs at most once, and not at all when the fault prevents the operation.
pub async fn respond<W>(
    shared: &Arc<Shared>,
    request_id: &str,
    fault: Option<Fault>,
    work: W,
) -> Response
where
    W: FnOnce() -> Response + Send + 'static,
{
    let Some(fault) = fault else {
        return work();
    };
    tracing::info!(request_id, ?fault, "injecting a fault");
    match fault {
        Fault::Latency(delay) => {
            tokio::time::sleep(delay).await;
            work()
        }
        Fault::GatewayRefuses(refusal) => refuse(refusal, request_id),
        Fault::AnswerLost { loss, dli_acted } => {
            if dli_acted {
                drop(work());
            }
            lose_answer(loss, request_id)
        }
        Fault::DliFails { dli_acted } => {
            if dli_acted {
                drop(work());
            }
            dli_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "DLI.0999",
                "Server-side errors occur.",
            )
        }
        Fault::MalformedBody => {
            drop(work());
            raw_json(MALFORMED_BODY.to_owned())
        }
        Fault::OversizedBody(bytes) => {
            drop(work());
            raw_json(oversized_body(bytes))
        }
        Fault::Hold { applied } => hold(shared.clone(), applied, work).await,
    }
}

/// The gateway's own answer to a call it does not forward.
fn refuse(refusal: Refusal, request_id: &str) -> Response {
    match refusal {
        Refusal::Throttled { retry_after_secs } => {
            let mut response = gateway_error(
                StatusCode::TOO_MANY_REQUESTS,
                "APIGW.0308",
                "The throttling threshold has been reached.",
                request_id,
            );
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Refusal::Unavailable => gateway_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "APIGW.0613",
            "The IAM service is currently unavailable.",
            request_id,
        ),
        Refusal::Cut => cut_connection(),
    }
}

/// What the gateway sends when DLI's answer does not come through.
fn lose_answer(loss: Loss, request_id: &str) -> Response {
    match loss {
        Loss::BadGateway => gateway_error(
            StatusCode::BAD_GATEWAY,
            "APIGW.0201",
            "Backend unavailable.",
            request_id,
        ),
        Loss::GatewayTimeout => gateway_error(
            StatusCode::GATEWAY_TIMEOUT,
            "APIGW.0201",
            "Backend timeout.",
            request_id,
        ),
        Loss::Cut => cut_connection(),
    }
}

fn cut_connection() -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(CutConnection);
    response
}

/// Holds the answer until released. The operation runs in its own task so that what happens
/// to it does not depend on whether the client is still connected.
async fn hold<W>(shared: Arc<Shared>, applied: bool, work: W) -> Response
where
    W: FnOnce() -> Response + Send + 'static,
{
    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let answer = if applied {
            let answer = work();
            shared.hold().await;
            answer
        } else if shared.hold().await {
            work()
        } else {
            return;
        };
        // The client may have gone away meanwhile; the operation's effect stays either way.
        let _ = answer_tx.send(answer);
    });
    answer_rx.await.unwrap_or_else(|_| {
        dli_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "DLI.0999",
            "The stand-in shut down while holding the request.",
        )
    })
}
