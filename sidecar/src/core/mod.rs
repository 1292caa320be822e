//! The runtime-agnostic data plane. Nothing here names tokio or monoio: it is generic over
//! [`rt::Rt`] and compiled once per backend.
//!
//! A request travels one way: `serve` (accept, detect) → `down` (the client's protocol) →
//! `proxy` (one file per protocol pair, one retry rule) → `up` (endpoints, pools, the
//! upstream's protocol) → `bridge` (bodies, flow control, header translation) → the codecs
//! (`http1`, `h2`). `tcp` and `tunnel` carry opaque connections; the rest are shared leaves.

pub mod access_log;
pub mod authz;
pub mod bridge;
pub mod conns;
pub mod cpu;
pub mod cutoff;
pub mod detect;
pub mod down;
pub mod error;
pub mod h2;
pub mod http1;
pub mod lifecycle;
pub mod meter;
pub mod path;
pub mod proxy;
pub mod rate;
pub mod rt;
pub mod serve;
pub mod shed;
pub mod stats;
pub mod tcp;
pub mod tls;
pub mod trace;
pub mod tunnel;
pub mod up;
pub mod wire;
pub mod worker;
