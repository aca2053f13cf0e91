//! dli-stop-operator: stops Data Lake Insight (DLI) Flink jobs declared as `JobStopRequest`
//! resources, calling the batch-stop API at most once per object generation.

pub mod api;
pub mod check;
pub mod controller;
pub mod dli;
pub mod egress;
pub mod error_chain;
pub mod leader;
pub mod metrics;
pub mod run;
pub mod server;
pub mod telemetry;
