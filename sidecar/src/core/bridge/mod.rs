//! Between the downstream and upstream halves of an exchange: bodies relayed from any source to
//! any sink (`relay`), HTTP/2 flow control (`pump`), header translation between HTTP/1.1 and
//! HTTP/2 (`headers`) and forwarding of informational responses (`interim`).

pub mod headers;
pub mod interim;
pub mod pump;
pub mod relay;
