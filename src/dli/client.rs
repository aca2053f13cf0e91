//! The DLI HTTP client: builds, authenticates and sends the three calls the operator makes,
//! and turns every answer into a typed result or a [`DliError`].

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use reqwest::Url;

use super::connection::{Auth, Connection, SecretValue};
use super::error::{DliError, redact};
use super::mapping::{StopAnswer, map_answer};
use super::signer::{self, SigningRequest};
use super::tls::{self, TlsError};
use super::token::TokenProvider;
use super::transport::{
    ReadError, Transfer, parse_http_date, parse_retry_after, read_capped, transport_detail,
};
use super::wire::{
    ErrorBody, JobDetail, JobDetailBody, JobListBody, StopAnswerBody, StopRequestBody,
};
use crate::egress::{self, EndpointPolicy, EndpointRefused};
use crate::metrics::Metrics;

/// Limits of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// For the whole call, answer body included.
    pub request_timeout: Duration,
    /// Larger answers are refused (DLI's answers are a few kilobytes).
    pub max_response_bytes: usize,
    /// Which addresses the client may connect to.
    pub endpoint_policy: EndpointPolicy,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            endpoint_policy: EndpointPolicy::AnyAddress,
        }
    }
}

/// Why a client cannot be built from a connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("caBundle")]
    Tls(#[from] TlsError),
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    EndpointRefused(#[from] EndpointRefused),
}

/// The list filters DLI offers that a selector uses; `None` leaves a filter out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub name: Option<String>,
    pub queue_name: Option<String>,
}

/// A page of the job list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobList {
    /// How many jobs the project has in all (`job_list.total_count`), when DLI says.
    pub total_count: Option<u64>,
    pub jobs: Vec<JobDetail>,
    pub request_id: Option<String>,
    pub http_status: u16,
}

/// What a call is authorized with (see [`DliClient::credential`]); `Debug` hides the token.
#[derive(Debug)]
pub struct Credential {
    token: Option<SecretValue>,
}

/// A complete answer, before its body is interpreted.
struct RawAnswer {
    status: u16,
    request_id: Option<String>,
    content_type: Option<String>,
    body: Bytes,
    retry_after: Option<Duration>,
    server_date: Option<jiff::Timestamp>,
}

/// Calls one DLI project with one set of credentials.
pub struct DliClient {
    http: reqwest::Client,
    connection: Connection,
    options: ClientOptions,
    tokens: Option<TokenProvider>,
}

impl std::fmt::Debug for DliClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DliClient")
            .field("endpoint", &self.connection.endpoint.as_str())
            .field("project_id", &self.connection.project_id)
            .field("auth", &self.connection.auth.method())
            .finish_non_exhaustive()
    }
}

const USER_AGENT: &str = concat!("dli-stop-operator/", env!("CARGO_PKG_VERSION"));

impl DliClient {
    pub fn new(
        connection: Connection,
        options: ClientOptions,
    ) -> Result<DliClient, ClientBuildError> {
        let tls = tls::client_config(connection.ca_bundle.as_deref())?;
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            // A pooled connection the server already closed makes a POST fail after "sending",
            // which would count as ambiguous; a fresh connection per call keeps "could not
            // connect" the only failure before the request leaves.
            .pool_max_idle_per_host(0)
            // A redirect would resend the signed request somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT);
        let http = egress::guard(builder, options.endpoint_policy, &connection.endpoints())?
            .build()
            .map_err(|error| ClientBuildError::Http(error.to_string()))?;
        if connection.uses_plain_http() {
            tracing::warn!(
                endpoint = %connection.endpoint,
                "DLI connection uses plain http://: credentials and tokens travel unencrypted"
            );
        }
        let tokens = match &connection.auth {
            Auth::IamPassword {
                iam_endpoint,
                username,
                password,
                domain_name,
            } => Some(TokenProvider::new(
                iam_endpoint.clone(),
                username.clone(),
                password.clone(),
                domain_name.clone(),
                connection.project_id.clone(),
            )),
            Auth::AkSk { .. } | Auth::Token(_) => None,
        };
        Ok(DliClient {
            http,
            connection,
            options,
            tokens,
        })
    }

    /// Counts IAM token fetches in `metrics` (clients without IAM login have none).
    pub fn with_metrics(mut self, metrics: Metrics) -> DliClient {
        if let Some(tokens) = self.tokens.as_mut() {
            tokens.observe(metrics);
        }
        self
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// What the next call goes out with: the IAM token for an IAM password connection (a
    /// cached one, or one fetched now), nothing for the others, whose calls carry their own.
    /// A stop takes it before its claim, so no IAM round trip can stretch the time between
    /// the claim and the call.
    pub async fn credential(&self) -> Result<Credential, DliError> {
        let token = match &self.tokens {
            Some(tokens) => Some(tokens.token(&self.transfer()).await?),
            None => None,
        };
        Ok(Credential { token })
    }

    /// `POST /v1.0/{project}/streaming/jobs/stop`, sent exactly once with `credential`.
    /// Stopping is asynchronous: success means DLI took the request, not that the jobs
    /// stopped. A refused token is dropped, so the next try fetches a new one before it claims.
    pub async fn batch_stop(
        &self,
        credential: &Credential,
        job_ids: &[i64],
        trigger_savepoint: bool,
    ) -> Result<StopAnswer, DliError> {
        let body = serde_json::to_vec(&StopRequestBody {
            job_ids,
            trigger_savepoint,
        })
        .map_err(|error| DliError::Unsendable {
            detail: format!("cannot encode the request body: {error}"),
        })?;
        let path = format!("/v1.0/{}/streaming/jobs/stop", self.connection.project_id);
        let answer = self
            .send(Method::POST, &path, &[], body, credential.token.as_ref())
            .await?;
        if answer.status == 401 {
            self.forget_refused(credential).await;
        }
        let answer = self.accepted(answer, credential)?;
        let elements = match StopAnswerBody::parse(&answer.body)
            .map_err(|error| malformed(&answer, &error))?
        {
            StopAnswerBody::Elements(elements) => elements,
            // One object is DLI's verdict on the whole batch, as a one-element array is.
            StopAnswerBody::Single(element) => vec![element],
            StopAnswerBody::Refusal(body) => return Err(api_error(answer, body)),
        };
        let jobs = map_answer(job_ids, &elements);
        Ok(StopAnswer {
            elements,
            jobs,
            request_id: answer.request_id,
            http_status: answer.status,
        })
    }

    /// `GET /v1.0/{project}/streaming/jobs/{id}`.
    pub async fn job_detail(&self, job_id: i64) -> Result<JobDetail, DliError> {
        let path = format!(
            "/v1.0/{}/streaming/jobs/{job_id}",
            self.connection.project_id
        );
        let answer = self.call(Method::GET, &path, &[], Vec::new()).await?;
        parse_body::<JobDetailBody>(&answer).map(|body| body.job_detail)
    }

    /// `GET /v1.0/{project}/streaming/jobs?limit=N`: read-only, used by `check`.
    pub async fn list_jobs(&self, limit: u32) -> Result<JobList, DliError> {
        self.list_jobs_page(&JobFilter::default(), limit, 0).await
    }

    /// One page of `GET /v1.0/{project}/streaming/jobs` with DLI's `name` and `queue_name`
    /// filters. DLI's name filter matches loosely: callers re-check every job they get.
    pub async fn list_jobs_page(
        &self,
        filter: &JobFilter,
        limit: u32,
        offset: u64,
    ) -> Result<JobList, DliError> {
        let path = format!("/v1.0/{}/streaming/jobs", self.connection.project_id);
        let mut query = vec![("limit".to_owned(), limit.to_string())];
        if offset > 0 {
            query.push(("offset".to_owned(), offset.to_string()));
        }
        if let Some(name) = &filter.name {
            query.push(("name".to_owned(), name.clone()));
        }
        if let Some(queue_name) = &filter.queue_name {
            query.push(("queue_name".to_owned(), queue_name.clone()));
        }
        let answer = self.call(Method::GET, &path, &query, Vec::new()).await?;
        let body: JobListBody = parse_body(&answer)?;
        Ok(JobList {
            total_count: body.job_list.total_count,
            jobs: body.job_list.jobs,
            request_id: answer.request_id,
            http_status: answer.status,
        })
    }

    fn transfer(&self) -> Transfer<'_> {
        Transfer {
            http: &self.http,
            max_response_bytes: self.options.max_response_bytes,
        }
    }

    /// Sends one read-only call; with an IAM password, a 401 drops the cached token and the
    /// call is sent once more with a new one.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<RawAnswer, DliError> {
        let credential = self.credential().await?;
        let answer = self
            .send(
                method.clone(),
                path,
                query,
                body.clone(),
                credential.token.as_ref(),
            )
            .await?;
        if answer.status == 401 && self.forget_refused(&credential).await {
            tracing::info!(request_id = ?answer.request_id, "DLI refused the IAM token; fetching a new one");
            let fresh = self.credential().await?;
            let answer = self
                .send(method, path, query, body, fresh.token.as_ref())
                .await?;
            return self.accepted(answer, &fresh);
        }
        self.accepted(answer, &credential)
    }

    /// Drops the IAM token DLI refused, so the next call fetches a new one; whether there was
    /// one to drop.
    async fn forget_refused(&self, credential: &Credential) -> bool {
        match (&self.tokens, &credential.token) {
            (Some(tokens), Some(refused)) => {
                tokens.invalidate(refused).await;
                true
            }
            _ => false,
        }
    }

    /// The answer if it is a success, else the error it carries, secrets redacted.
    fn accepted(&self, answer: RawAnswer, credential: &Credential) -> Result<RawAnswer, DliError> {
        if (200..300).contains(&answer.status) {
            Ok(answer)
        } else {
            let sent = self.sent_secrets(credential.token.as_ref());
            Err(error_from_answer(answer).redacted(&sent))
        }
    }

    /// Secret values this client puts on the wire. An error answer may echo them: the
    /// gateway's message for a refused signature quotes the signed `X-Security-Token`.
    fn sent_secrets<'a>(&'a self, token: Option<&'a SecretValue>) -> Vec<&'a str> {
        let mut secrets: Vec<&str> = token.map(SecretValue::expose).into_iter().collect();
        match &self.connection.auth {
            Auth::AkSk {
                security_token: Some(security_token),
                ..
            } => secrets.push(security_token.expose()),
            Auth::Token(token) => secrets.push(token.expose()),
            Auth::AkSk { .. } | Auth::IamPassword { .. } => {}
        }
        secrets
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Vec<u8>,
        token: Option<&SecretValue>,
    ) -> Result<RawAnswer, DliError> {
        let url = self.url(path, query);
        let headers = self.headers(&method, &url, query, &body, token)?;
        let started = std::time::Instant::now();
        let response = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|error| self.transport_error(&error))?;
        let status = response.status().as_u16();
        let request_id = header_text(response.headers(), "X-Request-Id");
        let content_type = header_text(response.headers(), "Content-Type");
        let now = jiff::Timestamp::now();
        let retry_after = header_text(response.headers(), "Retry-After")
            .and_then(|value| parse_retry_after(&value, now));
        let server_date =
            header_text(response.headers(), "Date").and_then(|value| parse_http_date(&value));
        let body = read_capped(response, self.options.max_response_bytes)
            .await
            .map_err(|error| match error {
                ReadError::TooLarge => DliError::TooLarge {
                    status,
                    limit: self.options.max_response_bytes,
                    request_id: request_id.clone(),
                },
                ReadError::Transport(error) => self.transport_error(&error),
            })?;
        tracing::debug!(
            %method,
            path = url.path(),
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "DLI answered"
        );
        Ok(RawAnswer {
            status,
            request_id,
            content_type,
            body,
            retry_after,
            server_date,
        })
    }

    fn url(&self, path: &str, query: &[(String, String)]) -> Url {
        let mut url = self.connection.endpoint.clone();
        url.set_path(&format!(
            "{}{path}",
            self.connection.endpoint.path().trim_end_matches('/')
        ));
        url.set_query(None);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The headers of one call, signed when the connection uses AK/SK.
    fn headers(
        &self,
        method: &Method,
        url: &Url,
        query: &[(String, String)],
        body: &[u8],
        token: Option<&SecretValue>,
    ) -> Result<HeaderMap, DliError> {
        let sdk_date = signer::sdk_date(jiff::Timestamp::now());
        let pairs = self.signed_pairs(url, &sdk_date);
        let mut unsigned: Vec<(String, String)> = vec![("X-Language".into(), "en-us".into())];
        match (&self.connection.auth, token) {
            (
                Auth::AkSk {
                    access_key,
                    secret_key,
                    ..
                },
                _,
            ) => {
                let request = SigningRequest {
                    method: method.as_str(),
                    path: url.path(),
                    query,
                    headers: &pairs,
                    body,
                };
                let canonical = signer::canonical_request(&request);
                let signature = signer::signature(
                    secret_key.expose(),
                    &signer::string_to_sign(&sdk_date, &canonical),
                );
                unsigned.push((
                    "Authorization".into(),
                    signer::authorization(
                        access_key,
                        &signer::signed_headers(&request),
                        &signature,
                    ),
                ));
            }
            (Auth::Token(token), _) | (Auth::IamPassword { .. }, Some(token)) => {
                unsigned.push(("X-Auth-Token".into(), token.expose().to_owned()));
            }
            (Auth::IamPassword { .. }, None) => {}
        }
        let mut headers = HeaderMap::new();
        for (name, value) in pairs.into_iter().chain(unsigned) {
            let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                DliError::Unsendable {
                    detail: format!("{name} is not a valid header name"),
                }
            })?;
            // A credential with a line break cannot be sent; say which header, never the value.
            let mut value = HeaderValue::from_str(&value).map_err(|_| DliError::Unsendable {
                detail: format!("the value for header {name} contains characters HTTP forbids"),
            })?;
            if matches!(
                name.as_str(),
                "authorization" | "x-auth-token" | "x-security-token"
            ) {
                value.set_sensitive(true);
            }
            headers.insert(name, value);
        }
        Ok(headers)
    }

    /// The headers that are sent and, with AK/SK, signed: every one must arrive unchanged.
    fn signed_pairs(&self, url: &Url, sdk_date: &str) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = vec![
            ("Content-Type".into(), "application/json".into()),
            ("Host".into(), host_header(url)),
            ("X-Project-Id".into(), self.connection.project_id.clone()),
        ];
        if let Auth::AkSk { security_token, .. } = &self.connection.auth {
            pairs.push(("X-Sdk-Date".into(), sdk_date.to_owned()));
            if let Some(security_token) = security_token {
                pairs.push((
                    "X-Security-Token".into(),
                    security_token.expose().to_owned(),
                ));
            }
        }
        pairs
    }

    /// The canonical request this client signs for `list_jobs(limit)` sent at `sdk_date`, so
    /// `check` can set it next to the one the gateway echoes when it refuses a signature.
    /// `None` unless the connection signs with AK/SK.
    pub fn list_jobs_canonical_request(&self, limit: u32, sdk_date: &str) -> Option<String> {
        if !matches!(self.connection.auth, Auth::AkSk { .. }) {
            return None;
        }
        let path = format!("/v1.0/{}/streaming/jobs", self.connection.project_id);
        let query = [("limit".to_owned(), limit.to_string())];
        let url = self.url(&path, &query);
        let pairs = self.signed_pairs(&url, sdk_date);
        let canonical = signer::canonical_request(&SigningRequest {
            method: Method::GET.as_str(),
            path: url.path(),
            query: &query,
            headers: &pairs,
            body: b"",
        });
        // Redacted like the gateway's echo, so the two still compare equal.
        Some(redact(&canonical, &self.sent_secrets(None)))
    }

    fn transport_error(&self, error: &reqwest::Error) -> DliError {
        let (detail, tls) = transport_detail(error);
        if error.is_connect() {
            DliError::Connect {
                endpoint: self.connection.endpoint.to_string(),
                detail,
                tls,
            }
        } else if error.is_timeout() {
            DliError::Timeout {
                timeout: self.options.request_timeout,
            }
        } else {
            DliError::Transport { detail }
        }
    }
}

/// `host[:port]` exactly as sent: a non-default port is part of what the gateway checks.
fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn parse_body<T: serde::de::DeserializeOwned>(answer: &RawAnswer) -> Result<T, DliError> {
    serde_json::from_slice(&answer.body).map_err(|error| malformed(answer, &error))
}

fn malformed(answer: &RawAnswer, error: &serde_json::Error) -> DliError {
    DliError::Malformed {
        status: answer.status,
        detail: error.to_string(),
        request_id: answer.request_id.clone(),
    }
}

/// Longest error message copied from an answer: the gateway's echo of a refused signature
/// fits, and a body of any size cannot swell a status, an Event or a log line.
const MAX_ERROR_MESSAGE_CHARS: usize = 1024;

fn error_from_answer(answer: RawAnswer) -> DliError {
    match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(body) => api_error(answer, body),
        // Only DLI's and the gateway's own error fields are ever repeated: any other body
        // (a proxy's page, another service's answer) is described, never quoted.
        Err(_) => DliError::Http {
            status: answer.status,
            body_summary: body_summary(answer.content_type.as_deref(), answer.body.len()),
            request_id: answer.request_id,
            retry_after: answer.retry_after,
            server_date: answer.server_date,
        },
    }
}

fn api_error(answer: RawAnswer, mut body: ErrorBody) -> DliError {
    body.error_msg = cap_chars(&body.error_msg, MAX_ERROR_MESSAGE_CHARS);
    DliError::Api {
        status: answer.status,
        request_id: answer.request_id.or_else(|| body.request_id.clone()),
        body: Box::new(body),
        retry_after: answer.retry_after,
        server_date: answer.server_date,
    }
}

/// What an answer without an error document was: its type and size.
fn body_summary(content_type: Option<&str>, length: usize) -> String {
    match content_type {
        Some(content_type) => format!("{content_type}, {length} bytes"),
        None => format!("no content type, {length} bytes"),
    }
}

/// `text` cut to `max` characters, with a marker when it was cut.
pub(crate) fn cap_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}... [cut]", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_header_keeps_a_non_default_port() {
        let url = Url::parse("http://127.0.0.1:8080/x").expect("url");
        assert_eq!(host_header(&url), "127.0.0.1:8080");
        let url = Url::parse("https://dli.example.com:443/x").expect("url");
        assert_eq!(host_header(&url), "dli.example.com");
    }

    fn raw(status: u16, content_type: Option<&str>, body: &'static [u8]) -> RawAnswer {
        RawAnswer {
            status,
            request_id: Some("hdr".into()),
            content_type: content_type.map(str::to_owned),
            body: Bytes::from_static(body),
            retry_after: None,
            server_date: None,
        }
    }

    #[test]
    fn bodies_that_are_not_error_documents_are_described_never_quoted() {
        let error = error_from_answer(raw(
            502,
            Some("text/html"),
            b"<html>secret internal page</html>",
        ));
        let message = error.to_string();
        assert!(message.contains("text/html, 33 bytes"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        assert_eq!(error.error_message(), None);
    }

    #[test]
    fn long_error_messages_are_capped_with_a_marker() {
        let long = format!(
            r#"{{"error_code":"DLI.0001","error_msg":"{}"}}"#,
            "x".repeat(5000)
        );
        let error = error_from_answer(RawAnswer {
            body: Bytes::from(long),
            ..raw(400, None, b"")
        });
        let message = error.error_message().expect("message");
        assert_eq!(
            message.chars().count(),
            MAX_ERROR_MESSAGE_CHARS + "... [cut]".len()
        );
        assert!(message.ends_with("... [cut]"));
        assert_eq!(cap_chars("short", 10), "short");
    }

    #[test]
    fn an_error_body_becomes_an_api_error_with_its_request_id() {
        let error = error_from_answer(raw(
            400,
            Some("application/json"),
            br#"{"error_code":"DLI.16001","error_msg":"job 9 not found"}"#,
        ));
        assert_eq!(error.error_code(), Some("DLI.16001"));
        assert_eq!(error.request_id(), Some("hdr"));
        let bare = error_from_answer(raw(502, None, b"<html>bad gateway</html>"));
        assert!(matches!(bare, DliError::Http { status: 502, .. }));
    }
}
