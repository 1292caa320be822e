//! Outlier ejection (passive health): every worker counts its own requests' outcomes into
//! one [`Health`] per endpoint shared by all workers (atomics, no lock), so an ejection
//! decided on one worker is seen by every worker's next pick.
//!
//! The [`Registry`] that hands out the shared `Health`s takes a lock, but only when a worker
//! builds a cluster's balancing state (first request, reload, DNS change), never per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use control::resilience::Outlier;

/// Milliseconds since the process's first use of this module (never 0: 0 means "never").
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// One endpoint's health as all workers see it.
#[derive(Debug, Default)]
pub struct Health {
    /// Failures in a row (any success resets it).
    consecutive: AtomicU32,
    /// Ejected until this `now_ms()`; 0 once a success after the ejection cleared it.
    ejected_until: AtomicU64,
    /// Ejections so far: the next one lasts `base × (ejections + 1)`. Reset by a success
    /// more than `base_ejection` after the last ejection ended.
    ejections: AtomicU32,
}

impl Health {
    /// Whether the endpoint is ejected now. One atomic load when it is not.
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && until > now_ms()
    }

    /// Until when (ms from now) it stays ejected, if it is.
    pub fn ejected_for(&self) -> Option<Duration> {
        let until = self.ejected_until.load(Ordering::Relaxed);
        let now = now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// Times ejected (admin API).
    pub fn ejections(&self) -> u32 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// A response below 500.
    pub fn succeeded(&self, spec: &Outlier) {
        // Loads first: a healthy endpoint's counters are never written, so workers do not
        // bounce the cache line between cores on every request.
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until != 0 {
            let base = u64::try_from(spec.base_ejection.as_millis()).unwrap_or(u64::MAX);
            if now_ms() > until.saturating_add(base) {
                self.ejections.store(0, Ordering::Relaxed);
                self.ejected_until.store(0, Ordering::Relaxed);
            }
        }
    }

    /// A failure (5xx, connect failure, reset, timeout). Returns the ejection's length when
    /// this failure ejected the endpoint; `may_eject` is asked only then (the cluster's
    /// `max_ejection_percent`).
    pub fn failed(&self, spec: &Outlier, may_eject: impl FnOnce() -> bool) -> Option<Duration> {
        if spec.consecutive_5xx == 0 {
            return None;
        }
        let n = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if n < spec.consecutive_5xx || self.is_ejected() || !may_eject() {
            return None;
        }
        let before = self.ejected_until.load(Ordering::Relaxed);
        let times = self.ejections.load(Ordering::Relaxed).saturating_add(1);
        let length = spec
            .base_ejection
            .saturating_mul(times)
            .min(spec.max_ejection);
        let until = now_ms().saturating_add(u64::try_from(length.as_millis()).unwrap_or(u64::MAX));
        // One worker wins the ejection; the others' failures in the same instant do not
        // eject it again (or twice as long).
        if self
            .ejected_until
            .compare_exchange(before, until, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        self.ejections.store(times, Ordering::Relaxed);
        self.consecutive.store(0, Ordering::Relaxed);
        Some(length)
    }
}

/// Whether one more of `healths` may be ejected under `max_percent`. One is always allowed
/// (as Envoy does), so a cluster of two or three can still shed its bad endpoint.
pub fn may_eject(healths: &[Arc<Health>], max_percent: u32) -> bool {
    let ejected = healths.iter().filter(|h| h.is_ejected()).count();
    ejected == 0 || (ejected + 1) * 100 <= healths.len() * max_percent as usize
}

/// The process-wide table of endpoint health, by cluster and address.
#[derive(Debug, Default)]
pub struct Registry {
    map: Mutex<HashMap<(String, SocketAddr), Arc<Health>>>,
}

impl Registry {
    /// The shared health of `cluster`'s endpoint `addr` (created healthy on first use).
    pub fn health(&self, cluster: &str, addr: SocketAddr) -> Arc<Health> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((cluster.to_owned(), addr)).or_default().clone()
    }

    /// Forgets endpoints no worker's balancing state holds any more (DNS churn, reloads), so
    /// the table does not grow with every pod that ever existed. Called when a worker builds a
    /// cluster's state, before it takes its endpoints' healths.
    pub fn prune(&self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, h| Arc::strong_count(h) > 1);
    }

    /// Entries in the table.
    pub fn tracked(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The health of `cluster`'s endpoint `addr` if any worker has used it (admin API).
    pub fn peek(&self, cluster: &str, addr: SocketAddr) -> Option<Arc<Health>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(cluster.to_owned(), addr)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: u32) -> Outlier {
        Outlier {
            consecutive_5xx: n,
            ..Outlier::default()
        }
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_count() {
        let h = Health::default();
        let s = spec(3);
        assert_eq!(h.failed(&s, || true), None);
        assert_eq!(h.failed(&s, || true), None);
        h.succeeded(&s);
        assert_eq!(h.failed(&s, || true), None);
        assert_eq!(h.failed(&s, || true), None);
        assert_eq!(h.failed(&s, || true), Some(Duration::from_secs(30)));
        assert!(h.is_ejected());
        assert_eq!(h.ejections(), 1);
    }

    #[test]
    fn repeated_ejections_last_longer_up_to_the_maximum() {
        let h = Health::default();
        let s = spec(1);
        assert_eq!(h.failed(&s, || true), Some(Duration::from_secs(30)));
        // Pretend the first ejection ended.
        h.ejected_until.store(1, Ordering::Relaxed);
        assert_eq!(h.failed(&s, || true), Some(Duration::from_secs(60)));
        h.ejected_until.store(1, Ordering::Relaxed);
        h.ejections.store(20, Ordering::Relaxed);
        assert_eq!(h.failed(&s, || true), Some(Duration::from_secs(300)));
    }

    #[test]
    fn the_percentage_bounds_ejections_but_one_is_always_allowed() {
        let hs: Vec<Arc<Health>> = (0..3).map(|_| Arc::new(Health::default())).collect();
        assert!(may_eject(&hs, 10));
        assert_eq!(
            hs[0].failed(&spec(1), || may_eject(&hs, 10)),
            Some(Duration::from_secs(30))
        );
        assert!(!may_eject(&hs, 10), "a second of three is over 10 %");
        assert!(may_eject(&hs, 67));
        assert_eq!(hs[1].failed(&spec(1), || may_eject(&hs, 10)), None);
        assert!(!hs[1].is_ejected());
    }

    #[test]
    fn endpoints_nobody_holds_are_forgotten() {
        let r = Registry::default();
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
        let held = r.health("c", a);
        drop(r.health("c", b));
        r.prune();
        assert_eq!(r.tracked(), 1);
        assert!(Arc::ptr_eq(&held, &r.health("c", a)));
    }

    #[test]
    fn zero_turns_ejection_off() {
        let h = Health::default();
        for _ in 0..100 {
            assert_eq!(h.failed(&spec(0), || true), None);
        }
        assert!(!h.is_ejected());
    }
}
