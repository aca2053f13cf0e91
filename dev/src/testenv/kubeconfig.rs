//! Kubeconfig documents for the private control plane and for acting as another user.

use std::path::Path;

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

const CLUSTER: &str = "dli-testenv";

/// A kubeconfig that reaches `server` with a client certificate; the files stay in the
/// control plane's temp dir so kubectl, kube-rs and the operator binary all read the same.
pub fn with_client_certificate(
    server: &str,
    ca_file: &Path,
    cert_file: &Path,
    key_file: &Path,
    user: &str,
) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: CLUSTER.to_owned(),
            cluster: Some(Cluster {
                server: Some(server.to_owned()),
                certificate_authority: Some(ca_file.display().to_string()),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user.to_owned(),
            auth_info: Some(AuthInfo {
                client_certificate: Some(cert_file.display().to_string()),
                client_key: Some(key_file.display().to_string()),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: user.to_owned(),
            context: Some(Context {
                cluster: CLUSTER.to_owned(),
                user: Some(user.to_owned()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(user.to_owned()),
        ..Kubeconfig::default()
    }
}

/// The same kubeconfig, but every request impersonates `user` in `groups`: the way to act as
/// someone else on a cluster whose CA key we do not hold (`USE_EXISTING_CLUSTER=true`).
pub fn impersonating(mut config: Kubeconfig, user: &str, groups: &[&str]) -> Kubeconfig {
    let current_user = config
        .current_context
        .as_ref()
        .and_then(|name| config.contexts.iter().find(|c| &c.name == name))
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone());
    for named in &mut config.auth_infos {
        if Some(&named.name) == current_user.as_ref() {
            let auth = named.auth_info.get_or_insert_with(AuthInfo::default);
            auth.impersonate = Some(user.to_owned());
            auth.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificate_config_round_trips_through_yaml() {
        let config = with_client_certificate(
            "https://127.0.0.1:6443",
            Path::new("/t/ca.crt"),
            Path::new("/t/u.crt"),
            Path::new("/t/u.key"),
            "alice",
        );
        let yaml = serde_saphyr::to_string(&config).unwrap();
        let parsed = Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("alice"));
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority.as_deref(), Some("/t/ca.crt"));
        let auth = parsed.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(auth.client_key.as_deref(), Some("/t/u.key"));
    }

    #[test]
    fn impersonation_applies_to_the_current_user_only() {
        let mut config = with_client_certificate(
            "https://h",
            Path::new("ca"),
            Path::new("c"),
            Path::new("k"),
            "admin",
        );
        config.auth_infos.push(NamedAuthInfo {
            name: "other".to_owned(),
            ..NamedAuthInfo::default()
        });
        let config = impersonating(config, "system:serviceaccount:ns:op", &["g1", "g2"]);
        let admin = config.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(
            admin.impersonate.as_deref(),
            Some("system:serviceaccount:ns:op")
        );
        assert_eq!(
            admin.impersonate_groups.as_deref(),
            Some(&["g1".to_owned(), "g2".to_owned()][..])
        );
        assert!(config.auth_infos[1].auth_info.is_none());
    }
}
