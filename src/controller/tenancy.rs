//! The admin's tenancy rules: which namespaces may use the operator's default connection, and
//! where connections from requests' namespaces may connect. Pure.
//!
//! The default connection is the admin's credentials for one DLI project: a request without
//! `connectionRef` stops jobs with them. Only the namespaces the admin names may do that; the
//! others bring their own connection Secret.

use std::collections::BTreeSet;

use crate::egress::EndpointPolicy;

/// The value of `--default-connection-namespaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultConnectionNamespaces {
    /// `*`: every namespace.
    All,
    /// These namespaces (the operator's own always may).
    Only(BTreeSet<String>),
}

/// Parses `--default-connection-namespaces`: `*`, or namespace names separated by commas.
pub fn parse_namespaces(value: &str) -> Result<DefaultConnectionNamespaces, String> {
    let names: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    if names == ["*"] {
        return Ok(DefaultConnectionNamespaces::All);
    }
    if let Some(bad) = names.iter().find(|name| !is_namespace_name(name)) {
        return Err(format!(
            "`{bad}` is not a namespace name: give `*` alone, or names separated by commas \
             (lowercase letters, digits and '-', at most 63)"
        ));
    }
    Ok(DefaultConnectionNamespaces::Only(
        names.into_iter().map(str::to_owned).collect(),
    ))
}

/// A DNS-1123 label, what Kubernetes accepts as a namespace name.
fn is_namespace_name(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 63
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// What the admin allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenancy {
    pub operator_namespace: String,
    pub default_connection_namespaces: DefaultConnectionNamespaces,
    /// `--allow-private-endpoints`: requests' connections may reach any address.
    pub allow_private_endpoints: bool,
}

impl Tenancy {
    /// Whether requests in `namespace` may use the default connection.
    pub fn may_use_default_connection(&self, namespace: &str) -> bool {
        namespace == self.operator_namespace
            || match &self.default_connection_namespaces {
                DefaultConnectionNamespaces::All => true,
                DefaultConnectionNamespaces::Only(names) => names.contains(namespace),
            }
    }

    /// The policy for connection Secrets from requests' namespaces.
    pub fn request_endpoint_policy(&self) -> EndpointPolicy {
        if self.allow_private_endpoints {
            EndpointPolicy::AnyAddress
        } else {
            EndpointPolicy::PublicOnly
        }
    }
}

/// What a request in `namespace` is told when it may not use the default connection.
pub fn default_connection_refusal(namespace: &str) -> String {
    format!(
        "namespace {namespace} may not use the operator's default connection: name a connection \
         Secret of this namespace in spec.connectionRef, or have the operator's admin add \
         {namespace} to --default-connection-namespaces (DEFAULT_CONNECTION_NAMESPACES)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenancy(namespaces: Option<&str>) -> Tenancy {
        Tenancy {
            operator_namespace: "dli-stop-operator".into(),
            default_connection_namespaces: namespaces
                .map(|value| parse_namespaces(value).expect("valid"))
                .unwrap_or_else(|| DefaultConnectionNamespaces::Only(BTreeSet::new())),
            allow_private_endpoints: false,
        }
    }

    #[test]
    fn unset_allows_only_the_operator_namespace() {
        let tenancy = tenancy(None);
        assert!(tenancy.may_use_default_connection("dli-stop-operator"));
        assert!(!tenancy.may_use_default_connection("analytics"));
        assert!(!tenancy.may_use_default_connection(""));
    }

    #[test]
    fn a_list_adds_namespaces_and_a_star_allows_all() {
        let listed = tenancy(Some(" analytics,ops , "));
        assert!(listed.may_use_default_connection("analytics"));
        assert!(listed.may_use_default_connection("ops"));
        assert!(listed.may_use_default_connection("dli-stop-operator"));
        assert!(!listed.may_use_default_connection("team-b"));
        assert!(tenancy(Some("*")).may_use_default_connection("team-b"));
        assert!(!tenancy(Some("")).may_use_default_connection("team-b"));
    }

    #[test]
    fn names_must_be_namespace_names_and_the_star_stands_alone() {
        for bad in [
            "*,analytics",
            "Analytics",
            "team_a",
            "-a",
            "a-",
            "a/b",
            &"a".repeat(64),
        ] {
            let error = parse_namespaces(bad).expect_err(bad);
            assert!(error.contains("is not a namespace name"), "{bad}: {error}");
        }
        assert!(parse_namespaces(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn the_refusal_names_the_flag_and_the_way_out() {
        let message = default_connection_refusal("team-a");
        assert!(
            message.contains("--default-connection-namespaces"),
            "{message}"
        );
        assert!(
            message.contains("DEFAULT_CONNECTION_NAMESPACES"),
            "{message}"
        );
        assert!(message.contains("spec.connectionRef"), "{message}");
    }

    #[test]
    fn private_endpoints_are_refused_unless_allowed() {
        let mut tenancy = tenancy(None);
        assert_eq!(
            tenancy.request_endpoint_policy(),
            EndpointPolicy::PublicOnly
        );
        tenancy.allow_private_endpoints = true;
        assert_eq!(
            tenancy.request_endpoint_policy(),
            EndpointPolicy::AnyAddress
        );
    }
}
