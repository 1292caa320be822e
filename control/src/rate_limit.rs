//! A route's local rate limit: `rate_limit: { requests_per_second, burst }`, shared by every
//! worker without a lock. The generic cell rate algorithm (GCRA, the token bucket written as
//! one "theoretical arrival time") keeps its whole state in one atomic, so admitting a request
//! is a load and a compare-and-swap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::node::{At, Sink};
use crate::yaml::Node;

/// `routes[].rate_limit` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained rate, requests per second (> 0).
    pub requests_per_second: u32,
    /// Requests admitted at once after a quiet period (≥ 1; default 1).
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

/// The shared state of one route's limit.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time between requests at the sustained rate, ns.
    interval: u64,
    /// How far ahead of now the arrival time may run: `(burst - 1) × interval`, ns.
    tolerance: u64,
    /// Theoretical arrival time of the next request, ns on the caller's clock.
    tat: AtomicU64,
}

impl RateLimiter {
    pub fn new(c: &RateLimitConfig) -> RateLimiter {
        let interval = 1_000_000_000 / u64::from(c.requests_per_second.max(1));
        RateLimiter {
            interval,
            tolerance: interval * u64::from(c.burst.max(1) - 1),
            tat: AtomicU64::new(0),
        }
    }

    /// Admits a request arriving at `now_ns` (a monotonic clock shared by all callers), or
    /// says how long until one would be admitted.
    ///
    /// # Errors
    /// The wait before a request would be admitted (for `Retry-After`).
    pub fn acquire(&self, now_ns: u64) -> Result<(), Duration> {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let start = tat.max(now_ns);
            if start > now_ns + self.tolerance {
                return Err(Duration::from_nanos(start - now_ns - self.tolerance));
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + self.interval,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }
}

pub(crate) fn decode(node: &Node, sink: &mut Sink) -> Option<At<RateLimitConfig>> {
    let f = sink.mapping(node, "rate_limit", &["requests_per_second", "burst"])?;
    let rps = f.required(sink, "requests_per_second", "rate_limit")?;
    let rps = sink.uint(rps, "requests_per_second")?;
    let burst = match f.get("burst") {
        Some(n) => Some(sink.uint(n, "burst")?),
        None => None,
    };
    let check = |v: &At<u64>, what: &str, sink: &mut Sink| match u32::try_from(v.value) {
        Ok(n) if (1..=1_000_000_000).contains(&n) => Some(n),
        _ => {
            sink.report(v.pos, format!("{what} must be between 1 and 1000000000"));
            None
        }
    };
    let requests_per_second = check(&rps, "requests_per_second", sink)?;
    let burst = match &burst {
        Some(b) => check(b, "burst", sink)?,
        None => 1,
    };
    Some(At {
        value: RateLimitConfig {
            requests_per_second,
            burst,
        },
        pos: f.pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_burst_then_the_rate() {
        let l = RateLimiter::new(&RateLimitConfig {
            requests_per_second: 100,
            burst: 10,
        });
        let t0 = 1_000_000_000;
        for i in 0..10 {
            assert!(l.acquire(t0).is_ok(), "burst request {i}");
        }
        let wait = l.acquire(t0).expect_err("over the burst");
        assert_eq!(wait, Duration::from_millis(10));
        assert!(l.acquire(t0 + 10_000_000).is_ok());
        // A request every millisecond for the next 990 ms: one per 10 ms gets through.
        let admitted = (1..=990)
            .filter(|i| l.acquire(t0 + 10_000_000 + i * 1_000_000).is_ok())
            .count();
        assert_eq!(admitted, 99);
    }
}
