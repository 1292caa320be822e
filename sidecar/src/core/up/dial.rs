//! Getting a connection to a cluster's endpoint: the balancer's pick first, then each other
//! endpoint once if connects fail. Written once, for HTTP/1, HTTP/2 and TCP upstreams.

use crate::core::wire::Wire;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use control::snapshot::ClusterSpec;

use super::balance::{ClusterState, InFlight};
use super::breaker::{Kind, Slot};
use crate::core::error::ProxyError;
use crate::core::rt::Rt;
use crate::core::stats::Stats;

/// A connection `T` to one endpoint, counted against it (least-request balancing) while held.
pub struct Dialed<T> {
    pub conn: T,
    pub addr: SocketAddr,
    pub in_flight: InFlight,
}

/// Tries `open` on endpoint `first`, then on each other endpoint once, until one succeeds.
/// Each failure is logged and counted in `ringside_upstream_connect_errors_total`.
///
/// # Errors
/// [`ProxyError::NoEndpoint`] for a cluster without endpoints; else the last endpoint's error.
pub async fn walk<T, F, Fut>(
    lb: &Rc<ClusterState>,
    first: usize,
    cluster: &ClusterSpec,
    stats: &Stats,
    mut open: F,
) -> Result<Dialed<T>, ProxyError>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = Result<T, ProxyError>>,
{
    let mut last_err = ProxyError::NoEndpoint;
    for k in 0..lb.len() {
        let i = lb.after(first, k);
        let addr = lb.endpoint(i);
        match open(addr).await {
            Ok(conn) => {
                return Ok(Dialed {
                    conn,
                    addr,
                    in_flight: lb.start(i),
                })
            }
            // The cluster's connection limit: no endpoint's fault, and no other endpoint helps.
            Err(e @ ProxyError::Overflow(_)) => return Err(e),
            Err(e) => {
                tracing::debug!(upstream = %addr, cluster = %cluster.name, error = %e, "connect failed");
                stats.cluster(&cluster.name).connect_errors.increment(1);
                lb.report(i, false);
                last_err = e;
            }
        }
    }
    Err(last_err)
}

/// [`walk`] from the balancer's own pick, with plain TCP connects.
pub async fn any<R: Rt>(
    lb: &Rc<ClusterState>,
    cluster: &ClusterSpec,
    stats: &Stats,
) -> Result<Dialed<Wire<R::Stream>>, ProxyError> {
    if lb.is_empty() {
        return Err(ProxyError::NoEndpoint);
    }
    walk(lb, lb.pick(), cluster, stats, |addr| {
        open::<R>(addr, cluster)
    })
    .await
}

/// One connection to `addr` as the cluster wants it: TCP within `connect_timeout`, then TLS
/// (within as long again) if the cluster originates TLS.
///
/// # Errors
/// As [`connect`], or [`ProxyError::UpstreamTls`].
pub async fn open<R: Rt>(
    addr: SocketAddr,
    cluster: &ClusterSpec,
) -> Result<Wire<R::Stream>, ProxyError> {
    let within = cluster.connect_timeout;
    let Some(tls) = &cluster.tls else {
        return connect::<R>(addr, within).await;
    };
    let stream = match R::connect(addr, within).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            return Err(ProxyError::ConnectTimeout(addr))
        }
        Err(source) => return Err(ProxyError::Connect { addr, source }),
    };
    crate::core::tls::connect::connect::<R>(stream, tls, addr, &cluster.name, within).await
}

/// A slot under the cluster's `max_connections` for a new connection, held for its life.
///
/// # Errors
/// [`ProxyError::Overflow`] when the cluster has as many connections as it may.
pub fn connection_slot(lb: &ClusterState) -> Result<Slot, ProxyError> {
    lb.admit(Kind::Connection)
        .ok_or(ProxyError::Overflow("max_connections"))
}

/// One TCP connect within `within`.
///
/// # Errors
/// [`ProxyError::ConnectTimeout`] or [`ProxyError::Connect`].
pub async fn connect<R: Rt>(
    addr: SocketAddr,
    within: Duration,
) -> Result<Wire<R::Stream>, ProxyError> {
    match R::connect(addr, within).await {
        Ok(s) => Ok(Wire::Plain(s)),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(ProxyError::ConnectTimeout(addr)),
        Err(source) => Err(ProxyError::Connect { addr, source }),
    }
}
