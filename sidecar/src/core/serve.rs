//! Where every accepted connection starts: find its listener in the current config, hand it
//! to the TCP or HTTP path, and contain any panic to this one connection.

use crate::core::wire::Wire;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use control::snapshot::{ListenerKind, Snapshot};
use futures_util::FutureExt;

use super::conns::{Abortable, Conn, Protocol};
use super::detect::{self, Sniffed};
use super::down;
use super::rt::Rt;
use super::stats::ListenerStats;
use super::tls::accept::Accepted;
use super::worker::Worker;
use super::{authz, tcp, tls, tunnel};

/// A plain function, not an `async fn`: every byte of the returned future is held by every
/// idle connection, and an `async fn` would keep a second copy of its arguments.
pub fn connection<R: Rt>(
    w: Rc<Worker<R>>,
    stream: R::Stream,
    peer: SocketAddr,
    listener: Rc<str>,
    slot: super::shed::ConnSlot,
) -> impl Future<Output = ()> {
    let live = w.lifecycle.connection();
    let protocol = match w.snapshot().listener(&listener).map(|l| &l.kind) {
        Some(ListenerKind::Tcp { .. }) => Protocol::Tcp,
        _ => Protocol::Http1,
    };
    // One span per connection: every event logged while serving it carries peer, listener and
    // worker. Disabled below debug, where entering it is a flag check. It lives in the
    // registry entry (already on the heap), not in the task's future.
    let span = tracing::debug_span!("conn", %peer, listener = %listener, worker = w.id);
    let reg = w.conns.open(peer, listener.clone(), protocol, span, slot);
    let conn = reg.conn.clone();
    Abortable::new(
        serve(w, Wire::Plain(stream), peer, listener, conn),
        reg,
        live,
    )
}

/// After the first bytes: HTTP/1 in place (every kept-alive connection waits in here, so
/// nothing else may be held across it), then an upgrade's tunnel or HTTP/2, each boxed. A macro
/// rather than a function: an inline `async fn` would keep its own copy of every argument in
/// every connection's future, and the plaintext and TLS paths must share this.
macro_rules! serve_http {
    ($w:expr, $stream:ident, $sniffed:expr, $buf:expr, $peer:expr, $listener:expr, $conn:expr) => {
        match $sniffed {
            Sniffed::Http1 => {
                let served = down::h1::serve::<R>($w, &mut $stream, $buf, $peer, &$listener, $conn);
                // One `let`, so the upgrade's streams move into the box at once rather
                // than sit in this (every connection's) future while the tunnel runs.
                let tunnel = served
                    .await
                    .map(|up| Box::pin(upgraded::<R>($w, $stream, up, $peer, &$listener, $conn)));
                if let Some(t) = tunnel {
                    t.await;
                }
            }
            Sniffed::Http2 => {
                Box::pin(down::h2::serve($w, $stream, $buf, $peer, $listener, $conn)).await;
            }
            Sniffed::Gone => {}
        }
    };
}

async fn serve<R: Rt>(
    w: Rc<Worker<R>>,
    mut stream: Wire<R::Stream>,
    peer: SocketAddr,
    listener: Rc<str>,
    conn: Rc<Conn>,
) {
    let w = &w;
    let conn = &*conn;
    let snap = w.snapshot();
    let Some(spec) = snap.listener(&listener) else {
        // The listener was removed by a reload after this connection was accepted.
        return;
    };
    let stats = w.stats.listener(&listener);
    let _open = OpenConnection::new(w, &stats);
    if spec.tls.is_some() {
        // Boxed: only TLS connections pay for the handshake's and the session's state.
        Box::pin(serve_tls::<R>(
            w,
            stream,
            snap.clone(),
            peer,
            listener,
            conn,
            &stats,
        ))
        .await;
        return;
    }
    match &spec.kind {
        ListenerKind::Tcp { .. } => {
            // Boxed: a future is as large as its largest branch, and an idle HTTP connection
            // should not pay for the tunnel's state.
            let tunnel = tcp::serve::<R>(w, stream, Bytes::new(), peer, &snap, spec, conn);
            Box::pin(tcp_done(tunnel, &stats, peer, &listener)).await;
        }
        ListenerKind::Http { .. } => {
            // Same port, two protocols: the first bytes say which (an h2c client opens with
            // the HTTP/2 preface), and a new connection must send them promptly (slowloris).
            // Boxed, like each request, so that a kept-alive idle connection's future does not
            // also carry this first wait.
            let first = {
                let deadline = Instant::now() + spec.header_read_timeout;
                Box::pin(first_bytes::<R>(w, &mut stream, deadline, &listener, conn))
            };
            drop(snap);
            let (sniffed, buf) = first.await;
            serve_http!(w, stream, sniffed, buf, peer, listener, conn);
        }
    }
}

/// A connection on a TLS listener: the handshake (or, in permissive mode, plaintext), the
/// listener's `authz` for tcp, then the same paths as plaintext.
async fn serve_tls<R: Rt>(
    w: &Worker<R>,
    stream: Wire<R::Stream>,
    snap: Arc<Snapshot>,
    peer: SocketAddr,
    listener: Rc<str>,
    conn: &Conn,
    stats: &ListenerStats,
) {
    let Some(spec) = snap.listener(&listener) else {
        return;
    };
    let (Some(tls), Wire::Plain(stream)) = (&spec.tls, stream) else {
        return;
    };
    let deadline = Instant::now() + spec.header_read_timeout;
    let accepted = tls::accept::accept::<R>(w, stream, tls, &listener, deadline, conn).await;
    let (mut stream, first) = match accepted {
        Accepted::Gone => return,
        Accepted::Tls(stream) => (stream, BytesMut::new()),
        Accepted::Plain(stream, first) => (stream, first),
    };
    if let ListenerKind::Tcp { .. } = &spec.kind {
        if authz::admits_connection(spec, conn) {
            let tunnel = tcp::serve::<R>(w, stream, first.freeze(), peer, &snap, spec, conn);
            tcp_done(tunnel, stats, peer, &listener).await;
        }
        return;
    }
    drop(snap);
    // ALPN decided (RFC 7301). A TLS client that offered none may still speak HTTP/2 with
    // prior knowledge, and a plaintext one (permissive mode) is told apart as on any listener.
    let alpn = conn.tls.get().and_then(|t| t.alpn.as_deref());
    let mut buf = first;
    let sniffed = match alpn {
        Some("h2") => Sniffed::Http2,
        Some(_) => Sniffed::Http1,
        None => detect::sniff::<R, _>(&mut stream, &mut buf, false, deadline, conn).await,
    };
    serve_http!(w, stream, sniffed, buf, peer, listener, conn);
}

/// Awaits a tcp listener's tunnel and counts what it moved.
async fn tcp_done(
    tunnel: impl Future<Output = Result<tunnel::Moved, tcp::TcpError>>,
    stats: &ListenerStats,
    peer: SocketAddr,
    listener: &str,
) {
    match tunnel.await {
        Ok(m) => {
            stats.received.increment(m.a_to_b);
            stats.sent.increment(m.b_to_a);
            tracing::debug!(%peer, listener, sent = m.a_to_b, received = m.b_to_a, "tcp closed")
        }
        Err(e) => tracing::debug!(%peer, listener, error = %e, "tcp closed with error"),
    }
}

/// Waits for a new connection's first bytes and detects its protocol from them; the bytes
/// read stay in the buffer for whichever protocol takes over.
async fn first_bytes<R: Rt>(
    w: &Worker<R>,
    stream: &mut Wire<R::Stream>,
    deadline: Instant,
    listener: &str,
    conn: &Conn,
) -> (Sniffed, BytesMut) {
    let mut buf = BytesMut::new();
    match down::idle::wait::<R>(w, stream, deadline, listener, conn).await {
        Some(Ok(())) => {
            let sniffed = detect::sniff::<R, _>(stream, &mut buf, true, deadline, conn).await;
            (sniffed, buf)
        }
        _ => (Sniffed::Gone, buf),
    }
}

/// Runs an upgraded HTTP/1 connection (WebSocket) as an opaque tunnel until either side ends.
async fn upgraded<R: Rt>(
    w: &Worker<R>,
    down: Wire<R::Stream>,
    up: down::h1::Upgraded<Wire<R::Stream>>,
    peer: SocketAddr,
    listener: &str,
    conn: &Conn,
) {
    let idle = w
        .snapshot()
        .listener(listener)
        .map_or(Duration::from_secs(3600), |s| s.idle_timeout);
    conn.protocol.set(Protocol::Upgraded);
    let run = tunnel::run::<R, _, _>(down, up.up, up.to_up, up.to_down, idle, conn);
    if let Err(e) = run.await {
        tracing::debug!(%peer, error = %e, "upgraded connection closed with error");
    }
}

/// Counts a downstream connection in the listener's and the worker's metrics while it lives.
struct OpenConnection<'a, R: Rt> {
    w: &'a Worker<R>,
    stats: &'a ListenerStats,
}

impl<'a, R: Rt> OpenConnection<'a, R> {
    fn new(w: &'a Worker<R>, stats: &'a ListenerStats) -> Self {
        stats.opened.increment(1);
        stats.active.increment(1.0);
        w.stats.worker_connections(1.0);
        Self { w, stats }
    }
}

impl<R: Rt> Drop for OpenConnection<'_, R> {
    fn drop(&mut self) {
        self.stats.closed.increment(1);
        self.stats.active.decrement(1.0);
        self.w.stats.worker_connections(-1.0);
    }
}

/// Runs one connection's future, turning a panic into a log line and a closed connection.
/// monoio would otherwise lose the whole worker thread, and every connection on it.
/// (A plain function, not an `async fn`, so `conn` is not stored twice in every task.)
pub fn guarded(
    conn: impl Future<Output = ()>,
    worker: usize,
    peer: SocketAddr,
) -> impl Future<Output = ()> {
    AssertUnwindSafe(conn).catch_unwind().map(move |r| {
        if let Err(panic) = r {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            tracing::error!(worker, %peer, panic = %what, "connection task panicked; connection closed, worker continues");
        }
    })
}
