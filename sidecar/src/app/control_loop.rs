//! The control thread: signals, reloads and the drain. Runs on the main thread's own
//! current-thread tokio runtime, never on a data-plane worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedSender;

use super::listeners::Listeners;
use crate::admin;
use crate::backend::{Selection, WorkerCmd};
use crate::cli::RunArgs;
use crate::core::lifecycle::Lifecycle;
use crate::core::worker::SharedConfig;
use crate::logging::LogLevel;

pub struct Control<'a> {
    pub args: &'a RunArgs,
    pub config: SharedConfig,
    pub lifecycle: Arc<Lifecycle>,
    pub senders: Vec<UnboundedSender<WorkerCmd>>,
    pub listeners: Listeners,
    pub workers: usize,
    pub selection: Selection,
    /// Each worker's published CPU time, rendered by `/metrics`.
    pub cpu: Arc<crate::core::cpu::CpuClocks>,
    pub log_level: Option<LogLevel>,
    pub started: Instant,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub discovery: Arc<crate::discovery::Live>,
    /// The SPIFFE Workload API client, following `identity.spiffe_socket`.
    pub identity: super::spiffe::WorkloadApi,
}

impl Control<'_> {
    pub fn run(mut self, admin: std::net::TcpListener) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("control runtime")?;
        rt.block_on(async move {
            let (shutdown_tx, mut shutdown_rx) = tokio::sync::mpsc::unbounded_channel();
            let sha = self.config.load().sha256.clone();
            let comparison = Arc::new(std::sync::Mutex::new(crate::compare::History::new(
                self.started,
                self.selection.running(),
                self.selection.reason.clone(),
            )));
            tokio::spawn(crate::compare::collect::run(
                self.senders.clone(),
                comparison.clone(),
            ));
            let state = Arc::new(admin::State {
                config: self.config.clone(),
                lifecycle: self.lifecycle.clone(),
                selection: self.selection.clone(),
                workers: self.workers,
                log_level: self.log_level.clone(),
                loaded: std::sync::Mutex::new((std::time::SystemTime::now(), sha)),
                shutdown: shutdown_tx,
                metrics: self.metrics.clone(),
                workers_tx: self.senders.clone(),
                discovery: self.discovery.clone(),
                cpu: self.cpu.clone(),
                comparison,
            });
            record_applied(&self.config.load().sha256, None);
            record_expiry(&self.config.load());
            self.identity.follow(&self.config.load().config);
            admin.set_nonblocking(true)?;
            let admin = tokio::net::TcpListener::from_std(admin)?;
            tracing::info!(address = %admin.local_addr()?, "admin listening");
            tokio::spawn(admin::serve(admin, state.clone()));
            let (outcome_tx, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
            let (initial, files) = {
                let snap = self.config.load();
                (snap.sha256.clone(), snap.files())
            };
            let watcher = control::watch::watch(
                &self.args.config,
                &initial,
                files,
                control::watch::WatchOptions::default(),
                move |o| {
                    let _ = outcome_tx.send(o);
                },
            )?;
            tracing::info!(config = %self.args.config.display(), "watching the config directory for changes");
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            let mut hup = signal(SignalKind::hangup())?;
            // Only now: a signal that arrived before its handler would kill the process (SIGHUP's
            // and SIGTERM's default action), so "ready" waits for the handlers and the watcher.
            tracing::info!(
                runtime = %self.selection.mode,
                workers = self.workers,
                startup_ms = self.started.elapsed().as_secs_f64() * 1e3,
                "ringside ready"
            );
            // The exporter needs periodic upkeep to keep histograms bounded.
            let mut upkeep = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = upkeep.tick() => self.metrics.run_upkeep(),
                    _ = term.recv() => { tracing::info!("SIGTERM: draining"); break; }
                    _ = int.recv() => { tracing::info!("SIGINT: draining"); break; }
                    _ = shutdown_rx.recv() => { tracing::info!("POST /shutdown: draining"); break; }
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: re-reading the config");
                        watcher.force_reload();
                    }
                    Some(outcome) = outcomes.recv() => {
                        if let Some(sha) = self.on_outcome(outcome) {
                            state.config_applied(&sha);
                        }
                    }
                }
            }
            self.drain().await;
            Ok(())
        })
    }

    /// Acts on what the watcher found. Returns the applied sha256.
    fn on_outcome(&mut self, outcome: control::watch::Outcome) -> Option<String> {
        use control::watch::Outcome;
        match outcome {
            Outcome::Applied { snapshot, trigger } => {
                tracing::info!(?trigger, summary = %snapshot.summary(), "new config read");
                self.apply(snapshot)
            }
            Outcome::Rejected { problems, trigger } => {
                for p in problems.iter() {
                    tracing::error!(?trigger, problem = %p, "config rejected: the running config keeps serving");
                }
                metrics::counter!("ringside_config_reloads_total", "result" => "rejected")
                    .increment(1);
                None
            }
            Outcome::Unreadable { error, trigger } => {
                tracing::warn!(?trigger, %error, "config unreadable; will retry on the next change");
                None
            }
        }
    }

    /// Swaps in a validated snapshot: new listeners are bound first (so a port clash rejects
    /// the whole reload), then the snapshot is stored, then accept loops change.
    pub fn apply(&mut self, next: Arc<control::snapshot::Snapshot>) -> Option<String> {
        let plan = match self.listeners.plan(&next, self.workers) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "config rejected: the running config keeps serving");
                metrics::counter!("ringside_config_reloads_total", "result" => "rejected")
                    .increment(1);
                return None;
            }
        };
        let sha = next.sha256.clone();
        let previous = self.config.load().sha256.clone();
        self.config.store(next);
        self.listeners.apply(plan, &self.senders);
        self.lifecycle.config_changed();
        metrics::counter!("ringside_config_reloads_total", "result" => "applied").increment(1);
        record_applied(&sha, Some(&previous));
        record_expiry(&self.config.load());
        self.identity.follow(&self.config.load().config);
        tracing::info!(sha256 = %sha, "config applied");
        Some(sha)
    }

    /// Stops accepting, lets connections finish, and returns when none are left or the drain
    /// timeout expires.
    async fn drain(self) {
        let started = Instant::now();
        self.lifecycle.start_drain();
        for w in &self.senders {
            let _ = w.send(WorkerCmd::StopAccepting);
        }
        let deadline = started + self.args.drain_timeout;
        while self.lifecycle.active_connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.lifecycle.active_connections();
        if left > 0 {
            tracing::warn!(
                connections = left,
                "drain timeout: closing the remaining connections"
            );
        } else {
            tracing::info!(drained_ms = started.elapsed().as_millis() as u64, "drained");
        }
    }
}

/// `ringside_tls_certificate_expiry_timestamp_seconds{source}` for every certificate the
/// config serves or presents (`listener:NAME`, `cluster:NAME`), so an alert can fire before
/// one expires. The SPIFFE SVID's is set by the Workload API client (`source="spiffe"`).
fn record_expiry(snap: &control::snapshot::Snapshot) {
    let listeners = snap.config.listeners.iter().filter_map(|l| {
        let t = l.tls.as_ref()?;
        Some((format!("listener:{}", l.name), t.expiry?))
    });
    let clusters = snap.config.clusters.iter().filter_map(|c| {
        let t = c.tls.as_ref()?;
        Some((format!("cluster:{}", c.name), t.expiry?))
    });
    for (source, at) in listeners.chain(clusters) {
        metrics::gauge!("ringside_tls_certificate_expiry_timestamp_seconds", "source" => source)
            .set(at as f64);
    }
}

/// Points `ringside_config_info` at the active config and stamps the reload time.
fn record_applied(sha256: &str, previous: Option<&str>) {
    if let Some(prev) = previous.filter(|p| *p != sha256) {
        metrics::gauge!("ringside_config_info", "sha256" => prev.to_owned()).set(0.0);
    }
    metrics::gauge!("ringside_config_info", "sha256" => sha256.to_owned()).set(1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics::gauge!("ringside_config_last_reload_success_timestamp_seconds").set(now);
}
