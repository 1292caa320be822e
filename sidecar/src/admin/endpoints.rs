//! One function per endpoint. Anything that changes state or exposes internals answers only
//! to loopback peers: in a pod, the admin port is reachable on the pod IP for probes.

use std::time::{Instant, UNIX_EPOCH};

use super::http::{Request, Response};
use super::state::State;
use crate::compare;

pub async fn handle(s: &State, r: &Request) -> Response {
    let loopback = r.peer.ip().is_loopback();
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/live") => Response::text(200, "live\n"),
        ("GET", "/ready") => ready(s),
        ("GET", "/config") => config(s),
        ("GET", "/clusters") => super::clusters::clusters(s),
        ("GET", "/metrics") => Response::bytes(
            "text/plain; version=0.0.4; charset=utf-8",
            (s.metrics.render() + &s.cpu.render()).into_bytes(),
        ),
        ("GET", "/runtime") => runtime(s).await,
        ("GET", "/connections") if loopback => connections(s, r).await,
        ("GET", "/log-level") => log_level_get(s),
        ("PUT", "/log-level") if loopback => log_level_put(s, r),
        ("GET", "/debug/pprof/profile") if loopback => {
            super::pprof::cpu(r.query_param("seconds")).await
        }
        ("POST", "/shutdown") if loopback => shutdown(s),
        ("PUT", "/log-level")
        | ("POST", "/shutdown")
        | ("GET", "/debug/pprof/profile" | "/connections") => {
            Response::text(403, "this endpoint answers only requests from loopback\n")
        }
        (
            _,
            "/live" | "/ready" | "/config" | "/clusters" | "/metrics" | "/runtime" | "/log-level"
            | "/shutdown",
        ) => Response::text(405, "method not allowed\n"),
        _ => Response::text(404, "unknown admin endpoint; see docs/admin.md\n"),
    }
}

fn ready(s: &State) -> Response {
    use control::tls::svid;
    if s.lifecycle.is_draining() {
        Response::text(503, "draining\n")
    } else if svid::store().current().is_none() && svid::wanted(&s.config.load().config) {
        // Every `identity: spiffe` handshake would fail: keep traffic away until the
        // Workload API has sent the first SVID.
        Response::text(503, "waiting for the first SPIFFE X.509-SVID\n")
    } else {
        Response::text(200, "ready\n")
    }
}

fn config(s: &State) -> Response {
    let snap = s.config.load();
    let (at, _) = s
        .loaded
        .lock()
        .map(|l| l.clone())
        .unwrap_or((UNIX_EPOCH, String::new()));
    let loaded_at = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let body = serde_json::json!({
        "sha256": snap.sha256,
        "loaded_at_unix": loaded_at,
        "config": &snap.config,
        "live_endpoints": super::clusters::live_endpoints(s, &snap),
    });
    Response::json(200, format!("{body:#}\n"))
}

async fn runtime(s: &State) -> Response {
    let sel = &s.selection;
    let probe = sel.probe.as_ref().map(|p| {
        serde_json::json!({
            "kernel": p.kernel,
            "io_uring_disabled": p.io_uring_disabled,
            "setup": match &p.outcome { Ok(f) => format!("ok, flags {f}"), Err(e) => e.clone() },
            "rejected_flags": p.rejected_flags.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "missing_opcodes": p.missing_opcodes,
        })
    });
    let flags = sel.ring_flags().map(|f| f.to_string());
    let figures = compare::collect::ask(&s.workers_tx, true).await;
    let comparison = match s.comparison.lock() {
        Ok(h) => {
            let now = compare::collect::moment(Instant::now(), h.runtimes(), &figures);
            h.comparison(&now)
        }
        Err(_) => serde_json::Value::Null,
    };
    let body = serde_json::json!({
        "runtime": sel.mode,
        "reason": sel.reason,
        "ring_flags": flags,
        "workers": s.workers,
        "active_connections": s.lifecycle.active_connections(),
        "draining": s.lifecycle.is_draining(),
        "probe": probe,
        "per_worker": per_worker(&figures),
        "comparison": comparison,
    });
    Response::json(200, format!("{body:#}\n"))
}

/// Each worker's figures; a worker that did not answer within a second shows as
/// `{"worker": N, "not_answering": true}`.
fn per_worker(figures: &[Option<crate::core::worker::Figures>]) -> Vec<serde_json::Value> {
    figures
        .iter()
        .enumerate()
        .map(|(i, f)| match f {
            Some(f) => serde_json::to_value(f).unwrap_or_default(),
            None => serde_json::json!({ "worker": i, "not_answering": true }),
        })
        .collect()
}

/// Asks every worker for its connections; a worker that does not answer within a second is
/// reported as such (it is stuck: exactly what an operator needs to know).
async fn connections(s: &State, r: &Request) -> Response {
    let limit = r
        .query_param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000usize)
        .min(10_000);
    let mut all = Vec::new();
    let mut total = 0;
    let mut stuck = Vec::new();
    for (i, w) in s.workers_tx.iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let left = limit.saturating_sub(all.len());
        if w.send(crate::backend::WorkerCmd::ListConnections {
            limit: left,
            reply: tx,
        })
        .is_err()
        {
            stuck.push(i);
            continue;
        }
        match tokio::time::timeout(std::time::Duration::from_secs(1), rx).await {
            Ok(Ok((views, n))) => {
                all.extend(views);
                total += n;
            }
            _ => stuck.push(i),
        }
    }
    let body = serde_json::json!({
        "total": total,
        "shown": all.len(),
        "workers_not_answering": stuck,
        "connections": all,
    });
    Response::json(200, format!("{body:#}\n"))
}

fn log_level_get(s: &State) -> Response {
    match &s.log_level {
        Some(l) => Response::text(200, format!("{}\n", l.get())),
        None => Response::text(404, "logging is not configured\n"),
    }
}

fn log_level_put(s: &State, r: &Request) -> Response {
    let Some(l) = &s.log_level else {
        return Response::text(404, "logging is not configured\n");
    };
    let filter = String::from_utf8_lossy(&r.body).trim().to_owned();
    match l.set(&filter) {
        Ok(()) => {
            tracing::info!(filter = %filter, "log level changed");
            Response::text(200, format!("{filter}\n"))
        }
        Err(e) => Response::text(400, format!("{e}\n")),
    }
}

fn shutdown(s: &State) -> Response {
    let _ = s.shutdown.send(());
    Response::text(202, "draining\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn state() -> (State, tokio::sync::mpsc::UnboundedReceiver<()>) {
        let snap = control::load_str("listeners: []\nclusters: []\n", "t.yaml").expect("config");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let s = State {
            config: Arc::new(arc_swap::ArcSwap::from_pointee(snap)),
            lifecycle: crate::core::lifecycle::Lifecycle::new(),
            selection: crate::backend::select(crate::backend::RuntimeChoice::Epoll, 1, None)
                .expect("epoll"),
            workers: 1,
            log_level: None,
            loaded: std::sync::Mutex::new((std::time::SystemTime::now(), String::new())),
            shutdown: tx,
            metrics: recorder.handle(),
            workers_tx: vec![],
            discovery: crate::discovery::Live::new(),
            cpu: Default::default(),
            comparison: Arc::new(std::sync::Mutex::new(crate::compare::History::new(
                Instant::now(),
                vec!["epoll"],
                "--runtime epoll".into(),
            ))),
        };
        (s, rx)
    }

    fn req(method: &str, path: &str, peer: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            body: vec![],
            peer: peer.parse().expect("peer"),
        }
    }

    #[tokio::test]
    async fn shutdown_answers_only_loopback() {
        let (s, mut rx) = state();
        let r = handle(&s, &req("POST", "/shutdown", "10.1.2.3:5555")).await;
        assert_eq!(r.status, 403);
        assert!(
            rx.try_recv().is_err(),
            "a remote peer must not trigger a drain"
        );
        let r = handle(&s, &req("PUT", "/log-level", "192.0.2.7:5555")).await;
        assert_eq!(r.status, 403);
        let r = handle(&s, &req("POST", "/shutdown", "127.0.0.1:5555")).await;
        assert_eq!(r.status, 202);
        assert!(rx.try_recv().is_ok());
    }

    #[tokio::test]
    async fn probes_answer_anyone_and_ready_turns_503_while_draining() {
        let (s, _rx) = state();
        assert_eq!(
            handle(&s, &req("GET", "/live", "10.1.2.3:1")).await.status,
            200
        );
        assert_eq!(
            handle(&s, &req("GET", "/ready", "10.1.2.3:1")).await.status,
            200
        );
        s.lifecycle.start_drain();
        assert_eq!(
            handle(&s, &req("GET", "/ready", "10.1.2.3:1")).await.status,
            503
        );
        assert_eq!(
            handle(&s, &req("DELETE", "/ready", "127.0.0.1:1"))
                .await
                .status,
            405
        );
        assert_eq!(
            handle(&s, &req("GET", "/nope", "127.0.0.1:1")).await.status,
            404
        );
    }
}
