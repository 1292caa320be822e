//! The config as written, with a position on every value, decoded from YAML
//! nodes without stopping at the first problem.
//!
//! A field is `None` when it was absent or could not be decoded (the problem
//! is then already reported); validation skips checks whose inputs are `None`
//! so one mistake does not cascade into several.

use crate::model::{self, ListenerProtocol};
use crate::node::{At, Pos, Sink};
use crate::raw_cluster::cluster;
pub(crate) use crate::raw_cluster::RawCluster;
use crate::rules;
use crate::yaml::Node;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

pub(crate) struct RawConfig {
    pub admin_address: Option<At<SocketAddr>>,
    pub listeners: Option<Vec<RawListener>>,
    pub clusters: Option<Vec<RawCluster>>,
    pub identity: Option<At<crate::tls::Identity>>,
}

pub(crate) struct RawListener {
    pub pos: Pos,
    pub name: Option<At<String>>,
    pub address: Option<At<SocketAddr>>,
    pub protocol: Option<At<ListenerProtocol>>,
    pub routes: Option<At<Vec<RawRoute>>>,
    pub cluster: Option<At<String>>,
    pub original_dst: Option<At<bool>>,
    pub destinations: Option<At<Vec<RawDestination>>>,
    pub header_read: Option<At<Duration>>,
    pub idle: Option<At<Duration>>,
    pub send_stall: Option<At<Duration>>,
    pub body_read: Option<At<Duration>>,
    pub limits: Option<At<RawLimits>>,
    pub path_normalization: Option<At<RawPathNormalization>>,
    pub tls: Option<At<crate::tls::ListenerTls>>,
    pub authz: Option<At<crate::tls::Authz>>,
    /// `routes`/`cluster` were written, even if unreadable: keeps
    /// "needs `routes`" from piling onto a type error.
    pub routes_written: bool,
    pub cluster_written: bool,
    pub original_dst_written: bool,
}

pub(crate) struct RawDestination {
    pub address: Option<At<SocketAddr>>,
    pub cluster: Option<At<String>>,
}

pub(crate) struct RawLimits {
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub max_connections: Option<u32>,
    pub max_requests: Option<u32>,
    pub min_body_rate: Option<u32>,
    /// The first key written that applies only to http listeners, and where.
    pub http_only: Option<At<&'static str>>,
}

pub(crate) struct RawPathNormalization {
    pub enabled: Option<bool>,
    pub merge_slashes: Option<bool>,
    pub escaped_slashes: Option<crate::model::EscapedSlashes>,
}

pub(crate) struct RawRoute {
    pub name: Option<At<String>>,
    pub matcher: RawMatch,
    pub backends: Option<At<Vec<RawBackend>>>,
    pub timeout: Option<At<Duration>>,
    pub authz: Option<At<crate::tls::Authz>>,
    pub rate_limit: Option<At<crate::rate_limit::RateLimitConfig>>,
    pub retry: Option<At<crate::retry::RetryPolicy>>,
}

#[derive(Default)]
pub(crate) struct RawMatch {
    pub path_prefix: Option<At<String>>,
    pub path: Option<At<String>>,
    pub host: Option<At<String>>,
    pub method: Option<At<String>>,
    pub headers: Vec<(At<String>, String)>,
}

pub(crate) struct RawBackend {
    pub cluster: Option<At<String>>,
    pub weight: Option<At<u32>>,
    /// False when `weight` was written but invalid, so the total is unknown.
    pub weight_ok: bool,
}

pub(crate) fn decode(root: &Node, sink: &mut Sink) -> RawConfig {
    let Some(f) = sink.mapping(
        root,
        "the config",
        &["admin", "listeners", "clusters", "identity"],
    ) else {
        return RawConfig {
            admin_address: None,
            listeners: None,
            clusters: None,
            identity: None,
        };
    };
    let identity_node = f.get("identity");
    let identity = identity_node.and_then(|n| crate::tls::raw::identity(n, sink));
    // Written but unreadable still counts: `identity: spiffe` below is not an error on top.
    let has_identity = identity_node.is_some();
    let admin_address = f
        .get("admin")
        .and_then(|n| sink.mapping(n, "admin", &["address"]))
        .and_then(|a| a.get("address"))
        .and_then(|n| sink.socket_addr(n, "admin address"));
    let listeners = f
        .required(sink, "listeners", "the config")
        .and_then(|n| sink.list(n, "listeners"))
        .map(|items| {
            items
                .iter()
                .map(|n| listener(n, has_identity, sink))
                .collect()
        });
    let clusters = f
        .required(sink, "clusters", "the config")
        .and_then(|n| sink.list(n, "clusters"))
        .map(|items| {
            items
                .iter()
                .map(|n| cluster(n, has_identity, sink))
                .collect()
        });
    RawConfig {
        admin_address,
        listeners,
        clusters,
        identity,
    }
}

const LISTENER_FIELDS: &[&str] = &[
    "name",
    "address",
    "protocol",
    "routes",
    "cluster",
    "original_dst",
    "destinations",
    "timeouts",
    "limits",
    "path_normalization",
    "tls",
    "authz",
];

fn listener(node: &Node, has_identity: bool, sink: &mut Sink) -> RawListener {
    let mut out = RawListener {
        pos: crate::node::pos_of(node),
        name: None,
        address: None,
        protocol: None,
        routes: None,
        cluster: None,
        original_dst: None,
        destinations: None,
        header_read: None,
        idle: None,
        send_stall: None,
        body_read: None,
        limits: None,
        path_normalization: None,
        tls: None,
        authz: None,
        routes_written: false,
        cluster_written: false,
        original_dst_written: false,
    };
    let Some(f) = sink.mapping(node, "listener", LISTENER_FIELDS) else {
        return out;
    };
    out.routes_written = f.get("routes").is_some();
    out.cluster_written = f.get("cluster").is_some();
    out.original_dst_written = f.get("original_dst").is_some();
    out.name = f
        .required(sink, "name", "listener")
        .and_then(|n| sink.string(n, "listener name"));
    out.address = f
        .required(sink, "address", "listener")
        .and_then(|n| sink.socket_addr(n, "listener address"));
    out.protocol = f
        .required(sink, "protocol", "listener")
        .and_then(|n| sink.one_of(n, "listener protocol", ListenerProtocol::NAMES));
    out.routes = f.get("routes").and_then(|n| {
        let items = sink.list(n, "routes")?;
        Some(At {
            value: items.iter().map(|n| route(n, sink)).collect(),
            pos: crate::node::pos_of(n),
        })
    });
    out.cluster = f
        .get("cluster")
        .and_then(|n| sink.string(n, "listener cluster"));
    out.original_dst = f
        .get("original_dst")
        .and_then(|n| sink.boolean(n, "original_dst"));
    out.destinations = f.get("destinations").and_then(|n| {
        let items = sink.list(n, "destinations")?;
        Some(At {
            value: items.iter().map(|n| destination(n, sink)).collect(),
            pos: crate::node::pos_of(n),
        })
    });
    if let Some(t) = f.get("timeouts").and_then(|n| {
        sink.mapping(
            n,
            "listener timeouts",
            &["header_read", "idle", "send_stall", "body_read"],
        )
    }) {
        out.header_read = t
            .get("header_read")
            .and_then(|n| sink.duration(n, "header_read timeout"));
        out.idle = t.get("idle").and_then(|n| sink.duration(n, "idle timeout"));
        out.send_stall = t
            .get("send_stall")
            .and_then(|n| sink.duration(n, "send_stall timeout"));
        out.body_read = t
            .get("body_read")
            .and_then(|n| sink.duration(n, "body_read timeout"));
    }
    out.limits = f.get("limits").and_then(|n| {
        const KEYS: [&str; 5] = [
            "max_header_bytes",
            "max_headers",
            "max_connections",
            "max_requests",
            "min_body_rate",
        ];
        let l = sink.mapping(n, "listener limits", &KEYS)?;
        let mut limit = |key: &str| {
            let v = sink.uint(l.get(key)?, key)?;
            match usize::try_from(v.value) {
                Ok(0) | Err(_) => {
                    sink.report(v.pos, format!("{key} must be greater than zero"));
                    None
                }
                Ok(n) => Some(n),
            }
        };
        let max_header_bytes = limit("max_header_bytes");
        let max_headers = limit("max_headers");
        let mut shed = |key: &str| {
            let v = sink.uint(l.get(key)?, key)?;
            match u32::try_from(v.value) {
                Ok(0) => {
                    sink.report(v.pos, format!("{key} must be greater than zero"));
                    None
                }
                Ok(n) => Some(n),
                Err(_) => {
                    sink.report(v.pos, format!("{key} must be at most {}", u32::MAX));
                    None
                }
            }
        };
        let max_connections = shed("max_connections");
        let max_requests = shed("max_requests");
        let min_body_rate = shed("min_body_rate");
        let http_only = [
            "max_header_bytes",
            "max_headers",
            "max_requests",
            "min_body_rate",
        ]
        .into_iter()
        .find_map(|k| {
            l.get(k).map(|n| At {
                value: k,
                pos: crate::node::pos_of(n),
            })
        });
        let value = RawLimits {
            max_header_bytes,
            max_headers,
            max_connections,
            max_requests,
            min_body_rate,
            http_only,
        };
        Some(At { value, pos: l.pos })
    });
    out.path_normalization = f.get("path_normalization").and_then(|n| {
        let keys = ["enabled", "merge_slashes", "escaped_slashes"];
        let p = sink.mapping(n, "path_normalization", &keys)?;
        let mut flag = |key: &str| Some(sink.boolean(p.get(key)?, key)?.value);
        let enabled = flag("enabled");
        let merge_slashes = flag("merge_slashes");
        let escaped_slashes = p
            .get("escaped_slashes")
            .and_then(|n| sink.one_of(n, "escaped_slashes", crate::model::EscapedSlashes::NAMES))
            .map(|a| a.value);
        let value = RawPathNormalization {
            enabled,
            merge_slashes,
            escaped_slashes,
        };
        Some(At { value, pos: p.pos })
    });
    out.tls = f.get("tls").and_then(|n| {
        let protocol = out.protocol.as_ref().map(|p| p.value);
        crate::tls::raw::listener_tls(n, protocol, has_identity, sink)
    });
    out.authz = f.get("authz").and_then(|n| crate::tls::raw::authz(n, sink));
    if f.get("tls").is_none() || out.tls.is_some() {
        // An unreadable `tls` was reported already; "needs mutual TLS" would pile on.
        let route_authz = out
            .routes
            .iter()
            .flat_map(|r| r.value.iter())
            .filter_map(|r| r.authz.as_ref().map(|a| a.pos));
        let positions = out.authz.iter().map(|a| a.pos).chain(route_authz);
        crate::tls::raw::check_authz_needs_mtls(out.tls.as_ref(), positions, sink);
    }
    out
}

fn destination(node: &Node, sink: &mut Sink) -> RawDestination {
    let mut out = RawDestination {
        address: None,
        cluster: None,
    };
    let Some(f) = sink.mapping(node, "destination", &["address", "cluster"]) else {
        return out;
    };
    out.address = f
        .required(sink, "address", "destination")
        .and_then(|n| sink.socket_addr(n, "destination address"));
    out.cluster = f
        .required(sink, "cluster", "destination")
        .and_then(|n| sink.string(n, "destination cluster"));
    out
}

fn route(node: &Node, sink: &mut Sink) -> RawRoute {
    let mut out = RawRoute {
        name: None,
        matcher: RawMatch::default(),
        backends: None,
        timeout: None,
        authz: None,
        rate_limit: None,
        retry: None,
    };
    let Some(f) = sink.mapping(
        node,
        "route",
        &[
            "name",
            "match",
            "backends",
            "timeout",
            "authz",
            "rate_limit",
            "retry",
        ],
    ) else {
        return out;
    };
    out.name = f
        .required(sink, "name", "route")
        .and_then(|n| sink.string(n, "route name"));
    if let Some(m) = f.get("match") {
        out.matcher = route_match(m, sink);
    }
    out.backends = f.required(sink, "backends", "route").and_then(|n| {
        let items = sink.list(n, "backends")?;
        Some(At {
            value: items.iter().map(|n| backend(n, sink)).collect(),
            pos: crate::node::pos_of(n),
        })
    });
    out.timeout = f
        .get("timeout")
        .and_then(|n| sink.duration(n, "route timeout"));
    out.authz = f.get("authz").and_then(|n| crate::tls::raw::authz(n, sink));
    out.rate_limit = f
        .get("rate_limit")
        .and_then(|n| crate::rate_limit::decode(n, sink));
    out.retry = f
        .get("retry")
        .and_then(|n| crate::retry::decode_retry(n, sink));
    out
}

fn route_match(node: &Node, sink: &mut Sink) -> RawMatch {
    let mut out = RawMatch::default();
    let fields = ["path_prefix", "path", "host", "method", "headers"];
    let Some(f) = sink.mapping(node, "route match", &fields) else {
        return out;
    };
    let mut checked = |key: &str, rule: fn(&str) -> Result<(), String>| {
        let value = sink.string(f.get(key)?, key)?;
        match rule(&value.value) {
            Ok(()) => Some(value),
            Err(reason) => {
                sink.report(value.pos, reason);
                None
            }
        }
    };
    out.path_prefix = checked("path_prefix", rules::path);
    out.path = checked("path", rules::path);
    out.host = checked("host", rules::host);
    out.method = checked("method", rules::method);
    out.headers = headers(f.get("headers"), sink);
    out
}

fn headers(node: Option<&Node>, sink: &mut Sink) -> Vec<(At<String>, String)> {
    let Some(node) = node else {
        return Vec::new();
    };
    let Some(map) = node.as_mapping() else {
        // Reuse the standard type error wording.
        let _ = sink.mapping(node, "match headers", &[]);
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
    for (key, value) in map.iter() {
        let name = At {
            value: key.as_str().to_string(),
            pos: crate::node::key_pos(key),
        };
        let Some(value) = sink.string(value, &format!("header `{}`", name.value)) else {
            continue;
        };
        if let Err(reason) = rules::header_name(&name.value) {
            sink.report(name.pos, reason);
            continue;
        }
        let lower = name.value.to_ascii_lowercase();
        if let Some(first) = seen.get(&lower) {
            sink.report(
                name.pos,
                format!(
                    "duplicate header `{}` (header names are case-insensitive; first at line {})",
                    name.value, first.line
                ),
            );
            continue;
        }
        seen.insert(lower, name.pos);
        out.push((name, value.value));
    }
    out
}

fn backend(node: &Node, sink: &mut Sink) -> RawBackend {
    let mut out = RawBackend {
        cluster: None,
        weight: None,
        weight_ok: true,
    };
    let Some(f) = sink.mapping(node, "backend", &["cluster", "weight"]) else {
        return out;
    };
    out.cluster = f
        .required(sink, "cluster", "backend")
        .and_then(|n| sink.string(n, "backend cluster"));
    if let Some(n) = f.get("weight") {
        out.weight = sink
            .uint(n, "weight")
            .and_then(|w| match u32::try_from(w.value) {
                Ok(value) if value <= model::MAX_WEIGHT => Some(At { value, pos: w.pos }),
                _ => {
                    sink.report(
                        w.pos,
                        format!(
                            "weight {} is over the maximum of {}",
                            w.value,
                            model::MAX_WEIGHT
                        ),
                    );
                    None
                }
            });
        out.weight_ok = out.weight.is_some();
    }
    out
}
