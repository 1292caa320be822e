//! Peak EWMA latency (Finagle's and Linkerd's `ewma` balancer): each endpoint's cost is an
//! exponentially weighted moving average of its response latency that jumps up at once to a
//! slower observation ("peak") and decays back with time constant [`DECAY`]. Per worker, no
//! sharing: what one worker sees of an endpoint is a fair sample of it.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How fast old observations fade (Linkerd's default).
pub const DECAY: Duration = Duration::from_secs(10);
/// The cost of an endpoint not observed yet (Linkerd's default RTT), so a new endpoint is
/// neither flooded nor starved.
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// One endpoint's latency estimate, in nanoseconds.
#[derive(Debug)]
pub struct Ewma {
    cost_ns: Cell<f64>,
    stamp: Cell<Instant>,
}

impl Ewma {
    pub fn new(now: Instant) -> Self {
        Self {
            cost_ns: Cell::new(DEFAULT_RTT.as_nanos() as f64),
            stamp: Cell::new(now),
        }
    }

    /// Folds in one observed latency.
    pub fn observe(&self, rtt: Duration, now: Instant) {
        let rtt = rtt.as_nanos() as f64;
        let cost = self.cost_ns.get();
        let next = if rtt > cost {
            rtt
        } else {
            let w = self.weight(now);
            cost * w + rtt * (1.0 - w)
        };
        self.cost_ns.set(next);
        self.stamp.set(now);
    }

    /// The estimate now (ns). Without new observations it decays toward zero, so an endpoint
    /// that was slow once is tried again eventually.
    pub fn cost(&self, now: Instant) -> f64 {
        self.cost_ns.get() * self.weight(now)
    }

    fn weight(&self, now: Instant) -> f64 {
        let dt = now
            .saturating_duration_since(self.stamp.get())
            .as_secs_f64();
        (-dt / DECAY.as_secs_f64()).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_observation_counts_at_once_and_fades_with_fast_ones() {
        let t0 = Instant::now();
        let e = Ewma::new(t0);
        e.observe(Duration::from_millis(100), t0);
        assert!((e.cost(t0) - 100e6).abs() < 1.0, "peak taken at once");
        let t1 = t0 + Duration::from_secs(10);
        e.observe(Duration::from_millis(1), t1);
        // Weight e^-1 ≈ 0.37 on the old 100 ms.
        let c = e.cost(t1) / 1e6;
        assert!((36.0..38.5).contains(&c), "{c}");
    }
}
