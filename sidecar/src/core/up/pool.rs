//! Idle upstream connections, per worker and per endpoint.
//!
//! LIFO reuse keeps the warmest connection busy and lets the rest age out. A connection the
//! upstream closed while idle is caught by a peek at checkout and by the periodic sweep, so a
//! request is rarely written into a dead socket; when it is, the HTTP path retries bodiless
//! requests once on a fresh connection.

use crate::core::wire::Wire;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::breaker::Slot;
use crate::core::rt::{Rt, Stream};

struct Idle<S> {
    stream: S,
    since: Instant,
    /// Its place under the cluster's `max_connections`, freed when it closes.
    slot: Slot,
}

/// Idle connections per endpoint, most recently used last.
type ByEndpoint<S> = HashMap<SocketAddr, Vec<Idle<S>>>;

pub struct Pool<R: Rt> {
    idle: RefCell<ByEndpoint<Wire<R::Stream>>>,
}

impl<R: Rt> Default for Pool<R> {
    fn default() -> Self {
        Self {
            idle: RefCell::new(HashMap::new()),
        }
    }
}

impl<R: Rt> Pool<R> {
    /// The most recently used live connection to `addr`, if any. A connection idle longer than
    /// `verify_after` is first checked with a peek (one syscall); one idle for less is trusted,
    /// which the caller may do only when a failure can be retried (see `up::h1::acquire`).
    pub fn checkout(
        &self,
        addr: SocketAddr,
        max_idle: Duration,
        verify_after: Duration,
    ) -> Option<(Wire<R::Stream>, Slot)> {
        let mut map = self.idle.borrow_mut();
        let list = map.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(c) = list.pop() {
            let idle = now.duration_since(c.since);
            if idle < max_idle && (idle < verify_after || c.stream.is_reusable()) {
                return Some((c.stream, c.slot));
            }
        }
        None
    }

    /// Returns a connection after a complete exchange. Beyond `cap` idle connections the
    /// oldest is closed.
    pub fn checkin(&self, addr: SocketAddr, stream: Wire<R::Stream>, slot: Slot, cap: usize) {
        if cap == 0 {
            return;
        }
        let mut map = self.idle.borrow_mut();
        let list = map.entry(addr).or_default();
        if list.len() >= cap {
            list.remove(0);
        }
        list.push(Idle {
            stream,
            since: Instant::now(),
            slot,
        });
    }

    /// Closes connections idle longer than `max_idle` or closed by the peer. Called every
    /// second by the worker so dead sockets do not linger in CLOSE_WAIT.
    pub fn sweep(&self, max_idle: impl Fn(SocketAddr) -> Duration) -> usize {
        let now = Instant::now();
        let mut closed = 0;
        let mut map = self.idle.borrow_mut();
        map.retain(|addr, list| {
            let limit = max_idle(*addr);
            let before = list.len();
            list.retain(|c| now.duration_since(c.since) < limit && c.stream.is_reusable());
            closed += before - list.len();
            !list.is_empty()
        });
        closed
    }

    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }
}
