//! Process-wide lifecycle signals that reach every worker: config changes and draining.
//!
//! Written by the control thread (reloads, SIGTERM, `/shutdown`), read by connections on every
//! worker. Idle connections sleep on [`Lifecycle::changed`] alongside their socket's readiness,
//! so a drain or a removed listener closes them promptly instead of at their idle timeout.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    generation: AtomicU64,
    changed: Notify,
    active: AtomicUsize,
}

impl Lifecycle {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Stop taking new work: listeners stop accepting, idle connections close, busy ones close
    /// after their current response (with `Connection: close`).
    pub fn start_drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// A new config snapshot was stored: wake idle connections so those whose listener is gone
    /// can close.
    pub fn config_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Completes at the next `start_drain` or `config_changed` after this call. The waiter is
    /// registered before returning, so a signal between a check and the await is not lost.
    pub fn changed(&self) -> impl Future<Output = ()> + '_ {
        let mut notified = Box::pin(self.changed.notified());
        notified.as_mut().enable();
        notified
    }

    /// Counts a live downstream connection until the guard drops.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self.clone())
    }

    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
pub struct ConnectionGuard(Arc<Lifecycle>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Context, Poll};

    #[test]
    fn a_signal_after_changed_was_called_is_not_lost() {
        let lc = Lifecycle::new();
        let mut fut = Box::pin(lc.changed());
        lc.start_drain();
        let waker = futures_util::task::noop_waker();
        assert_eq!(
            fut.as_mut().poll(&mut Context::from_waker(&waker)),
            Poll::Ready(())
        );
        assert!(lc.is_draining());
    }

    #[test]
    fn guards_count_connections() {
        let lc = Lifecycle::new();
        let a = lc.connection();
        let b = lc.connection();
        assert_eq!(lc.active_connections(), 2);
        drop(a);
        drop(b);
        assert_eq!(lc.active_connections(), 0);
    }
}
