//! Development tools for dli-stop-operator, kept out of the shipped library: the DLI stand-in
//! (`sim`, binary `dli-sim`), a real control plane for tests and the demo (`testenv`,
//! binary `dli-demo`) and the benchmark and chaos harnesses (`harness`, binaries `dli-bench`
//! and `dli-chaos`), which run the operator's release binary as it ships.

pub mod counting_listener;
pub mod harness;
pub mod sim;
pub mod testenv;
