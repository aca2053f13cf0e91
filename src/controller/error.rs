//! Errors of one reconcile. Each is retried by `error_policy` with a delay; none of them can
//! lead to a second stop call, because every path to the call goes through a fresh claim.
//! Messages leave the cause to the chain, which the error policy logs whole.

use super::dli_access::ConnectionProblem;
use crate::dli::DliError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the request's status")]
    StatusWrite(#[source] kube::Error),

    #[error("cannot read the request back")]
    StatusRead(#[source] kube::Error),

    #[error("cannot delete the expired request")]
    Delete(#[source] kube::Error),

    #[error(
        "the claim on this generation was taken over by another writer; its result was not recorded"
    )]
    ClaimLost,

    #[error("no usable DLI connection")]
    Connection(#[source] ConnectionProblem),

    #[error("cannot read the jobs' states from DLI")]
    JobDetail(#[source] DliError),
}

impl Error {
    /// A short label for the error policy's log line.
    pub fn label(&self) -> &'static str {
        match self {
            Error::StatusWrite(_) => "status_write",
            Error::StatusRead(_) => "status_read",
            Error::Delete(_) => "delete",
            Error::ClaimLost => "claim_lost",
            Error::Connection(_) => "connection",
            Error::JobDetail(_) => "job_detail",
        }
    }
}
