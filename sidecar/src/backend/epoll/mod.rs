//! tokio's current-thread runtime on epoll, one per worker.

pub mod io;
pub mod runtime;
