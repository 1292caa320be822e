//! monoio on io_uring, with a ring we set up ourselves (see `probe::RingFlags`).

#[allow(unsafe_code)]
pub mod io;
pub mod ops;
mod recv;
#[cfg(test)]
mod recv_tests;
pub mod runtime;
