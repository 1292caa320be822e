//! Ringside: a service-mesh sidecar proxy with two I/O runtimes behind one data plane.
//! See ARCHITECTURE.md for threads, the runtime seam and the data flow.
//!
//! No `unsafe` outside the io_uring backend's I/O adapter (`backend::uring::io`) and the
//! counting allocator of tests and bench builds (`alloc_count`), where each block says why it
//! is sound.
#![deny(unsafe_code)]

pub mod admin;
#[cfg(any(test, feature = "alloc-count"))]
pub mod alloc_count;
pub mod app;
pub mod backend;
pub mod cli;
pub mod compare;
pub mod core;
pub mod discovery;
pub mod iptables;
pub mod logging;
pub mod telemetry;

/// Unit tests count allocations (per thread) to assert allocations per request.
#[cfg(test)]
#[global_allocator]
static ALLOC: alloc_count::Counting<mimalloc::MiMalloc> = alloc_count::Counting(mimalloc::MiMalloc);
