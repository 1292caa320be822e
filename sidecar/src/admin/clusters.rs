//! `GET /clusters`: each cluster's live endpoints, where they came from and their state.
//! The same addresses appear in `/config` under `live_endpoints`.

use control::snapshot::{ClusterSpec, Snapshot};
use serde_json::{json, Value};

use super::http::Response;
use super::state::State;
use crate::core::up::breaker::Kind;

/// The endpoints a new request to `c` chooses from now: the literals, plus what its DNS
/// names last resolved to.
fn live(s: &State, c: &ClusterSpec) -> Vec<std::net::SocketAddr> {
    if c.names.is_empty() {
        return c.endpoints.clone();
    }
    s.discovery
        .for_spec(c)
        .map_or_else(|| c.endpoints.clone(), |r| r.addrs.clone())
}

/// Cluster name → its live `IP:port` list, for `/config`.
pub fn live_endpoints(s: &State, snap: &Snapshot) -> Value {
    snap.clusters
        .iter()
        .map(|c| {
            let addrs: Vec<String> = live(s, c).iter().map(|a| a.to_string()).collect();
            (c.name.clone(), json!(addrs))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn clusters(s: &State) -> Response {
    let snap = s.config.load();
    let out: Vec<Value> = snap
        .clusters
        .iter()
        .map(|c| {
            let resolved = if c.names.is_empty() {
                None
            } else {
                s.discovery.for_spec(c)
            };
            let endpoints: Vec<Value> = live(s, c)
                .iter()
                .map(|a| {
                    let source = resolved
                        .as_ref()
                        .and_then(|r| r.per_name.iter().find(|n| n.addresses.contains(a)))
                        .map_or_else(|| "static".to_string(), |n| format!("dns {}", n.name));
                    let health = s.discovery.health.peek(&c.name, *a);
                    let ejected_for = health.as_ref().and_then(|h| h.ejected_for());
                    json!({
                        "address": a.to_string(),
                        "source": source,
                        "state": if ejected_for.is_some() { "ejected" } else { "active" },
                        "ejected_for_ms": ejected_for.map(|d| d.as_millis() as u64),
                        "ejections": health.map_or(0, |h| h.ejections()),
                    })
                })
                .collect();
            let breaker = s.discovery.breaker(&c.name);
            let in_flight = |k| breaker.in_flight(k);
            json!({
                "name": c.name,
                "lb": c.lb,
                "protocol": c.protocol,
                "endpoints": endpoints,
                "dns": resolved.as_ref().map(|r| &r.per_name),
                "limits": c.limits,
                // Counted only for the limits that are set.
                "in_flight": {
                    "connections": in_flight(Kind::Connection),
                    "requests": in_flight(Kind::Request),
                    "retries": in_flight(Kind::Retry),
                },
                "retry": c.retry,
                "retry_budget": c.retry_budget,
                "outlier": c.outlier,
            })
        })
        .collect();
    let body = json!({ "clusters": out });
    Response::json(200, format!("{body:#}\n"))
}
