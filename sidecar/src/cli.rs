//! Command line: every flag also reads `RINGSIDE_<FLAG>` from the environment; flags win.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::RuntimeChoice;

#[derive(Debug, Parser)]
#[command(
    name = "ringside",
    version,
    about = "Service-mesh sidecar proxy: io_uring and epoll behind one data plane"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the listeners in a config file.
    Run(RunArgs),
    /// Validate a config file: exit 0 with a summary, or 1 with `file:line:col: reason` lines.
    Check {
        #[arg(short, long, env = "RINGSIDE_CONFIG")]
        config: PathBuf,
    },
    /// Show which runtime `--runtime auto` would pick on this host, and why.
    Probe,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Config file (YAML or JSON).
    #[arg(short, long, env = "RINGSIDE_CONFIG")]
    pub config: PathBuf,
    /// I/O runtime: `auto` probes io_uring for real and falls back to epoll, saying why.
    #[arg(long, env = "RINGSIDE_RUNTIME", value_enum, default_value = "auto")]
    pub runtime: RuntimeChoice,
    /// Worker threads (default: the CPU quota of this cgroup, else the core count).
    #[arg(long, env = "RINGSIDE_WORKERS")]
    pub workers: Option<usize>,
    /// Log filter, in `tracing` env-filter syntax (e.g. `info,ringside=debug`).
    #[arg(long, env = "RINGSIDE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format.
    #[arg(long, env = "RINGSIDE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Access log, one JSON line per request: `stdout`, `stderr` or a file path. Off if unset.
    #[arg(long, env = "RINGSIDE_ACCESS_LOG")]
    pub access_log: Option<String>,
    /// Start a W3C `traceparent` on requests that arrive without one (propagation of an
    /// existing one is always on).
    #[arg(long, env = "RINGSIDE_TRACE_START")]
    pub trace_start: bool,
    /// Record no request metrics (`/metrics` then serves only process-level series). For
    /// measuring what metrics cost; not for production.
    #[arg(long, env = "RINGSIDE_NO_METRICS")]
    pub no_metrics: bool,
    /// On SIGTERM or SIGINT: how long in-flight requests may take to finish before exit.
    #[arg(long, env = "RINGSIDE_DRAIN_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    control::duration::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
