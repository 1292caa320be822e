//! Starting the proxy (config, runtime choice, workers) and running its control thread.

mod control_loop;
mod listeners;
mod spiffe;

use std::sync::Arc;

use anyhow::{anyhow, Context};
use arc_swap::ArcSwap;

use crate::backend::{self, WorkerSetup};
use crate::cli::RunArgs;
use crate::core::lifecycle::Lifecycle;
use crate::core::worker::SharedConfig;
use crate::logging::LogLevel;

pub fn run(args: &RunArgs, log_level: Option<LogLevel>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // A proxy holds two descriptors per proxied connection: use all the kernel allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the file descriptor limit"),
    }
    let metrics = crate::telemetry::install()?;
    let snapshot = control::load_file(&args.config).map_err(|p| anyhow!("invalid config:\n{p}"))?;
    tracing::info!(config = %args.config.display(), summary = %snapshot.summary(), "config loaded");

    // `--workers 0` means the default, as the chart's `workers: 0` does.
    let workers = match (args.workers.filter(|&n| n > 0), args.runtime) {
        (Some(n), _) => n.max(1),
        (None, backend::RuntimeChoice::Split) => default_workers().max(2),
        (None, _) => default_workers().max(1),
    };
    let selection = backend::select(args.runtime, workers, args.io_uring_workers)?;
    tracing::info!(runtime = %selection.mode, reason = %selection.reason, "runtime selected");
    // One series per runtime that really runs: in split mode with io_uring, two.
    for name in selection.running() {
        metrics::gauge!("ringside_runtime_info", "runtime" => name).set(1.0);
    }
    // Bound before the workers start, so an admin port clash fails startup cleanly.
    let admin_addr = snapshot.config.admin.address;
    let admin = std::net::TcpListener::bind(admin_addr)
        .with_context(|| format!("admin: cannot bind {admin_addr}"))?;
    let mut bound = listeners::Listeners::default();
    let plan = bound.plan(&snapshot, workers)?;

    let config: SharedConfig = Arc::new(ArcSwap::from_pointee(snapshot));
    let lifecycle = Lifecycle::new();
    let discovery = crate::discovery::Live::new();
    crate::discovery::resolver::spawn(
        config.clone(),
        lifecycle.clone(),
        discovery.clone(),
        crate::discovery::resolver::Servers {
            explicit: args.dns_server.clone(),
        },
        args.dns_startup_wait,
    )?;
    let cpu = Arc::new(crate::core::cpu::CpuClocks::new(
        &selection
            .workers
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>(),
    ));
    let opts = crate::core::worker::Options {
        access_log: access_log(args.access_log.as_deref())?,
        start_traces: args.trace_start,
        drain_timeout: args.drain_timeout,
        no_metrics: args.no_metrics,
        discovery: discovery.clone(),
        loads: Default::default(),
        cpu: cpu.clone(),
    };
    let mut senders = Vec::with_capacity(workers);
    for id in 0..workers {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        senders.push(tx);
        let setup = WorkerSetup {
            id,
            config: config.clone(),
            lifecycle: lifecycle.clone(),
            opts: opts.clone(),
            cmds: rx,
        };
        let selected = selection.workers[id];
        std::thread::Builder::new()
            .name(format!("ringside-w{id}"))
            .spawn(move || {
                if let Err(e) = backend::run_worker(selected, setup) {
                    // Without its runtime a worker serves nothing: fail loudly and fast.
                    tracing::error!(worker = id, error = %e, "worker runtime failed; exiting");
                    std::process::exit(1);
                }
            })
            .context("spawning worker thread")?;
    }
    bound.apply(plan, &senders);
    metrics::gauge!("ringside_workers").set(workers as f64);

    let ctl = control_loop::Control {
        args,
        config,
        lifecycle,
        senders,
        listeners: bound,
        workers,
        selection,
        cpu,
        log_level,
        started,
        metrics,
        discovery,
        identity: spiffe::WorkloadApi::default(),
    };
    ctl.run(admin)
}

/// Starts the access log's writer thread, if one is asked for.
fn access_log(target: Option<&str>) -> anyhow::Result<Option<crate::core::access_log::AccessLog>> {
    use crate::core::access_log::{write_lines, AccessLog};
    let Some(target) = target else {
        return Ok(None);
    };
    let out: Box<dyn std::io::Write + Send> = match target {
        "stdout" => Box::new(std::io::stdout()),
        "stderr" => Box::new(std::io::stderr()),
        path => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--access-log {path}"))?,
        ),
    };
    let (log, rx) = AccessLog::new();
    std::thread::Builder::new()
        .name("ringside-access-log".into())
        .spawn(move || write_lines(rx, out))
        .context("spawning the access log writer")?;
    Ok(Some(log))
}

/// `available_parallelism` already honours the cgroup CPU quota and the affinity mask, which
/// is what a sidecar with a CPU limit should size itself by.
fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
