//! The DLI client layer: where to connect and with what (`connection`, `tls`), the wire
//! models (`wire`), what can go wrong (`error`), request signing (`signer`), HTTP plumbing
//! (`transport`), IAM tokens (`token`), the pure rules that say what an answer means
//! (`mapping` per job, `outcome` for the once-per-generation promise) and, on top of them
//! all, the client that makes the calls (`client`). No module here imports one that imports
//! it back.

pub mod client;
pub mod connection;
pub mod error;
pub mod mapping;
pub mod outcome;
pub mod signer;
pub mod tls;
pub mod token;
pub mod transport;
pub mod wire;

pub use client::{ClientBuildError, ClientOptions, Credential, DliClient, JobFilter, JobList};
pub use error::DliError;
pub use mapping::{JobAnswer, JobStateClass, StopAnswer, job_state_class, map_answer};
pub use outcome::{OutcomeClass, StopOutcome, classify};
pub use wire::{AnswerElement, ErrorBody, JobDetail, JobStatus};
