//! HTTP plumbing shared by the DLI client and the IAM token provider: bodies read within a
//! size limit, transport failures told with their whole cause chain, and the headers that say
//! when to come back (`Retry-After`) and what time the server has (`Date`).

use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// The HTTP client and the limits it reads answers with, shared with the token provider.
pub(super) struct Transfer<'a> {
    pub http: &'a reqwest::Client,
    pub max_response_bytes: usize,
}

pub(super) enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge => f.write_str("the answer is too large"),
            ReadError::Transport(error) => f.write_str(&transport_detail(error).0),
        }
    }
}

/// Reads the body, refusing it as soon as it passes `limit` bytes.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, ReadError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The whole cause chain in one line (reqwest's own message hides the cause), and the TLS
/// error in it, if any.
pub(super) fn transport_detail(error: &reqwest::Error) -> (String, Option<String>) {
    let mut parts = vec![error.to_string()];
    let mut tls = None;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        if let Some(rustls_error) = rustls_error(cause) {
            tls = Some(rustls_error.to_string());
        }
        source = cause.source();
    }
    (parts.join(": "), tls)
}

/// rustls errors hide inside (possibly nested) `std::io::Error`s, whose `source()` skips the
/// payload.
fn rustls_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(found) = cause.downcast_ref::<rustls::Error>() {
        return Some(found);
    }
    cause
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| rustls_error(inner))
}

/// Reads `Retry-After`: delay-seconds or an HTTP date (RFC 9110 section 10.2.3). A date in
/// the past means "now".
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    Some(now.duration_until(at).try_into().unwrap_or(Duration::ZERO))
}

/// Reads an HTTP date such as `Sun, 06 Nov 1994 08:49:37 GMT` (the `Date` header).
pub fn parse_http_date(value: &str) -> Option<jiff::Timestamp> {
    jiff::fmt::rfc2822::parse(value.trim())
        .ok()
        .map(|zoned| zoned.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().expect("timestamp");
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 31 Dec 2023 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
