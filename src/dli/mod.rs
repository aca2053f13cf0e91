//! The DLI client layer: request signing, wire models, the HTTP client, IAM tokens and the
//! rules that say what an answer means.

pub mod client;
pub mod error;
pub mod mapping;
pub mod outcome;
pub mod signer;
pub mod tls;
pub mod token;
pub mod wire;

pub use client::{
    ClientBuildError, ClientOptions, Credential, DliClient, JobFilter, JobList, StopAnswer,
};
pub use error::DliError;
pub use mapping::{JobAnswer, JobStateClass, job_state_class, map_answer};
pub use outcome::{OutcomeClass, StopOutcome, classify};
pub use wire::{AnswerElement, ErrorBody, JobDetail, JobStatus};
