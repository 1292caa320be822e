//! Decoding one cluster as written (see `raw.rs` for the conventions: a field is `None` when it
//! was absent or could not be decoded, its problem already reported).

use crate::model::{LbPolicy, UpstreamProtocol};
use crate::node::{At, Sink};
use crate::yaml::Node;
use std::time::Duration;

pub(crate) struct RawCluster {
    pub name: Option<At<String>>,
    pub endpoints: Option<At<Vec<At<crate::endpoint::Endpoint>>>>,
    pub protocol: Option<At<UpstreamProtocol>>,
    pub lb: Option<At<LbPolicy>>,
    pub connect_timeout: Option<At<Duration>>,
    pub idle_timeout: Option<At<Duration>>,
    pub max_idle_per_endpoint: Option<At<usize>>,
    pub tls: Option<At<crate::tls::ClusterTls>>,
    // Resilience (control/src/resilience.rs).
    pub outlier: Option<At<crate::resilience::Outlier>>,
    pub retry: Option<At<crate::retry::RetryPolicy>>,
    pub retry_budget: Option<At<crate::retry::RetryBudget>>,
    pub limits: Option<At<crate::resilience::ClusterLimits>>,
}

const CLUSTER_FIELDS: &[&str] = &[
    "name",
    "endpoints",
    "protocol",
    "lb",
    "connect_timeout",
    "idle_timeout",
    "max_idle_per_endpoint",
    "tls",
    // Resilience (control/src/resilience.rs).
    "outlier",
    "retry",
    "retry_budget",
    "limits",
];

pub(crate) fn cluster(node: &Node, has_identity: bool, sink: &mut Sink) -> RawCluster {
    let mut out = RawCluster {
        name: None,
        endpoints: None,
        protocol: None,
        lb: None,
        connect_timeout: None,
        idle_timeout: None,
        max_idle_per_endpoint: None,
        tls: None,
        outlier: None,
        retry: None,
        retry_budget: None,
        limits: None,
    };
    let Some(f) = sink.mapping(node, "cluster", CLUSTER_FIELDS) else {
        return out;
    };
    out.name = f
        .required(sink, "name", "cluster")
        .and_then(|n| sink.string(n, "cluster name"));
    out.endpoints = f.required(sink, "endpoints", "cluster").and_then(|n| {
        let items = sink.list(n, "endpoints")?;
        let addrs: Vec<_> = items
            .iter()
            .filter_map(|e| crate::endpoint::decode(sink, e))
            .collect();
        // A partly bad list is not "empty": keep `None` so validation does
        // not add "no endpoints" on top of the address problems.
        (addrs.len() == items.len()).then(|| At {
            value: addrs,
            pos: crate::node::pos_of(n),
        })
    });
    out.protocol = f
        .get("protocol")
        .and_then(|n| sink.one_of(n, "cluster protocol", UpstreamProtocol::NAMES));
    out.lb = f
        .get("lb")
        .and_then(|n| sink.one_of(n, "lb policy", LbPolicy::NAMES));
    out.connect_timeout = f
        .get("connect_timeout")
        .and_then(|n| sink.duration(n, "connect_timeout"));
    out.idle_timeout = f
        .get("idle_timeout")
        .and_then(|n| sink.duration(n, "idle_timeout"));
    out.max_idle_per_endpoint = f
        .get("max_idle_per_endpoint")
        .and_then(|n| sink.uint(n, "max_idle_per_endpoint"))
        .and_then(|v| match usize::try_from(v.value) {
            Ok(value) => Some(At { value, pos: v.pos }),
            Err(_) => {
                sink.report(v.pos, "max_idle_per_endpoint is too large");
                None
            }
        });
    out.tls = f.get("tls").and_then(|n| {
        let protocol = out.protocol.as_ref().map(|p| p.value);
        crate::tls::raw::cluster_tls(n, protocol, has_identity, sink)
    });
    // Resilience (control/src/resilience.rs).
    out.outlier = f
        .get("outlier")
        .and_then(|n| crate::resilience::decode_outlier(n, sink));
    out.retry = f
        .get("retry")
        .and_then(|n| crate::retry::decode_retry(n, sink));
    out.retry_budget = f
        .get("retry_budget")
        .and_then(|n| crate::retry::decode_budget(n, sink));
    out.limits = f
        .get("limits")
        .and_then(|n| crate::resilience::decode_limits(n, sink));
    out
}
