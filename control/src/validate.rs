//! Rules that span several values: references, duplicates and per-protocol
//! requirements. Single values were already checked while decoding.

use crate::model::ListenerProtocol;
use crate::node::{At, Pos, Sink};
use crate::raw::{RawCluster, RawConfig, RawDestination, RawListener, RawRoute};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

pub(crate) fn check(config: &RawConfig, sink: &mut Sink) {
    let clusters = config.clusters.as_deref().unwrap_or_default();
    check_clusters(clusters, sink);
    let known = KnownClusters::new(config.clusters.as_deref());
    if let Some(listeners) = &config.listeners {
        check_listeners(listeners, &known, sink);
    }
}

/// Cluster names for reference checks. When some cluster's name could not be
/// read, a reference might point at it, so "unknown cluster" is not reported.
struct KnownClusters<'a> {
    /// In config order, for the message.
    names: Vec<&'a str>,
    /// The same, for lookups: a mesh config has thousands of routes over a thousand clusters.
    set: HashSet<&'a str>,
    complete: bool,
}

impl<'a> KnownClusters<'a> {
    fn new(clusters: Option<&'a [RawCluster]>) -> Self {
        let Some(clusters) = clusters else {
            return KnownClusters {
                names: Vec::new(),
                set: HashSet::new(),
                complete: false,
            };
        };
        let names: Vec<&str> = clusters
            .iter()
            .filter_map(|c| c.name.as_ref().map(|n| n.value.as_str()))
            .collect();
        KnownClusters {
            complete: names.len() == clusters.len(),
            set: names.iter().copied().collect(),
            names,
        }
    }

    fn check(&self, name: &At<String>, sink: &mut Sink) {
        if !self.complete || self.set.contains(name.value.as_str()) {
            return;
        }
        let defined = if self.names.is_empty() {
            "none".to_string()
        } else {
            self.names.join(", ")
        };
        sink.report(
            name.pos,
            format!("unknown cluster `{}` (defined: {defined})", name.value),
        );
    }
}

/// Reports the second and later uses of a name, pointing back at the first.
fn check_unique<'a>(names: impl Iterator<Item = &'a At<String>>, what: &str, sink: &mut Sink) {
    let mut first: HashMap<&str, Pos> = HashMap::new();
    for name in names {
        match first.get(name.value.as_str()) {
            Some(at) => sink.report(
                name.pos,
                format!(
                    "duplicate {what} `{}` (first defined at line {})",
                    name.value, at.line
                ),
            ),
            None => {
                first.insert(&name.value, name.pos);
            }
        }
    }
}

fn check_clusters(clusters: &[RawCluster], sink: &mut Sink) {
    check_unique(
        clusters.iter().filter_map(|c| c.name.as_ref()),
        "cluster name",
        sink,
    );
    for cluster in clusters {
        if let Some(endpoints) = &cluster.endpoints {
            if endpoints.value.is_empty() {
                let name = cluster.name.as_ref().map_or("", |n| n.value.as_str());
                sink.report(
                    endpoints.pos,
                    format!(
                        "cluster `{name}` has no endpoints; list at least one IP:port or host:port"
                    ),
                );
            }
        }
    }
}

fn check_listeners(listeners: &[RawListener], known: &KnownClusters, sink: &mut Sink) {
    check_unique(
        listeners.iter().filter_map(|l| l.name.as_ref()),
        "listener name",
        sink,
    );
    check_addresses(listeners, sink);
    for listener in listeners {
        match listener.protocol.as_ref().map(|p| p.value) {
            Some(ListenerProtocol::Http) => check_http(listener, known, sink),
            Some(ListenerProtocol::Tcp) => check_tcp(listener, known, sink),
            None => {}
        }
    }
}

/// Two listeners conflict on the same IP:port, and also when one binds the
/// unspecified address (0.0.0.0 or ::) on the same port: bind would fail.
fn check_addresses(listeners: &[RawListener], sink: &mut Sink) {
    let mut seen: Vec<&At<SocketAddr>> = Vec::new();
    for address in listeners.iter().filter_map(|l| l.address.as_ref()) {
        let clash = seen.iter().find(|s| conflicts(s.value, address.value));
        match clash {
            Some(first) if first.value == address.value => sink.report(
                address.pos,
                format!(
                    "duplicate listener address `{}` (first used at line {})",
                    address.value, first.pos.line
                ),
            ),
            Some(first) => sink.report(
                address.pos,
                format!(
                    "listener address `{}` overlaps `{}` (line {}) on the same port",
                    address.value, first.value, first.pos.line
                ),
            ),
            None => seen.push(address),
        }
    }
}

/// Port 0 asks the kernel for any free port, so it never clashes.
fn conflicts(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn listener_name(listener: &RawListener) -> &str {
    listener.name.as_ref().map_or("", |n| n.value.as_str())
}

fn check_http(listener: &RawListener, known: &KnownClusters, sink: &mut Sink) {
    let name = listener_name(listener);
    if let Some(cluster) = &listener.cluster {
        sink.report(
            cluster.pos,
            format!("http listener `{name}` cannot have `cluster`; use `routes` with backends"),
        );
    }
    if let Some(o) = &listener.original_dst {
        sink.report(o.pos, "original_dst applies only to tcp listeners");
    }
    if let Some(d) = &listener.destinations {
        sink.report(d.pos, "destinations apply only to tcp listeners");
    }
    let Some(routes) = &listener.routes else {
        if listener.routes_written {
            return;
        }
        sink.report(
            listener.pos,
            format!("http listener `{name}` needs `routes`"),
        );
        return;
    };
    if routes.value.is_empty() {
        sink.report(
            routes.pos,
            format!("http listener `{name}` needs at least one route"),
        );
    }
    check_unique(
        routes.value.iter().filter_map(|r| r.name.as_ref()),
        "route name",
        sink,
    );
    for route in &routes.value {
        check_route(route, known, sink);
    }
}

fn check_route(route: &RawRoute, known: &KnownClusters, sink: &mut Sink) {
    if let (Some(_), Some(path)) = (&route.matcher.path_prefix, &route.matcher.path) {
        sink.report(
            path.pos,
            "use either `path` (exact) or `path_prefix`, not both",
        );
    }
    let Some(backends) = &route.backends else {
        return;
    };
    let route_name = route.name.as_ref().map_or("", |n| n.value.as_str());
    if backends.value.is_empty() {
        sink.report(
            backends.pos,
            format!("route `{route_name}` needs at least one backend"),
        );
        return;
    }
    for backend in &backends.value {
        if let Some(cluster) = &backend.cluster {
            known.check(cluster, sink);
        }
    }
    let weights_known = backends.value.iter().all(|b| b.weight_ok);
    let total: u64 = backends
        .value
        .iter()
        .map(|b| {
            b.weight
                .as_ref()
                .map_or(u64::from(crate::model::DEFAULT_WEIGHT), |w| {
                    u64::from(w.value)
                })
        })
        .sum();
    if weights_known && total == 0 {
        sink.report(
            backends.pos,
            format!("route `{route_name}` has a total backend weight of 0; give at least one backend a weight above 0"),
        );
    }
}

fn check_tcp(listener: &RawListener, known: &KnownClusters, sink: &mut Sink) {
    let name = listener_name(listener);
    if let Some(routes) = &listener.routes {
        sink.report(
            routes.pos,
            format!("tcp listener `{name}` cannot have routes; use `cluster`"),
        );
    }
    let original_dst = listener.original_dst.as_ref().is_some_and(|o| o.value);
    match &listener.cluster {
        Some(cluster) => known.check(cluster, sink),
        // Without a cluster an intercepting listener passes connections straight through.
        None if listener.cluster_written || original_dst => {}
        // An unreadable `original_dst` was reported already.
        None if listener.original_dst_written && listener.original_dst.is_none() => {}
        None => sink.report(
            listener.pos,
            format!("tcp listener `{name}` needs `cluster` (or `original_dst: true`)"),
        ),
    }
    if let Some(destinations) = &listener.destinations {
        check_destinations(name, destinations, original_dst, known, sink);
    }
    let http_timeouts = [
        ("header_read", listener.header_read.as_ref()),
        ("send_stall", listener.send_stall.as_ref()),
        ("body_read", listener.body_read.as_ref()),
    ];
    for (key, at) in http_timeouts {
        if let Some(at) = at {
            sink.report(at.pos, format!("{key} applies only to http listeners"));
        }
    }
    if let Some(p) = &listener.path_normalization {
        sink.report(p.pos, "path_normalization applies only to http listeners");
    }
    if let Some(key) = listener
        .limits
        .as_ref()
        .and_then(|l| l.value.http_only.as_ref())
    {
        sink.report(
            key.pos,
            format!("limits.{} applies only to http listeners", key.value),
        );
    }
}

fn check_destinations(
    name: &str,
    destinations: &At<Vec<RawDestination>>,
    original_dst: bool,
    known: &KnownClusters,
    sink: &mut Sink,
) {
    if !original_dst {
        sink.report(
            destinations.pos,
            format!("tcp listener `{name}` has `destinations` but not `original_dst: true`; they are matched against the original destination"),
        );
    }
    let mut seen: Vec<&At<SocketAddr>> = Vec::new();
    for d in &destinations.value {
        if let Some(cluster) = &d.cluster {
            known.check(cluster, sink);
        }
        let Some(address) = &d.address else {
            continue;
        };
        if address.value.port() == 0 || address.value.ip().is_unspecified() {
            // A redirected connection always had a concrete IP and port.
            sink.report(
                address.pos,
                format!(
                    "destination `{}` never matches: give the exact IP and port a client connects to",
                    address.value
                ),
            );
        }
        match seen.iter().find(|s| s.value == address.value) {
            Some(first) => sink.report(
                address.pos,
                format!(
                    "duplicate destination `{}` (first at line {})",
                    address.value, first.pos.line
                ),
            ),
            None => seen.push(address),
        }
    }
}
