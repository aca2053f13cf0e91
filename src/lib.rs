//! dli-stop-operator: stops Data Lake Insight (DLI) Flink jobs declared as `JobStopRequest`
//! resources, calling the batch-stop API at most once per object generation.
//!
//! This library is what the operator binary runs, and nothing more: the DLI stand-in, the
//! local control plane and the benchmark and chaos harnesses are the crate `dli-stop-dev`
//! (`dev/`), which builds on this one.

pub mod api;
pub mod check;
pub mod controller;
pub mod dli;
pub mod egress;
pub mod error_chain;
pub mod leader;
pub mod metrics;
pub mod preview;
pub mod run;
pub mod selection;
pub mod server;
pub mod telemetry;
