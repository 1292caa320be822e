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
    /// Print the runtime comparison of a running Ringside (best in `--runtime split`): per
    /// runtime, over the last minute and since start, requests/s, latency percentiles, CPU
    /// per request, errors, connections, loop lag, and a verdict with its confidence.
    Compare {
        /// The admin API's address (`host:port`, e.g. `127.0.0.1:9901`).
        #[arg(long, env = "RINGSIDE_ADMIN")]
        admin: String,
        /// Refresh every SECONDS until interrupted, instead of printing once.
        #[arg(long, value_name = "SECONDS")]
        watch: Option<u64>,
    },
    /// Install the iptables nat rules that send the pod's TCP traffic through Ringside (run
    /// once, as root with NET_ADMIN, in an init container). IPv4 only. Idempotent.
    Iptables(IptablesArgs),
}

#[derive(Debug, clap::Args)]
pub struct IptablesArgs {
    /// The uid Ringside runs as: its own outbound connections are never redirected.
    #[arg(long, env = "RINGSIDE_PROXY_UID")]
    pub proxy_uid: u32,
    /// Inbound TCP to the pod is redirected here (a listener on 0.0.0.0:PORT).
    #[arg(long, env = "RINGSIDE_INBOUND_PORT", default_value_t = 15006)]
    pub inbound_port: u16,
    /// Outbound TCP from the pod's apps is redirected here (a `tcp` listener with
    /// `original_dst: true`).
    #[arg(long, env = "RINGSIDE_OUTBOUND_PORT", default_value_t = 15001)]
    pub outbound_port: u16,
    /// Ringside's admin port: inbound connections to it are never redirected.
    #[arg(long, env = "RINGSIDE_ADMIN_PORT", default_value_t = 9901)]
    pub admin_port: u16,
    /// Inbound destination ports not to redirect, comma-separated.
    #[arg(long, env = "RINGSIDE_SKIP_INBOUND_PORTS", value_delimiter = ',')]
    pub skip_inbound_ports: Vec<u16>,
    /// Outbound destination ports not to redirect, comma-separated.
    #[arg(long, env = "RINGSIDE_SKIP_OUTBOUND_PORTS", value_delimiter = ',')]
    pub skip_outbound_ports: Vec<u16>,
    /// Outbound destination networks not to redirect, comma-separated IPv4 CIDRs.
    #[arg(long, env = "RINGSIDE_SKIP_OUTBOUND_CIDRS", value_delimiter = ',')]
    pub skip_outbound_cidrs: Vec<crate::iptables::Cidr>,
    /// Print the exact commands and apply nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the rules and chains instead of installing them.
    #[arg(long, conflicts_with = "dry_run")]
    pub remove: bool,
    /// The iptables binary (e.g. `iptables-legacy` on hosts still on the legacy backend).
    #[arg(long, env = "RINGSIDE_IPTABLES_CMD", default_value = "iptables")]
    pub iptables_cmd: String,
}

impl IptablesArgs {
    pub fn plan(&self) -> crate::iptables::Plan {
        crate::iptables::Plan {
            proxy_uid: self.proxy_uid,
            inbound_port: self.inbound_port,
            outbound_port: self.outbound_port,
            admin_port: self.admin_port,
            skip_inbound_ports: self.skip_inbound_ports.clone(),
            skip_outbound_ports: self.skip_outbound_ports.clone(),
            skip_outbound_cidrs: self.skip_outbound_cidrs.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Config file (YAML or JSON).
    #[arg(short, long, env = "RINGSIDE_CONFIG")]
    pub config: PathBuf,
    /// I/O runtime: `auto` probes io_uring for real and falls back to epoll, saying why;
    /// `split` runs io_uring and epoll workers side by side on the same listeners, to compare
    /// them on live traffic (`ringside compare`).
    #[arg(long, env = "RINGSIDE_RUNTIME", value_enum, default_value = "auto")]
    pub runtime: RuntimeChoice,
    /// Worker threads (default: the CPU quota of this cgroup, else the core count; at least 2
    /// with `--runtime split`).
    #[arg(long, env = "RINGSIDE_WORKERS")]
    pub workers: Option<usize>,
    /// With `--runtime split`: how many of the workers run io_uring (1 ≤ K < workers; default
    /// ceil(workers/2)); the others run epoll.
    #[arg(long, env = "RINGSIDE_IO_URING_WORKERS")]
    pub io_uring_workers: Option<usize>,
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
    /// DNS servers (`IP:port`, comma-separated) for cluster endpoints written as
    /// `host:port`, instead of `/etc/resolv.conf`'s `nameserver`s (its search list and
    /// `ndots` still apply). For pods that need a custom server, and for tests.
    #[arg(long, env = "RINGSIDE_DNS_SERVER", value_delimiter = ',')]
    pub dns_server: Vec<std::net::SocketAddr>,
    /// At startup, how long to wait for the first DNS answers before serving with what is
    /// known (clusters whose names did not resolve yet have only their IP literals).
    #[arg(long, env = "RINGSIDE_DNS_STARTUP_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub dns_startup_wait: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    control::duration::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
