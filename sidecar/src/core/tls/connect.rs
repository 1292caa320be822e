//! Origination: TLS toward a cluster's endpoint, on a connection just opened.

use std::net::SocketAddr;
use std::time::Duration;

use control::snapshot::ClusterTlsSpec;
use rustls::pki_types::ServerName;

use super::HandshakeError;
use crate::core::error::ProxyError;
use crate::core::h2::rewind::Rewind;
use crate::core::rt::{timeout, Rt, Stream};
use crate::core::wire::Wire;

/// Runs the client handshake within `within`. The name sent (SNI) and checked is the
/// cluster's `server_name`, else the endpoint's IP; with `server_identity` the SPIFFE ID is
/// checked instead (by the config's verifier).
///
/// # Errors
/// [`ProxyError::UpstreamTls`], labelled by cause in `ringside_upstream_tls_handshakes_total`.
pub async fn connect<R: Rt>(
    stream: R::Stream,
    tls: &ClusterTlsSpec,
    addr: SocketAddr,
    cluster: &str,
    within: Duration,
) -> Result<Wire<R::Stream>, ProxyError> {
    let name = tls
        .server_name
        .clone()
        .unwrap_or(ServerName::IpAddress(addr.ip().into()));
    let (local, original_dst) = (stream.local_addr(), stream.original_dst());
    let fail = |source: HandshakeError| {
        metrics::counter!("ringside_upstream_tls_handshakes_total", "cluster" => cluster.to_owned(), "result" => source.label())
            .increment(1);
        ProxyError::UpstreamTls { addr, source }
    };
    let io = stream.into_io().map_err(|e| fail(HandshakeError::Tls(e)))?;
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let session = match timeout::<R, _>(
        within,
        connector.connect(name, Rewind::new(io, Default::default(), None)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(fail(HandshakeError::Tls(e))),
        Err(_) => return Err(fail(HandshakeError::Timeout)),
    };
    metrics::counter!("ringside_upstream_tls_handshakes_total", "cluster" => cluster.to_owned(), "result" => "ok")
        .increment(1);
    Ok(Wire::tls(
        tokio_rustls::TlsStream::Client(session),
        local,
        original_dst,
    ))
}
