//! What can go wrong talking to DLI, in the user's terms. How each failure counts for the
//! once-per-generation protocol lives in [`super::outcome`].

use std::time::Duration;

use super::wire::ErrorBody;

/// A failed DLI (or IAM) call. Every variant that got an answer carries its HTTP status and
/// `X-Request-Id`, so users can quote them to support.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DliError {
    /// No connection was made, so nothing was sent: refused, DNS, TLS handshake, connect timeout.
    #[error("cannot connect to {endpoint}: {detail}")]
    Connect {
        endpoint: String,
        detail: String,
        /// The TLS failure, when the handshake was what failed (e.g. an unknown CA).
        tls: Option<String>,
    },
    /// The request was (or may have been) sent but no complete answer came in time.
    #[error("DLI did not answer within {timeout:?}; the request may have reached it")]
    Timeout { timeout: Duration },
    /// The connection broke after the request was (or may have been) sent.
    #[error("the connection to DLI broke before the answer was complete: {detail}")]
    Transport { detail: String },
    /// An error answer with a DLI or API-gateway error body.
    #[error("{}", describe_api_error(*.status, .body, .request_id.as_deref()))]
    Api {
        status: u16,
        body: Box<ErrorBody>,
        request_id: Option<String>,
        retry_after: Option<Duration>,
        /// The answer's `Date` header, to spot clock skew.
        server_date: Option<jiff::Timestamp>,
    },
    /// An error answer without a DLI or gateway error body (e.g. from a proxy). The body is
    /// only described: quoting it would relay whatever answered into statuses and Events.
    #[error("DLI answered HTTP {status}{} without an error document ({body_summary})", request_id_note(.request_id.as_deref()))]
    Http {
        status: u16,
        /// Content type and length of the body.
        body_summary: String,
        request_id: Option<String>,
        retry_after: Option<Duration>,
        server_date: Option<jiff::Timestamp>,
    },
    /// The answer was larger than the client accepts.
    #[error("DLI's answer (HTTP {status}{}) is larger than {limit} bytes", request_id_note(.request_id.as_deref()))]
    TooLarge {
        status: u16,
        limit: usize,
        request_id: Option<String>,
    },
    /// A success status whose body is not what the API documents.
    #[error("DLI's answer (HTTP {status}{}) cannot be read: {detail}", request_id_note(.request_id.as_deref()))]
    Malformed {
        status: u16,
        detail: String,
        request_id: Option<String>,
    },
    /// The request could not be built (e.g. a credential with a line break), so nothing was sent.
    #[error("the request to DLI cannot be sent: {detail}")]
    Unsendable { detail: String },
    /// IAM did not issue a token, so the DLI call was never sent.
    #[error("cannot get an IAM token from {iam_endpoint}: {detail}")]
    IamToken {
        iam_endpoint: String,
        status: Option<u16>,
        detail: String,
        tls: Option<String>,
    },
}

/// What stands in for a secret value in messages.
pub const REDACTED: &str = "[redacted]";

/// `text` with every occurrence of a non-empty `secrets` value replaced by [`REDACTED`].
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, REDACTED)
        })
}

fn request_id_note(request_id: Option<&str>) -> String {
    request_id
        .map(|id| format!(", request id {id}"))
        .unwrap_or_default()
}

fn describe_api_error(status: u16, body: &ErrorBody, request_id: Option<&str>) -> String {
    let code = &body.error_code;
    let message = &body.error_msg;
    let context = format!("HTTP {status}{}", request_id_note(request_id));
    match (code.as_str(), status) {
        ("APIGW.0301", _) => format!(
            "the API gateway rejected the signature ({code}): check the access key/secret key \
             and the machine clock ({context}): {message}"
        ),
        (_, 429) => format!("DLI is throttling requests ({code}, {context}): {message}"),
        (_, 401 | 403) if body.is_gateway() => {
            format!("the API gateway refused the credentials ({code}, {context}): {message}")
        }
        (_, 401 | 403) => format!("DLI refused the credentials ({code}, {context}): {message}"),
        (_, 500..) if body.is_gateway() => {
            format!("the API gateway failed ({code}, {context}): {message}")
        }
        (_, 500..) => format!("DLI failed ({code}, {context}): {message}"),
        _ => format!("DLI rejected the request: {code} {message} ({context})"),
    }
}

impl DliError {
    /// The same error with `secrets` blanked out of the text DLI sent back, which becomes
    /// part of statuses, Events and logs.
    pub fn redacted(self, secrets: &[&str]) -> DliError {
        match self {
            DliError::Api {
                status,
                mut body,
                request_id,
                retry_after,
                server_date,
            } => {
                body.error_msg = redact(&body.error_msg, secrets);
                DliError::Api {
                    status,
                    body,
                    request_id,
                    retry_after,
                    server_date,
                }
            }
            other => other,
        }
    }

    /// The `X-Request-Id` (or the body's `request_id`) of the answer, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            DliError::Api {
                request_id, body, ..
            } => request_id.as_deref().or(body.request_id.as_deref()),
            DliError::Http { request_id, .. }
            | DliError::TooLarge { request_id, .. }
            | DliError::Malformed { request_id, .. } => request_id.as_deref(),
            DliError::Connect { .. }
            | DliError::Timeout { .. }
            | DliError::Transport { .. }
            | DliError::Unsendable { .. }
            | DliError::IamToken { .. } => None,
        }
    }

    /// The HTTP status of DLI's answer, when one came.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            DliError::Api { status, .. }
            | DliError::Http { status, .. }
            | DliError::TooLarge { status, .. }
            | DliError::Malformed { status, .. } => Some(*status),
            DliError::Connect { .. }
            | DliError::Timeout { .. }
            | DliError::Transport { .. }
            | DliError::Unsendable { .. }
            | DliError::IamToken { .. } => None,
        }
    }

    /// The DLI or gateway error code, e.g. `DLI.0001` or `APIGW.0301`.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            DliError::Api { body, .. } => Some(&body.error_code),
            _ => None,
        }
    }

    /// The error message of DLI's error body.
    pub fn error_message(&self) -> Option<&str> {
        match self {
            DliError::Api { body, .. } => Some(&body.error_msg),
            _ => None,
        }
    }

    /// The answer's `Date`, when it had one.
    pub fn server_date(&self) -> Option<jiff::Timestamp> {
        match self {
            DliError::Api { server_date, .. } | DliError::Http { server_date, .. } => *server_date,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> DliError {
        DliError::Api {
            status,
            body: Box::new(ErrorBody {
                error_code: code.into(),
                error_msg: message.into(),
                request_id: None,
            }),
            request_id: Some("req-1".into()),
            retry_after: None,
            server_date: None,
        }
    }

    #[test]
    fn secrets_are_blanked_out_of_what_dli_sent_back() {
        let echoed = api(
            401,
            "APIGW.0301",
            "canonicalRequest:GET|x-security-token:TOKEN|x-sdk-date:20240101T000000Z",
        );
        let message = echoed.redacted(&["TOKEN", ""]).to_string();
        assert!(
            message.contains("x-security-token:[redacted]|"),
            "{message}"
        );
        assert!(!message.contains("TOKEN|"), "{message}");
        assert_eq!(redact("abc", &[]), "abc");
    }

    #[test]
    fn a_dli_rejection_names_code_message_status_and_request_id() {
        assert_eq!(
            api(400, "DLI.0001", "job_ids is empty").to_string(),
            "DLI rejected the request: DLI.0001 job_ids is empty (HTTP 400, request id req-1)"
        );
    }

    #[test]
    fn a_bad_signature_says_what_to_check() {
        let message = api(401, "APIGW.0301", "verify aksk signature fail").to_string();
        assert!(
            message.starts_with("the API gateway rejected the signature (APIGW.0301): check the access key/secret key and the machine clock"),
            "{message}"
        );
    }

    #[test]
    fn the_request_id_falls_back_to_the_gateway_body() {
        let error = DliError::Api {
            status: 401,
            body: Box::new(ErrorBody {
                error_code: "APIGW.0301".into(),
                error_msg: String::new(),
                request_id: Some("body-id".into()),
            }),
            request_id: None,
            retry_after: None,
            server_date: None,
        };
        assert_eq!(error.request_id(), Some("body-id"));
        assert_eq!(error.http_status(), Some(401));
        assert_eq!(error.error_code(), Some("APIGW.0301"));
    }
}
