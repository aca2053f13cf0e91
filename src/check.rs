//! The `check` command: one signed read-only call to DLI with a diagnosis in plain words.

use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;

use crate::dli::connection::{Auth, Connection};
use crate::dli::{ClientOptions, DliClient, DliError};
use crate::error_chain::ErrorChain;

/// Where `check` takes its connection from.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Read the connection from this Secret (`NAMESPACE/NAME`) instead of the `DLI_*` variables.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub secret: Option<String>,
}

/// Runs the check and returns the process exit code.
pub async fn run(args: CheckArgs) -> ExitCode {
    let connection = match load_connection(&args).await {
        Ok(connection) => connection,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    println!("endpoint:   {}", connection.endpoint);
    println!("project:    {}", connection.project_id);
    println!("auth:       {}", describe_auth(&connection.auth));
    if connection.uses_plain_http() {
        println!("warning:    plain http:// sends credentials and tokens unencrypted");
    }
    let client = match DliClient::new(connection, ClientOptions::default()) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: {}", ErrorChain(&error));
            return ExitCode::FAILURE;
        }
    };
    match client.list_jobs(1).await {
        Ok(list) => {
            println!(
                "request id: {}",
                list.request_id.as_deref().unwrap_or("(none)")
            );
            if let Some(count) = list.total_count {
                println!("jobs:       {count} Flink job(s) visible");
            }
            println!("OK");
            ExitCode::SUCCESS
        }
        Err(error) => {
            let ours = gateway_sdk_date(&error)
                .and_then(|sdk_date| client.list_jobs_canonical_request(1, &sdk_date));
            let diagnosis = diagnose(
                &error,
                client.connection(),
                Timestamp::now(),
                ours.as_deref(),
            );
            if let Some(request_id) = error.request_id() {
                println!("request id: {request_id}");
            }
            println!("FAILED:     {}", diagnosis.summary);
            for line in &diagnosis.details {
                println!("  {line}");
            }
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn load_connection(args: &CheckArgs) -> Result<Connection, String> {
    match &args.secret {
        None => Connection::from_env(|name| std::env::var(name).ok())
            .map_err(|error| format!("the DLI_* variables: {error}")),
        Some(reference) => {
            let (namespace, name) = parse_secret_ref(reference)?;
            let client = kube::Client::try_default()
                .await
                .map_err(|error| format!("cannot reach Kubernetes to read the Secret: {error}"))?;
            let secrets: kube::Api<Secret> = kube::Api::namespaced(client, namespace);
            let secret = secrets
                .get_opt(name)
                .await
                .map_err(|error| format!("cannot read Secret {reference}: {error}"))?
                .ok_or_else(|| format!("Secret {reference} does not exist"))?;
            Connection::from_secret_data(&secret.data.unwrap_or_default())
                .map_err(|error| format!("Secret {reference}: {error}"))
        }
    }
}

fn parse_secret_ref(reference: &str) -> Result<(&str, &str), String> {
    match reference.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Ok((namespace, name))
        }
        _ => Err(format!(
            "--secret must be NAMESPACE/NAME, got {reference:?}"
        )),
    }
}

/// The auth method with just enough of the identity to recognise it, never a secret.
fn describe_auth(auth: &Auth) -> String {
    match auth {
        Auth::AkSk { access_key, .. } => {
            let shown: String = access_key.chars().take(4).collect();
            format!("{} (access key {shown}...)", auth.method())
        }
        Auth::IamPassword {
            iam_endpoint,
            username,
            domain_name,
            ..
        } => format!(
            "{} for user {username} in {domain_name} via {iam_endpoint}",
            auth.method()
        ),
        Auth::Token(_) => auth.method().to_owned(),
    }
}

/// What went wrong, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub problem: Problem,
    pub summary: String,
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    BadSignature,
    ClockSkew,
    WrongProject,
    Tls,
    Unreachable,
    BadToken,
    IamLogin,
    Throttled,
    Unavailable,
    Timeout,
    Other,
}

/// The gateway rejects signatures dated more than 15 minutes off; beyond a few minutes of
/// difference the clock is the likelier culprit than the key.
const CLOCK_TOLERANCE: SignedDuration = SignedDuration::from_mins(5);

/// The canonical request the gateway echoes in an `APIGW.0301` message, with real newlines.
pub fn gateway_canonical_request(error: &DliError) -> Option<String> {
    let message = error.error_message()?;
    let (_, echoed) = message.split_once("canonicalRequest:")?;
    Some(echoed.trim().replace('|', "\n"))
}

/// The `X-Sdk-Date` the gateway saw, read from its canonical request, so ours can be rebuilt
/// for the same moment.
fn gateway_sdk_date(error: &DliError) -> Option<String> {
    gateway_canonical_request(error)?
        .lines()
        .find_map(|line| line.strip_prefix("x-sdk-date:"))
        .map(|date| date.trim().to_owned())
}

/// Explains a failed check. `now` is the local clock; `ours` the canonical request this side
/// signed at the gateway's `X-Sdk-Date`, when signing with AK/SK.
pub fn diagnose(
    error: &DliError,
    connection: &Connection,
    now: Timestamp,
    ours: Option<&str>,
) -> Diagnosis {
    let status = error.http_status();
    let code = error.error_code().unwrap_or_default();
    let message = error.error_message().unwrap_or_default().to_lowercase();
    let skew = error
        .server_date()
        .map(|server| now.duration_until(server))
        .filter(|skew| skew.abs() > CLOCK_TOLERANCE);
    let diagnosis = |problem, summary: String, details: Vec<String>| Diagnosis {
        problem,
        summary,
        details,
    };
    if let DliError::Connect {
        tls: Some(tls),
        endpoint,
        ..
    }
    | DliError::IamToken {
        tls: Some(tls),
        iam_endpoint: endpoint,
        ..
    } = error
    {
        if !tls.to_lowercase().contains("certificate") {
            return diagnosis(
                Problem::Tls,
                format!("the TLS handshake with {endpoint} failed ({tls})"),
                vec![
                    "Check the URL's scheme and port: does that address really speak HTTPS?".into(),
                ],
            );
        }
        return diagnosis(
            Problem::Tls,
            format!("the TLS certificate of {endpoint} is not trusted ({tls})"),
            vec![
                "If the endpoint sits behind a private CA, give its PEM certificate as `caBundle` \
                 in the Secret (or a file path in DLI_CA_BUNDLE)."
                    .into(),
                "Certificates are always verified; there is no way to turn that off.".into(),
            ],
        );
    }
    if matches!(status, Some(401 | 403))
        && (skew.is_some() || message.contains("15 minutes") || message.contains("request time"))
    {
        let mut details = Vec::new();
        if let (Some(skew), Some(server)) = (skew, error.server_date()) {
            details.push(format!(
                "The gateway's clock says {server}, this machine says {now}: {} apart.",
                describe_skew(skew)
            ));
        }
        details.push(
            "Signatures are refused when the machine clock is more than 15 minutes off. \
             Synchronise it (NTP/chrony) and try again."
                .into(),
        );
        return diagnosis(
            Problem::ClockSkew,
            "this machine's clock is too far from the API gateway's".into(),
            details,
        );
    }
    if code == "APIGW.0301" && matches!(connection.auth, Auth::AkSk { .. }) {
        return diagnosis(
            Problem::BadSignature,
            "the API gateway rejected the AK/SK signature".into(),
            signature_details(error, &message, ours),
        );
    }
    if matches!(status, Some(401 | 403)) {
        let details = match &connection.auth {
            Auth::AkSk { .. } => vec![
                "The access key, secret key or security token was refused. Temporary credentials \
                 need `securityToken` and expire (15 min to 24 h)."
                    .into(),
            ],
            Auth::IamPassword { .. } | Auth::Token(_) => vec![
                "DLI refused the IAM token: it may be expired, revoked, or scoped to another \
                 project. DLI needs a project-scoped token for this project."
                    .into(),
            ],
        };
        return diagnosis(
            Problem::BadToken,
            format!("the credentials were refused ({code})"),
            details,
        );
    }
    if let DliError::IamToken { status, .. } = error {
        let summary = match status {
            Some(401 | 403) => "IAM refused the username, password or domain name".to_owned(),
            Some(status) => format!("IAM could not issue a token (HTTP {status})"),
            None => "IAM could not be reached to get a token".to_owned(),
        };
        return diagnosis(
            Problem::IamLogin,
            summary,
            vec![
                "Check iamEndpoint, username, password and domainName (the account name).".into(),
                "The user needs permission to get a token scoped to this project.".into(),
            ],
        );
    }
    if let Some(status @ 400..=499) = status
        && (message.contains("project") || status == 404)
        && status != 429
    {
        return diagnosis(
            Problem::WrongProject,
            format!(
                "DLI does not know project {} here ({code})",
                connection.project_id
            ),
            vec![
                "Check projectId: it is the project of the region the endpoint serves, e.g. from \
                 the console's \"My Credentials\" page or IAM `GET /v3/projects?name=<region>`."
                    .into(),
                format!(
                    "Check the endpoint ({}) is the DLI endpoint of that region.",
                    connection.endpoint
                ),
            ],
        );
    }
    match (error, status) {
        (
            DliError::Connect {
                detail, endpoint, ..
            },
            _,
        ) => {
            let dns =
                detail.contains("dns") || detail.contains("lookup") || detail.contains("resolve");
            let summary = if dns {
                format!("the host name of {endpoint} cannot be resolved")
            } else {
                format!("cannot open a connection to {endpoint}")
            };
            diagnosis(
                Problem::Unreachable,
                summary,
                vec![
                    "Check the endpoint URL, DNS, firewalls/network policies and HTTPS_PROXY/NO_PROXY."
                        .into(),
                ],
            )
        }
        (DliError::Timeout { timeout }, _) => diagnosis(
            Problem::Timeout,
            format!("DLI did not answer within {timeout:?}"),
            vec!["The network path or DLI is slow or dropping packets; try again.".into()],
        ),
        (_, Some(429)) => diagnosis(
            Problem::Throttled,
            "DLI is throttling requests".into(),
            vec!["Try again later; the operator backs off on its own.".into()],
        ),
        (_, Some(500..)) => diagnosis(
            Problem::Unavailable,
            "DLI or its gateway failed".into(),
            vec![
                "This is on DLI's side; try again later and quote the request id to support."
                    .into(),
            ],
        ),
        _ => diagnosis(Problem::Other, error.to_string(), Vec::new()),
    }
}

fn describe_skew(skew: SignedDuration) -> String {
    let minutes = skew.abs().as_secs() / 60;
    if skew.is_negative() {
        format!("{minutes} min (the gateway is behind)")
    } else {
        format!("{minutes} min (this machine is behind)")
    }
}

fn signature_details(error: &DliError, message: &str, ours: Option<&str>) -> Vec<String> {
    if message.contains("not exist") {
        return vec![
            "The gateway does not know this access key: check accessKey (deleted, or of another \
             account?)."
                .into(),
        ];
    }
    let Some(theirs) = gateway_canonical_request(error) else {
        return vec![
            "Check that the secret key belongs to the access key and the machine clock is right."
                .into(),
        ];
    };
    let indented = |text: &str| {
        text.lines()
            .map(|line| format!("    {line}"))
            .collect::<Vec<_>>()
    };
    let mut details = Vec::new();
    match ours {
        Some(ours) if ours == theirs => {
            details.push(
                "Both sides built the same canonical request, so the secret key does not match \
                 the access key (or the security token is wrong)."
                    .into(),
            );
            details.push("canonical request (identical on both sides):".into());
            details.extend(indented(&theirs));
        }
        Some(ours) => {
            details.push(
                "The canonical requests differ: something between here and DLI changed the \
                 request (a proxy rewriting Host or the path?)."
                    .into(),
            );
            details.push("gateway's canonical request:".into());
            details.extend(indented(&theirs));
            details.push("our canonical request:".into());
            details.extend(indented(ours));
        }
        None => {
            details.push("gateway's canonical request:".into());
            details.extend(indented(&theirs));
        }
    }
    details
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dli::ErrorBody;
    use crate::dli::connection::SecretValue;

    fn connection(auth: Auth) -> Connection {
        Connection {
            endpoint: "https://dli.example.com".parse().expect("url"),
            project_id: "abc123".into(),
            auth,
            ca_bundle: None,
        }
    }

    fn ak_sk() -> Connection {
        connection(Auth::AkSk {
            access_key: "AK".into(),
            secret_key: SecretValue::new("SK"),
            security_token: None,
        })
    }

    fn token() -> Connection {
        connection(Auth::Token(SecretValue::new("t")))
    }

    fn now() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().expect("timestamp")
    }

    fn api(status: u16, code: &str, message: &str, server_date: Option<Timestamp>) -> DliError {
        DliError::Api {
            status,
            body: Box::new(ErrorBody {
                error_code: code.into(),
                error_msg: message.into(),
                request_id: Some("r".into()),
            }),
            request_id: Some("r".into()),
            retry_after: None,
            server_date,
        }
    }

    const CANONICAL: &str = "GET|/v1.0/abc123/streaming/jobs/|limit=1|host:dli.example.com|x-sdk-date:20261128T120000Z||host;x-sdk-date|e3b0";

    fn bad_signature() -> DliError {
        api(
            401,
            "APIGW.0301",
            &format!(
                "Incorrect IAM authentication information: verify aksk signature fail, canonicalRequest:{CANONICAL}"
            ),
            Some(now()),
        )
    }

    #[test]
    fn the_gateways_canonical_request_and_date_are_read_from_its_message() {
        let theirs = gateway_canonical_request(&bad_signature()).expect("echoed");
        assert!(theirs.starts_with("GET\n/v1.0/abc123/streaming/jobs/\nlimit=1\n"));
        assert_eq!(
            gateway_sdk_date(&bad_signature()).as_deref(),
            Some("20261128T120000Z")
        );
    }

    #[test]
    fn identical_canonical_requests_blame_the_secret_key() {
        let ours = CANONICAL.replace('|', "\n");
        let diagnosis = diagnose(&bad_signature(), &ak_sk(), now(), Some(&ours));
        assert_eq!(diagnosis.problem, Problem::BadSignature);
        assert!(
            diagnosis.details[0].contains("secret key does not match"),
            "{diagnosis:?}"
        );
    }

    #[test]
    fn different_canonical_requests_are_shown_side_by_side() {
        let ours = CANONICAL
            .replace('|', "\n")
            .replace("dli.example.com", "dli.example.com:8443");
        let diagnosis = diagnose(&bad_signature(), &ak_sk(), now(), Some(&ours));
        assert_eq!(diagnosis.problem, Problem::BadSignature);
        let text = diagnosis.details.join("\n");
        assert!(
            text.contains("gateway's canonical request:\n    GET"),
            "{text}"
        );
        assert!(text.contains("our canonical request:"), "{text}");
        assert!(text.contains("host:dli.example.com:8443"), "{text}");
    }

    #[test]
    fn an_unknown_access_key_is_named() {
        let error = api(
            401,
            "APIGW.0301",
            "Incorrect IAM authentication information: ak AK2 not exist",
            Some(now()),
        );
        let diagnosis = diagnose(&error, &ak_sk(), now(), None);
        assert_eq!(diagnosis.problem, Problem::BadSignature);
        assert!(
            diagnosis.details[0].contains("does not know this access key"),
            "{diagnosis:?}"
        );
    }

    #[test]
    fn a_skewed_gateway_clock_is_diagnosed_as_clock_skew() {
        let later = now() + SignedDuration::from_mins(40);
        let error = api(
            401,
            "APIGW.0301",
            "the request time is more than 15 minutes away",
            Some(later),
        );
        let diagnosis = diagnose(&error, &ak_sk(), now(), None);
        assert_eq!(diagnosis.problem, Problem::ClockSkew);
        assert!(
            diagnosis.details[0].contains("40 min (this machine is behind)"),
            "{diagnosis:?}"
        );
    }

    #[test]
    fn a_skew_within_tolerance_is_not_blamed() {
        let close = now() + SignedDuration::from_mins(2);
        let error = api(401, "APIGW.0301", "verify aksk signature fail", Some(close));
        assert_eq!(
            diagnose(&error, &ak_sk(), now(), None).problem,
            Problem::BadSignature
        );
    }

    #[test]
    fn an_unknown_project_is_named() {
        let error = api(
            400,
            "DLI.0002",
            "The project ffff does not exist.",
            Some(now()),
        );
        let diagnosis = diagnose(&error, &ak_sk(), now(), None);
        assert_eq!(diagnosis.problem, Problem::WrongProject);
        assert!(diagnosis.summary.contains("abc123"));
        let not_found = api(404, "DLI.0023", "no related resources", None);
        assert_eq!(
            diagnose(&not_found, &ak_sk(), now(), None).problem,
            Problem::WrongProject
        );
    }

    #[test]
    fn certificate_errors_suggest_a_ca_bundle() {
        let error = DliError::Connect {
            endpoint: "https://dli.example.com/".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
            tls: Some("invalid peer certificate: UnknownIssuer".into()),
        };
        let diagnosis = diagnose(&error, &ak_sk(), now(), None);
        assert_eq!(diagnosis.problem, Problem::Tls);
        assert!(diagnosis.details[0].contains("caBundle"));
    }

    #[test]
    fn a_handshake_that_is_not_about_certificates_points_at_the_scheme() {
        let error = DliError::Connect {
            endpoint: "https://127.0.0.1:8080/".into(),
            detail: "received corrupt message of type InvalidContentType".into(),
            tls: Some("received corrupt message of type InvalidContentType".into()),
        };
        let diagnosis = diagnose(&error, &ak_sk(), now(), None);
        assert_eq!(diagnosis.problem, Problem::Tls);
        assert!(
            diagnosis.summary.starts_with("the TLS handshake with"),
            "{diagnosis:?}"
        );
        assert!(diagnosis.details[0].contains("really speak HTTPS"));
    }

    #[test]
    fn refused_connections_and_dns_failures_are_unreachable() {
        let refused = DliError::Connect {
            endpoint: "http://127.0.0.1:1/".into(),
            detail: "tcp connect error: Connection refused (os error 111)".into(),
            tls: None,
        };
        let diagnosis = diagnose(&refused, &ak_sk(), now(), None);
        assert_eq!(diagnosis.problem, Problem::Unreachable);
        assert!(diagnosis.summary.starts_with("cannot open a connection"));
        let dns = DliError::Connect {
            endpoint: "https://nowhere.invalid/".into(),
            detail: "dns error: failed to lookup address information".into(),
            tls: None,
        };
        assert!(
            diagnose(&dns, &ak_sk(), now(), None)
                .summary
                .contains("cannot be resolved")
        );
    }

    #[test]
    fn a_refused_token_and_a_failed_iam_login_are_told_apart() {
        let refused = api(401, "APIGW.0301", "decrypt token fail", Some(now()));
        assert_eq!(
            diagnose(&refused, &token(), now(), None).problem,
            Problem::BadToken
        );
        let login = DliError::IamToken {
            iam_endpoint: "https://iam.example.com/".into(),
            status: Some(401),
            detail: "The username or password is wrong.".into(),
            tls: None,
        };
        let diagnosis = diagnose(&login, &token(), now(), None);
        assert_eq!(diagnosis.problem, Problem::IamLogin);
        assert!(diagnosis.summary.contains("username, password or domain"));
    }

    #[test]
    fn throttling_outages_and_timeouts() {
        let throttled = api(429, "APIGW.0308", "throttled", None);
        assert_eq!(
            diagnose(&throttled, &ak_sk(), now(), None).problem,
            Problem::Throttled
        );
        let down = api(503, "APIGW.0203", "Service unavailable.", None);
        assert_eq!(
            diagnose(&down, &ak_sk(), now(), None).problem,
            Problem::Unavailable
        );
        let slow = DliError::Timeout {
            timeout: Duration::from_secs(30),
        };
        assert_eq!(
            diagnose(&slow, &ak_sk(), now(), None).problem,
            Problem::Timeout
        );
    }

    #[test]
    fn secret_references_need_a_namespace_and_a_name() {
        assert_eq!(parse_secret_ref("ns/name"), Ok(("ns", "name")));
        for bad in ["name", "/name", "ns/", "a/b/c"] {
            assert!(parse_secret_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_auth_description_shows_no_secret() {
        let described = describe_auth(&Auth::AkSk {
            access_key: "QTWAOYTTINDUT2QVKYUC".into(),
            secret_key: SecretValue::new("MFyfvK41ba2giqM7"),
            security_token: None,
        });
        assert_eq!(described, "AK/SK signature (access key QTWA...)");
    }
}
