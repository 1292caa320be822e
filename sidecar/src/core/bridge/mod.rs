//! Between the downstream and upstream halves of an exchange: bodies relayed from any source to
//! any sink (`relay`), HTTP/2 flow control (`pump`), header translation between HTTP/1.1 and
//! HTTP/2 (`headers`), forwarding of informational responses (`interim`), cutting clients that
//! stall an exchange (`stall`) and noticing an HTTP/1.1 client that left while its request was
//! in flight (`gone`).

pub mod gone;
pub mod headers;
pub mod interim;
pub mod pump;
pub mod relay;
pub mod stall;
