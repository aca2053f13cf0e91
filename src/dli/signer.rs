//! The API gateway's AK/SK request signature ("SDK-HMAC-SHA256"), as pure functions.
//!
//! The same code signs the operator's requests and verifies them in the DLI stand-in, so a
//! mismatch between the two cannot hide: the published test vectors pin the behaviour.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use ring::{digest, hmac};

/// The algorithm name that starts the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// `X-Sdk-Date` layout: UTC, basic ISO 8601 without separators.
const SDK_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// RFC 3986 unreserved characters stay as they are; everything else is `%XY` (uppercase).
const SIGNING_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One request as the signer sees it.
///
/// `path` is the URL path as sent on the wire (percent-encoded where the URL needs it),
/// `query` the decoded (name, value) pairs, `headers` the (name, value) pairs to be signed (any case).
#[derive(Debug, Clone, Copy)]
pub struct SigningRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The `Authorization` header split into its parts (used by the stand-in to verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access_key: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, SIGNING_ENCODE).to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// The gateway signs each path segment encoded and always with a trailing `/`, whatever the
/// URL itself looks like.
///
/// The SDKs encode the plain segments once. A path read off the wire (or from a URL) already
/// carries the URL's own encoding (`/dli%20gw`), so each segment is decoded first: encoding it
/// as it stands would sign `%2520` where the gateway computes `%20`.
pub fn canonical_uri(path: &str) -> String {
    let mut uri = path
        .split('/')
        .map(|segment| encode(&percent_decode_str(segment).decode_utf8_lossy()))
        .collect::<Vec<_>>()
        .join("/");
    if !uri.starts_with('/') {
        uri.insert(0, '/');
    }
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Names and values encoded, sorted by name then value; a repeated name emits one pair per value.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The headers that take part in the signature: lowercase name and trimmed value, sorted.
/// Names containing `_` are skipped because the official SDKs never sign them.
fn signable_headers(req: &SigningRequest<'_>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(name, _)| !name.contains('_'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    headers.sort();
    headers
}

/// The lowercase signed header names joined with `;`, e.g. `content-type;host;x-sdk-date`.
pub fn signed_headers(req: &SigningRequest<'_>) -> String {
    let mut names: Vec<String> = signable_headers(req)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.dedup();
    names.join(";")
}

/// `METHOD\nURI\nQUERY\nHEADERS\nSIGNED_HEADERS\nhex(sha256(body))` as the gateway builds it.
pub fn canonical_request(req: &SigningRequest<'_>) -> String {
    let headers: String = signable_headers(req)
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
        headers,
        signed_headers(req),
        sha256_hex(req.body)
    )
}

/// `SDK-HMAC-SHA256\n<X-Sdk-Date>\nhex(sha256(canonical request))`.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Lowercase hex of HMAC-SHA256 keyed with the secret key.
pub fn signature(secret_key: &str, string_to_sign: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret_key.as_bytes());
    hex::encode(hmac::sign(&key, string_to_sign.as_bytes()))
}

/// The `Authorization` header value.
pub fn authorization(access_key: &str, signed_headers: &str, signature: &str) -> String {
    format!(
        "{ALGORITHM} Access={access_key}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// Parses `SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`; `None` when any part
/// is missing or empty.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.trim().strip_prefix(ALGORITHM)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let mut access_key = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        let value = value.trim();
        match name.trim() {
            "Access" => access_key = Some(value.to_owned()),
            "SignedHeaders" => {
                signed_headers = Some(
                    value
                        .split(';')
                        .map(|name| name.trim().to_ascii_lowercase())
                        .collect::<Vec<_>>(),
                )
            }
            "Signature" => signature = Some(value.to_owned()),
            _ => return None,
        }
    }
    let parsed = ParsedAuthorization {
        access_key: access_key?,
        signed_headers: signed_headers?,
        signature: signature?,
    };
    let complete = !parsed.access_key.is_empty()
        && !parsed.signature.is_empty()
        && parsed.signed_headers.iter().all(|name| !name.is_empty());
    complete.then_some(parsed)
}

/// The `X-Sdk-Date` value for `now`: `YYYYMMDDTHHMMSSZ` in UTC.
pub fn sdk_date(now: jiff::Timestamp) -> String {
    now.strftime(SDK_DATE_FORMAT).to_string()
}

/// Reads an `X-Sdk-Date` value; `None` unless it is exactly `YYYYMMDDTHHMMSSZ`.
pub fn parse_sdk_date(value: &str) -> Option<jiff::Timestamp> {
    if value.len() != 16 || !value.is_ascii() {
        return None;
    }
    let civil = jiff::civil::DateTime::strptime(SDK_DATE_FORMAT, value).ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|zoned| zoned.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    /// Signs like the client does and returns (canonical request, Authorization).
    fn sign(req: &SigningRequest<'_>, date: &str, ak: &str, sk: &str) -> (String, String) {
        let canonical = canonical_request(req);
        let sig = signature(sk, &string_to_sign(date, &canonical));
        (canonical, authorization(ak, &signed_headers(req), &sig))
    }

    #[test]
    fn vector_a_huawei_signing_guide() {
        let query = pairs(&[
            ("limit", "2"),
            ("marker", "13551d6b-755d-4757-b956-536f674975c0"),
        ]);
        let headers = pairs(&[
            ("Content-Type", "application/json"),
            ("Host", "service.region.example.com"),
            ("X-Sdk-Date", "20191115T033655Z"),
        ]);
        let req = SigningRequest {
            method: "GET",
            path: "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            query: &query,
            headers: &headers,
            body: b"",
        };
        let (canonical, auth) = sign(
            &req,
            "20191115T033655Z",
            "QTWAOYTTINDUT2QVKYUC",
            "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
        );
        assert_eq!(
            auth,
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
    }

    fn go_sdk_signature(method: &str, query: (&str, &str), body: &[u8]) -> String {
        let query = pairs(&[query]);
        let headers = pairs(&[("X-Sdk-Date", "20060102T150405Z")]);
        let req = SigningRequest {
            method,
            path: "/path",
            query: &query,
            headers: &headers,
            body,
        };
        let canonical = canonical_request(&req);
        signature("SecretKey", &string_to_sign("20060102T150405Z", &canonical))
    }

    #[test]
    fn vector_b_go_sdk_get() {
        assert_eq!(
            go_sdk_signature("GET", ("limit", "1"), b""),
            "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
    }

    #[test]
    fn vector_b_go_sdk_post_with_body() {
        assert_eq!(
            go_sdk_signature("POST", ("key", "value"), b"{\"Name\":\"test\",\"Id\":1}\n"),
            "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"
        );
    }

    fn python_sdk_signature(method: &str, body: &[u8]) -> String {
        let query = pairs(&[("size", "1")]);
        let headers = pairs(&[
            ("Host", "service.endpoint.myhuaweicloud.com"),
            ("X-Sdk-Date", "20200608T023900Z"),
        ]);
        let req = SigningRequest {
            method,
            path: "/resources",
            query: &query,
            headers: &headers,
            body,
        };
        assert_eq!(signed_headers(&req), "host;x-sdk-date");
        let canonical = canonical_request(&req);
        signature("SecretKey", &string_to_sign("20200608T023900Z", &canonical))
    }

    #[test]
    fn vector_c_python_sdk_get() {
        assert_eq!(
            python_sdk_signature("GET", b""),
            "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
        );
    }

    #[test]
    fn vector_c_python_sdk_post_with_body() {
        assert_eq!(
            python_sdk_signature("POST", b"{\"name\":\"test\",\"id\":1}"),
            "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"
        );
    }

    #[test]
    fn vector_d_the_batch_stop_call() {
        let body = br#"{"job_ids":[128,137],"trigger_savepoint":false}"#;
        assert_eq!(
            sha256_hex(body),
            "24ba59266b5ee93002ad9efab9418646e268f62e0fd6794d96b260e06ac89a21"
        );
        let headers = pairs(&[
            ("Content-Type", "application/json"),
            ("Host", "dli.eu-de.otc.t-systems.com"),
            ("X-Sdk-Date", "20240101T000000Z"),
        ]);
        let req = SigningRequest {
            method: "POST",
            path: "/v1.0/48cc2c48765f481480c7db940d6409d1/streaming/jobs/stop",
            query: &[],
            headers: &headers,
            body,
        };
        let (canonical, auth) = sign(&req, "20240101T000000Z", "AccessKey", "SecretKey");
        assert!(
            canonical.starts_with(
                "POST\n/v1.0/48cc2c48765f481480c7db940d6409d1/streaming/jobs/stop/\n\n"
            ),
            "{canonical}"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "a5f181e166ec24165ad15ee7d0cb04dbd00d8d26ccbf0c93cec3b8330eb8dc48"
        );
        assert_eq!(
            auth,
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=content-type;host;x-sdk-date, Signature=688b159b5028b74c5fdab043f13291deedaf1528b6b1af2b45ca2d71a2b76855"
        );
    }

    #[test]
    fn canonical_query_vector_of_both_sdks() {
        let query = pairs(&[
            ("limit", "1"),
            ("enable", "true"),
            ("test", "一 (&=?!#%.*)"),
            ("path", "/tmp/123"),
            ("multi", "3"),
            ("multi", "1"),
            ("multi", "2"),
        ]);
        assert_eq!(
            canonical_query(&query),
            "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
        );
    }

    #[test]
    fn a_missing_value_is_signed_as_name_equals_nothing() {
        assert_eq!(canonical_query(&pairs(&[("b", ""), ("a", "1")])), "a=1&b=");
    }

    #[test]
    fn uri_segments_are_encoded_and_end_with_a_slash() {
        assert_eq!(canonical_uri("/v1/a b/c"), "/v1/a%20b/c/");
        assert_eq!(canonical_uri("/already/"), "/already/");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn uri_segments_already_encoded_in_the_url_are_signed_encoded_once() {
        assert_eq!(canonical_uri("/dli%20gw/v1.0/p"), "/dli%20gw/v1.0/p/");
        assert_eq!(canonical_uri("/dl%C3%B6/x"), "/dl%C3%B6/x/");
        assert_eq!(canonical_uri("/dlö/x"), "/dl%C3%B6/x/");
        assert_eq!(canonical_uri("/a+b:c=d/x"), "/a%2Bb%3Ac%3Dd/x/");
        assert_eq!(canonical_uri("/a%2Fb/x"), "/a%2Fb/x/");
        assert_eq!(canonical_uri("/100%25/x"), "/100%25/x/");
    }

    #[test]
    fn headers_with_underscores_are_never_signed() {
        let headers = pairs(&[("X_Custom", "1"), ("X-Sdk-Date", "20240101T000000Z")]);
        let req = SigningRequest {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            body: b"",
        };
        assert_eq!(signed_headers(&req), "x-sdk-date");
        assert!(!canonical_request(&req).contains("x_custom"));
    }

    #[test]
    fn changing_the_body_changes_the_signature() {
        let headers = pairs(&[("X-Sdk-Date", "20240101T000000Z")]);
        let sig = |body: &[u8]| {
            let req = SigningRequest {
                method: "POST",
                path: "/p",
                query: &[],
                headers: &headers,
                body,
            };
            signature(
                "sk",
                &string_to_sign("20240101T000000Z", &canonical_request(&req)),
            )
        };
        assert_ne!(sig(b"[1]"), sig(b"[2]"));
    }

    #[test]
    fn authorization_round_trips_through_the_parser() {
        let value = authorization("AK", "content-type;host;x-sdk-date", "abc123");
        assert_eq!(
            parse_authorization(&value),
            Some(ParsedAuthorization {
                access_key: "AK".into(),
                signed_headers: vec!["content-type".into(), "host".into(), "x-sdk-date".into()],
                signature: "abc123".into(),
            })
        );
    }

    #[test]
    fn malformed_authorization_values_are_refused() {
        for value in [
            "",
            "Bearer xyz",
            "SDK-HMAC-SHA256",
            "SDK-HMAC-SHA256Access=AK, SignedHeaders=host, Signature=ab",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host",
            "SDK-HMAC-SHA256 Access=, SignedHeaders=host, Signature=ab",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=ab, Extra=1",
        ] {
            assert_eq!(parse_authorization(value), None, "{value:?}");
        }
    }

    #[test]
    fn sdk_date_round_trips() {
        let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().expect("valid timestamp");
        assert_eq!(sdk_date(now), "20240101T000000Z");
        assert_eq!(parse_sdk_date("20240101T000000Z"), Some(now));
    }

    #[test]
    fn malformed_sdk_dates_are_refused() {
        for value in [
            "",
            "2024-01-01T00:00:00Z",
            "20240101T000000",
            "20241301T000000Z",
            "20240101T000000Zx",
        ] {
            assert_eq!(parse_sdk_date(value), None, "{value:?}");
        }
    }
}
