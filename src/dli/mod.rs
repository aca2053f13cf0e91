//! The DLI client layer: request signing, wire models, the HTTP client and outcome rules.

pub mod signer;
