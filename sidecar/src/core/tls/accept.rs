//! Termination: the first bytes say TLS or plaintext (permissive mode), then the handshake
//! runs within the listener's header-read deadline, like any other first bytes (slowloris).

use std::time::Instant;

use bytes::BytesMut;
use control::snapshot::ListenerTlsSpec;
use control::tls::{PeerIdentity, TlsMode};

use super::info::{version_name, TlsInfo};
use super::{HandshakeError, HANDSHAKE_RECORD};
use crate::core::conns::Conn;
use crate::core::down::idle;
use crate::core::h2::rewind::Rewind;
use crate::core::rt::{read_by, timeout, Rt, Stream};
use crate::core::wire::Wire;
use crate::core::worker::Worker;

/// How a connection on a TLS listener goes on.
pub enum Accepted<S: Stream> {
    /// A TLS session: the handshake is done and `Conn::tls` is set.
    Tls(Wire<S>),
    /// Plaintext on a permissive listener; the bytes read to decide are in the buffer.
    Plain(Wire<S>, BytesMut),
    /// The client left, sent nothing in time, or failed the handshake (counted and logged).
    Gone,
}

/// Reads the first bytes and, for a ClientHello, runs the handshake by `deadline`.
pub async fn accept<R: Rt>(
    w: &Worker<R>,
    stream: R::Stream,
    tls: &ListenerTlsSpec,
    listener: &str,
    deadline: Instant,
    conn: &Conn,
) -> Accepted<R::Stream> {
    let mut wire = Wire::Plain(stream);
    if !matches!(
        idle::wait::<R>(w, &wire, deadline, listener, conn).await,
        Some(Ok(()))
    ) {
        return Accepted::Gone;
    }
    let (res, first) = read_by::<R, _>(&mut wire, BytesMut::new(), 4096, deadline).await;
    match res {
        Ok(n) if n > 0 => {}
        _ => return Accepted::Gone,
    }
    if first.first() != Some(&HANDSHAKE_RECORD) {
        // `/connections` counts application bytes: plaintext, or TLS once decrypted.
        conn.add_in(first.len() as u64);
        if tls.mode == TlsMode::Permissive {
            transport(listener, "plaintext");
            return Accepted::Plain(wire, first);
        }
        failed(listener, conn, &HandshakeError::Plaintext);
        return Accepted::Gone;
    }
    let Wire::Plain(stream) = wire else {
        return Accepted::Gone;
    };
    let (local, original_dst) = (stream.local_addr(), stream.original_dst());
    let io = match stream.into_io() {
        Ok(io) => Rewind::new(io, first.freeze(), None),
        Err(e) => {
            failed(listener, conn, &HandshakeError::Tls(e));
            return Accepted::Gone;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    let left = deadline.saturating_duration_since(Instant::now());
    let session = match timeout::<R, _>(left, acceptor.accept(io)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            failed(listener, conn, &HandshakeError::Tls(e));
            return Accepted::Gone;
        }
        Err(_) => {
            failed(listener, conn, &HandshakeError::Timeout);
            return Accepted::Gone;
        }
    };
    let info = {
        let (_, s) = session.get_ref();
        let peer = s
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| PeerIdentity::from_der(c));
        let by = if tls.spiffe {
            control::tls::svid::store()
                .current()
                .map(|s| s.spiffe_id.clone())
        } else {
            tls.own_id.clone()
        };
        TlsInfo {
            version: version_name(s.protocol_version()),
            alpn: s.alpn_protocol().map(|a| String::from_utf8_lossy(a).into()),
            sni: s.server_name().map(Into::into),
            xfcc: peer.as_ref().map(|p| p.xfcc(by.as_deref()).into()),
            peer,
        }
    };
    tracing::debug!(peer = %conn.peer, listener, version = info.version,
        alpn = info.alpn.as_deref().unwrap_or("-"),
        identity = info.peer.as_ref().map_or("-", |p| p.display()), "TLS established");
    let _ = conn.tls.set(Box::new(info));
    metrics::counter!("ringside_tls_handshakes_total", "listener" => listener.to_owned(), "result" => "ok")
        .increment(1);
    transport(listener, "tls");
    Accepted::Tls(Wire::tls(
        tokio_rustls::TlsStream::Server(session),
        local,
        original_dst,
    ))
}

fn failed(listener: &str, conn: &Conn, e: &HandshakeError) {
    let result = e.label();
    tracing::debug!(peer = %conn.peer, listener, result, error = %e, "TLS handshake failed");
    metrics::counter!("ringside_tls_handshakes_total", "listener" => listener.to_owned(), "result" => result)
        .increment(1);
}

fn transport(listener: &str, transport: &'static str) {
    metrics::counter!("ringside_tls_listener_connections_total", "listener" => listener.to_owned(), "transport" => transport)
        .increment(1);
}
