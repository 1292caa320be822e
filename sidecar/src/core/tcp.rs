//! Opaque TCP listeners: pick an endpoint, connect, tunnel.

use std::net::SocketAddr;
use std::time::Duration;

use control::snapshot::ClusterSpec;

use super::conns::Conn;
use super::error::ProxyError;
use super::rt::Rt;
use super::tunnel;
use super::worker::Worker;

pub async fn proxy<R: Rt>(
    w: &Worker<R>,
    down: R::Stream,
    peer: SocketAddr,
    cluster: &ClusterSpec,
    idle: Duration,
    conn: &Conn,
) -> Result<tunnel::Moved, ProxyError> {
    let (up, addr) = connect_any::<R>(w, cluster).await?;
    tracing::debug!(%peer, upstream = %addr, "tcp tunnel open");
    tunnel::run::<R, _, _>(
        down,
        up,
        bytes::Bytes::new(),
        bytes::Bytes::new(),
        idle,
        conn,
    )
    .await
    .map_err(ProxyError::UpstreamIo)
}

/// Connects to the cluster's chosen endpoint, trying each other endpoint once if it fails.
pub async fn connect_any<R: Rt>(
    w: &Worker<R>,
    cluster: &ClusterSpec,
) -> Result<(R::Stream, SocketAddr), ProxyError> {
    let state = w.balancers.get(cluster);
    if state.is_empty() {
        return Err(ProxyError::NoEndpoint);
    }
    let first = state.pick();
    let mut last_err = ProxyError::NoEndpoint;
    for k in 0..state.len() {
        let addr = state.endpoint(state.after(first, k));
        match connect::<R>(addr, cluster.connect_timeout).await {
            Ok(s) => return Ok((s, addr)),
            Err(e) => {
                tracing::debug!(upstream = %addr, error = %e, "connect failed");
                w.stats.cluster(&cluster.name).connect_errors.increment(1);
                last_err = e;
            }
        }
    }
    Err(last_err)
}

pub async fn connect<R: Rt>(addr: SocketAddr, within: Duration) -> Result<R::Stream, ProxyError> {
    match R::connect(addr, within).await {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(ProxyError::ConnectTimeout(addr)),
        Err(source) => Err(ProxyError::Connect { addr, source }),
    }
}
