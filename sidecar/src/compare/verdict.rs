//! The comparison's verdict and its confidence.
//!
//! In split mode both runtimes serve the same traffic mix at the same time, so each 5-second
//! interval gives one *paired* observation: io_uring's CPU per request against epoll's, and
//! io_uring's p99 against epoll's, under the same load. The test is a paired Student's t-test
//! on the log of the per-interval ratio (log, so "18% less" and "22% more" are symmetric and
//! the mean is the geometric-mean ratio). Pairing cancels what changes over time for both
//! runtimes alike (load, request mix, noisy neighbours), which an unpaired (Welch) test over
//! the same intervals would count as noise. The intervals are treated as independent; load
//! that drifts slowly makes neighbouring intervals correlated and the p-value optimistic,
//! which is why a difference under [`CPU_SAME`] / [`P99_SAME`] is reported as "the same"
//! even when it is significant.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Each runtime must have answered this many requests since start before any verdict.
pub const MIN_REQUESTS: u64 = 1000;
/// An interval is paired only if each runtime answered at least this many requests in it
/// (below that, CPU per request is mostly the housekeeping timer's).
pub const MIN_INTERVAL_REQUESTS: u64 = 50;
/// Paired intervals needed before any verdict (with 5 s intervals: 25 s of traffic).
pub const MIN_INTERVALS: u64 = 5;
/// A difference is claimed only below this p-value (95% confidence).
pub const ALPHA: f64 = 0.05;
/// CPU-per-request ratios within this fraction of 1 are "the same".
pub const CPU_SAME: f64 = 0.02;
/// p99 ratios within this fraction of 1 are "the same".
pub const P99_SAME: f64 = 0.05;

/// Running mean and variance (Welford's method): the paired samples since start, kept in
/// three numbers however long the process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Running {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Running {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    pub fn n(&self) -> u64 {
        self.n
    }
}

/// A paired t-test's outcome on log ratios (io_uring / epoll).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Test {
    /// Paired intervals.
    pub n: u64,
    /// Geometric-mean ratio io_uring / epoll (0.82: io_uring 18% lower).
    pub ratio: f64,
    /// Two-sided p-value of "the ratio is 1".
    pub p_value: f64,
    /// 95% confidence interval of the ratio.
    pub ci95: (f64, f64),
}

impl Test {
    /// Whether a difference may be claimed: significant, and larger than `same`.
    pub fn differs(&self, same: f64) -> bool {
        self.p_value < ALPHA && (self.ratio - 1.0).abs() >= same
    }
}

/// The t-test on the samples in `r`; `None` with fewer than two.
pub fn paired(r: &Running) -> Option<Test> {
    if r.n < 2 {
        return None;
    }
    let df = (r.n - 1) as f64;
    let se = (r.m2 / df / r.n as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let (p_value, half) = if se > 0.0 {
        let stat = r.mean / se;
        (2.0 * (1.0 - t.cdf(stat.abs())), t.inverse_cdf(0.975) * se)
    } else {
        // Identical samples: certain, either way.
        (if r.mean == 0.0 { 1.0 } else { 0.0 }, 0.0)
    };
    Some(Test {
        n: r.n,
        ratio: r.mean.exp(),
        p_value: p_value.clamp(0.0, 1.0),
        ci95: ((r.mean - half).exp(), (r.mean + half).exp()),
    })
}

/// What the verdict is built from: since start, io_uring against epoll.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence {
    /// Requests answered since start: (io_uring, epoll).
    pub requests: (u64, u64),
    /// ln(io_uring CPU per request / epoll's), one sample per paired interval.
    pub cpu: Running,
    /// ln(io_uring p99 / epoll's), one sample per paired interval.
    pub p99: Running,
}

/// Why there is nothing to compare yet, as the verdict says it.
pub const NOT_ENOUGH: &str = "not enough traffic yet";

/// The verdict sentence. `Err` holds the sentence too, for the cases without a comparison.
pub fn verdict(e: &Evidence) -> Result<String, String> {
    let (u, p) = (e.requests.0, e.requests.1);
    let intervals = e.cpu.n().min(e.p99.n());
    if u < MIN_REQUESTS || p < MIN_REQUESTS || intervals < MIN_INTERVALS {
        let mut missing = Vec::new();
        if u < MIN_REQUESTS || p < MIN_REQUESTS {
            missing.push(format!(
                "each runtime needs {MIN_REQUESTS} requests (io_uring {u}, epoll {p})"
            ));
        }
        if intervals < MIN_INTERVALS {
            missing.push(format!(
                "{MIN_INTERVALS} intervals of 5 s in which both answered \
                 {MIN_INTERVAL_REQUESTS}+ requests are needed ({intervals} so far)"
            ));
        }
        return Err(format!("{NOT_ENOUGH}: {}", missing.join(", and ")));
    }
    let (Some(cpu), Some(p99)) = (paired(&e.cpu), paired(&e.p99)) else {
        return Err(NOT_ENOUGH.to_owned());
    };
    let cpu_part = if cpu.differs(CPU_SAME) {
        format!(
            "io_uring used {} CPU per request than epoll",
            relative(cpu.ratio, "less", "more")
        )
    } else {
        "io_uring used the same CPU per request as epoll".to_owned()
    };
    let p99_part = if p99.differs(P99_SAME) {
        format!("had a p99 {}", relative(p99.ratio, "lower", "higher"))
    } else {
        "had the same p99".to_owned()
    };
    let claimed: Vec<f64> = [(cpu, CPU_SAME), (p99, P99_SAME)]
        .iter()
        .filter(|(t, same)| t.differs(*same))
        .map(|(t, _)| t.p_value)
        .collect();
    let confidence = match claimed
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))))
    {
        Some(worst) => format!("{} confidence", level(worst)),
        None => "no difference significant at 95% confidence".to_owned(),
    };
    Ok(format!(
        "{cpu_part} and {p99_part} over {} requests ({confidence}, {intervals} paired \
         5-second intervals)",
        count(u + p)
    ))
}

/// "18% less" for 0.82, "22% more" for 1.22.
fn relative(ratio: f64, less: &str, more: &str) -> String {
    let pct = ((ratio - 1.0).abs() * 100.0).round();
    format!("{pct}% {}", if ratio < 1.0 { less } else { more })
}

/// The highest of 99.9%, 99%, 95% that a p-value supports.
fn level(p: f64) -> &'static str {
    if p < 0.001 {
        "99.9%"
    } else if p < 0.01 {
        "99%"
    } else {
        "95%"
    }
}

/// 1.2M, 45.3k, 999.
pub fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
