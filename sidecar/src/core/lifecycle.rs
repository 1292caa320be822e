//! Process-wide lifecycle signals that reach every worker: config changes and draining.
//!
//! Written by the control thread (reloads, SIGTERM, `/shutdown`), read by every worker: each
//! worker's housekeeping tick sees a new generation or a drain and wakes its idle connections,
//! so a drain or a removed listener closes them promptly instead of at their idle timeout.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    generation: AtomicU64,
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
    }

    /// A new config snapshot was stored: wake idle connections so those whose listener is gone
    /// can close.
    pub fn config_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
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

    #[test]
    fn drain_and_reloads_are_visible() {
        let lc = Lifecycle::new();
        let g = lc.generation();
        lc.config_changed();
        assert_eq!(lc.generation(), g + 1);
        assert!(!lc.is_draining());
        lc.start_drain();
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
