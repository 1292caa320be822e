//! The admin API's view of the process, shared by the server and its endpoints.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::backend::Selection;
use crate::core::lifecycle::Lifecycle;
use crate::core::worker::SharedConfig;
use crate::logging::LogLevel;

/// What the admin endpoints read, and the one thing they can ask for (a drain).
pub struct State {
    pub config: SharedConfig,
    pub lifecycle: Arc<Lifecycle>,
    pub selection: Selection,
    pub workers: usize,
    pub log_level: Option<LogLevel>,
    /// When the active config was stored, and with which sha256 (updated on reload).
    pub loaded: std::sync::Mutex<(SystemTime, String)>,
    /// `POST /shutdown` sends here; the control loop drains.
    pub shutdown: mpsc::UnboundedSender<()>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// To ask workers for their live connections.
    pub workers_tx: Vec<mpsc::UnboundedSender<crate::backend::WorkerCmd>>,
    /// The live endpoint sets of clusters with DNS names (`/clusters`, `/config`).
    pub discovery: Arc<crate::discovery::Live>,
    /// Each worker's published CPU time (`ringside_worker_cpu_seconds_total` in `/metrics`).
    pub cpu: Arc<crate::core::cpu::CpuClocks>,
    /// The runtime comparison's kept moments (filled by `compare::collect::run`).
    pub comparison: Arc<std::sync::Mutex<crate::compare::History>>,
}

impl State {
    pub fn config_applied(&self, sha256: &str) {
        if let Ok(mut l) = self.loaded.lock() {
            *l = (SystemTime::now(), sha256.to_owned());
        }
    }
}
