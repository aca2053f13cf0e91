//! Failures of the local control plane, in the terms of someone running the tests.

use std::path::PathBuf;
use std::time::Duration;

/// Why the test control plane could not be started or used.
///
/// `Debug` prints the same text as `Display`, because tests report failures with
/// `expect(..)` and the log tails must stay readable there.
#[derive(thiserror::Error)]
pub enum TestEnvError {
    #[error("{what} not found at {}: {hint}", path.display())]
    BinaryMissing {
        what: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("no Prometheus Operator CRDs in {}: run `make control-plane`", dir.display())]
    MonitoringCrdsMissing { dir: PathBuf },
    #[error("no vendored etcd for this platform ({0}): set TEST_ASSET_ETCD or KUBEBUILDER_ASSETS")]
    EtcdUnsupported(String),
    #[error("could not make the test certificates")]
    Certificates(#[from] rcgen::Error),
    #[error("a client certificate carries at most two groups, got {0}")]
    TooManyGroups(usize),
    #[error("could not {action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} exited during start-up ({status}); last log lines:\n{log_tail}")]
    Exited {
        name: &'static str,
        status: String,
        log_tail: String,
    },
    #[error("{name} was not ready after {after:?}: {last_problem}; last log lines:\n{log_tail}")]
    NotReady {
        name: &'static str,
        after: Duration,
        last_problem: String,
        log_tail: String,
    },
    #[error("invalid kubeconfig")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("could not write kubeconfig")]
    KubeconfigYaml(#[from] serde_saphyr::SerializeError),
    #[error("USE_EXISTING_CLUSTER=true but no usable kubeconfig")]
    ExistingCluster(#[from] kube::config::InferConfigError),
    #[error("Kubernetes API call failed")]
    Api(#[from] kube::Error),
    #[error("`kubectl {args}` failed ({status}): {stderr}")]
    Kubectl {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("`go build` in {} failed:\n{stderr}", module.display())]
    GoBuild { module: PathBuf, stderr: String },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("watch failed while waiting for {what}")]
    Watch {
        what: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
}

impl std::fmt::Debug for TestEnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl TestEnvError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }
}
