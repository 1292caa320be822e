//! What one worker thread shares between its connections: the live config, the upstream
//! pool and load-balancer state. Reached through `Rc`, never across threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use control::snapshot::Snapshot;

use super::conns::Registry;
use super::lifecycle::Lifecycle;
use super::rt::Rt;
use super::stats::Stats;
use super::up::balance::Balancers;
use super::up::h2::H2Pool;
use super::up::pool::Pool;

/// Housekeeping period: event-loop lag is sampled at this rate, the pool swept every 4th.
pub const TICK: Duration = Duration::from_millis(250);

/// The config handle every worker reads and the control plane writes.
pub type SharedConfig = Arc<ArcSwap<Snapshot>>;

/// One worker's figures for the admin `/runtime` endpoint. `runtime` holds the runtime's
/// `name` (`io_uring` or `epoll`) and what only that runtime can tell (tokio's task counts,
/// io_uring operation counts).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub worker: usize,
    pub connections: usize,
    pub pooled_upstream_connections: usize,
    /// Multiplexed HTTP/2 connections to upstreams.
    pub upstream_h2_connections: usize,
    /// Worst event-loop lag since the previous `/runtime` request (see `TICK`).
    pub max_loop_lag_ms: f64,
    pub runtime: serde_json::Value,
    /// Cumulative measurements for the runtime comparison (not serialized: the control
    /// thread merges them per runtime).
    #[serde(skip)]
    pub reading: super::meter::Reading,
}

/// Per-process options every worker applies.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub access_log: Option<super::access_log::AccessLog>,
    /// Start a W3C trace context on requests that arrive without one.
    pub start_traces: bool,
    /// How long connections of a removed listener may keep going before they are closed.
    pub drain_timeout: Duration,
    /// Skip per-request metrics (`--no-metrics`): only to measure their cost.
    pub no_metrics: bool,
    /// The live endpoint sets of clusters with DNS names (written by the resolver thread).
    pub discovery: Arc<crate::discovery::Live>,
    /// Every listener's connection and request counts, shared by the workers (load shedding).
    pub loads: Arc<super::shed::Loads>,
    /// Where each worker publishes its thread's CPU time (`ringside_worker_cpu_seconds_total`).
    pub cpu: Arc<super::cpu::CpuClocks>,
}

pub struct Worker<R: Rt> {
    pub id: usize,
    pub opts: Options,
    config: SharedConfig,
    pub lifecycle: Arc<Lifecycle>,
    pub pool: Pool<R>,
    pub h2: H2Pool,
    pub balancers: Balancers,
    pub stats: Stats,
    pub conns: std::rc::Rc<Registry>,
    max_lag: std::cell::Cell<Duration>,
    /// The config generation and drain state the idle sweep last saw.
    seen: std::cell::Cell<(u64, bool)>,
}

impl<R: Rt> Worker<R> {
    pub fn new(id: usize, config: SharedConfig, lifecycle: Arc<Lifecycle>, opts: Options) -> Self {
        Self {
            id,
            config,
            lifecycle,
            pool: Pool::default(),
            h2: Default::default(),
            balancers: Balancers::new(opts.discovery.clone()),
            stats: Stats::new(id, R::name()),
            conns: std::rc::Rc::default(),
            max_lag: std::cell::Cell::new(Duration::ZERO),
            seen: std::cell::Cell::new((0, false)),
            opts,
        }
    }

    /// Called by the backend's housekeeping timer every [`TICK`]; `late` is how much later than
    /// asked the timer fired, i.e. how long the event loop was busy with something else.
    pub fn tick(&self, n: u64, late: Duration) {
        self.stats.loop_lag(late);
        self.opts.cpu.publish(self.id, super::cpu::thread_cpu());
        self.max_lag.set(self.max_lag.get().max(late));
        // Idle connections hold no timer: expire them here, and wake them all when a reload
        // or a drain may concern them.
        let now_seen = (self.lifecycle.generation(), self.lifecycle.is_draining());
        let changed = now_seen != self.seen.replace(now_seen);
        self.conns
            .sweep_idle(std::time::Instant::now(), changed || now_seen.1);
        if n.is_multiple_of(4) {
            self.sweep();
        }
    }

    /// The newest config. Each connection and each request takes its own snapshot, so a
    /// reload never changes a request half-way through.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.config.load_full()
    }

    /// Whether the current config still has `listener` (no snapshot clone: one atomic load).
    pub fn has_listener(&self, listener: &str) -> bool {
        self.config.load().listener(listener).is_some()
    }

    /// The live config's `max_connections` for `listener` (one atomic load, no clone).
    pub fn max_connections(&self, listener: &str) -> Option<u32> {
        self.config
            .load()
            .listener(listener)
            .and_then(|l| l.max_connections)
    }

    /// The live config's `max_requests` for `listener` (one atomic load, no clone).
    pub fn max_requests(&self, listener: &str) -> Option<u32> {
        self.config
            .load()
            .listener(listener)
            .and_then(|l| l.max_requests)
    }

    /// This worker's figures; `runtime` comes from the backend. `reset_max_lag` starts a new
    /// worst-lag window (an operator's `/runtime` request does; the comparison's periodic
    /// collection does not, so it never hides a stall from the operator).
    pub fn figures(&self, mut runtime: serde_json::Value, reset_max_lag: bool) -> Figures {
        if let Some(o) = runtime.as_object_mut() {
            o.insert("name".into(), R::name().into());
        }
        let max_lag = if reset_max_lag {
            self.max_lag.replace(Duration::ZERO)
        } else {
            self.max_lag.get()
        };
        let cpu = super::cpu::thread_cpu();
        self.opts.cpu.publish(self.id, cpu);
        let connections = self.conns.len();
        Figures {
            worker: self.id,
            connections,
            pooled_upstream_connections: self.pool.idle_count(),
            upstream_h2_connections: self.h2.connection_count(),
            max_loop_lag_ms: max_lag.as_secs_f64() * 1e3,
            runtime,
            reading: self.stats.meter.read(
                R::name(),
                cpu,
                connections as u64,
                self.conns.closed_with_error(),
            ),
        }
    }

    /// Up to `limit` of this worker's live connections, and how many it has (`/connections`).
    pub fn connections(&self, limit: usize) -> (Vec<super::conns::ConnView>, usize) {
        self.conns.list(self.id, R::name(), limit)
    }

    /// Called when `listener` stops accepting: after the drain timeout, closes whatever is
    /// still open on it (unless a reload brought it back).
    pub async fn drain_listener(&self, listener: &str) {
        R::sleep(self.opts.drain_timeout).await;
        if self.snapshot().listener(listener).is_none() {
            let n = self.conns.abort_listener(listener);
            if n > 0 {
                tracing::info!(
                    worker = self.id,
                    listener,
                    connections = n,
                    "drain timeout: closed the removed listener's connections"
                );
            }
        }
    }

    /// Periodic housekeeping: closes pooled connections that idled out or were closed by the
    /// upstream, and HTTP/2 connections to endpoints a reload or a DNS answer removed. Returns
    /// how many were closed.
    pub fn sweep(&self) -> usize {
        let snap = self.config.load();
        let live = self.balancers.live();
        let has = |c: &control::snapshot::ClusterSpec, addr: SocketAddr| {
            c.endpoints.contains(&addr) || (!c.names.is_empty() && live.has(&c.name, addr))
        };
        let idle_for = |addr: SocketAddr| {
            snap.clusters
                .iter()
                .filter(|c| has(c, addr))
                .map(|c| c.idle_timeout)
                .min()
                // An endpoint no cluster names any more was removed: close its connections.
                .unwrap_or(Duration::ZERO)
        };
        let named = |addr: SocketAddr| snap.clusters.iter().any(|c| has(c, addr));
        self.pool.sweep(idle_for) + self.h2.retire(named)
    }
}
