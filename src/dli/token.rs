//! IAM password -> project-scoped token, cached and refreshed well before it expires.

use std::sync::atomic::{AtomicU64, Ordering};

use jiff::{SignedDuration, Timestamp};
use reqwest::Url;
use serde_json::json;
use tokio::sync::Mutex;

use super::connection::SecretValue;
use super::error::DliError;
use super::transport::{Transfer, read_capped, transport_detail};
use super::wire::{IamErrorBody, TokenBody};
use crate::metrics::{DliOperation, Metrics};

/// Refresh at the latest this long before expiry (tokens live 24 h).
const REFRESH_MARGIN: SignedDuration = SignedDuration::from_hours(1);

/// Whether a token issued at `issued_at` and expiring at `expires_at` should be replaced now.
///
/// The margin is one hour, or half the lifetime for short-lived tokens, so a token is never
/// used close to expiry and a short-lived one is not refetched on every call.
pub fn needs_refresh(issued_at: Timestamp, expires_at: Timestamp, now: Timestamp) -> bool {
    let lifetime = issued_at.duration_until(expires_at);
    let margin = REFRESH_MARGIN.min(lifetime / 2);
    now.duration_until(expires_at) <= margin
}

struct CachedToken {
    token: SecretValue,
    issued_at: Timestamp,
    expires_at: Timestamp,
}

/// The cached token and how the latest fetch ended.
#[derive(Default)]
struct TokenState {
    cached: Option<CachedToken>,
    last_failure: Option<DliError>,
}

/// Hands out a valid token; one fetch at a time, and every caller that waited for a fetch
/// takes its outcome, failure included, instead of starting another.
pub struct TokenProvider {
    iam_endpoint: Url,
    username: String,
    password: SecretValue,
    domain_name: String,
    project_id: String,
    state: Mutex<TokenState>,
    /// Fetches finished so far: a caller that sees it move while waiting for the lock knows a
    /// fetch ended meanwhile and answers for it too.
    fetches_done: AtomicU64,
    /// Where token fetches are counted, when the client runs inside the operator.
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("iam_endpoint", &self.iam_endpoint.as_str())
            .field("username", &self.username)
            .field("domain_name", &self.domain_name)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    pub(super) fn new(
        iam_endpoint: Url,
        username: String,
        password: SecretValue,
        domain_name: String,
        project_id: String,
    ) -> TokenProvider {
        TokenProvider {
            iam_endpoint,
            username,
            password,
            domain_name,
            project_id,
            state: Mutex::new(TokenState::default()),
            fetches_done: AtomicU64::new(0),
            metrics: None,
        }
    }

    /// Counts every token fetch in `metrics` from now on.
    pub(super) fn observe(&mut self, metrics: Metrics) {
        self.metrics = Some(metrics);
    }

    /// The cached token, or a new one when it is missing or close to expiry. The lock is held
    /// across the IAM call, and callers that queued behind a fetch share its outcome: with IAM
    /// down, a burst of callers waits for one failed fetch, not for one fetch each.
    pub(super) async fn token(&self, transfer: &Transfer<'_>) -> Result<SecretValue, DliError> {
        let fetches_seen = self.fetches_done.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some(cached) = state.cached.as_ref()
            && !needs_refresh(cached.issued_at, cached.expires_at, Timestamp::now())
        {
            return Ok(cached.token.clone());
        }
        if self.fetches_done.load(Ordering::Acquire) != fetches_seen
            && let Some(failure) = &state.last_failure
        {
            return Err(failure.clone());
        }
        let started = std::time::Instant::now();
        let issued = self.issue(transfer).await;
        if let Some(metrics) = &self.metrics {
            let outcome = if issued.is_ok() { "ok" } else { "error" };
            metrics.token_refresh(outcome);
            metrics.dli_call(DliOperation::IamToken, outcome, started.elapsed());
        }
        self.fetches_done.fetch_add(1, Ordering::Release);
        match issued {
            Ok(fresh) => {
                let token = fresh.token.clone();
                state.cached = Some(fresh);
                state.last_failure = None;
                Ok(token)
            }
            Err(failure) => {
                state.last_failure = Some(failure.clone());
                Err(failure)
            }
        }
    }

    /// Forgets `rejected` after DLI refused it. Callers that saw the same token refused
    /// concurrently clear it only once, so a burst of 401s costs one refresh.
    pub(super) async fn invalidate(&self, rejected: &SecretValue) {
        let mut state = self.state.lock().await;
        if state
            .cached
            .as_ref()
            .is_some_and(|cached| cached.token == *rejected)
        {
            state.cached = None;
        }
    }

    fn failure(&self, status: Option<u16>, detail: String, tls: Option<String>) -> DliError {
        DliError::IamToken {
            iam_endpoint: self.iam_endpoint.to_string(),
            status,
            detail,
            tls,
        }
    }

    async fn issue(&self, transfer: &Transfer<'_>) -> Result<CachedToken, DliError> {
        let mut url = self.iam_endpoint.clone();
        url.set_path(&format!(
            "{}/v3/auth/tokens",
            self.iam_endpoint.path().trim_end_matches('/')
        ));
        url.set_query(Some("nocatalog=true"));
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.username,
                "password": self.password.expose(),
                "domain": {"name": self.domain_name},
            }}},
            "scope": {"project": {"id": self.project_id}},
        }});
        let issued_at = Timestamp::now();
        let response = transfer
            .http
            .post(url)
            .header("Content-Type", "application/json;charset=utf8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|error| {
                let (detail, tls) = transport_detail(&error);
                self.failure(None, detail, tls)
            })?;
        let status = response.status().as_u16();
        let token = response
            .headers()
            .get("X-Subject-Token")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(response, transfer.max_response_bytes)
            .await
            .map_err(|error| self.failure(Some(status), error.to_string(), None))?;
        if !(200..300).contains(&status) {
            let detail = serde_json::from_slice::<IamErrorBody>(&bytes)
                .map(|body| body.error.message)
                .unwrap_or_else(|_| format!("IAM answered HTTP {status}"));
            return Err(self.failure(Some(status), detail, None));
        }
        let token = token.filter(|value| !value.is_empty()).ok_or_else(|| {
            self.failure(
                Some(status),
                "the answer has no X-Subject-Token".into(),
                None,
            )
        })?;
        let expires_at = serde_json::from_slice::<TokenBody>(&bytes)
            .map_err(|error| {
                self.failure(
                    Some(status),
                    format!("the answer has no readable token.expires_at: {error}"),
                    None,
                )
            })?
            .token
            .expires_at;
        tracing::debug!(iam = %self.iam_endpoint, %expires_at, "issued an IAM token");
        Ok(CachedToken {
            token: SecretValue::new(token),
            issued_at,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn a_day_long_token_is_refreshed_an_hour_before_expiry() {
        let issued = at("2024-01-01T00:00:00Z");
        let expires = at("2024-01-02T00:00:00Z");
        assert!(!needs_refresh(issued, expires, at("2024-01-01T12:00:00Z")));
        assert!(!needs_refresh(issued, expires, at("2024-01-01T22:59:00Z")));
        assert!(needs_refresh(issued, expires, at("2024-01-01T23:00:00Z")));
        assert!(needs_refresh(issued, expires, at("2024-01-03T00:00:00Z")));
    }

    #[test]
    fn a_short_lived_token_is_kept_for_half_its_life() {
        let issued = at("2024-01-01T00:00:00Z");
        let expires = at("2024-01-01T00:20:00Z");
        assert!(!needs_refresh(issued, expires, at("2024-01-01T00:09:00Z")));
        assert!(needs_refresh(issued, expires, at("2024-01-01T00:10:00Z")));
    }
}
