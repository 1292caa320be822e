//! Upstream HTTP/2 connections, per worker and per endpoint, multiplexed: a request takes a
//! stream on a connection that has one free, and a new connection is opened only when every
//! existing one is at the peer's `SETTINGS_MAX_CONCURRENT_STREAMS`.
//!
//! Each connection is driven by its own task on the worker (the `h2` connection future must be
//! polled for any stream on it to progress); the task ends when the peer closes, or when the
//! connection has carried no stream for the cluster's idle timeout.

use crate::core::wire::Wire;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use control::snapshot::ClusterSpec;
use h2::client::SendRequest;

use super::balance::{ClusterState, InFlight};
use super::dial;
use crate::core::bridge::interim::Interim;
use crate::core::error::ProxyError;
use crate::core::h2::settings;
use crate::core::rt::{timeout, Rt, Stream};
use crate::core::stats::Stats;

/// What the pool and the connection's driver task share.
#[derive(Debug)]
struct State {
    /// The driver ended: the connection is gone.
    closed: Cell<bool>,
    /// Streams open on it right now.
    active: Cell<usize>,
    /// The peer's current concurrent-stream limit.
    max: Cell<usize>,
    idle_since: Cell<Instant>,
    /// Its place under the cluster's `max_connections`, freed when the last holder drops.
    _slot: super::breaker::Slot,
}

struct Shared {
    send: SendRequest<Bytes>,
    state: Rc<State>,
}

/// All upstream HTTP/2 connections of one worker.
#[derive(Default)]
pub struct H2Pool {
    conns: RefCell<HashMap<SocketAddr, Vec<Shared>>>,
    /// Endpoints with a connection being opened, and the requests waiting for it: a burst of
    /// streams opens connections one at a time, as the peer's limit requires, not one each.
    connecting: RefCell<HashMap<SocketAddr, Vec<Waker>>>,
}

/// A stream slot on an upstream connection; frees it when dropped.
pub struct Lease {
    pub send: SendRequest<Bytes>,
    pub addr: SocketAddr,
    state: Rc<State>,
    _in_flight: InFlight,
}

impl Lease {
    /// The endpoint this stream went to, to report its outcome (outlier ejection).
    pub fn target(&self) -> super::balance::Target {
        self._in_flight.target()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let s = &self.state;
        s.active.set(s.active.get().saturating_sub(1));
        s.idle_since.set(Instant::now());
    }
}

impl H2Pool {
    /// Connections open now (for `/runtime`).
    pub fn connection_count(&self) -> usize {
        self.conns
            .borrow()
            .values()
            .map(|v| v.iter().filter(|c| !c.state.closed.get()).count())
            .sum()
    }

    /// Waits until the connection being opened to `addr` is open or failed; `false` at once
    /// when none is being opened.
    async fn wait_for_connect(&self, addr: SocketAddr) -> bool {
        if !self.connecting.borrow().contains_key(&addr) {
            return false;
        }
        poll_fn(|cx| {
            let mut map = self.connecting.borrow_mut();
            match map.get_mut(&addr) {
                // Registered on every poll: the connect that woke us may already have been
                // replaced by the next one, whose waiter list is new.
                Some(waiters) => {
                    if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                        waiters.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
                None => Poll::Ready(()),
            }
        })
        .await;
        true
    }

    /// Marks a connect to `addr` as started; the guard ends it and wakes the waiters.
    fn start_connect(&self, addr: SocketAddr) -> Connecting<'_> {
        self.connecting.borrow_mut().entry(addr).or_default();
        Connecting { pool: self, addr }
    }

    /// Closes the idle connections to endpoints that no cluster names any more (a reload
    /// removed them); connections with streams in flight close once those end. Returns how
    /// many were closed.
    pub fn retire(&self, still_named: impl Fn(SocketAddr) -> bool) -> usize {
        let mut closed = 0;
        self.conns.borrow_mut().retain(|addr, list| {
            if still_named(*addr) {
                return true;
            }
            list.retain(|c| {
                let idle = c.state.active.get() == 0;
                if idle && !c.state.closed.get() {
                    // The driver sees this at its next tick and drops the connection.
                    c.state.closed.set(true);
                    closed += 1;
                }
                !idle
            });
            !list.is_empty()
        });
        closed
    }

    fn take_slot(&self, addr: SocketAddr) -> Option<(SendRequest<Bytes>, Rc<State>)> {
        let mut map = self.conns.borrow_mut();
        let list = map.get_mut(&addr)?;
        list.retain(|c| !c.state.closed.get());
        let c = list
            .iter()
            .filter(|c| c.state.active.get() < c.state.max.get())
            .min_by_key(|c| c.state.active.get())?;
        c.state.active.set(c.state.active.get() + 1);
        Some((c.send.clone(), c.state.clone()))
    }
}

/// A stream slot to the cluster's chosen endpoint: on a connection with room, else on a new
/// one (walking the endpoints once if connects fail). `fresh` skips existing connections
/// (the replay after a connection refused a stream); `avoid` is the endpoint a previous
/// attempt used, not chosen again when there is another.
///
/// # Errors
/// [`ProxyError::NoEndpoint`], or the last endpoint's connect or handshake error.
pub async fn acquire<R: Rt>(
    pool: &H2Pool,
    lb: Rc<ClusterState>,
    stats: &Stats,
    cluster: &ClusterSpec,
    fresh: bool,
    avoid: Option<SocketAddr>,
) -> Result<Lease, ProxyError> {
    if lb.is_empty() {
        return Err(ProxyError::NoEndpoint);
    }
    let first = lb.pick_avoiding(avoid);
    if !fresh {
        let addr = lb.endpoint(first);
        loop {
            if let Some((send, st)) = pool.take_slot(addr) {
                return Ok(Lease {
                    send,
                    addr,
                    state: st,
                    _in_flight: lb.start(first),
                });
            }
            // No room: a connection being opened may bring some; else open one.
            if !pool.wait_for_connect(addr).await {
                break;
            }
        }
    }
    let d = dial::walk(&lb, first, cluster, stats, |addr| {
        let slot = dial::connection_slot(&lb);
        async move { connect::<R>(pool, addr, cluster, slot?).await }
    })
    .await?;
    let (send, state) = d.conn;
    Ok(Lease {
        send,
        addr: d.addr,
        state,
        _in_flight: d.in_flight,
    })
}

/// The next response head on an upstream stream: an informational (1xx) one, or the final one.
pub enum Head {
    Informational(http::Response<()>),
    Final(http::Response<h2::RecvStream>),
}

/// Waits for the next response head. Safe to drop and call again.
pub fn next_head(
    resp: &mut h2::client::ResponseFuture,
) -> impl Future<Output = Result<Head, h2::Error>> + '_ {
    poll_fn(move |cx| {
        if let Poll::Ready(Some(r)) = resp.poll_informational(cx) {
            return Poll::Ready(r.map(Head::Informational));
        }
        Pin::new(&mut *resp).poll(cx).map(|r| r.map(Head::Final))
    })
}

/// The final response, handing informational ones to `interim` as they arrive.
///
/// # Errors
/// The stream failed (see [`stream_error`]), or forwarding a 1xx failed (`DownstreamIo`).
pub async fn final_response<I: Interim>(
    resp: &mut h2::client::ResponseFuture,
    interim: &mut I,
) -> Result<http::Response<h2::RecvStream>, ProxyError> {
    loop {
        match next_head(resp).await.map_err(|e| stream_error(e, true))? {
            Head::Informational(r) => interim
                .informational_h2(r)
                .await
                .map_err(ProxyError::DownstreamIo)?,
            Head::Final(r) => return Ok(r),
        }
    }
}

/// What an HTTP/2 error on an upstream stream proves. A stream the upstream refused, one
/// above a graceful GOAWAY's last_stream_id (h2 reports those as a remote GOAWAY with
/// NO_ERROR: RFC 9113 §6.8), or one that could not even be opened, was never processed.
/// `opened`: the stream was sent (false: `send_request` or `poll_ready` failed).
pub fn stream_error(e: h2::Error, opened: bool) -> ProxyError {
    let refused = !opened
        || e.reason() == Some(h2::Reason::REFUSED_STREAM)
        || (e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::NO_ERROR));
    if refused {
        return ProxyError::Refused(e.to_string());
    }
    if e.is_reset() && e.is_remote() {
        if let Some(r) = e.reason() {
            return ProxyError::UpstreamReset(r);
        }
    }
    if !e.is_io() {
        return ProxyError::UpstreamProtocol(format!("h2: {e}"));
    }
    match e.into_io() {
        Some(io) => ProxyError::UpstreamIo(io),
        None => ProxyError::UpstreamClosed,
    }
}

/// Opens a connection, spawns its driver, registers it, and takes its first stream slot.
async fn connect<R: Rt>(
    pool: &H2Pool,
    addr: SocketAddr,
    cluster: &ClusterSpec,
    slot: super::breaker::Slot,
) -> Result<(SendRequest<Bytes>, Rc<State>), ProxyError> {
    let _connecting = pool.start_connect(addr);
    let stream = dial::open::<R>(addr, cluster).await?;
    let io = stream
        .into_io()
        .map_err(|source| ProxyError::Connect { addr, source })?;
    let hs = settings::client().handshake::<_, Bytes>(io);
    let (send, mut conn) = match timeout::<R, _>(cluster.connect_timeout, hs).await {
        Err(_) => return Err(ProxyError::ConnectTimeout(addr)),
        Ok(Err(e)) => return Err(ProxyError::UpstreamProtocol(format!("h2 handshake: {e}"))),
        Ok(Ok(pair)) => pair,
    };
    let st = Rc::new(State {
        closed: Cell::new(false),
        active: Cell::new(1),
        max: Cell::new(settings::UPSTREAM_INITIAL_MAX_STREAMS),
        idle_since: Cell::new(Instant::now()),
        _slot: slot,
    });
    let mut ping = conn.ping_pong();
    let driver_state = st.clone();
    let idle = cluster.idle_timeout;
    R::spawn(async move {
        drive::<R>(&mut conn, &driver_state, idle).await;
        driver_state.closed.set(true);
    });
    // One round trip before use: the peer's SETTINGS precede its PING ack, so after it the
    // stream limit is the peer's, not our guess, and waiting requests share the connection
    // only as far as the peer allows. (A single PING per new connection: grpc-go only
    // objects to repeated ones.)
    if let Some(ping) = ping.as_mut() {
        let pong = timeout::<R, _>(cluster.connect_timeout, ping.ping(h2::Ping::opaque())).await;
        if !matches!(pong, Ok(Ok(_))) {
            st.closed.set(true);
            return Err(ProxyError::UpstreamProtocol(
                "h2: no answer to the first PING".into(),
            ));
        }
    }
    st.max.set(send.current_max_send_streams());
    pool.conns
        .borrow_mut()
        .entry(addr)
        .or_default()
        .push(Shared {
            send: send.clone(),
            state: st.clone(),
        });
    Ok((send, st))
}

/// A connect in progress; dropping it (done, failed or cancelled) wakes whoever waited.
struct Connecting<'a> {
    pool: &'a H2Pool,
    addr: SocketAddr,
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        let waiters = self.pool.connecting.borrow_mut().remove(&self.addr);
        waiters.into_iter().flatten().for_each(Waker::wake);
    }
}

/// Polls the connection until it ends, or until it has idled past `idle` with no stream.
async fn drive<R: Rt>(
    conn: &mut h2::client::Connection<<Wire<R::Stream> as Stream>::Io, Bytes>,
    st: &State,
    idle: Duration,
) {
    let check = idle.clamp(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        let mut tick = std::pin::pin!(R::sleep(check));
        let ended = poll_fn(|cx| {
            st.max.set(conn.max_concurrent_send_streams());
            if let Poll::Ready(r) = Pin::new(&mut *conn).poll(cx) {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upstream h2 connection ended");
                }
                return Poll::Ready(true);
            }
            tick.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if ended || (st.closed.get() && st.active.get() == 0) {
            return;
        }
        if st.active.get() == 0 && st.idle_since.get().elapsed() >= idle {
            // Mark it gone before it closes, so no request picks it meanwhile.
            st.closed.set(true);
            return;
        }
    }
}
