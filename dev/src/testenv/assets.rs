//! Where the control-plane binaries are, following the envtest conventions users know.

use std::path::{Path, PathBuf};

use super::TestEnvError;

/// The Kubernetes version `make control-plane` builds; the cache is keyed by it.
pub const KUBERNETES_VERSION: &str = "v1.37.2";

const BUILD_HINT: &str = "run `make control-plane` or set KUBEBUILDER_ASSETS";
const ASSETS_HINT: &str = "KUBEBUILDER_ASSETS must hold kube-apiserver, etcd and kubectl";
const OVERRIDE_HINT: &str = "fix the TEST_ASSET_* variable that points there";
const KUBECTL_HINT: &str =
    "kubectl is expected beside kube-apiserver: run `make control-plane` or set TEST_ASSET_KUBECTL";
const HELM_HINT: &str = "run `make control-plane` (it builds helm too) or set TEST_ASSET_HELM";

/// One binary and what to tell the user when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    hint: &'static str,
}

impl Located {
    fn new(path: PathBuf, hint: &'static str) -> Self {
        Self { path, hint }
    }

    /// Fails with the path that was tried and how to fix it.
    pub fn require(&self, what: &'static str) -> Result<&Path, TestEnvError> {
        if self.path.is_file() {
            Ok(&self.path)
        } else {
            Err(TestEnvError::BinaryMissing {
                what,
                path: self.path.clone(),
                hint: self.hint,
            })
        }
    }
}

/// The three binaries a private control plane needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    pub kube_apiserver: Located,
    pub etcd: Located,
    pub kubectl: Located,
}

/// `${DLI_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dli-stop-operator/control-plane}/<version>`,
/// the same place `tests/control-plane/build.sh` writes to.
pub fn cache_dir(env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    cache_root(env).join(KUBERNETES_VERSION)
}

/// Where `tests/control-plane/build.sh` puts the Prometheus Operator's CRDs (ServiceMonitor,
/// PrometheusRule) that `deploy/monitoring/` is applied against.
pub fn monitoring_crds_dir(env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    cache_root(env).join("prometheus-operator-crds")
}

/// helm: `TEST_ASSET_HELM`, else where `tests/helm-tool/build.sh` puts it in the cache (even
/// with `KUBEBUILDER_ASSETS` set, which holds no helm). Fails with the path tried and the fix.
pub fn helm_binary(env: &impl Fn(&str) -> Option<String>) -> Result<PathBuf, TestEnvError> {
    let helm = match non_empty(env, "TEST_ASSET_HELM") {
        Some(path) => Located::new(PathBuf::from(path), OVERRIDE_HINT),
        None => Located::new(cache_root(env).join("helm").join("helm"), HELM_HINT),
    };
    helm.require("helm").map(Path::to_path_buf)
}

fn cache_root(env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    match non_empty(env, "DLI_CONTROL_PLANE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache_home = non_empty(env, "XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(non_empty(env, "HOME").unwrap_or_else(|| "/".into()))
                        .join(".cache")
                });
            cache_home.join("dli-stop-operator").join("control-plane")
        }
    }
}

/// Picks each binary: its `TEST_ASSET_*` override, else `KUBEBUILDER_ASSETS`, else the default
/// (the build cache for kube-apiserver, the vendored crate for etcd). kubectl sits beside
/// kube-apiserver so client and server never skew.
pub fn resolve(env: &impl Fn(&str) -> Option<String>, vendored_etcd: Option<PathBuf>) -> Assets {
    let assets_dir = non_empty(env, "KUBEBUILDER_ASSETS").map(PathBuf::from);
    let pick = |var: &str, file: &str, default: Located| match (non_empty(env, var), &assets_dir) {
        (Some(path), _) => Located::new(PathBuf::from(path), OVERRIDE_HINT),
        (None, Some(dir)) => Located::new(dir.join(file), ASSETS_HINT),
        (None, None) => default,
    };
    let kube_apiserver = pick(
        "TEST_ASSET_KUBE_APISERVER",
        "kube-apiserver",
        Located::new(cache_dir(env).join("kube-apiserver"), BUILD_HINT),
    );
    let etcd = pick(
        "TEST_ASSET_ETCD",
        "etcd",
        Located::new(
            vendored_etcd.unwrap_or_default(),
            "the etcd-bin-vendored crate lost its binary: run `cargo fetch` or set TEST_ASSET_ETCD",
        ),
    );
    let beside_apiserver = kube_apiserver
        .path
        .parent()
        .map(|dir| dir.join("kubectl"))
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let kubectl = match non_empty(env, "TEST_ASSET_KUBECTL") {
        Some(path) => Located::new(PathBuf::from(path), OVERRIDE_HINT),
        None => Located::new(beside_apiserver, KUBECTL_HINT),
    };
    Assets {
        kube_apiserver,
        etcd,
        kubectl,
    }
}

/// `USE_EXISTING_CLUSTER=true` (or `1`) runs against the current kubeconfig instead.
pub fn use_existing_cluster(env: &impl Fn(&str) -> Option<String>) -> bool {
    non_empty(env, "USE_EXISTING_CLUSTER")
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn non_empty(env: &impl Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    env(var).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn cache_dir_prefers_explicit_then_xdg_then_home() {
        let env = env_of(&[("HOME", "/h")]);
        assert_eq!(
            cache_dir(&env),
            PathBuf::from("/h/.cache/dli-stop-operator/control-plane/v1.37.2")
        );
        let env = env_of(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(
            cache_dir(&env),
            PathBuf::from("/x/dli-stop-operator/control-plane/v1.37.2")
        );
        let env = env_of(&[("XDG_CACHE_HOME", "/x"), ("DLI_CONTROL_PLANE_CACHE", "/c")]);
        assert_eq!(cache_dir(&env), PathBuf::from("/c/v1.37.2"));
        assert_eq!(
            monitoring_crds_dir(&env),
            PathBuf::from("/c/prometheus-operator-crds")
        );
    }

    #[test]
    fn helm_is_looked_for_in_the_cache_unless_overridden() {
        let env = env_of(&[("DLI_CONTROL_PLANE_CACHE", "/nonexistent-cache")]);
        assert_eq!(
            helm_binary(&env).unwrap_err().to_string(),
            "helm not found at /nonexistent-cache/helm/helm: \
             run `make control-plane` (it builds helm too) or set TEST_ASSET_HELM"
        );
        let env = env_of(&[
            ("DLI_CONTROL_PLANE_CACHE", "/nonexistent-cache"),
            ("TEST_ASSET_HELM", "/bin/sh"),
        ]);
        assert_eq!(helm_binary(&env).unwrap(), PathBuf::from("/bin/sh"));
    }

    #[test]
    fn defaults_are_build_cache_and_vendored_etcd() {
        let env = env_of(&[("HOME", "/h")]);
        let assets = resolve(&env, Some(PathBuf::from("/vendored/etcd")));
        let cache = PathBuf::from("/h/.cache/dli-stop-operator/control-plane/v1.37.2");
        assert_eq!(assets.kube_apiserver.path, cache.join("kube-apiserver"));
        assert_eq!(assets.kubectl.path, cache.join("kubectl"));
        assert_eq!(assets.etcd.path, PathBuf::from("/vendored/etcd"));
    }

    #[test]
    fn kubebuilder_assets_replaces_every_default() {
        let env = env_of(&[("HOME", "/h"), ("KUBEBUILDER_ASSETS", "/kb")]);
        let assets = resolve(&env, Some(PathBuf::from("/vendored/etcd")));
        assert_eq!(
            assets.kube_apiserver.path,
            PathBuf::from("/kb/kube-apiserver")
        );
        assert_eq!(assets.etcd.path, PathBuf::from("/kb/etcd"));
        assert_eq!(assets.kubectl.path, PathBuf::from("/kb/kubectl"));
    }

    #[test]
    fn single_binary_overrides_win_over_kubebuilder_assets() {
        let env = env_of(&[
            ("KUBEBUILDER_ASSETS", "/kb"),
            ("TEST_ASSET_KUBE_APISERVER", "/o/apiserver"),
            ("TEST_ASSET_ETCD", "/o/etcd"),
        ]);
        let assets = resolve(&env, None);
        assert_eq!(assets.kube_apiserver.path, PathBuf::from("/o/apiserver"));
        assert_eq!(assets.etcd.path, PathBuf::from("/o/etcd"));
        assert_eq!(assets.kubectl.path, PathBuf::from("/o/kubectl"));
    }

    #[test]
    fn missing_binary_names_the_path_and_the_fix() {
        let env = env_of(&[("DLI_CONTROL_PLANE_CACHE", "/nonexistent-cache")]);
        let assets = resolve(&env, None);
        let message = assets
            .kube_apiserver
            .require("kube-apiserver")
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "kube-apiserver not found at /nonexistent-cache/v1.37.2/kube-apiserver: \
             run `make control-plane` or set KUBEBUILDER_ASSETS"
        );
    }

    #[test]
    fn version_matches_what_the_build_script_builds() {
        let go_mod = include_str!("../../../tests/control-plane/go.mod");
        let pinned = format!("k8s.io/kubernetes {KUBERNETES_VERSION}");
        assert!(
            go_mod.lines().any(|l| l.trim().starts_with(&pinned)),
            "tests/control-plane/go.mod does not require {pinned}"
        );
    }

    #[test]
    fn existing_cluster_only_when_asked() {
        assert!(use_existing_cluster(&env_of(&[(
            "USE_EXISTING_CLUSTER",
            "true"
        )])));
        assert!(use_existing_cluster(&env_of(&[(
            "USE_EXISTING_CLUSTER",
            "TRUE"
        )])));
        assert!(!use_existing_cluster(&env_of(&[(
            "USE_EXISTING_CLUSTER",
            "false"
        )])));
        assert!(!use_existing_cluster(&env_of(&[])));
    }
}
