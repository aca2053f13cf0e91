//! Talking to DLI on behalf of a request: which client serves it (`clients`: its
//! `connectionRef` Secret or the default connection, cached per Secret version) and each call
//! made with it (`calls`: timed, counted and translated into the terms the status speaks).
//! The DLI protocol itself (signing, tokens, answers) is [`crate::dli`]'s.

pub mod calls;
pub mod clients;

pub use calls::CallOutcome;
pub use clients::{ConnectionProblem, Connections, DefaultConnection};
