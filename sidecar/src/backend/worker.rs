//! What the control thread and a worker thread exchange: the setup a worker starts with and the
//! commands it receives. Shared by both backends, which never import each other.

use crate::core::worker::SharedConfig;

/// One listener socket handed to one worker.
#[derive(Debug)]
pub struct BoundListener {
    pub name: String,
    pub socket: std::net::TcpListener,
}

/// What the control thread tells a worker. Workers start with an empty set of listeners and
/// receive their initial ones as `Listen` commands too, so startup and reload share one path.
#[derive(Debug)]
pub enum WorkerCmd {
    /// Start accepting on this socket (replaces a listener of the same name).
    Listen(BoundListener),
    /// Stop accepting on this listener; its connections drain on their own.
    Unlisten(String),
    /// Drain: stop accepting on every listener.
    StopAccepting,
    /// This worker's figures (admin `/runtime`, and the runtime comparison's collection
    /// every 5 s). `reset_max_lag`: start a new worst-lag window (see `Worker::figures`).
    Figures {
        reset_max_lag: bool,
        reply: tokio::sync::oneshot::Sender<crate::core::worker::Figures>,
    },
    /// List up to `limit` live connections (admin `/connections`).
    ListConnections {
        limit: usize,
        reply: tokio::sync::oneshot::Sender<(Vec<crate::core::conns::ConnView>, usize)>,
    },
}

/// Everything a worker thread starts with.
#[derive(Debug)]
pub struct WorkerSetup {
    pub id: usize,
    pub config: SharedConfig,
    pub lifecycle: std::sync::Arc<crate::core::lifecycle::Lifecycle>,
    pub opts: crate::core::worker::Options,
    pub cmds: tokio::sync::mpsc::UnboundedReceiver<WorkerCmd>,
}
