//! Where the operator may connect for a connection Secret from a request's namespace.
//!
//! Whoever writes such a Secret chooses the address the operator connects to, from inside the
//! cluster: the cloud's metadata service (which hands out the node's credentials), the API
//! server, any cluster service. A guarded client reaches public unicast addresses only
//! ([`ranges`] says which are not). The check sits in the resolver the HTTP client connects
//! with, so the addresses checked are the addresses used: a DNS answer cannot change between
//! check and connect. Literal IP hosts never reach a resolver and are checked when the client
//! is built. Proxy variables (`HTTPS_PROXY`) are ignored by a guarded client: through a proxy
//! the proxy would resolve the name, unchecked.
//!
//! The operator's own default connection is the admin's and is not guarded, nor is `check`;
//! `--allow-private-endpoints` turns the guard off for every connection.

pub mod ranges;

use std::net::{IpAddr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub use ranges::{SpecialRange, special_range};

/// Which addresses a DLI client may connect to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EndpointPolicy {
    /// Any address: the admin's connections, and every connection with
    /// `--allow-private-endpoints`.
    #[default]
    AnyAddress,
    /// Public unicast addresses only: connections from a request's namespace.
    PublicOnly,
}

/// An endpoint whose host is, or resolves to, an address the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct EndpointRefused {
    /// The connection key naming the endpoint (`endpoint`, `iamEndpoint`), when known.
    pub key: Option<&'static str>,
    pub host: String,
    pub address: IpAddr,
    pub range: SpecialRange,
}

impl EndpointRefused {
    fn describe(&self) -> String {
        let key = self.key.map(|key| format!("`{key}`: ")).unwrap_or_default();
        let what = if self.host == self.address.to_string() {
            format!("{} is {}", self.host, self.range)
        } else {
            format!("{} resolves to {}, {}", self.host, self.address, self.range)
        };
        format!(
            "{key}{what}; a connection from a request's namespace may reach public addresses \
             only (the operator's --allow-private-endpoints lifts this)"
        )
    }
}

/// The address of a literal IP host (`https://10.0.0.1/`, `http://[::1]:80/`), if it is one.
/// The URL parser writes every IPv4 spelling (`0x7f.1`, `2130706433`) as a dotted quad and
/// IPv6 in brackets, so parsing its host text finds every literal.
fn literal_address(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

fn refuse(key: Option<&'static str>, host: &str, address: IpAddr) -> Result<(), EndpointRefused> {
    match special_range(address) {
        None => Ok(()),
        Some(range) => Err(EndpointRefused {
            key,
            host: host.to_owned(),
            address,
            range,
        }),
    }
}

/// Makes `builder` follow `policy` for a connection's `endpoints` (from
/// [`Connection::endpoints`](crate::dli::connection::Connection::endpoints)): under
/// [`EndpointPolicy::PublicOnly`] a literal special address is refused here, and names are
/// resolved by a resolver that refuses special answers. Called where the DLI client is built.
pub fn guard(
    builder: reqwest::ClientBuilder,
    policy: EndpointPolicy,
    endpoints: &[(&'static str, &Url)],
) -> Result<reqwest::ClientBuilder, EndpointRefused> {
    match policy {
        EndpointPolicy::AnyAddress => Ok(builder),
        EndpointPolicy::PublicOnly => {
            for &(key, url) in endpoints {
                if let Some(address) = literal_address(url) {
                    refuse(Some(key), &address.to_string(), address)?;
                }
            }
            Ok(builder.no_proxy().dns_resolver(PublicOnlyResolver))
        }
    }
}

/// Checks a connection's `endpoints` before any client is built for it, so a refused endpoint
/// is reported as such instead of as a failed call. A name that does not resolve passes: the
/// call reports that in its own words. The resolver of the built client checks again at
/// connect time; this check only explains early.
pub async fn vet(
    policy: EndpointPolicy,
    endpoints: &[(&'static str, &Url)],
) -> Result<(), EndpointRefused> {
    if policy == EndpointPolicy::AnyAddress {
        return Ok(());
    }
    for &(key, url) in endpoints {
        match (literal_address(url), url.host_str()) {
            (Some(address), _) => refuse(Some(key), &address.to_string(), address)?,
            (None, Some(host)) => match public_addresses(host).await {
                Err(Lookup::Refused(refused)) => {
                    return Err(EndpointRefused {
                        key: Some(key),
                        ..refused
                    });
                }
                Ok(_) | Err(Lookup::Failed(_)) => {}
            },
            (None, None) => {}
        }
    }
    Ok(())
}

/// Why a guarded lookup gave no addresses.
#[derive(Debug, thiserror::Error)]
enum Lookup {
    #[error(transparent)]
    Refused(EndpointRefused),
    #[error("cannot resolve the name")]
    Failed(#[source] std::io::Error),
}

/// Resolves `host` with the system resolver; every address of the answer must be public, or
/// none is used (one special address in an answer is a sign of rebinding, not a fallback).
async fn public_addresses(host: &str) -> Result<Vec<SocketAddr>, Lookup> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(Lookup::Failed)?
        .collect();
    for address in &addresses {
        refuse(None, host, address.ip()).map_err(Lookup::Refused)?;
    }
    Ok(addresses)
}

/// The resolver of a guarded client.
#[derive(Debug, Clone, Copy)]
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = public_addresses(&host).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dli::connection::{Auth, Connection, SecretValue};

    fn connection(endpoint: &str, iam: Option<&str>) -> Connection {
        let auth = match iam {
            None => Auth::Token(SecretValue::new("t")),
            Some(iam) => Auth::IamPassword {
                iam_endpoint: Url::parse(iam).expect("url"),
                username: "u".into(),
                password: SecretValue::new("p"),
                domain_name: "d".into(),
            },
        };
        Connection {
            endpoint: Url::parse(endpoint).expect("url"),
            project_id: "p".into(),
            auth,
            ca_bundle: None,
        }
    }

    fn guarded(connection: &Connection) -> Result<(), EndpointRefused> {
        guard(
            reqwest::Client::builder(),
            EndpointPolicy::PublicOnly,
            &connection.endpoints(),
        )
        .map(drop)
    }

    #[test]
    fn literal_special_addresses_are_refused_when_the_client_is_built() {
        let refused = guarded(&connection("http://127.0.0.1:8080", None)).expect_err("loopback");
        assert_eq!(refused.range, SpecialRange::Loopback);
        assert_eq!(
            refused.to_string(),
            "`endpoint`: 127.0.0.1 is a loopback address; a connection from a request's \
             namespace may reach public addresses only (the operator's --allow-private-endpoints \
             lifts this)"
        );
        // The URL parser reads every spelling of an IPv4 address as that address.
        for spelling in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:7f00:1]/",
        ] {
            let refused = guarded(&connection(spelling, None)).expect_err(spelling);
            assert_eq!(refused.range, SpecialRange::Loopback, "{spelling}");
        }
        let refused = guarded(&connection(
            "https://80.158.1.1",
            Some("http://169.254.169.254/"),
        ))
        .expect_err("metadata as IAM");
        assert_eq!(refused.key, Some("iamEndpoint"));
        assert_eq!(refused.range, SpecialRange::LinkLocal);
    }

    #[test]
    fn public_literals_and_names_build_and_any_address_builds_anything() {
        assert!(guarded(&connection("https://80.158.1.1", None)).is_ok());
        assert!(guarded(&connection("https://dli.eu-de.otc.t-systems.com", None)).is_ok());
        let loopback = connection("http://127.0.0.1:8080", None);
        assert!(
            guard(
                reqwest::Client::builder(),
                EndpointPolicy::AnyAddress,
                &loopback.endpoints()
            )
            .is_ok()
        );
    }

    #[test]
    fn a_name_resolving_to_another_address_says_both() {
        let refused = EndpointRefused {
            key: None,
            host: "localhost".into(),
            address: "::1".parse().expect("ip"),
            range: SpecialRange::Loopback,
        };
        assert!(
            refused
                .to_string()
                .starts_with("localhost resolves to ::1, a loopback address; "),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn vetting_resolves_names_and_checks_every_answer() {
        let refused = vet(
            EndpointPolicy::PublicOnly,
            &connection("http://localhost:9", None).endpoints(),
        )
        .await
        .expect_err("localhost is loopback");
        assert_eq!(refused.key, Some("endpoint"));
        assert_eq!(refused.host, "localhost");
        assert_eq!(refused.range, SpecialRange::Loopback);
        assert!(
            vet(
                EndpointPolicy::AnyAddress,
                &connection("http://localhost:9", None).endpoints()
            )
            .await
            .is_ok()
        );
    }
}
