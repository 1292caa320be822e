//! Per-worker metric handles. Looking a labelled metric up in the global registry costs a
//! hash of the whole key and a lock; each worker keeps the handles it has used in plain maps
//! keyed by borrowed strings, so a request costs a few small hash lookups and no allocation.

use std::cell::RefCell;
use std::time::Duration;

use hashbrown::HashMap;
use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

/// Label value for "no route matched" / "no cluster chosen".
pub const NONE: &str = "none";

/// Borrowed-string maps: a lookup with `&str` never allocates.
type By<V> = HashMap<Box<str>, V>;
type Codes = HashMap<u16, Counter>;
/// code → grpc_status.
type GrpcCodes = HashMap<u16, By<Counter>>;

#[derive(Default)]
pub struct Stats {
    /// listener → route → cluster → code.
    requests: RefCell<By<By<By<Codes>>>>,
    /// listener → route → cluster → code → grpc_status (gRPC responses only).
    grpc: RefCell<By<By<By<GrpcCodes>>>>,
    /// listener → route.
    durations: RefCell<By<By<Histogram>>>,
    listeners: RefCell<By<ListenerStats>>,
    clusters: RefCell<By<ClusterStats>>,
    /// listener → outcome; only listeners with `original_dst` ever get an entry.
    original_dst: RefCell<By<By<Counter>>>,
    worker: Option<WorkerStats>,
    /// `io_uring` or `epoll`: the last label of every series this worker records, so that
    /// split mode (both kinds in one process) can be told apart; bounded to those two values.
    runtime: &'static str,
    /// The same requests and loop lag again, in HDR histograms for the runtime comparison.
    pub meter: super::meter::Meter,
}

#[derive(Clone)]
pub struct ListenerStats {
    pub opened: Counter,
    pub closed: Counter,
    pub active: Gauge,
    pub received: Counter,
    pub sent: Counter,
}

#[derive(Clone)]
pub struct ClusterStats {
    pub connect_errors: Counter,
    pub timeouts: Counter,
}

struct WorkerStats {
    lag: Histogram,
    connections: Gauge,
}

impl Stats {
    /// The handles of worker `worker`, which runs `runtime` (`io_uring` or `epoll`).
    pub fn new(worker: usize, runtime: &'static str) -> Self {
        let w = worker.to_string();
        Self {
            worker: Some(WorkerStats {
                lag: histogram!("ringside_worker_event_loop_lag_seconds",
                    "worker" => w.clone(), "runtime" => runtime),
                connections: gauge!("ringside_worker_connections",
                    "worker" => w, "runtime" => runtime),
            }),
            runtime,
            ..Self::default()
        }
    }

    pub fn request(&self, listener: &str, route: &str, cluster: &str, code: u16, took: Duration) {
        let mut m = self.requests.borrow_mut();
        let codes = entry(entry(entry(&mut m, listener), route), cluster);
        codes
            .entry(code)
            .or_insert_with(|| {
                counter!("ringside_requests_total",
                    "listener" => listener.to_owned(), "route" => route.to_owned(),
                    "cluster" => cluster.to_owned(), "code" => code.to_string(),
                    "runtime" => self.runtime)
            })
            .increment(1);
        self.meter.request(code, took);
        self.duration(listener, route, took);
    }

    /// A gRPC request: the same series family as [`Stats::request`], with `grpc_status`.
    pub fn grpc_request(
        &self,
        listener: &str,
        route: &str,
        cluster: &str,
        code: u16,
        grpc_status: &str,
        took: Duration,
    ) {
        let mut m = self.grpc.borrow_mut();
        let codes = entry(entry(entry(&mut m, listener), route), cluster);
        let by_status = codes.entry(code).or_default();
        match by_status.get(grpc_status) {
            Some(c) => c.increment(1),
            None => {
                let c = counter!("ringside_requests_total",
                    "listener" => listener.to_owned(), "route" => route.to_owned(),
                    "cluster" => cluster.to_owned(), "code" => code.to_string(),
                    "grpc_status" => grpc_status.to_owned(), "runtime" => self.runtime);
                c.increment(1);
                by_status.insert(grpc_status.into(), c);
            }
        }
        self.meter.request(code, took);
        self.duration(listener, route, took);
    }

    fn duration(&self, listener: &str, route: &str, took: Duration) {
        let mut d = self.durations.borrow_mut();
        let routes = entry(&mut d, listener);
        match routes.get(route) {
            Some(h) => h.record(took.as_secs_f64()),
            None => {
                let h = histogram!("ringside_request_duration_seconds",
                    "listener" => listener.to_owned(), "route" => route.to_owned(),
                    "runtime" => self.runtime);
                h.record(took.as_secs_f64());
                routes.insert(route.into(), h);
            }
        }
    }

    pub fn listener(&self, name: &str) -> ListenerStats {
        let mut m = self.listeners.borrow_mut();
        if let Some(s) = m.get(name) {
            return s.clone();
        }
        let l = name.to_owned();
        let rt = self.runtime;
        let s = ListenerStats {
            opened: counter!("ringside_downstream_connections_opened_total",
                "listener" => l.clone(), "runtime" => rt),
            closed: counter!("ringside_downstream_connections_closed_total",
                "listener" => l.clone(), "runtime" => rt),
            active: gauge!("ringside_downstream_connections_active",
                "listener" => l.clone(), "runtime" => rt),
            received: counter!("ringside_downstream_received_bytes_total",
                "listener" => l.clone(), "runtime" => rt),
            sent: counter!("ringside_downstream_sent_bytes_total", "listener" => l, "runtime" => rt),
        };
        m.insert(name.into(), s.clone());
        s
    }

    pub fn cluster(&self, name: &str) -> ClusterStats {
        let mut m = self.clusters.borrow_mut();
        if let Some(s) = m.get(name) {
            return s.clone();
        }
        let c = name.to_owned();
        let s = ClusterStats {
            connect_errors: counter!("ringside_upstream_connect_errors_total", "cluster" => c.clone()),
            timeouts: counter!("ringside_upstream_timeouts_total", "cluster" => c),
        };
        m.insert(name.into(), s.clone());
        s
    }

    /// One intercepted connection on `listener`: `outcome` is `cluster`, `passthrough` or
    /// `refused` (a fixed set, so the labels stay bounded).
    pub fn original_dst(&self, listener: &str, outcome: &'static str) {
        let mut m = self.original_dst.borrow_mut();
        let by = entry(&mut m, listener);
        match by.get(outcome) {
            Some(c) => c.increment(1),
            None => {
                let c = counter!("ringside_original_dst_connections_total",
                    "listener" => listener.to_owned(), "outcome" => outcome);
                c.increment(1);
                by.insert(outcome.into(), c);
            }
        }
    }

    pub fn loop_lag(&self, lag: Duration) {
        self.meter.lag(lag);
        if let Some(w) = &self.worker {
            w.lag.record(lag.as_secs_f64());
        }
    }

    pub fn worker_connections(&self, delta: f64) {
        if let Some(w) = &self.worker {
            w.connections.increment(delta);
        }
    }
}

/// The inner map for `key`, created on first use. Borrowed lookups never allocate.
fn entry<'m, V: Default>(m: &'m mut HashMap<Box<str>, V>, key: &str) -> &'m mut V {
    m.entry_ref(key).or_default()
}
