//! Getting a connection to the chosen cluster: from the pool, else a fresh connect, walking
//! the cluster's endpoints once if connects fail.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use control::snapshot::ClusterSpec;

use crate::core::balance::{ClusterState, InFlight};
use crate::core::error::ProxyError;
use crate::core::rt::Rt;
use crate::core::tcp;
use crate::core::worker::Worker;

pub struct Upstream<S> {
    pub stream: S,
    pub addr: SocketAddr,
    /// Came from the pool: it may have been closed by the upstream a moment ago, so a
    /// failure before any response byte is worth one retry when the request can be replayed.
    pub reused: bool,
    pub _in_flight: InFlight,
}

/// A pooled connection idle for less than this is used without a liveness peek when the
/// request can be replayed: if the upstream closed it a moment ago, the exchange is retried on
/// a fresh connection. Go's servers and most others keep idle connections far longer.
const TRUST_RECENT: Duration = Duration::from_secs(1);

/// `fresh` skips the pool (the retry after a reused connection failed). `replayable`: the
/// request has no body, so a failure on a reused connection can be retried.
pub async fn acquire<R: Rt>(
    w: &Worker<R>,
    cluster: &ClusterSpec,
    fresh: bool,
    replayable: bool,
) -> Result<Upstream<R::Stream>, ProxyError> {
    let state: Rc<ClusterState> = w.balancers.get(cluster);
    if state.is_empty() {
        return Err(ProxyError::NoEndpoint);
    }
    let first = state.pick();
    let addr = state.endpoint(first);
    if !fresh {
        let verify_after = if replayable {
            TRUST_RECENT
        } else {
            Duration::ZERO
        };
        if let Some(stream) = w.pool.checkout(addr, cluster.idle_timeout, verify_after) {
            return Ok(Upstream {
                stream,
                addr,
                reused: true,
                _in_flight: state.start(first),
            });
        }
    }
    let mut last_err = ProxyError::NoEndpoint;
    for k in 0..state.len() {
        let i = state.after(first, k);
        let addr = state.endpoint(i);
        match tcp::connect::<R>(addr, cluster.connect_timeout).await {
            Ok(stream) => {
                return Ok(Upstream {
                    stream,
                    addr,
                    reused: false,
                    _in_flight: state.start(i),
                })
            }
            Err(e) => {
                tracing::debug!(upstream = %addr, cluster = %cluster.name, error = %e, "connect failed");
                w.stats.cluster(&cluster.name).connect_errors.increment(1);
                last_err = e;
            }
        }
    }
    Err(last_err)
}
