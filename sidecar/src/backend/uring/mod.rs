//! monoio on io_uring, with a ring we set up ourselves (see `probe::RingFlags`).

pub mod io;
pub mod runtime;
