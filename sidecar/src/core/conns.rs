//! The live downstream connections of one worker, for the admin `/connections` endpoint.
//!
//! Worker-local and lock-free: each connection updates its own `Rc` entry with plain `Cell`s;
//! the admin thread never reads them directly but asks the worker (over its command channel)
//! for a listing, which the worker builds between two polls of its event loop.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// What a connection is speaking right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Http1,
    /// An HTTP/1.1 connection upgraded to an opaque tunnel (WebSocket).
    Upgraded,
    Http2,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Http1 => "http/1.1",
            Self::Upgraded => "upgraded",
            Self::Http2 => "h2",
        }
    }
}

/// One live connection's figures.
pub struct Conn {
    pub peer: SocketAddr,
    pub listener: Rc<str>,
    pub opened: Instant,
    pub protocol: Cell<Protocol>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    pub requests: Cell<u64>,
    pub in_flight: Cell<bool>,
    aborted: Cell<bool>,
    waker: Cell<Option<Waker>>,
    span: tracing::Span,
    /// While waiting for its next request: when the idle timeout expires. The worker's sweep
    /// wakes the connection then, so an idle connection holds no timer of its own.
    idle_until: Cell<Option<Instant>>,
    kicked: Cell<bool>,
    /// Set once the TLS handshake completes; empty on plaintext connections.
    pub tls: std::cell::OnceCell<Box<crate::core::tls::TlsInfo>>,
    /// The connection's place under its listener's `max_connections`; also where its requests
    /// are admitted under `max_requests`.
    slot: crate::core::shed::ConnSlot,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.peer)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// `https` on a TLS connection, else `http` (for `x-forwarded-proto`).
    /// The listener's load, shared by all workers (load shedding).
    pub fn load(&self) -> &crate::core::shed::Load {
        self.slot.load()
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.get().is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The verified client certificate's identity, if the client presented one.
    pub fn peer_identity(&self) -> Option<&control::tls::PeerIdentity> {
        self.tls.get().and_then(|t| t.peer.as_ref())
    }

    /// Wakes the connection's task to re-check its idle deadline, the drain and its listener.
    pub fn kick(&self) {
        self.kicked.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Completes at the next [`Conn::kick`]. It registers no waker itself: the connection's
    /// [`Abortable`] keeps the task's waker in the entry on every pending poll.
    pub fn kicked(&self) -> Kicked<'_> {
        self.kicked.set(false);
        Kicked(self)
    }

    pub fn set_idle_until(&self, deadline: Option<Instant>) {
        self.idle_until.set(deadline);
    }

    /// Ends the connection: its [`Abortable`] task completes and drops its work, which closes
    /// its sockets wherever it was waiting.
    pub fn abort(&self) {
        self.aborted.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub fn add_in(&self, n: u64) {
        self.bytes_in.set(self.bytes_in.get() + n);
    }

    pub fn add_out(&self, n: u64) {
        self.bytes_out.set(self.bytes_out.get() + n);
    }
}

/// A snapshot of one connection, sendable to the admin thread.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnView {
    pub worker: usize,
    /// The worker's runtime: `io_uring` or `epoll`.
    pub runtime: &'static str,
    pub peer: String,
    pub listener: String,
    pub protocol: &'static str,
    pub age_seconds: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub requests: u64,
    pub in_flight: bool,
    /// TLS version, ALPN and peer identity; absent on plaintext connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::core::tls::TlsView>,
}

#[derive(Debug, Default)]
pub struct Registry {
    next: Cell<u64>,
    live: RefCell<BTreeMap<u64, Rc<Conn>>>,
    /// Connections that closed with an error: with a request in flight (the client or the
    /// proxy cut it mid-request), or aborted by a drain or listener-removal timeout.
    closed_with_error: Cell<u64>,
}

impl Registry {
    pub fn open(
        self: &Rc<Self>,
        peer: SocketAddr,
        listener: Rc<str>,
        protocol: Protocol,
        span: tracing::Span,
        slot: crate::core::shed::ConnSlot,
    ) -> Registered {
        let id = self.next.get();
        self.next.set(id + 1);
        let conn = Rc::new(Conn {
            peer,
            listener,
            opened: Instant::now(),
            protocol: Cell::new(protocol),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            requests: Cell::new(0),
            in_flight: Cell::new(false),
            aborted: Cell::new(false),
            waker: Cell::new(None),
            span,
            idle_until: Cell::new(None),
            kicked: Cell::new(false),
            tls: std::cell::OnceCell::new(),
            slot,
        });
        self.live.borrow_mut().insert(id, conn.clone());
        Registered {
            registry: self.clone(),
            id,
            conn,
        }
    }

    pub fn len(&self) -> usize {
        self.live.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.borrow().is_empty()
    }

    /// How many connections closed with an error so far (see the field).
    pub fn closed_with_error(&self) -> u64 {
        self.closed_with_error.get()
    }

    /// Kicks idle connections whose deadline has passed, or every idle one when `all` (a drain
    /// began or the config changed). Returns how many. Run on every worker tick.
    pub fn sweep_idle(&self, now: Instant, all: bool) -> usize {
        let mut n = 0;
        for c in self.live.borrow().values() {
            if let Some(until) = c.idle_until.get() {
                if all || until <= now {
                    c.kick();
                    n += 1;
                }
            }
        }
        n
    }

    /// Aborts every connection accepted on `listener`; returns how many.
    pub fn abort_listener(&self, listener: &str) -> usize {
        let doomed: Vec<Rc<Conn>> = self
            .live
            .borrow()
            .values()
            .filter(|c| &*c.listener == listener)
            .cloned()
            .collect();
        doomed.iter().for_each(|c| c.abort());
        doomed.len()
    }

    /// Up to `limit` connections, oldest first, and how many there are in all.
    pub fn list(
        &self,
        worker: usize,
        runtime: &'static str,
        limit: usize,
    ) -> (Vec<ConnView>, usize) {
        let live = self.live.borrow();
        let views = live
            .values()
            .take(limit)
            .map(|c| ConnView {
                worker,
                runtime,
                peer: c.peer.to_string(),
                listener: c.listener.to_string(),
                protocol: c.protocol.get().as_str(),
                age_seconds: c.opened.elapsed().as_secs_f64(),
                bytes_in: c.bytes_in.get(),
                bytes_out: c.bytes_out.get(),
                requests: c.requests.get(),
                in_flight: c.in_flight.get(),
                tls: c.tls.get().map(|t| t.view()),
            })
            .collect();
        (views, live.len())
    }
}

pin_project_lite::pin_project! {
    /// A connection's task: its work, which [`Conn::abort`] can end early, and what must live
    /// exactly as long as it (registry entry, live-connection count). Dropping the work closes
    /// the connection's sockets wherever it was waiting.
    pub struct Abortable<F> {
        #[pin]
        work: F,
        reg: Registered,
        _live: crate::core::lifecycle::ConnectionGuard,
    }
}

impl<F> Abortable<F> {
    pub fn new(work: F, reg: Registered, live: crate::core::lifecycle::ConnectionGuard) -> Self {
        Self {
            work,
            reg,
            _live: live,
        }
    }
}

impl<F: Future<Output = ()>> Future for Abortable<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let conn = &this.reg.conn;
        let _span = conn.span.enter();
        if conn.aborted.get() {
            return Poll::Ready(());
        }
        if this.work.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        // Keep the waker current so `abort` can wake this task; clone only when it changed.
        let waker = match conn.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        conn.waker.set(Some(waker));
        Poll::Pending
    }
}

/// See [`Conn::kicked`].
#[derive(Debug)]
pub struct Kicked<'a>(&'a Conn);

impl Future for Kicked<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0.kicked.replace(false) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Removes the connection from the registry when dropped.
#[derive(Debug)]
pub struct Registered {
    registry: Rc<Registry>,
    id: u64,
    pub conn: Rc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.live.borrow_mut().remove(&self.id);
        if self.conn.aborted.get() || self.conn.in_flight.get() {
            let n = &self.registry.closed_with_error;
            n.set(n.get() + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> crate::core::shed::ConnSlot {
        std::sync::Arc::new(crate::core::shed::Load::default())
            .try_connection(None)
            .expect("no limit")
    }

    #[test]
    fn lists_live_connections_and_forgets_closed_ones() {
        let r = Rc::new(Registry::default());
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let a = r.open(
            peer,
            Rc::from("in"),
            Protocol::Http1,
            tracing::Span::none(),
            slot(),
        );
        let b = r.open(
            peer,
            Rc::from("db"),
            Protocol::Tcp,
            tracing::Span::none(),
            slot(),
        );
        a.conn.requests.set(3);
        a.conn.add_in(10);
        let (views, total) = r.list(7, "epoll", 10);
        assert_eq!(total, 2);
        assert_eq!(views[0].runtime, "epoll");
        assert_eq!(views[0].requests, 3);
        assert_eq!(views[0].bytes_in, 10);
        assert_eq!(views[0].worker, 7);
        assert_eq!(views[1].protocol, "tcp");
        b.conn.in_flight.set(true);
        drop(b);
        assert_eq!(r.list(0, "epoll", 10).1, 1);
        assert_eq!(
            r.list(0, "epoll", 0).0.len(),
            0,
            "the limit bounds the output"
        );
        assert_eq!(r.closed_with_error(), 1, "b closed mid-request");
        drop(a);
        assert_eq!(r.closed_with_error(), 1, "a closed between requests");
    }

    #[test]
    fn aborting_a_listener_ends_its_connections_only() {
        let r = Rc::new(Registry::default());
        let lc = crate::core::lifecycle::Lifecycle::new();
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let open = |name: &str| {
            r.open(
                peer,
                Rc::from(name),
                Protocol::Tcp,
                tracing::Span::none(),
                slot(),
            )
        };
        let mut gone = std::pin::pin!(Abortable::new(
            std::future::pending(),
            open("gone"),
            lc.connection()
        ));
        let mut kept = std::pin::pin!(Abortable::new(
            std::future::pending(),
            open("kept"),
            lc.connection()
        ));
        assert_eq!(gone.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(kept.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(r.abort_listener("gone"), 1);
        assert_eq!(gone.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(kept.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(
            lc.active_connections(),
            2,
            "guards live as long as the futures"
        );
    }
}
