//! The controller: watches `JobStopRequest`s and runs the once-per-generation protocol.

pub mod plan;
pub mod status;
