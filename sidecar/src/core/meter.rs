//! One worker's measurements for the runtime comparison (`/runtime`'s `comparison`,
//! `ringside compare`): requests, errors, a request-latency histogram and a loop-lag
//! histogram, cumulative since the worker started.
//!
//! The Prometheus histograms have fixed, coarse buckets; percentiles that can be compared
//! between runtimes need finer ones, so each worker also keeps an HDR histogram with fixed
//! bounds: recording is an index computation and an add, never an allocation. The control
//! thread collects [`Reading`]s (clones) over the worker's command channel, merges them per
//! runtime and subtracts older ones for its sliding window.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Histogram range, microseconds: 1 µs to 100 s (a longer value is recorded as 100 s).
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 100_000_000;
/// Two significant digits: every value within 1% of the truth, ~20 KiB per histogram.
const SIGFIG: u8 = 2;

/// An empty histogram with the comparison's bounds (microseconds).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
        .expect("constant bounds: 1 ≤ low, 2·low ≤ high, sigfig ≤ 5")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A worker's live measurements (worker-local: `Cell`s, no atomics).
pub struct Meter {
    requests: Cell<u64>,
    server_errors: Cell<u64>,
    latency: RefCell<Histogram<u64>>,
    lag: RefCell<Histogram<u64>>,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            requests: Cell::new(0),
            server_errors: Cell::new(0),
            latency: RefCell::new(histogram()),
            lag: RefCell::new(histogram()),
        }
    }
}

impl Meter {
    /// One answered request: its status and how long it took.
    pub fn request(&self, code: u16, took: Duration) {
        self.requests.set(self.requests.get() + 1);
        if (500..600).contains(&code) {
            self.server_errors.set(self.server_errors.get() + 1);
        }
        self.latency.borrow_mut().saturating_record(micros(took));
    }

    /// One housekeeping tick's event-loop lag.
    pub fn lag(&self, late: Duration) {
        self.lag.borrow_mut().saturating_record(micros(late));
    }

    /// A copy of everything so far, to send to the control thread.
    pub fn read(
        &self,
        runtime: &'static str,
        cpu: Duration,
        connections: u64,
        connection_errors: u64,
    ) -> Reading {
        Reading {
            runtime,
            requests: self.requests.get(),
            server_errors: self.server_errors.get(),
            connection_errors,
            cpu,
            connections,
            latency: self.latency.borrow().clone(),
            lag: self.lag.borrow().clone(),
        }
    }
}

/// One worker's cumulative measurements at one moment (or several workers' merged: see
/// [`Reading::merge`]).
#[derive(Debug, Clone)]
pub struct Reading {
    /// `io_uring` or `epoll`.
    pub runtime: &'static str,
    /// Requests answered (any status).
    pub requests: u64,
    /// Requests answered with a 5xx status.
    pub server_errors: u64,
    /// Downstream connections that closed with a request in flight, or were cut by a drain or
    /// listener-removal timeout.
    pub connection_errors: u64,
    /// The worker threads' CPU time (user + system).
    pub cpu: Duration,
    /// Downstream connections open at the moment of reading (a level, not a count).
    pub connections: u64,
    /// Request durations, microseconds.
    pub latency: Histogram<u64>,
    /// Event-loop lag per 250 ms tick, microseconds.
    pub lag: Histogram<u64>,
}

impl Reading {
    /// Nothing measured yet, for `runtime`.
    pub fn empty(runtime: &'static str) -> Self {
        Self {
            runtime,
            requests: 0,
            server_errors: 0,
            connection_errors: 0,
            cpu: Duration::ZERO,
            connections: 0,
            latency: histogram(),
            lag: histogram(),
        }
    }

    /// Adds another worker's reading of the same moment.
    pub fn merge(&mut self, other: &Reading) {
        self.requests += other.requests;
        self.server_errors += other.server_errors;
        self.connection_errors += other.connection_errors;
        self.cpu += other.cpu;
        self.connections += other.connections;
        // Same bounds on both sides, so these cannot fail; a failure would only lose the
        // other worker's percentiles, never the counts.
        let _ = self.latency.add(&other.latency);
        let _ = self.lag.add(&other.lag);
    }

    /// What happened between `earlier` and `self` (both cumulative): counts, CPU and
    /// histograms subtracted; `connections` stays the later level. Counters that went
    /// backwards (a worker that did not answer in one of the two) count as zero.
    pub fn since(&self, earlier: &Reading) -> Reading {
        let mut latency = self.latency.clone();
        let mut lag = self.lag.clone();
        if latency.subtract(&earlier.latency).is_err() {
            latency = histogram();
        }
        if lag.subtract(&earlier.lag).is_err() {
            lag = histogram();
        }
        Reading {
            runtime: self.runtime,
            requests: self.requests.saturating_sub(earlier.requests),
            server_errors: self.server_errors.saturating_sub(earlier.server_errors),
            connection_errors: self
                .connection_errors
                .saturating_sub(earlier.connection_errors),
            cpu: self.cpu.saturating_sub(earlier.cpu),
            connections: self.connections,
            latency,
            lag,
        }
    }

    /// 5xx answered plus connections closed with an error.
    pub fn errors(&self) -> u64 {
        self.server_errors + self.connection_errors
    }

    /// The `q` quantile of request latency, milliseconds; `None` without requests.
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q) as f64 / 1e3)
    }

    /// CPU microseconds per request; `None` without requests.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }

    /// The worst event-loop lag, milliseconds (0 when no tick was measured).
    pub fn max_lag_ms(&self) -> f64 {
        self.lag.max() as f64 / 1e3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_histogram_is_about_21_kib() {
        // docs/admin.md states the comparison's memory from this.
        let bytes = histogram().distinct_values() * std::mem::size_of::<u64>();
        assert!((20_000..=23_000).contains(&bytes), "{bytes}");
    }

    #[test]
    fn counts_5xx_as_errors_and_records_latency() {
        let m = Meter::default();
        m.request(200, ms(2));
        m.request(503, ms(4));
        m.request(404, ms(6));
        let r = m.read("epoll", ms(30), 2, 1);
        assert_eq!((r.requests, r.server_errors, r.errors()), (3, 1, 2));
        let p50 = r.latency_ms(0.5).expect("requests");
        assert!((3.9..=4.1).contains(&p50), "{p50}");
        assert_eq!(r.cpu_us_per_request(), Some(10_000.0));
    }

    #[test]
    fn the_window_is_the_later_reading_minus_the_earlier() {
        let m = Meter::default();
        m.request(200, ms(100));
        m.lag(ms(50));
        let early = m.read("io_uring", ms(10), 1, 0);
        for _ in 0..9 {
            m.request(200, ms(1));
        }
        m.lag(ms(3));
        let late = m.read("io_uring", ms(19), 4, 0);
        let w = late.since(&early);
        assert_eq!(w.requests, 9);
        assert_eq!(w.cpu, ms(9));
        assert_eq!(w.connections, 4, "a level, not subtracted");
        let p99 = w.latency_ms(0.99).expect("requests");
        assert!(p99 < 1.1, "the 100 ms request is before the window: {p99}");
        let lag = w.max_lag_ms();
        assert!(
            (2.9..=3.1).contains(&lag),
            "the 50 ms lag is outside: {lag}"
        );
        assert_eq!(w.cpu_us_per_request(), Some(1000.0));
    }

    #[test]
    fn merging_adds_workers_and_a_bad_subtraction_counts_nothing() {
        let a = Meter::default();
        let b = Meter::default();
        a.request(200, ms(1));
        b.request(500, ms(1));
        let mut r = a.read("epoll", ms(1), 1, 0);
        r.merge(&b.read("epoll", ms(2), 1, 3));
        assert_eq!((r.requests, r.errors(), r.connections), (2, 4, 2));
        assert_eq!(r.latency.len(), 2);
        let backwards = Reading::empty("epoll").since(&r);
        assert_eq!(backwards.requests, 0);
        assert!(backwards.latency.is_empty());
        assert_eq!(backwards.latency_ms(0.5), None);
    }
}
