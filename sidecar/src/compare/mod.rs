//! The runtime comparison: `/runtime`'s `comparison` object and `ringside compare`.
//!
//! Every [`INTERVAL`] the control thread asks each worker for its cumulative [`Reading`]
//! (over the worker's command channel, like `/runtime`), merges them per runtime into a
//! [`Moment`] and keeps the last [`KEPT`]. The sliding window is the newest figures minus the
//! oldest kept moment (55 to 60 s once running for a minute; `window_seconds` says exactly);
//! "since start" is the newest figures alone. Consecutive moments also give the paired
//! per-interval samples behind the verdict (see [`verdict`]).

pub mod collect;
pub mod table;
pub mod verdict;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::core::meter::Reading;
use verdict::{Evidence, MIN_INTERVAL_REQUESTS};

/// How often the control thread collects the workers' readings.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// Moments kept for the sliding window: 12 × 5 s = 60 s.
pub const KEPT: usize = 12;

/// Every running runtime's merged readings at one moment.
#[derive(Debug, Clone)]
pub struct Moment {
    pub at: Instant,
    /// One merged reading per running runtime, io_uring first.
    pub by_runtime: Vec<Reading>,
}

impl Moment {
    /// Merges per-worker readings by runtime; `runtimes` are those running, in order.
    pub fn merge<'a>(
        at: Instant,
        runtimes: &[&'static str],
        readings: impl IntoIterator<Item = &'a Reading>,
    ) -> Self {
        let mut by_runtime: Vec<Reading> = runtimes.iter().map(|r| Reading::empty(r)).collect();
        for r in readings {
            if let Some(m) = by_runtime.iter_mut().find(|m| m.runtime == r.runtime) {
                m.merge(r);
            }
        }
        Moment { at, by_runtime }
    }

    fn get(&self, runtime: &str) -> Option<&Reading> {
        self.by_runtime.iter().find(|r| r.runtime == runtime)
    }
}

/// The kept moments and the since-start evidence for the verdict.
#[derive(Debug)]
pub struct History {
    started: Instant,
    runtimes: Vec<&'static str>,
    /// Why the runtimes are what they are (split's fallback reason, or the single runtime).
    reason: String,
    kept: VecDeque<Moment>,
    evidence: Evidence,
}

impl History {
    pub fn new(started: Instant, runtimes: Vec<&'static str>, reason: String) -> Self {
        Self {
            started,
            runtimes,
            reason,
            kept: VecDeque::with_capacity(KEPT + 1),
            evidence: Evidence::default(),
        }
    }

    /// The runtimes that run, io_uring first.
    pub fn runtimes(&self) -> &[&'static str] {
        &self.runtimes
    }

    /// Records a complete moment (every worker answered): pairs it with the previous one for
    /// the verdict, and drops moments older than the window.
    pub fn push(&mut self, m: Moment) {
        if let Some(prev) = self.kept.back() {
            pair(&mut self.evidence, &m, prev);
        }
        self.kept.push_back(m);
        while self.kept.len() > KEPT {
            self.kept.pop_front();
        }
    }

    /// The `comparison` object of `/runtime`, with `now` the figures just collected.
    pub fn comparison(&self, now: &Moment) -> Value {
        let since_start = now.at.saturating_duration_since(self.started);
        let oldest = self
            .kept
            .iter()
            .find(|k| now.at.saturating_duration_since(k.at) <= INTERVAL * KEPT as u32);
        let window = oldest.map_or(since_start, |o| now.at.saturating_duration_since(o.at));
        let mut out = serde_json::Map::new();
        out.insert("runtimes".into(), json!(self.runtimes));
        out.insert("window_seconds".into(), json!(round(window.as_secs_f64())));
        out.insert(
            "since_start_seconds".into(),
            json!(round(since_start.as_secs_f64())),
        );
        let mut requests = (0, 0);
        for r in &now.by_runtime {
            let w = match oldest.and_then(|o| o.get(r.runtime)) {
                Some(o) => r.since(o),
                None => r.clone(),
            };
            match r.runtime {
                "io_uring" => requests.0 = r.requests,
                _ => requests.1 = r.requests,
            }
            out.insert(
                r.runtime.into(),
                json!({ "window": figures(&w, window), "since_start": figures(r, since_start) }),
            );
        }
        let (verdict, basis) = self.verdict(requests);
        out.insert("verdict".into(), json!(verdict));
        out.insert("verdict_basis".into(), basis);
        Value::Object(out)
    }

    /// The sentence, and what it rests on (p-values, ratios, thresholds) for the curious.
    fn verdict(&self, requests: (u64, u64)) -> (String, Value) {
        use verdict::*;
        if self.runtimes.len() < 2 {
            let only = self.runtimes.first().copied().unwrap_or("none");
            return (
                format!(
                    "only {only} runs ({}): nothing to compare; run with --runtime split",
                    self.reason
                ),
                Value::Null,
            );
        }
        let e = Evidence {
            requests,
            ..self.evidence
        };
        let test = |r: &Running| {
            paired(r).map(
                |t| json!({ "ratio": t.ratio, "p_value": t.p_value, "ci95": [t.ci95.0, t.ci95.1] }),
            )
        };
        let basis = json!({
            "method": "paired t-test on ln(io_uring/epoll) per 5-second interval, since start",
            "paired_intervals": e.cpu.n(),
            "cpu_per_request": test(&e.cpu),
            "p99": test(&e.p99),
            "thresholds": {
                "min_requests_per_runtime": MIN_REQUESTS,
                "min_interval_requests_per_runtime": MIN_INTERVAL_REQUESTS,
                "min_paired_intervals": MIN_INTERVALS,
                "alpha": ALPHA,
                "cpu_same_within": CPU_SAME,
                "p99_same_within": P99_SAME,
            },
        });
        (verdict(&e).unwrap_or_else(|s| s), basis)
    }
}

/// One paired interval: both runtimes served enough requests between `prev` and `m`.
fn pair(evidence: &mut Evidence, m: &Moment, prev: &Moment) {
    let (Some(u), Some(e), Some(pu), Some(pe)) = (
        m.get("io_uring"),
        m.get("epoll"),
        prev.get("io_uring"),
        prev.get("epoll"),
    ) else {
        return;
    };
    let (u, e) = (u.since(pu), e.since(pe));
    if u.requests < MIN_INTERVAL_REQUESTS || e.requests < MIN_INTERVAL_REQUESTS {
        return;
    }
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some((a / b).ln()),
        _ => None,
    };
    if let (Some(cpu), Some(p99)) = (
        ratio(u.cpu_us_per_request(), e.cpu_us_per_request()),
        ratio(u.latency_ms(0.99), e.latency_ms(0.99)),
    ) {
        evidence.cpu.push(cpu);
        evidence.p99.push(p99);
    }
}

/// One runtime's figures over `period` (a window, or since start).
fn figures(r: &Reading, period: Duration) -> Value {
    let secs = period.as_secs_f64();
    let rps = if secs > 0.0 {
        r.requests as f64 / secs
    } else {
        0.0
    };
    let ms = |q| r.latency_ms(q).map(round);
    json!({
        "requests": r.requests,
        "requests_per_second": round(rps),
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "cpu_us_per_request": r.cpu_us_per_request().map(round),
        "errors": r.errors(),
        "connections": r.connections,
        "max_loop_lag_ms": round(r.max_lag_ms()),
    })
}

/// Three decimals: enough for milliseconds and requests per second, short in JSON.
fn round(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
