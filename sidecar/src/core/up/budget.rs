//! A cluster's retry budget (as Linkerd and Finagle have): over the last 10 s, policy retries
//! may be at most `ratio` × requests plus `min_per_second` × 10. One per cluster, shared by all
//! workers: atomics in 1-second buckets, no lock. Approximate by design: a bucket being
//! recycled at a second's turn may lose a count or two, which a budget can afford.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use control::retry::RetryBudget;

/// The window the budget looks back over, in seconds.
pub const WINDOW_SECS: u64 = 10;

#[derive(Debug, Default)]
struct Bucket {
    /// The second (since the process started, +1) this bucket counts; 0: never used.
    sec: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// One cluster's budget.
#[derive(Debug, Default)]
pub struct Budget {
    buckets: [Bucket; WINDOW_SECS as usize],
}

fn now_sec() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs() + 1
}

impl Budget {
    fn bucket(&self, sec: u64) -> &Bucket {
        let b = &self.buckets[(sec % WINDOW_SECS) as usize];
        let old = b.sec.load(Ordering::Acquire);
        if old != sec
            && b.sec
                .compare_exchange(old, sec, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            b.requests.store(0, Ordering::Release);
            b.retries.store(0, Ordering::Release);
        }
        b
    }

    /// Counts a request (its first attempt).
    pub fn request(&self) {
        self.bucket(now_sec())
            .requests
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget if it has one.
    pub fn try_retry(&self, spec: &RetryBudget) -> bool {
        let now = now_sec();
        let (mut requests, mut retries) = (0u64, 0u64);
        for b in &self.buckets {
            let sec = b.sec.load(Ordering::Acquire);
            if sec != 0 && sec + WINDOW_SECS > now {
                requests += b.requests.load(Ordering::Relaxed);
                retries += b.retries.load(Ordering::Relaxed);
            }
        }
        let allowed =
            spec.ratio * requests as f64 + f64::from(spec.min_per_second) * WINDOW_SECS as f64;
        if (retries as f64) < allowed {
            self.bucket(now).retries.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stay_within_ratio_plus_floor() {
        let b = Budget::default();
        let spec = RetryBudget {
            ratio: 0.2,
            min_per_second: 1,
        };
        for _ in 0..100 {
            b.request();
        }
        // 0.2 × 100 + 1 × 10 = 30.
        let granted = (0..100).filter(|_| b.try_retry(&spec)).count();
        assert_eq!(granted, 30);
    }

    #[test]
    fn a_zero_budget_allows_nothing() {
        let b = Budget::default();
        let spec = RetryBudget {
            ratio: 0.0,
            min_per_second: 0,
        };
        b.request();
        assert!(!b.try_retry(&spec));
    }
}
