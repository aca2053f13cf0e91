//! Authenticates DLI calls the way the API gateway does: AK/SK signatures recomputed from
//! what was received, or IAM tokens.

use http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use percent_encoding::percent_decode_str;

use crate::sim::credentials::{Credentials, TokenCheck};
use dli_stop_operator::dli::signer::{
    SigningRequest, canonical_request, parse_authorization, parse_sdk_date, signature,
    string_to_sign,
};

/// How far `X-Sdk-Date` may be from the gateway's clock.
pub const MAX_DATE_SKEW: SignedDuration = SignedDuration::from_mins(15);

/// A request as it reached the server.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "Authentication required: the request carries neither an AK/SK signature nor an X-Auth-Token."
    )]
    Missing,
    #[error(
        "Incorrect IAM authentication information: the Authorization header is not an SDK-HMAC-SHA256 signature"
    )]
    MalformedAuthorization,
    #[error(
        "Incorrect IAM authentication information: x-sdk-date is missing, invalid or not signed"
    )]
    BadDate,
    #[error(
        "Incorrect IAM authentication information: the request time {date} is more than 15 minutes away from the server time {now}"
    )]
    DateOutOfRange { date: Timestamp, now: Timestamp },
    #[error("Incorrect IAM authentication information: ak {access_key} not exist")]
    UnknownAccessKey { access_key: String },
    #[error(
        "Incorrect IAM authentication information: the X-Security-Token is missing or does not belong to the temporary access key"
    )]
    SecurityToken,
    #[error(
        "Incorrect IAM authentication information: verify aksk signature fail, canonicalRequest:{canonical}"
    )]
    SignatureMismatch { canonical: String },
    #[error("Incorrect IAM authentication information: decrypt token fail")]
    UnknownToken,
    #[error("The token must be updated.")]
    TokenExpired,
    #[error("The token is not scoped to project {project_id}.")]
    TokenWrongProject { project_id: String },
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::TokenWrongProject { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The error code of the answer: DLI's own for missing or misdirected credentials, the
    /// gateway's for everything it checks itself.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "DLI.0013",
            AuthError::TokenWrongProject { .. } => "DLI.0016",
            AuthError::TokenExpired => "APIGW.0307",
            _ => "APIGW.0301",
        }
    }

    /// Whether the answer comes from the API gateway (whose bodies carry `request_id`).
    pub fn is_from_gateway(&self) -> bool {
        self.code().starts_with("APIGW.")
    }
}

/// Checks the credentials of a DLI call for `project_id` at the gateway's time `now`.
pub fn authenticate(
    creds: &Credentials,
    req: &Received<'_>,
    project_id: &str,
    now: Timestamp,
) -> Result<(), AuthError> {
    if let Some(authorization) = header(req.headers, "authorization") {
        return verify_signature(creds, req, &authorization, now);
    }
    let Some(token) = header(req.headers, "x-auth-token") else {
        return Err(AuthError::Missing);
    };
    match creds.check_token(&token, project_id, now) {
        TokenCheck::Valid => Ok(()),
        TokenCheck::Expired => Err(AuthError::TokenExpired),
        TokenCheck::Unknown => Err(AuthError::UnknownToken),
        TokenCheck::WrongProject => Err(AuthError::TokenWrongProject {
            project_id: project_id.to_owned(),
        }),
    }
}

fn verify_signature(
    creds: &Credentials,
    req: &Received<'_>,
    authorization: &str,
    now: Timestamp,
) -> Result<(), AuthError> {
    let parsed = parse_authorization(authorization).ok_or(AuthError::MalformedAuthorization)?;
    let signed: Vec<String> = parsed
        .signed_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if !signed.iter().any(|h| h == "x-sdk-date") {
        return Err(AuthError::BadDate);
    }
    let sdk_date = header(req.headers, "x-sdk-date").ok_or(AuthError::BadDate)?;
    let date = parse_sdk_date(&sdk_date).ok_or(AuthError::BadDate)?;
    if date.duration_since(now).abs() > MAX_DATE_SKEW {
        return Err(AuthError::DateOutOfRange { date, now });
    }
    let key = creds
        .access_key(&parsed.access_key)
        .ok_or_else(|| AuthError::UnknownAccessKey {
            access_key: parsed.access_key.clone(),
        })?;
    if let Some(expected) = &key.security_token {
        let sent = header(req.headers, "x-security-token");
        if sent.as_deref() != Some(expected.as_str()) {
            return Err(AuthError::SecurityToken);
        }
    }
    let headers: Vec<(String, String)> = signed
        .iter()
        .map(|name| (name.clone(), header(req.headers, name).unwrap_or_default()))
        .collect();
    let query = parse_query(req.raw_query.unwrap_or_default());
    let canonical = canonical_request(&SigningRequest {
        method: req.method,
        path: req.path,
        query: &query,
        headers: &headers,
        body: req.body,
    });
    let expected = signature(&key.secret_key, &string_to_sign(&sdk_date, &canonical));
    if !constant_time_eq(expected.as_bytes(), parsed.signature.as_bytes()) {
        return Err(AuthError::SignatureMismatch {
            canonical: canonical.replace('\n', "|"),
        });
    }
    Ok(())
}

/// The value of a header as the signer sees it; repeated headers are joined like HTTP folds them.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The query parameters, decoded, in the order received (the signer sorts them).
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const NOW: &str = "2024-01-01T00:00:00Z";
    const SEED_PATH: &str = "/v1.0/48cc2c48765f481480c7db940d6409d1/streaming/jobs/stop";
    const SEED_BODY: &[u8] = br#"{"job_ids":[128,137],"trigger_savepoint":false}"#;
    // The signature of `dli::signer`'s test vector D (the batch stop call).
    const SEED_AUTH: &str = "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=content-type;host;x-sdk-date, Signature=688b159b5028b74c5fdab043f13291deedaf1528b6b1af2b45ca2d71a2b76855";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn creds() -> Credentials {
        let mut creds = Credentials::default();
        creds.add_ak_sk("AccessKey", "SecretKey");
        creds
    }

    fn seed_headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(
            "host",
            HeaderValue::from_static("dli.eu-de.otc.t-systems.com"),
        );
        headers.insert("x-sdk-date", HeaderValue::from_static("20240101T000000Z"));
        headers.insert("authorization", authorization.parse().unwrap());
        headers
    }

    fn check(
        creds: &Credentials,
        headers: &HeaderMap,
        body: &[u8],
        at: Timestamp,
    ) -> Result<(), AuthError> {
        let req = Received {
            method: "POST",
            path: SEED_PATH,
            raw_query: None,
            headers,
            body,
        };
        authenticate(creds, &req, "48cc2c48765f481480c7db940d6409d1", at)
    }

    #[test]
    fn the_documented_seed_signature_is_accepted() {
        assert_eq!(
            check(&creds(), &seed_headers(SEED_AUTH), SEED_BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_is_rejected_with_the_canonical_request_echoed() {
        let err = check(&creds(), &seed_headers(SEED_AUTH), b"{}", now()).unwrap_err();
        let AuthError::SignatureMismatch { canonical } = &err else {
            panic!("unexpected {err:?}");
        };
        assert!(
            canonical.starts_with(&format!(
                "POST|{SEED_PATH}/||content-type:application/json|"
            )),
            "{canonical}"
        );
        assert!(!canonical.contains('\n'));
        assert_eq!(err.code(), "APIGW.0301");
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_wrong_secret_key_is_rejected() {
        let mut creds = Credentials::default();
        creds.add_ak_sk("AccessKey", "OtherSecret");
        let err = check(&creds, &seed_headers(SEED_AUTH), SEED_BODY, now()).unwrap_err();
        assert!(
            matches!(err, AuthError::SignatureMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn the_date_must_be_within_fifteen_minutes() {
        let headers = seed_headers(SEED_AUTH);
        let in_range = now() + SignedDuration::from_mins(15);
        assert_eq!(check(&creds(), &headers, SEED_BODY, in_range), Ok(()));
        let late = now() + SignedDuration::from_mins(16);
        assert!(matches!(
            check(&creds(), &headers, SEED_BODY, late),
            Err(AuthError::DateOutOfRange { .. })
        ));
        let early = now() - SignedDuration::from_mins(16);
        assert!(matches!(
            check(&creds(), &headers, SEED_BODY, early),
            Err(AuthError::DateOutOfRange { .. })
        ));
    }

    #[test]
    fn an_unknown_access_key_is_named() {
        let err = check(
            &Credentials::default(),
            &seed_headers(SEED_AUTH),
            SEED_BODY,
            now(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            AuthError::UnknownAccessKey {
                access_key: "AccessKey".into()
            }
        );
    }

    #[test]
    fn temporary_keys_need_their_security_token() {
        let mut creds = Credentials::default();
        creds.add_temporary_ak_sk("AccessKey", "SecretKey", "sts-token");
        let mut headers = seed_headers(SEED_AUTH);
        assert_eq!(
            check(&creds, &headers, SEED_BODY, now()),
            Err(AuthError::SecurityToken)
        );
        headers.insert("x-security-token", HeaderValue::from_static("other"));
        assert_eq!(
            check(&creds, &headers, SEED_BODY, now()),
            Err(AuthError::SecurityToken)
        );
        headers.insert("x-security-token", HeaderValue::from_static("sts-token"));
        assert_eq!(check(&creds, &headers, SEED_BODY, now()), Ok(()));
    }

    #[test]
    fn requests_without_credentials_get_dli_0013() {
        let err = check(&creds(), &HeaderMap::new(), SEED_BODY, now()).unwrap_err();
        assert_eq!(err, AuthError::Missing);
        assert_eq!(err.code(), "DLI.0013");
    }

    #[test]
    fn tokens_are_checked_against_the_project() {
        let mut creds = Credentials::default();
        creds.add_static_token("static-token");
        let mut headers = HeaderMap::new();
        headers.insert("x-auth-token", HeaderValue::from_static("static-token"));
        assert_eq!(check(&creds, &headers, b"", now()), Ok(()));
        headers.insert("x-auth-token", HeaderValue::from_static("forged"));
        assert_eq!(
            check(&creds, &headers, b"", now()),
            Err(AuthError::UnknownToken)
        );
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            parse_query("limit=1&path=%2Ftmp&flag&=x"),
            vec![
                ("limit".into(), "1".into()),
                ("path".into(), "/tmp".into()),
                ("flag".into(), String::new()),
                (String::new(), "x".into()),
            ]
        );
    }
}
