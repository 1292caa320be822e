//! Each worker thread's own CPU time, from its `CLOCK_THREAD_CPUTIME_ID`: what the runtime
//! comparison divides by requests, exact to the nanosecond rather than sampled.
//!
//! Only the thread itself can read that clock without `unsafe` (another thread would need
//! `pthread_getcpuclockid`), so each worker reads it on its housekeeping tick and when it
//! answers `/runtime`, and publishes it here; `/metrics` renders the published values.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// The calling thread's CPU time (user + system) since it started. Zero if the clock cannot
/// be read (it always can on Linux; a zero only makes the comparison say it lacks data).
pub fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Every worker's last published CPU time, for `ringside_worker_cpu_seconds_total`. The
/// `metrics` facade has integer counters only; CPU seconds need fractions, so this family is
/// rendered here and appended to the exporter's text.
#[derive(Debug, Default)]
pub struct CpuClocks {
    /// By worker id: (runtime name, nanoseconds).
    workers: Vec<(&'static str, AtomicU64)>,
}

impl CpuClocks {
    /// One clock per worker; `runtimes[id]` is worker `id`'s runtime (`io_uring`, `epoll`).
    pub fn new(runtimes: &[&'static str]) -> Self {
        Self {
            workers: runtimes.iter().map(|r| (*r, AtomicU64::new(0))).collect(),
        }
    }

    /// Worker `id` publishes its CPU time so far (ignored for an unknown id).
    pub fn publish(&self, id: usize, cpu: Duration) {
        if let Some((_, ns)) = self.workers.get(id) {
            ns.store(cpu.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// The Prometheus text of `ringside_worker_cpu_seconds_total{worker,runtime}`; empty
    /// when there are no workers.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.workers.is_empty() {
            return out;
        }
        out.push_str(
            "# HELP ringside_worker_cpu_seconds_total CPU time of each worker thread (user + \
             system, its own CPU clock), updated every 250 ms\n\
             # TYPE ringside_worker_cpu_seconds_total counter\n",
        );
        for (id, (runtime, ns)) in self.workers.iter().enumerate() {
            let secs = ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "ringside_worker_cpu_seconds_total{{worker=\"{id}\",runtime=\"{runtime}\"}} {secs}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_clock_advances_with_work_done_on_this_thread() {
        let before = thread_cpu();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu() > before);
    }

    #[test]
    fn renders_one_series_per_worker_with_its_runtime() {
        let c = CpuClocks::new(&["io_uring", "epoll"]);
        c.publish(1, Duration::from_millis(1500));
        c.publish(7, Duration::from_secs(1));
        let text = c.render();
        assert!(text.contains("# TYPE ringside_worker_cpu_seconds_total counter"));
        assert!(text
            .contains("ringside_worker_cpu_seconds_total{worker=\"0\",runtime=\"io_uring\"} 0\n"));
        assert!(text
            .contains("ringside_worker_cpu_seconds_total{worker=\"1\",runtime=\"epoll\"} 1.5\n"));
        assert!(CpuClocks::default().render().is_empty());
    }
}
