//! The upstream half of an HTTP/1 exchange: a connection from the pool or a fresh one, and the
//! response head read back (1xx responses forwarded as they arrive).

use crate::core::wire::Wire;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use control::snapshot::ClusterSpec;

use super::balance::{ClusterState, InFlight};
use super::breaker::Slot;
use super::dial;
use super::pool::Pool;
use crate::core::bridge::interim::Interim;
use crate::core::error::ProxyError;
use crate::core::http1::{self, Limits, ResponseHead};
use crate::core::rt::{ReadError, ReadHalf, Rt, WriteHalf};
use crate::core::stats::Stats;

/// First read for a response head; it grows on demand to the limit. Callers take a buffer
/// of this size from `http1::scratch::read_buf`.
pub const HEAD_CHUNK: usize = 4 * 1024;

/// Response heads from upstreams are held to the same limits as HTTP/2 header lists.
const RESPONSE_LIMITS: Limits = Limits {
    max_header_bytes: 64 * 1024,
    max_headers: 200,
};

/// A connection to one endpoint of the cluster.
pub struct Upstream<S> {
    pub stream: S,
    pub addr: SocketAddr,
    /// Came from the pool: the upstream may have closed it a moment ago.
    pub reused: bool,
    pub _in_flight: InFlight,
    /// Its place under the cluster's `max_connections` (goes back to the pool with it).
    pub slot: Slot,
}

/// A pooled connection idle for less than this is used without a liveness peek when a
/// failure on it could be replayed. Go's servers and most others keep idle connections far
/// longer.
const TRUST_RECENT: Duration = Duration::from_secs(1);

/// A connection to the cluster's chosen endpoint: the most recently pooled one, else a fresh
/// connect (walking the endpoints once). `fresh` skips the pool (a replay); `avoid` is the
/// endpoint a previous attempt used, not chosen again when there is another. `replayable`: a
/// failure on a reused connection could be replayed, so a recently used one is trusted
/// without a peek.
///
/// # Errors
/// [`ProxyError::NoEndpoint`], [`ProxyError::Overflow`] at the cluster's `max_connections`,
/// or the last connect error.
pub async fn acquire<R: Rt>(
    pool: &Pool<R>,
    lb: Rc<ClusterState>,
    stats: &Stats,
    cluster: &ClusterSpec,
    fresh: bool,
    avoid: Option<SocketAddr>,
    replayable: bool,
) -> Result<Upstream<Wire<R::Stream>>, ProxyError> {
    if lb.is_empty() {
        return Err(ProxyError::NoEndpoint);
    }
    let first = lb.pick_avoiding(avoid);
    if !fresh {
        let addr = lb.endpoint(first);
        let verify_after = if replayable {
            TRUST_RECENT
        } else {
            Duration::ZERO
        };
        if let Some((stream, slot)) = pool.checkout(addr, cluster.idle_timeout, verify_after) {
            return Ok(Upstream {
                stream,
                addr,
                reused: true,
                _in_flight: lb.start(first),
                slot,
            });
        }
    }
    let d = dial::walk(&lb, first, cluster, stats, |a| {
        let slot = dial::connection_slot(&lb);
        async move {
            let slot = slot?;
            Ok((dial::open::<R>(a, cluster).await?, slot))
        }
    })
    .await?;
    let (stream, slot) = d.conn;
    Ok(Upstream {
        stream,
        addr: d.addr,
        reused: false,
        _in_flight: d.in_flight,
        slot,
    })
}

/// Writes the request head on `up`. A reused connection that fails here was closed by the
/// upstream before it could read the whole head, so the request was never processed.
///
/// # Errors
/// [`ProxyError::StaleConnection`] on a reused connection, else [`ProxyError::UpstreamIo`].
pub async fn send_head<S: WriteHalf>(up: &mut Upstream<S>, head: Bytes) -> Result<(), ProxyError> {
    up.stream.write_all(head).await.map_err(|e| {
        if up.reused {
            ProxyError::StaleConnection(e)
        } else {
            ProxyError::UpstreamIo(e)
        }
    })
}

/// Reads the final response head within `deadline`, handing 1xx responses (other than 101)
/// to `interim` as they arrive.
///
/// # Errors
/// [`ProxyError::UpstreamClosed`] on EOF or reset before a complete head, `Timeout`,
/// `UpstreamIo`, `UpstreamProtocol` for a head the strict codec refuses, `DownstreamIo` when
/// forwarding a 1xx failed.
pub async fn read_response_head<R: Rt, I: Interim>(
    up: &mut Wire<R::Stream>,
    ubuf: &mut BytesMut,
    is_head: bool,
    deadline: Instant,
    interim: &mut I,
) -> Result<ResponseHead, ProxyError> {
    loop {
        if !ubuf.is_empty() {
            match http1::parse_response(ubuf, is_head, &RESPONSE_LIMITS) {
                Ok(Some(r)) if r.is_informational() => {
                    interim
                        .informational(&r)
                        .await
                        .map_err(ProxyError::DownstreamIo)?;
                    continue;
                }
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(ProxyError::UpstreamProtocol(e.to_string())),
            }
        }
        // A response is expected (the request was just sent): read directly, no readiness
        // wait first (one io_uring op instead of two).
        let (res, b) = up
            .read_within::<R>(std::mem::take(ubuf), HEAD_CHUNK, deadline)
            .await;
        *ubuf = b;
        match res {
            Ok(0) => return Err(ProxyError::UpstreamClosed),
            Ok(_) => {}
            Err(ReadError::Elapsed) => return Err(ProxyError::Timeout),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(ProxyError::UpstreamClosed)
            }
            Err(ReadError::Io(e)) => return Err(ProxyError::UpstreamIo(e)),
        }
    }
}
