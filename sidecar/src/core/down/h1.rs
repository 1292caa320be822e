//! A downstream HTTP/1.1 connection, request after request: read a head (strict codec), hand
//! it to `h1_request` for one exchange, and keep the connection, close it, or hand it back
//! upgraded (to become a tunnel). Requests are handled one at a time, so pipelined requests are answered in order by
//! construction.
//!
//! Between requests the connection holds no buffer: it waits for readability first (see
//! `core::rt`), which is what keeps an idle keep-alive connection well under a KiB.

use crate::core::wire::Wire;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use control::snapshot::ListenerSpec;

use super::h1_request;
use super::idle;
use super::local::{self, Conn as LocalConn};
use crate::core::bridge::stall::SendStall;
use crate::core::conns::Conn;
use crate::core::cutoff::{self, Reason};
use crate::core::http1::{self, Limits, RequestError, RequestHead};
use crate::core::proxy::exchange::Next;
use crate::core::rt::{read_by, ReadError, ReadHalf, Rt, WriteHalf};
use crate::core::worker::Worker;

/// First read for a request head: most heads fit, and it grows on demand to the limit.
const HEAD_CHUNK: usize = 4 * 1024;

/// An upgrade the upstream accepted (101): the connection becomes an opaque tunnel to `up`.
/// The bytes are what each side sent past the handshake in the same read.
pub struct Upgraded<S> {
    pub up: S,
    pub to_up: Bytes,
    pub to_down: Bytes,
}

/// Serves the connection once detection said HTTP/1 (`buf` holds the bytes it read), until it
/// closes, or until an upgrade turns it into a tunnel for the caller to run. Borrows the
/// stream, so an idle connection's future holds it once.
pub async fn serve<R: Rt>(
    w: &Worker<R>,
    down: &mut Wire<R::Stream>,
    mut buf: BytesMut,
    peer: SocketAddr,
    listener: &str,
    conn: &Conn,
) -> Option<Upgraded<Wire<R::Stream>>> {
    loop {
        // Readiness was just confirmed when the buffer was empty (a kept-alive connection);
        // pipelined bytes may already be buffered.
        let mut ready = false;
        if buf.is_empty() {
            // The only state an idle connection keeps: waiting for the next request's first
            // byte. Everything after it is one boxed future per request, so the connection's
            // own future stays small (see `connection_future_stays_small`).
            buf = BytesMut::new();
            let deadline = {
                let snap = w.snapshot();
                Instant::now() + snap.listener(listener)?.idle_timeout
            };
            match idle::wait::<R>(w, down, deadline, listener, conn).await {
                Some(Ok(())) => ready = true,
                _ => return None,
            }
        }
        let next = Box::pin(request::<R>(w, down, &mut buf, peer, listener, conn, ready)).await;
        match next {
            Next::KeepAlive => {}
            Next::Close => break,
            Next::Tunnel { up, to_up, to_down } => {
                return Some(Upgraded { up, to_up, to_down });
            }
        }
    }
    let _ = down.shutdown_write().await;
    None
}

/// One request, from its first byte to the end of its response.
async fn request<R: Rt>(
    w: &Worker<R>,
    down: &mut Wire<R::Stream>,
    buf: &mut BytesMut,
    peer: SocketAddr,
    listener: &str,
    conn: &Conn,
    ready: bool,
) -> Next<Wire<R::Stream>> {
    let waiting = w.snapshot();
    let Some(spec) = waiting.listener(listener) else {
        return Next::Close;
    };
    let head = match read_head::<R>(down, buf, spec, conn, ready).await {
        Ok(Some(h)) => h,
        Ok(None) => return Next::Close,
        Err(e) => {
            let metrics = !w.opts.no_metrics;
            if matches!(e, RequestError::Timeout) {
                cutoff::count(metrics, listener, Reason::HeaderRead);
            }
            let resp = local::response(e.status(), e.label(), LocalConn::Close);
            let stall = SendStall {
                limit: spec.send_stall,
                listener,
                metrics,
                conn: None,
            };
            let _ = stall.write::<R, _>(down, resp).await;
            return Next::Close;
        }
    };
    // The wait for this head may have spanned a reload: route on the newest config. If the
    // reload removed this listener, answer on the config the connection knew, then close.
    let newest = w.snapshot();
    let (snap, closing) = if newest.listener(listener).is_some() {
        (newest, w.lifecycle.is_draining())
    } else {
        (waiting, true)
    };
    let Some(spec) = snap.listener(listener) else {
        return Next::Close;
    };
    conn.requests.set(conn.requests.get() + 1);
    conn.in_flight.set(true);
    let at = h1_request::At {
        w,
        snap: &snap,
        spec,
        peer,
        closing,
        conn,
    };
    let next = h1_request::handle::<R>(&at, down, buf, head).await;
    conn.in_flight.set(false);
    next
}

/// Reads until a complete head is parsed, within the header-read timeout from the first byte.
/// `Ok(None)`: the client left mid-head (nothing to answer). `Err`: answer and close.
async fn read_head<R: Rt>(
    down: &mut Wire<R::Stream>,
    buf: &mut BytesMut,
    spec: &ListenerSpec,
    conn: &Conn,
    mut ready: bool,
) -> Result<Option<RequestHead>, RequestError> {
    let limits = Limits {
        max_header_bytes: spec.max_header_bytes,
        max_headers: spec.max_headers,
    };
    let deadline = Instant::now() + spec.header_read_timeout;
    loop {
        if ready {
            // The idle wait just saw data (or EOF): read without waiting again. Even an
            // io_uring recv completes at once, so this read can never hang.
            ready = false;
            buf.reserve(HEAD_CHUNK);
            let (res, b) = down.read(std::mem::take(buf)).await;
            *buf = b;
            match res {
                Ok(0) => return Ok(None),
                Ok(n) => conn.add_in(n as u64),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Ok(None),
            }
        }
        if !buf.is_empty() {
            match http1::parse_request(buf, &limits) {
                Ok(Some(h)) => return Ok(Some(h)),
                Ok(None) => {}
                Err(e) if !e.answerable() => {
                    tracing::debug!(error = %e, "closed: not HTTP");
                    return Ok(None);
                }
                Err(e) => {
                    tracing::debug!(error = %e, status = e.status(), "rejected request");
                    return Err(e);
                }
            }
        }
        let (res, b) = read_by::<R, _>(down, std::mem::take(buf), HEAD_CHUNK, deadline).await;
        *buf = b;
        match res {
            Ok(n) if n > 0 => conn.add_in(n as u64),
            Err(ReadError::Elapsed) if !buf.is_empty() => return Err(RequestError::Timeout),
            // EOF, reset, or a client that connected and never spoke: nobody to answer.
            _ => return Ok(None),
        }
    }
}
