//! Ringside: a service-mesh sidecar proxy with two I/O runtimes behind one data plane.
//! See ARCHITECTURE.md for threads, the runtime seam and the data flow.
//!
//! No `unsafe` outside the io_uring backend's I/O adapter (`backend::uring::io`), where each
//! block says why it is sound.
#![deny(unsafe_code)]

pub mod admin;
pub mod app;
pub mod backend;
pub mod cli;
pub mod compare;
pub mod core;
pub mod discovery;
pub mod iptables;
pub mod logging;
pub mod telemetry;
