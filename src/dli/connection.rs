//! A DLI connection (endpoint, project, credentials, CA) read from a Secret or `DLI_*`
//! variables (the keys are in the README, "Connections and credentials"). Parsing is pure;
//! errors name keys, never values.

use std::collections::BTreeMap;

use reqwest::Url;

use super::tls;

/// A credential value. `Debug` never shows it, so it cannot leak through logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// AK/SK request signing; with `security_token` for temporary credentials.
    AkSk {
        access_key: String,
        secret_key: SecretValue,
        security_token: Option<SecretValue>,
    },
    /// An IAM user's password, exchanged for a project-scoped token.
    IamPassword {
        iam_endpoint: Url,
        username: String,
        password: SecretValue,
        domain_name: String,
    },
    /// A ready IAM token.
    Token(SecretValue),
}

impl Auth {
    /// The method in words, safe to print.
    pub fn method(&self) -> &'static str {
        match self {
            Auth::AkSk {
                security_token: None,
                ..
            } => "AK/SK signature",
            Auth::AkSk {
                security_token: Some(_),
                ..
            } => "temporary AK/SK signature (with security token)",
            Auth::IamPassword { .. } => "IAM password (project-scoped token)",
            Auth::Token(_) => "static IAM token",
        }
    }
}

/// Everything needed to call one DLI project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub endpoint: Url,
    pub project_id: String,
    pub auth: Auth,
    /// PEM certificates trusted in addition to the public roots.
    pub ca_bundle: Option<String>,
}

impl Connection {
    /// The URLs this connection connects to, with the key that names each.
    pub fn endpoints(&self) -> Vec<(&'static str, &Url)> {
        let mut endpoints = vec![("endpoint", &self.endpoint)];
        if let Auth::IamPassword { iam_endpoint, .. } = &self.auth {
            endpoints.push(("iamEndpoint", iam_endpoint));
        }
        endpoints
    }

    /// Whether DLI or IAM is reached over plain `http://` (a local proxy or the stand-in).
    pub fn uses_plain_http(&self) -> bool {
        let iam_plain = matches!(&self.auth, Auth::IamPassword { iam_endpoint, .. } if iam_endpoint.scheme() == "http");
        self.endpoint.scheme() == "http" || iam_plain
    }

    /// From a Secret's `data`, keyed as the README documents.
    pub fn from_secret_data(
        data: &BTreeMap<String, k8s_openapi::ByteString>,
    ) -> Result<Connection, ConnectionError> {
        let lookup = |key: Field| -> Result<Option<String>, ConnectionError> {
            match data.get(key.secret_key()) {
                None => Ok(None),
                Some(bytes) => String::from_utf8(bytes.0.clone())
                    .map(Some)
                    .map_err(|_| ConnectionError::NotUtf8(key.name(Source::Secret))),
            }
        };
        parse(Source::Secret, lookup, |pem| Ok(pem.to_owned()))
    }

    /// From the `DLI_*` variables; `DLI_CA_BUNDLE` names a PEM file, which is read here.
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Connection, ConnectionError> {
        parse(
            Source::Env,
            |key: Field| Ok(lookup(key.env_var())),
            |path| {
                std::fs::read_to_string(path).map_err(|error| ConnectionError::CaBundleFile {
                    path: path.to_owned(),
                    reason: error.to_string(),
                })
            },
        )
    }
}

/// Where a connection is read from, which decides how keys are named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Secret,
    Env,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Endpoint,
    ProjectId,
    AccessKey,
    SecretKey,
    SecurityToken,
    IamEndpoint,
    Username,
    Password,
    DomainName,
    Token,
    CaBundle,
}

impl Field {
    fn secret_key(self) -> &'static str {
        match self {
            Field::Endpoint => "endpoint",
            Field::ProjectId => "projectId",
            Field::AccessKey => "accessKey",
            Field::SecretKey => "secretKey",
            Field::SecurityToken => "securityToken",
            Field::IamEndpoint => "iamEndpoint",
            Field::Username => "username",
            Field::Password => "password",
            Field::DomainName => "domainName",
            Field::Token => "token",
            Field::CaBundle => "caBundle",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            Field::Endpoint => "DLI_ENDPOINT",
            Field::ProjectId => "DLI_PROJECT_ID",
            Field::AccessKey => "DLI_ACCESS_KEY",
            Field::SecretKey => "DLI_SECRET_KEY",
            Field::SecurityToken => "DLI_SECURITY_TOKEN",
            Field::IamEndpoint => "DLI_IAM_ENDPOINT",
            Field::Username => "DLI_USERNAME",
            Field::Password => "DLI_PASSWORD",
            Field::DomainName => "DLI_DOMAIN_NAME",
            Field::Token => "DLI_TOKEN",
            Field::CaBundle => "DLI_CA_BUNDLE",
        }
    }

    fn name(self, source: Source) -> String {
        match source {
            Source::Secret => format!("Secret key `{}`", self.secret_key()),
            Source::Env => format!("variable `{}`", self.env_var()),
        }
    }

    fn bare(self, source: Source) -> &'static str {
        match source {
            Source::Secret => self.secret_key(),
            Source::Env => self.env_var(),
        }
    }
}

/// Why a connection cannot be used. Messages name the key and never contain its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("{0} is missing")]
    Missing(String),
    #[error("{0} is not valid UTF-8")]
    NotUtf8(String),
    #[error("{0} must be an http(s) URL")]
    NotUrl(String),
    #[error("{0} must be letters and digits only, at most 64 characters")]
    BadProjectId(String),
    #[error("give either {ak_sk}, or {iam}, or {token}")]
    NoAuth {
        ak_sk: String,
        iam: String,
        token: String,
    },
    #[error("give only one way to sign in, but {0} are all set")]
    SeveralAuths(String),
    #[error("{missing} is missing ({given} is set)")]
    Incomplete { missing: String, given: String },
    #[error("{key}: {reason}")]
    BadCaBundle { key: String, reason: String },
    #[error("cannot read the CA bundle file {path}: {reason}")]
    CaBundleFile { path: String, reason: String },
}

/// One value: absent and blank are the same, surrounding whitespace (a trailing newline from
/// `kubectl create secret --from-file`) is not part of it.
fn value(
    lookup: &impl Fn(Field) -> Result<Option<String>, ConnectionError>,
    key: Field,
) -> Result<Option<String>, ConnectionError> {
    Ok(lookup(key)?
        .map(|raw| raw.trim().to_owned())
        .filter(|trimmed| !trimmed.is_empty()))
}

fn required(
    source: Source,
    lookup: &impl Fn(Field) -> Result<Option<String>, ConnectionError>,
    key: Field,
) -> Result<String, ConnectionError> {
    value(lookup, key)?.ok_or_else(|| ConnectionError::Missing(key.name(source)))
}

fn url(source: Source, key: Field, text: &str) -> Result<Url, ConnectionError> {
    let url = Url::parse(text).map_err(|_| ConnectionError::NotUrl(key.name(source)))?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none();
    if usable {
        Ok(url)
    } else {
        Err(ConnectionError::NotUrl(key.name(source)))
    }
}

fn valid_project_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric())
}

fn parse(
    source: Source,
    lookup: impl Fn(Field) -> Result<Option<String>, ConnectionError>,
    read_ca_bundle: impl Fn(&str) -> Result<String, ConnectionError>,
) -> Result<Connection, ConnectionError> {
    let endpoint = url(
        source,
        Field::Endpoint,
        &required(source, &lookup, Field::Endpoint)?,
    )?;
    let project_id = required(source, &lookup, Field::ProjectId)?;
    if !valid_project_id(&project_id) {
        return Err(ConnectionError::BadProjectId(Field::ProjectId.name(source)));
    }
    let auth = parse_auth(source, &lookup)?;
    let ca_bundle = match value(&lookup, Field::CaBundle)? {
        None => None,
        Some(given) => {
            let pem = read_ca_bundle(&given)?;
            tls::parse_ca_bundle(&pem).map_err(|error| ConnectionError::BadCaBundle {
                key: Field::CaBundle.name(source),
                reason: error.to_string(),
            })?;
            Some(pem)
        }
    };
    Ok(Connection {
        endpoint,
        project_id,
        auth,
        ca_bundle,
    })
}

/// Exactly one complete family of credentials, or an error naming what to add or remove.
fn parse_auth(
    source: Source,
    lookup: &impl Fn(Field) -> Result<Option<String>, ConnectionError>,
) -> Result<Auth, ConnectionError> {
    const AK_SK: &[Field] = &[Field::AccessKey, Field::SecretKey];
    const IAM: &[Field] = &[
        Field::IamEndpoint,
        Field::Username,
        Field::Password,
        Field::DomainName,
    ];
    const TOKEN: &[Field] = &[Field::Token];
    let present = |keys: &[Field]| -> Result<Vec<Field>, ConnectionError> {
        let mut found = Vec::new();
        for key in keys {
            if value(lookup, *key)?.is_some() {
                found.push(*key);
            }
        }
        Ok(found)
    };
    let families = [AK_SK, IAM, TOKEN];
    let mut started = Vec::new();
    for family in families {
        let found = present(family)?;
        if !found.is_empty() {
            started.push((family, found));
        }
    }
    let joined = |keys: &[Field]| {
        keys.iter()
            .map(|key| key.bare(source))
            .collect::<Vec<_>>()
            .join("+")
    };
    let (family, found) = match started.as_slice() {
        [] => {
            let noun = match source {
                Source::Secret => "Secret keys ",
                Source::Env => "variables ",
            };
            return Err(ConnectionError::NoAuth {
                ak_sk: format!("{noun}{}", joined(AK_SK)),
                iam: joined(IAM),
                token: joined(TOKEN),
            });
        }
        [one] => one,
        several => {
            let names = several
                .iter()
                .map(|(_, found)| joined(found))
                .collect::<Vec<_>>()
                .join(" and ");
            return Err(ConnectionError::SeveralAuths(names));
        }
    };
    if let Some(missing) = family.iter().find(|key| !found.contains(key)) {
        return Err(ConnectionError::Incomplete {
            missing: missing.name(source),
            given: joined(found),
        });
    }
    let get = |key: Field| required(source, lookup, key);
    if *family == AK_SK {
        Ok(Auth::AkSk {
            access_key: get(Field::AccessKey)?,
            secret_key: SecretValue::new(get(Field::SecretKey)?),
            security_token: value(lookup, Field::SecurityToken)?.map(SecretValue::new),
        })
    } else if *family == IAM {
        Ok(Auth::IamPassword {
            iam_endpoint: url(source, Field::IamEndpoint, &get(Field::IamEndpoint)?)?,
            username: get(Field::Username)?,
            password: SecretValue::new(get(Field::Password)?),
            domain_name: get(Field::DomainName)?,
        })
    } else {
        Ok(Auth::Token(SecretValue::new(get(Field::Token)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    const PROJECT: &str = "0123456789abcdef0123456789abcdef";

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), ByteString(value.as_bytes().to_vec())))
            .collect()
    }

    fn with_base(extra: &[(&'static str, &'static str)]) -> BTreeMap<String, ByteString> {
        let mut pairs = vec![
            ("endpoint", "https://dli.eu-de.otc.t-systems.com"),
            ("projectId", PROJECT),
        ];
        pairs.extend_from_slice(extra);
        secret(&pairs)
    }

    fn error_of(data: BTreeMap<String, ByteString>) -> String {
        Connection::from_secret_data(&data)
            .expect_err("invalid connection")
            .to_string()
    }

    #[test]
    fn ak_sk_from_a_secret() {
        let connection =
            Connection::from_secret_data(&with_base(&[("accessKey", "AK"), ("secretKey", "SK\n")]))
                .expect("valid");
        assert_eq!(connection.project_id, PROJECT);
        assert_eq!(
            connection.auth,
            Auth::AkSk {
                access_key: "AK".into(),
                secret_key: SecretValue::new("SK"),
                security_token: None
            }
        );
        assert!(!connection.uses_plain_http());
    }

    #[test]
    fn temporary_ak_sk_keeps_the_security_token() {
        let connection = Connection::from_secret_data(&with_base(&[
            ("accessKey", "AK"),
            ("secretKey", "SK"),
            ("securityToken", "TOKEN"),
        ]))
        .expect("valid");
        assert!(matches!(
            connection.auth,
            Auth::AkSk { security_token: Some(ref token), .. } if token.expose() == "TOKEN"
        ));
    }

    #[test]
    fn iam_password_and_static_token() {
        let iam = Connection::from_secret_data(&with_base(&[
            ("iamEndpoint", "http://127.0.0.1:9"),
            ("username", "u"),
            ("password", "p"),
            ("domainName", "d"),
        ]))
        .expect("valid");
        assert!(matches!(iam.auth, Auth::IamPassword { ref username, .. } if username == "u"));
        assert!(iam.uses_plain_http(), "plain IAM must be flagged");
        let token = Connection::from_secret_data(&with_base(&[("token", "t")])).expect("valid");
        assert_eq!(token.auth, Auth::Token(SecretValue::new("t")));
    }

    #[test]
    fn a_missing_project_is_named() {
        let data = secret(&[("endpoint", "https://x"), ("token", "t")]);
        assert_eq!(error_of(data), "Secret key `projectId` is missing");
        let data = secret(&[("projectId", PROJECT), ("token", "t")]);
        assert_eq!(error_of(data), "Secret key `endpoint` is missing");
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        for bad in [
            "dli.example.com",
            "ftp://dli.example.com",
            "https://user:pw@dli.example.com",
        ] {
            let data = secret(&[("endpoint", bad), ("projectId", PROJECT), ("token", "t")]);
            let message = error_of(data);
            assert_eq!(message, "Secret key `endpoint` must be an http(s) URL");
            assert!(!message.contains("pw"));
        }
        let data = with_base(&[
            ("iamEndpoint", "iam"),
            ("username", "u"),
            ("password", "p"),
            ("domainName", "d"),
        ]);
        assert_eq!(
            error_of(data),
            "Secret key `iamEndpoint` must be an http(s) URL"
        );
    }

    #[test]
    fn plain_http_is_accepted_and_flagged() {
        let data = secret(&[
            ("endpoint", "http://127.0.0.1:8080"),
            ("projectId", PROJECT),
            ("token", "t"),
        ]);
        let connection = Connection::from_secret_data(&data).expect("valid");
        assert!(connection.uses_plain_http());
    }

    #[test]
    fn project_ids_are_letters_and_digits_up_to_64() {
        for bad in ["abc-def", "../etc", &"a".repeat(65)] {
            let data = secret(&[
                ("endpoint", "https://x"),
                ("projectId", bad),
                ("token", "t"),
            ]);
            assert_eq!(
                error_of(data),
                "Secret key `projectId` must be letters and digits only, at most 64 characters"
            );
        }
    }

    #[test]
    fn no_credentials_lists_the_three_ways() {
        assert_eq!(
            error_of(with_base(&[])),
            "give either Secret keys accessKey+secretKey, or iamEndpoint+username+password+domainName, or token"
        );
    }

    #[test]
    fn half_a_credential_names_the_missing_half() {
        assert_eq!(
            error_of(with_base(&[("accessKey", "AK")])),
            "Secret key `secretKey` is missing (accessKey is set)"
        );
        assert_eq!(
            error_of(with_base(&[("username", "u"), ("password", "p")])),
            "Secret key `iamEndpoint` is missing (username+password is set)"
        );
    }

    #[test]
    fn two_ways_to_sign_in_are_refused() {
        let message = error_of(with_base(&[
            ("accessKey", "AK"),
            ("secretKey", "SK"),
            ("token", "t"),
        ]));
        assert_eq!(
            message,
            "give only one way to sign in, but accessKey+secretKey and token are all set"
        );
    }

    #[test]
    fn non_utf8_values_are_named() {
        let mut data = with_base(&[("accessKey", "AK")]);
        data.insert("secretKey".into(), ByteString(vec![0xff, 0xfe]));
        assert_eq!(error_of(data), "Secret key `secretKey` is not valid UTF-8");
    }

    #[test]
    fn a_ca_bundle_must_hold_a_certificate() {
        let message = error_of(with_base(&[("token", "t"), ("caBundle", "hello")]));
        assert!(message.starts_with("Secret key `caBundle`: "), "{message}");
    }

    #[test]
    fn errors_and_debug_never_show_secret_values() {
        let connection = Connection::from_secret_data(&with_base(&[
            ("accessKey", "AK"),
            ("secretKey", "very-secret-sk"),
            ("securityToken", "very-secret-token"),
        ]))
        .expect("valid");
        let debug = format!("{connection:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("<redacted>"));
        let message = error_of(with_base(&[("secretKey", "very-secret-sk")]));
        assert!(!message.contains("very-secret"), "{message}");
    }

    #[test]
    fn from_env_uses_variable_names() {
        let vars: BTreeMap<&str, &str> = [
            ("DLI_ENDPOINT", "http://127.0.0.1:1"),
            ("DLI_PROJECT_ID", PROJECT),
            ("DLI_ACCESS_KEY", "AK"),
        ]
        .into();
        let error = Connection::from_env(|name| vars.get(name).map(|v| (*v).to_owned()))
            .expect_err("incomplete");
        assert_eq!(
            error.to_string(),
            "variable `DLI_SECRET_KEY` is missing (DLI_ACCESS_KEY is set)"
        );
        let error = Connection::from_env(|_| None).expect_err("empty");
        assert_eq!(error.to_string(), "variable `DLI_ENDPOINT` is missing");
    }

    #[test]
    fn from_env_reads_the_ca_bundle_file() {
        let vars: BTreeMap<&str, &str> = [
            ("DLI_ENDPOINT", "https://dli.example.com"),
            ("DLI_PROJECT_ID", PROJECT),
            ("DLI_TOKEN", "t"),
            ("DLI_CA_BUNDLE", "/nonexistent/ca.pem"),
        ]
        .into();
        let error = Connection::from_env(|name| vars.get(name).map(|v| (*v).to_owned()))
            .expect_err("no such file");
        assert!(
            error
                .to_string()
                .starts_with("cannot read the CA bundle file /nonexistent/ca.pem"),
            "{error}"
        );
    }
}
