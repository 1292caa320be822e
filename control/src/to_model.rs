//! Turns a raw config that passed validation into the model, filling defaults.
//!
//! Returns `None` only if a required value is missing, which validation has
//! already reported; the caller treats that as an internal error.

use crate::model::{
    Admin, Backend, Cluster, Config, Destination, Limits, Listener, ListenerProtocol,
    PathNormalization, Route, RouteMatch, Timeouts, WrittenTimeouts, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_IDLE_PER_ENDPOINT, DEFAULT_POOL_IDLE, DEFAULT_ROUTE_TIMEOUT, DEFAULT_WEIGHT,
};
use crate::node::At;
use crate::raw::{RawBackend, RawCluster, RawConfig, RawDestination, RawListener, RawRoute};

fn value<T>(at: Option<At<T>>) -> Option<T> {
    at.map(|a| a.value)
}

pub(crate) fn config(raw: RawConfig) -> Option<Config> {
    let admin = match raw.admin_address {
        Some(address) => Admin {
            address: address.value,
        },
        None => Admin::default(),
    };
    Some(Config {
        identity: value(raw.identity),
        admin,
        listeners: raw
            .listeners?
            .into_iter()
            .map(listener)
            .collect::<Option<_>>()?,
        clusters: raw
            .clusters?
            .into_iter()
            .map(cluster)
            .collect::<Option<_>>()?,
    })
}

fn listener(raw: RawListener) -> Option<Listener> {
    let protocol = raw.protocol?.value;
    let written = raw.limits.map(|l| l.value);
    let defaults = Limits::default();
    let shed = Limits {
        max_connections: written.as_ref().and_then(|l| l.max_connections),
        ..defaults.clone()
    };
    let limits = match protocol {
        ListenerProtocol::Http => Some(Limits {
            max_header_bytes: written
                .as_ref()
                .and_then(|l| l.max_header_bytes)
                .unwrap_or(defaults.max_header_bytes),
            max_headers: written
                .as_ref()
                .and_then(|l| l.max_headers)
                .unwrap_or(defaults.max_headers),
            max_requests: written.as_ref().and_then(|l| l.max_requests),
            min_body_rate: written
                .as_ref()
                .and_then(|l| l.min_body_rate)
                .unwrap_or(defaults.min_body_rate),
            ..shed
        }),
        // Only `max_connections` applies to a tcp listener (validation refuses the others).
        ListenerProtocol::Tcp => shed.max_connections.is_some().then_some(shed),
    };
    let routes = match raw.routes {
        Some(routes) => routes.value.into_iter().map(route).collect::<Option<_>>()?,
        None => Vec::new(),
    };
    Some(Listener {
        name: raw.name?.value,
        address: raw.address?.value,
        protocol,
        routes,
        cluster: value(raw.cluster),
        original_dst: value(raw.original_dst).unwrap_or(false),
        destinations: match raw.destinations {
            Some(d) => d
                .value
                .into_iter()
                .map(destination)
                .collect::<Option<_>>()?,
            None => Vec::new(),
        },
        timeouts: Timeouts::with_defaults(
            protocol,
            WrittenTimeouts {
                header_read: value(raw.header_read),
                idle: value(raw.idle),
                send_stall: value(raw.send_stall),
                body_read: value(raw.body_read),
            },
        ),
        limits,
        path_normalization: match protocol {
            ListenerProtocol::Http => {
                let d = PathNormalization::default();
                let w = raw.path_normalization.map(|p| p.value);
                let w = w.as_ref();
                Some(PathNormalization {
                    enabled: w.and_then(|p| p.enabled).unwrap_or(d.enabled),
                    merge_slashes: w.and_then(|p| p.merge_slashes).unwrap_or(d.merge_slashes),
                    escaped_slashes: w
                        .and_then(|p| p.escaped_slashes)
                        .unwrap_or(d.escaped_slashes),
                })
            }
            ListenerProtocol::Tcp => None,
        },
        tls: value(raw.tls),
        authz: value(raw.authz),
    })
}

fn destination(raw: RawDestination) -> Option<Destination> {
    Some(Destination {
        address: raw.address?.value,
        cluster: raw.cluster?.value,
    })
}

fn route(raw: RawRoute) -> Option<Route> {
    let m = raw.matcher;
    Some(Route {
        name: raw.name?.value,
        matcher: RouteMatch {
            path_prefix: value(m.path_prefix),
            path: value(m.path),
            host: value(m.host),
            method: value(m.method),
            headers: m.headers.into_iter().map(|(k, v)| (k.value, v)).collect(),
        },
        backends: raw
            .backends?
            .value
            .into_iter()
            .map(backend)
            .collect::<Option<_>>()?,
        timeout: value(raw.timeout).unwrap_or(DEFAULT_ROUTE_TIMEOUT),
        authz: value(raw.authz),
        rate_limit: value(raw.rate_limit),
        retry: value(raw.retry),
    })
}

fn backend(raw: RawBackend) -> Option<Backend> {
    Some(Backend {
        cluster: raw.cluster?.value,
        weight: value(raw.weight).unwrap_or(DEFAULT_WEIGHT),
    })
}

fn cluster(raw: RawCluster) -> Option<Cluster> {
    Some(Cluster {
        name: raw.name?.value,
        endpoints: raw.endpoints?.value.into_iter().map(|e| e.value).collect(),
        protocol: value(raw.protocol).unwrap_or_default(),
        lb: value(raw.lb).unwrap_or_default(),
        connect_timeout: value(raw.connect_timeout).unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        idle_timeout: value(raw.idle_timeout).unwrap_or(DEFAULT_POOL_IDLE),
        max_idle_per_endpoint: value(raw.max_idle_per_endpoint)
            .unwrap_or(DEFAULT_MAX_IDLE_PER_ENDPOINT),
        tls: value(raw.tls),
        // Resilience (control/src/resilience.rs).
        outlier: value(raw.outlier).unwrap_or_default(),
        retry: value(raw.retry),
        retry_budget: value(raw.retry_budget).unwrap_or_default(),
        limits: value(raw.limits).unwrap_or_default(),
    })
}
