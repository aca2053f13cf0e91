//! The one place that decides what a stop call's outcome means for the once-per-generation
//! promise: may it be retried, must it be resolved read-only through job detail, or
//! is it final?

use std::time::Duration;

use super::error::DliError;
use super::mapping::StopAnswer;
use super::wire::ErrorBody;

/// How a failed call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeClass {
    /// DLI answered with an error body: final, retrying would be refused the same way.
    Rejected,
    /// The call certainly did not reach DLI (or DLI certainly did not act on it): safe to retry.
    NotDelivered,
    /// The call may have reached DLI: never resend, resolve with the job-detail API.
    Ambiguous,
}

/// Every outcome of a batch-stop call.
#[derive(Debug)]
pub enum StopOutcome {
    Delivered(StopAnswer),
    Rejected(DliError),
    NotDelivered {
        error: DliError,
        retry_after: Option<Duration>,
    },
    Ambiguous(DliError),
}

/// Sorts a batch-stop result into the protocol's four cases.
pub fn classify(result: Result<StopAnswer, DliError>) -> StopOutcome {
    match result {
        Ok(answer) => StopOutcome::Delivered(answer),
        Err(error) => match error.class() {
            OutcomeClass::Rejected => StopOutcome::Rejected(error),
            OutcomeClass::NotDelivered => StopOutcome::NotDelivered {
                retry_after: error.retry_after(),
                error,
            },
            OutcomeClass::Ambiguous => StopOutcome::Ambiguous(error),
        },
    }
}

/// Gateway error codes that a 503 carries only when the gateway refused the call itself,
/// before forwarding it to DLI (the API gateway's published error table).
const NOT_FORWARDED_503_CODES: [&str; 2] = [
    // The throttling threshold has been reached.
    "APIGW.0308",
    // IAM is unavailable: authentication, which runs before forwarding, could not be done.
    "APIGW.0613",
];

/// What an error answer proves about delivery: the one table of retryable, final and
/// ambiguous answers. Only an answer that proves DLI never saw the call may be retried.
///
/// | answer | class | why |
/// |---|---|---|
/// | 401, 403 | not delivered | the gateway (or IAM behind it) refused the credentials before forwarding |
/// | 429 | not delivered | the gateway throttles before forwarding |
/// | 503 with `APIGW.0308` or `APIGW.0613` | not delivered | the gateway says it did not forward |
/// | 503 otherwise (DLI's body, another code, no body) | ambiguous | DLI or a proxy behind the gateway may have acted |
/// | 502, 504 | ambiguous | the gateway lost or timed out on DLI's answer after forwarding; DLI may have acted |
/// | 500 and every other 5xx | ambiguous | DLI may have acted before failing |
/// | 2xx with a DLI error body | final | DLI refused the call in its answer |
/// | any other 4xx | final | DLI (or the gateway) refused the input; the same call would be refused again |
/// | anything else (1xx, 3xx) | ambiguous | nothing proves what happened |
pub fn class_of_answer(status: u16, body: Option<&ErrorBody>) -> OutcomeClass {
    match status {
        401 | 403 | 429 => OutcomeClass::NotDelivered,
        503 if body
            .is_some_and(|body| NOT_FORWARDED_503_CODES.contains(&body.error_code.as_str())) =>
        {
            OutcomeClass::NotDelivered
        }
        200..=299 if body.is_some() => OutcomeClass::Rejected,
        400..=499 => OutcomeClass::Rejected,
        _ => OutcomeClass::Ambiguous,
    }
}

impl DliError {
    /// How this failure counts for a POST that changes state (the batch stop).
    ///
    /// Only a failed connect is certainly "not delivered": once a connection exists, the HTTP
    /// client cannot tell whether the request bytes left before a failure, so every transport
    /// failure after that point is ambiguous. A success status with an unreadable or oversized
    /// body is ambiguous too: DLI acted, but we cannot say on what.
    pub fn class(&self) -> OutcomeClass {
        match self {
            DliError::Connect { .. } | DliError::Unsendable { .. } | DliError::IamToken { .. } => {
                OutcomeClass::NotDelivered
            }
            DliError::Timeout { .. } | DliError::Transport { .. } => OutcomeClass::Ambiguous,
            DliError::Api { status, body, .. } => class_of_answer(*status, Some(body)),
            DliError::Http { status, .. } => class_of_answer(*status, None),
            DliError::TooLarge { status, .. } | DliError::Malformed { status, .. } => {
                if (200..300).contains(status) {
                    OutcomeClass::Ambiguous
                } else {
                    class_of_answer(*status, None)
                }
            }
        }
    }

    /// How long the server asked to wait before the next try (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DliError::Api { retry_after, .. } | DliError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> DliError {
        DliError::Api {
            status,
            body: Box::new(ErrorBody {
                error_code: code.into(),
                error_msg: "m".into(),
                request_id: None,
            }),
            request_id: None,
            retry_after: None,
            server_date: None,
        }
    }

    #[test]
    fn dli_error_bodies_on_4xx_are_final() {
        assert_eq!(api(400, "DLI.0001").class(), OutcomeClass::Rejected);
        assert_eq!(api(400, "DLI.16001").class(), OutcomeClass::Rejected);
        assert_eq!(api(404, "DLI.0023").class(), OutcomeClass::Rejected);
    }

    #[test]
    fn gateway_refusals_before_forwarding_are_not_delivered() {
        for (status, code) in [
            (401, "APIGW.0301"),
            (403, "APIGW.0302"),
            (401, "DLI.0013"),
            (429, "APIGW.0308"),
            (503, "APIGW.0308"),
            (503, "APIGW.0613"),
        ] {
            assert_eq!(
                api(status, code).class(),
                OutcomeClass::NotDelivered,
                "{status} {code}"
            );
        }
    }

    #[test]
    fn gateway_failures_after_forwarding_are_ambiguous() {
        // The gateway's "Backend unavailable" (502) and "Backend timeout" (504) come after it
        // forwarded the call: DLI may have stopped the jobs already.
        for status in [502, 504] {
            assert_eq!(
                api(status, "APIGW.0201").class(),
                OutcomeClass::Ambiguous,
                "{status}"
            );
        }
        assert_eq!(api(502, "APIGW.0610").class(), OutcomeClass::Ambiguous);
        assert_eq!(api(503, "DLI.0999").class(), OutcomeClass::Ambiguous);
        assert_eq!(api(503, "APIGW.0201").class(), OutcomeClass::Ambiguous);
        for status in [502, 503, 504] {
            let bare = DliError::Http {
                status,
                body_summary: String::new(),
                request_id: None,
                retry_after: None,
                server_date: None,
            };
            assert_eq!(bare.class(), OutcomeClass::Ambiguous, "{status}");
        }
    }

    #[test]
    fn a_dli_error_body_with_a_success_status_is_final() {
        assert_eq!(api(200, "DLI.0001").class(), OutcomeClass::Rejected);
    }

    #[test]
    fn transport_failures_after_connecting_are_ambiguous_and_connect_failures_are_not() {
        let connect = DliError::Connect {
            endpoint: "http://127.0.0.1:1".into(),
            detail: "refused".into(),
            tls: None,
        };
        assert_eq!(connect.class(), OutcomeClass::NotDelivered);
        let timeout = DliError::Timeout {
            timeout: Duration::from_secs(1),
        };
        assert_eq!(timeout.class(), OutcomeClass::Ambiguous);
        let cut = DliError::Transport {
            detail: "reset".into(),
        };
        assert_eq!(cut.class(), OutcomeClass::Ambiguous);
    }

    #[test]
    fn unreadable_success_answers_are_ambiguous() {
        let malformed = DliError::Malformed {
            status: 200,
            detail: "eof".into(),
            request_id: None,
        };
        assert_eq!(malformed.class(), OutcomeClass::Ambiguous);
        let large = DliError::TooLarge {
            status: 200,
            limit: 10,
            request_id: None,
        };
        assert_eq!(large.class(), OutcomeClass::Ambiguous);
        let large_429 = DliError::TooLarge {
            status: 429,
            limit: 10,
            request_id: None,
        };
        assert_eq!(large_429.class(), OutcomeClass::NotDelivered);
    }

    #[test]
    fn no_token_means_the_stop_was_never_sent() {
        let error = DliError::IamToken {
            iam_endpoint: "https://iam".into(),
            status: Some(401),
            detail: "wrong password".into(),
            tls: None,
        };
        assert_eq!(error.class(), OutcomeClass::NotDelivered);
    }

    #[test]
    fn classify_carries_retry_after_for_retries() {
        let throttled = DliError::Api {
            status: 429,
            body: Box::new(ErrorBody {
                error_code: "APIGW.0308".into(),
                error_msg: "throttled".into(),
                request_id: None,
            }),
            request_id: None,
            retry_after: Some(Duration::from_secs(7)),
            server_date: None,
        };
        match classify(Err(throttled)) {
            StopOutcome::NotDelivered { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("expected NotDelivered, got {other:?}"),
        }
        assert!(matches!(
            classify(Err(api(400, "DLI.0001"))),
            StopOutcome::Rejected(_)
        ));
        assert!(matches!(
            classify(Err(api(500, "DLI.0999"))),
            StopOutcome::Ambiguous(_)
        ));
    }
}
