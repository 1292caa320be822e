//! Opaque TCP listeners: pick where the connection goes (a cluster, or for an intercepting
//! listener the client's original destination), connect, tunnel.

use crate::core::wire::Wire;
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;

use control::model::DEFAULT_CONNECT_TIMEOUT;
use control::snapshot::{ClusterSpec, ListenerKind, ListenerSpec, Snapshot, TcpTarget};

use super::conns::Conn;
use super::error::ProxyError;
use super::rt::{Rt, Stream};
use super::tunnel;
use super::up::dial;
use super::worker::Worker;

/// Why a TCP listener's connection ended early.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// A direct connection to an intercepting listener without a cluster: its only
    /// destination would be the listener itself.
    #[error("connection was not redirected here and the listener has no cluster")]
    NotRedirected,
}

/// Serves one connection on a TCP listener.
pub async fn serve<R: Rt>(
    w: &Worker<R>,
    down: Wire<R::Stream>,
    first: Bytes,
    peer: SocketAddr,
    snap: &Snapshot,
    spec: &ListenerSpec,
    conn: &Conn,
) -> Result<tunnel::Moved, TcpError> {
    let intercepting = matches!(
        spec.kind,
        ListenerKind::Tcp {
            original_dst: Some(_),
            ..
        }
    );
    if !intercepting {
        let Some(TcpTarget::Cluster(id)) = spec.kind.tcp_target(None) else {
            return Err(ProxyError::NoEndpoint.into());
        };
        return Ok(proxy::<R>(
            w,
            down,
            first,
            peer,
            snap.cluster(id),
            spec.idle_timeout,
            conn,
        )
        .await?);
    }
    let original = redirected_from(&down);
    match spec.kind.tcp_target(original) {
        Some(TcpTarget::Cluster(id)) => {
            w.stats.original_dst(&spec.name, "cluster");
            tracing::debug!(%peer, original_dst = ?original, "intercepted: to cluster");
            Ok(proxy::<R>(
                w,
                down,
                first,
                peer,
                snap.cluster(id),
                spec.idle_timeout,
                conn,
            )
            .await?)
        }
        Some(TcpTarget::Passthrough(addr)) => {
            w.stats.original_dst(&spec.name, "passthrough");
            // The proxy's own connections are exempt from the redirect (`ringside iptables
            // --proxy-uid`), so this reaches the real destination instead of coming back.
            let up = dial::connect::<R>(addr, DEFAULT_CONNECT_TIMEOUT).await?;
            tracing::debug!(%peer, upstream = %addr, "intercepted: passthrough tunnel open");
            Ok(tunnel_to::<R>(down, up, first, spec.idle_timeout, conn).await?)
        }
        None => {
            w.stats.original_dst(&spec.name, "refused");
            tracing::warn!(%peer, listener = %spec.name, local = ?down.local_addr(),
                "refused a connection that was not redirected here: its original destination \
                 is this listener itself, and passing it through would connect to ourselves");
            Err(TcpError::NotRedirected)
        }
    }
}

/// The connection's original destination if iptables redirected it here; `None` for a
/// direct connection to the listener (the original destination is then the listener itself,
/// and passing it through would loop).
fn redirected_from<S: Stream>(s: &S) -> Option<SocketAddr> {
    let original = s.original_dst()?;
    (Some(original) != s.local_addr()).then_some(original)
}

pub async fn proxy<R: Rt>(
    w: &Worker<R>,
    down: Wire<R::Stream>,
    first: Bytes,
    peer: SocketAddr,
    cluster: &ClusterSpec,
    idle: Duration,
    conn: &Conn,
) -> Result<tunnel::Moved, ProxyError> {
    let d = dial::any::<R>(&w.balancers.get(cluster), cluster, &w.stats).await?;
    tracing::debug!(%peer, upstream = %d.addr, "tcp tunnel open");
    tunnel_to::<R>(down, d.conn, first, idle, conn).await
}

async fn tunnel_to<R: Rt>(
    down: Wire<R::Stream>,
    up: Wire<R::Stream>,
    first: Bytes,
    idle: Duration,
    conn: &Conn,
) -> Result<tunnel::Moved, ProxyError> {
    tunnel::run::<R, _, _>(down, up, first, bytes::Bytes::new(), idle, conn)
        .await
        .map_err(ProxyError::UpstreamIo)
}
