//! The credentials the stand-in accepts: AK/SK pairs, IAM users and tokens.

use std::collections::{HashMap, HashSet};
use std::fmt;

use jiff::Timestamp;

/// A secret key of an AK/SK pair, temporary or not.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub secret_key: String,
    /// The `X-Security-Token` a temporary pair must come with.
    pub security_token: Option<String>,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("secret_key", &"<redacted>")
            .field("temporary", &self.security_token.is_some())
            .finish()
    }
}

/// A token the stand-in's IAM issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub project_id: Option<String>,
    pub expires_at: Timestamp,
}

/// What an `X-Auth-Token` turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    Expired,
    WrongProject,
    Unknown,
}

#[derive(Default, Clone)]
pub struct Credentials {
    access_keys: HashMap<String, AccessKey>,
    /// (domain, user) -> password
    iam_users: HashMap<(String, String), String>,
    static_tokens: HashSet<String>,
    issued_tokens: HashMap<String, IssuedToken>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_keys", &self.access_keys.len())
            .field("iam_users", &self.iam_users.len())
            .field("static_tokens", &self.static_tokens.len())
            .field("issued_tokens", &self.issued_tokens.len())
            .finish()
    }
}

impl Credentials {
    pub fn add_ak_sk(&mut self, ak: &str, sk: &str) {
        self.access_keys.insert(
            ak.to_owned(),
            AccessKey {
                secret_key: sk.to_owned(),
                security_token: None,
            },
        );
    }

    pub fn add_temporary_ak_sk(&mut self, ak: &str, sk: &str, security_token: &str) {
        self.access_keys.insert(
            ak.to_owned(),
            AccessKey {
                secret_key: sk.to_owned(),
                security_token: Some(security_token.to_owned()),
            },
        );
    }

    pub fn add_iam_user(&mut self, domain: &str, user: &str, password: &str) {
        self.iam_users
            .insert((domain.to_owned(), user.to_owned()), password.to_owned());
    }

    pub fn add_static_token(&mut self, token: &str) {
        self.static_tokens.insert(token.to_owned());
    }

    pub fn access_key(&self, ak: &str) -> Option<&AccessKey> {
        self.access_keys.get(ak)
    }

    pub fn password_matches(&self, domain: &str, user: &str, password: &str) -> bool {
        self.iam_users
            .get(&(domain.to_owned(), user.to_owned()))
            .is_some_and(|known| known == password)
    }

    pub fn record_issued_token(&mut self, token: String, issued: IssuedToken) {
        self.issued_tokens.insert(token, issued);
    }

    pub fn check_token(&self, token: &str, project_id: &str, now: Timestamp) -> TokenCheck {
        if self.static_tokens.contains(token) {
            return TokenCheck::Valid;
        }
        match self.issued_tokens.get(token) {
            None => TokenCheck::Unknown,
            Some(issued) if issued.expires_at <= now => TokenCheck::Expired,
            Some(issued) if issued.project_id.as_deref() != Some(project_id) => {
                TokenCheck::WrongProject
            }
            Some(_) => TokenCheck::Valid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn issued_tokens_are_valid_for_their_project_until_they_expire() {
        let mut creds = Credentials::default();
        creds.record_issued_token(
            "tok".into(),
            IssuedToken {
                project_id: Some("p1".into()),
                expires_at: t(100),
            },
        );
        assert_eq!(creds.check_token("tok", "p1", t(99)), TokenCheck::Valid);
        assert_eq!(creds.check_token("tok", "p1", t(100)), TokenCheck::Expired);
        assert_eq!(
            creds.check_token("tok", "p2", t(0)),
            TokenCheck::WrongProject
        );
        assert_eq!(creds.check_token("other", "p1", t(0)), TokenCheck::Unknown);
    }

    #[test]
    fn static_tokens_are_always_valid() {
        let mut creds = Credentials::default();
        creds.add_static_token("static");
        assert_eq!(creds.check_token("static", "any", t(0)), TokenCheck::Valid);
    }

    #[test]
    fn passwords_are_checked_per_domain_and_user() {
        let mut creds = Credentials::default();
        creds.add_iam_user("acme", "alice", "pw");
        assert!(creds.password_matches("acme", "alice", "pw"));
        assert!(!creds.password_matches("acme", "alice", "nope"));
        assert!(!creds.password_matches("other", "alice", "pw"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let mut creds = Credentials::default();
        creds.add_temporary_ak_sk("AK", "very-secret-sk", "very-secret-token");
        creds.add_iam_user("d", "u", "very-secret-pw");
        let shown = format!("{creds:?} {:?}", creds.access_key("AK"));
        assert!(!shown.contains("very-secret"), "{shown}");
    }
}
