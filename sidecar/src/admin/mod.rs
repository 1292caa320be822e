//! The admin API (DESIGN.md §4): health, config, runtime and log level. Served from the
//! control thread, never from a data-plane worker, so a scrape or a debug request cannot slow
//! traffic, and a stuck worker cannot hide itself from the admin API.

mod endpoints;
mod http;
mod pprof;

use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::TcpListener;
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
}

impl State {
    pub fn config_applied(&self, sha256: &str) {
        if let Ok(mut l) = self.loaded.lock() {
            *l = (SystemTime::now(), sha256.to_owned());
        }
    }
}

pub async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            if let Some(req) = http::read_request(&mut stream, peer).await {
                let resp = endpoints::handle(&state, &req).await;
                http::write_response(&mut stream, &resp).await;
            }
        });
    }
}
