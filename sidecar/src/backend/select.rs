//! `--runtime` applied to what the probe finds: which runtime each worker runs, and why.
//!
//! `split` runs both kinds in one process, on the same `SO_REUSEPORT` listeners: io_uring
//! workers take ids `0..K`, epoll workers `K..N`. The kernel spreads connections over the
//! listener sockets by their 4-tuple hash, not by runtime, so each kind gets its share of the
//! live traffic and the two can be compared on it.

use std::fmt;

use super::probe::{self, ProbeReport, RingFlags};

/// What the operator asked for (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// io_uring if it really works here, else epoll.
    Auto,
    /// io_uring or exit with the reason.
    IoUring,
    /// tokio on epoll.
    Epoll,
    /// Both at once: ceil(N/2) workers on io_uring (or `--io-uring-workers`), the rest on
    /// epoll. Where io_uring is unusable, every worker runs epoll and the reason says why.
    Split,
}

/// What one worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    IoUring(RingFlags),
    Epoll,
}

impl Selected {
    /// `io_uring` or `epoll`: the value of every metric's `runtime` label.
    pub fn name(self) -> &'static str {
        match self {
            Self::IoUring(_) => "io_uring",
            Self::Epoll => "epoll",
        }
    }
}

/// The decision and the reason for it, for logs, `/runtime` and metrics.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `io_uring`, `epoll` or `split`: what was asked for and granted, as `/runtime` shows it.
    pub mode: &'static str,
    /// Each worker's runtime, indexed by worker id.
    pub workers: Vec<Selected>,
    pub reason: String,
    pub probe: Option<ProbeReport>,
}

impl Selection {
    /// The io_uring workers' ring flags, if any worker runs io_uring.
    pub fn ring_flags(&self) -> Option<RingFlags> {
        self.workers.iter().find_map(|w| match w {
            Selected::IoUring(f) => Some(*f),
            Selected::Epoll => None,
        })
    }

    /// The runtimes that really run (io_uring first), each once.
    pub fn running(&self) -> Vec<&'static str> {
        ["io_uring", "epoll"]
            .into_iter()
            .filter(|n| self.workers.iter().any(|w| w.name() == *n))
            .collect()
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.mode, self.reason)
    }
}

/// Why the runtime choice cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("--runtime io-uring was requested but io_uring is not usable here: {0}")]
    IoUringUnavailable(String),
    #[error("--io-uring-workers is only valid with --runtime split")]
    SharesWithoutSplit,
    #[error("--runtime split needs at least 2 workers (--workers {0})")]
    SplitTooFew(usize),
    #[error(
        "--io-uring-workers {k} must be at least 1 and less than the {n} workers, so that \
         both runtimes run"
    )]
    BadShare { k: usize, n: usize },
}

/// Applies `--runtime` to what the probe finds, for `workers` workers. `io_uring_workers` is
/// split mode's share (default ceil(N/2)). Only `auto` and `split` may fall back to epoll.
///
/// # Errors
/// `--runtime io-uring` where io_uring is unusable, or a split share that leaves one kind
/// without workers.
pub fn select(
    choice: RuntimeChoice,
    workers: usize,
    io_uring_workers: Option<usize>,
) -> Result<Selection, SelectError> {
    let workers = workers.max(1);
    if choice != RuntimeChoice::Split && io_uring_workers.is_some() {
        return Err(SelectError::SharesWithoutSplit);
    }
    if choice == RuntimeChoice::Split {
        if workers < 2 {
            return Err(SelectError::SplitTooFew(workers));
        }
        let k = io_uring_workers.unwrap_or(workers.div_ceil(2));
        if k == 0 || k >= workers {
            return Err(SelectError::BadShare { k, n: workers });
        }
        return Ok(split(probe::probe(), workers, k));
    }
    let all = |s: Selected| vec![s; workers];
    if choice == RuntimeChoice::Epoll {
        return Ok(Selection {
            mode: "epoll",
            workers: all(Selected::Epoll),
            reason: "--runtime epoll".into(),
            probe: None,
        });
    }
    let report = probe::probe();
    match (choice, report.usable()) {
        (_, Ok(flags)) => Ok(Selection {
            mode: "io_uring",
            workers: all(Selected::IoUring(flags)),
            reason: format!(
                "{}: io_uring works (kernel {}, ring flags {flags})",
                if choice == RuntimeChoice::Auto {
                    "auto"
                } else {
                    "--runtime io-uring"
                },
                report.kernel
            ),
            probe: Some(report),
        }),
        (RuntimeChoice::IoUring, Err(why)) => Err(SelectError::IoUringUnavailable(why)),
        (_, Err(why)) => Ok(Selection {
            mode: "epoll",
            workers: all(Selected::Epoll),
            reason: format!("auto: fell back to epoll because {why}"),
            probe: Some(report),
        }),
    }
}

/// Worker indices `from..to` as an operator reads them: `worker 2`, `workers 0-1`.
fn indices(from: usize, to: usize) -> String {
    match to - from {
        1 => format!("worker {from}"),
        _ => format!("workers {from}-{}", to - 1),
    }
}

/// Split mode with `k` of `n` workers on io_uring, or all on epoll where the probe says
/// io_uring is unusable.
fn split(report: ProbeReport, n: usize, k: usize) -> Selection {
    let (workers, reason) = match report.usable() {
        Ok(flags) => {
            let mut w = vec![Selected::IoUring(flags); k];
            w.extend(std::iter::repeat_n(Selected::Epoll, n - k));
            let reason = format!(
                "split: io_uring works (kernel {}, ring flags {flags}); {} on io_uring, {} on \
                 epoll",
                report.kernel,
                indices(0, k),
                indices(k, n)
            );
            (w, reason)
        }
        Err(why) => (
            vec![Selected::Epoll; n],
            format!("split: io_uring unusable ({why}), all {n} workers on epoll"),
        ),
    };
    Selection {
        mode: "split",
        workers,
        reason,
        probe: Some(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(usable: bool) -> ProbeReport {
        ProbeReport {
            kernel: "6.8".into(),
            io_uring_disabled: None,
            rejected_flags: vec![],
            outcome: if usable {
                Ok(RingFlags {
                    coop_taskrun: true,
                    single_issuer: true,
                })
            } else {
                Err("io_uring_setup failed: EPERM".into())
            },
            missing_opcodes: vec![],
        }
    }

    #[test]
    fn split_puts_the_first_k_workers_on_io_uring() {
        let s = split(report(true), 5, 3);
        let names: Vec<_> = s.workers.iter().map(|w| w.name()).collect();
        assert_eq!(
            names,
            ["io_uring", "io_uring", "io_uring", "epoll", "epoll"]
        );
        assert_eq!(s.running(), ["io_uring", "epoll"]);
        assert!(s.ring_flags().is_some());
        assert_eq!(s.mode, "split");
    }

    #[test]
    fn split_without_io_uring_runs_all_on_epoll_and_says_why() {
        let s = split(report(false), 4, 2);
        assert!(s.workers.iter().all(|w| *w == Selected::Epoll));
        assert_eq!(s.running(), ["epoll"]);
        assert_eq!(
            s.reason,
            "split: io_uring unusable (io_uring_setup failed: EPERM), all 4 workers on epoll"
        );
    }

    #[test]
    fn split_shares_are_checked() {
        let err = |c, n, k| select(c, n, k).err().map(|e| e.to_string());
        assert!(
            err(RuntimeChoice::Split, 1, None).is_some_and(|e| e.contains("at least 2 workers"))
        );
        assert!(err(RuntimeChoice::Split, 4, Some(4)).is_some_and(|e| e.contains("less than")));
        assert!(err(RuntimeChoice::Split, 4, Some(0)).is_some_and(|e| e.contains("at least 1")));
        assert!(err(RuntimeChoice::Epoll, 4, Some(1))
            .is_some_and(|e| e.contains("only valid with --runtime split")));
    }

    #[test]
    fn epoll_needs_no_probe() {
        let s = select(RuntimeChoice::Epoll, 3, None).expect("epoll");
        assert_eq!(s.workers, vec![Selected::Epoll; 3]);
        assert!(s.probe.is_none() && s.ring_flags().is_none());
    }
}
