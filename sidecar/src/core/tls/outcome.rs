//! Why a handshake failed, as a bounded metric label and a sentence for the log.

use std::io;

/// A failed handshake, classified.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer did not finish within the deadline (the listener's header-read timeout, or
    /// the cluster's connect timeout).
    #[error("TLS handshake timed out")]
    Timeout,
    /// A plaintext client on a `strict` TLS listener.
    #[error("plaintext client on a TLS-only listener")]
    Plaintext,
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
}

impl HandshakeError {
    /// The `result` label of `ringside_tls_handshakes_total`.
    pub fn label(&self) -> &'static str {
        match self {
            HandshakeError::Timeout => "timeout",
            HandshakeError::Plaintext => "plaintext",
            HandshakeError::Tls(e) => {
                match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(t) => rustls_label(t),
                    None if e.kind() == io::ErrorKind::UnexpectedEof => "closed",
                    None => "io_error",
                }
            }
        }
    }
}

fn rustls_label(e: &rustls::Error) -> &'static str {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::NoCertificatesPresented => "no_client_cert",
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "unknown_ca",
            C::Expired | C::ExpiredContext { .. } => "expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
            C::NotValidForName | C::NotValidForNameContext { .. } => "bad_identity",
            C::Revoked => "revoked",
            _ => "bad_certificate",
        },
        E::PeerIncompatible(_) => "incompatible",
        E::AlertReceived(_) => "peer_alert",
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => "malformed",
        E::PeerMisbehaved(_) => "peer_misbehaved",
        // The certificate resolver found nothing for the client's SNI (and no default).
        E::General(m) if m.contains("no server certificate") => "bad_sni",
        _ => "other",
    }
}
