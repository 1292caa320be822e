//! The downstream side: what a client connection speaks, request by request. `h1` serves an
//! HTTP/1.1 connection (one `h1_request` at a time), `h2` an HTTP/2 connection (each stream an
//! `h2_stream`); both hand every request to a `proxy` pair and answer locally (`local`) when
//! it cannot be proxied.

pub mod h1;
mod h1_request;
pub mod h2;
mod h2_stream;
pub mod idle;
mod limits;
mod local;
