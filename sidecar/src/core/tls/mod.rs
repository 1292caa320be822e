//! TLS on the data plane: termination on listeners (with mutual TLS and permissive mode),
//! origination toward clusters, and what the handshake tells about the peer. The rustls
//! configs themselves are built by `control::tls` with each config snapshot.

pub mod accept;
pub mod connect;
mod info;
mod outcome;

pub use info::{TlsInfo, TlsView};
pub use outcome::HandshakeError;

/// The first byte of a TLS record carrying a handshake message (RFC 8446 §5.1,
/// `ContentType.handshake`): how permissive mode tells a ClientHello from plaintext.
pub const HANDSHAKE_RECORD: u8 = 0x16;
