//! The runtime-agnostic data plane. Nothing here names tokio or monoio: it is generic over
//! [`rt::Rt`] and compiled once per backend.

pub mod access_log;
pub mod balance;
pub mod conns;
pub mod detect;
pub mod error;
pub mod forward;
pub mod h2;
pub mod http1;
pub mod lifecycle;
pub mod pool;
pub mod rt;
pub mod serve;
pub mod stats;
pub mod tcp;
pub mod tunnel;
pub mod worker;
