//! Benchmark and chaos harnesses (`dli-bench`, `dli-chaos`, `tests/chaos.rs`): they run the
//! real operator binary against a private control plane and the DLI stand-in and measure it,
//! or break it on purpose and check the once-per-generation promise afterwards.

pub mod bench;
pub mod chaos;
pub mod error;
pub mod invariants;
pub mod process;
pub mod ready;
pub mod relay;
pub mod rng;
pub mod startup;
pub mod stats;
pub mod world;

pub use error::HarnessError;
