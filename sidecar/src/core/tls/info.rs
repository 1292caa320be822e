//! What one TLS connection negotiated, kept for its whole life: shown in `/connections`, the
//! access log, and sent upstream as `x-forwarded-client-cert`.

use control::tls::PeerIdentity;

/// The negotiated session and the verified peer.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: &'static str,
    /// The ALPN protocol agreed (RFC 7301), e.g. `h2`.
    pub alpn: Option<Box<str>>,
    /// The server name the client asked for (SNI, RFC 6066 §3).
    pub sni: Option<Box<str>>,
    /// The client certificate's names, when one was presented and verified.
    pub peer: Option<PeerIdentity>,
    /// The `x-forwarded-client-cert` value sent upstream with each request (Envoy's format),
    /// computed once per connection.
    pub xfcc: Option<Box<str>>,
}

/// [`TlsInfo`] as `/connections` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsView {
    pub version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<String>,
}

impl TlsInfo {
    pub fn view(&self) -> TlsView {
        TlsView {
            version: self.version,
            alpn: self.alpn.as_deref().map(str::to_owned),
            sni: self.sni.as_deref().map(str::to_owned),
            peer_identity: self.peer.as_ref().map(|p| p.display().to_owned()),
        }
    }
}

/// The name rustls gives a protocol version, as logs and `/connections` show it.
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    }
}
