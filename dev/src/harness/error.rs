//! What can stop a benchmark or chaos run before it has figures to show.

use std::path::PathBuf;

/// Why a harness run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("the local control plane is not usable")]
    ControlPlane(#[from] crate::testenv::TestEnvError),
    #[error("the Kubernetes API refused to {what}")]
    Kubernetes {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("the DLI stand-in cannot start")]
    StandIn(#[source] std::io::Error),
    #[error("cannot {what} the operator process ({binary})")]
    Operator {
        what: &'static str,
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the operator process exited by itself ({status}); its log is {log}")]
    OperatorExited { status: String, log: PathBuf },
    #[error("the API server URL {0} is not an address a relay can reach")]
    ApiServerUrl(String),
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    #[error("the client-go floor could not {what}: {detail}")]
    Floor { what: &'static str, detail: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HarnessError {
    pub(crate) fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> HarnessError {
        let what = what.into();
        move |source| HarnessError::Kubernetes { what, source }
    }
}
