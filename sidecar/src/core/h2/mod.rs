//! HTTP/2 codec-level pieces shared by the downstream server and the upstream client: the
//! limits Ringside runs with (`settings`), the replay of bytes read during protocol detection
//! (`rewind`), the gRPC facts read from headers (`grpc`), and control-frame flood detection
//! (`flood`). The `h2` crate does the framing.

pub mod flood;
pub mod grpc;
pub mod rewind;
pub mod settings;
