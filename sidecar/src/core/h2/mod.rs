//! HTTP/2 on both runtimes, with the `h2` crate over the backends' poll-based streams:
//! downstream h2c connections (`server`, one task each, streams multiplexed inside it),
//! upstream multiplexed connections (`client`), and translation to and from HTTP/1.1.

pub mod client;
pub mod headers;
pub mod pump;
mod rewind;
pub mod server;
pub mod settings;
mod stream;
mod to_h1;
pub mod to_h2;
