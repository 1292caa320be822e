//! Resilience settings of a cluster: outlier ejection (passive health) and circuit breaking
//! (`limits`). Kept apart from the core model so each feature's schema, defaults and decoding
//! sit together.

use crate::node::{At, Sink};
use crate::yaml::Node;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Passive health checking (DESIGN.md §4 `outlier`): an endpoint that fails
/// `consecutive_5xx` times in a row is left out of balancing for `base_ejection` × the number
/// of times it was ejected (at most `max_ejection`), never more than `max_ejection_percent`
/// of the cluster at once, though one endpoint may always be ejected (as Envoy does).
/// Failures: 5xx responses, connect failures, and upstreams that reset, closed or timed out
/// before answering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outlier {
    /// Failures in a row that eject an endpoint; 0 turns ejection off.
    pub consecutive_5xx: u32,
    #[serde(with = "crate::duration::serde_str")]
    pub base_ejection: Duration,
    #[serde(with = "crate::duration::serde_str")]
    pub max_ejection: Duration,
    /// 0..=100.
    pub max_ejection_percent: u32,
}

/// Envoy's defaults: 5 in a row, 30 s, 10 % (and at least one endpoint), 300 s at most.
impl Default for Outlier {
    fn default() -> Self {
        Outlier {
            consecutive_5xx: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

const OUTLIER_FIELDS: &[&str] = &[
    "consecutive_5xx",
    "base_ejection",
    "max_ejection",
    "max_ejection_percent",
];

/// Decodes a cluster's `outlier` mapping; unset keys keep their defaults. `None` after a
/// reported problem.
pub(crate) fn decode_outlier(node: &Node, sink: &mut Sink<'_>) -> Option<At<Outlier>> {
    let f = sink.mapping(node, "outlier", OUTLIER_FIELDS)?;
    let mut out = Outlier::default();
    let mut ok = true;
    if let Some(n) = f.get("consecutive_5xx") {
        match sink
            .uint(n, "consecutive_5xx")
            .map(|v| u32::try_from(v.value))
        {
            Some(Ok(v)) => out.consecutive_5xx = v,
            Some(Err(_)) => {
                sink.report(crate::node::pos_of(n), "consecutive_5xx is too large");
                ok = false;
            }
            None => ok = false,
        }
    }
    for (key, slot) in [
        ("base_ejection", &mut out.base_ejection),
        ("max_ejection", &mut out.max_ejection),
    ] {
        if let Some(n) = f.get(key) {
            match sink.duration(n, key) {
                Some(d) => *slot = d.value,
                None => ok = false,
            }
        }
    }
    if let Some(n) = f.get("max_ejection_percent") {
        match sink.uint(n, "max_ejection_percent") {
            Some(v) if v.value <= 100 => out.max_ejection_percent = v.value as u32,
            Some(v) => {
                sink.report(v.pos, "max_ejection_percent must be from 0 to 100");
                ok = false;
            }
            None => ok = false,
        }
    }
    if out.max_ejection < out.base_ejection {
        sink.report(
            crate::node::pos_of(node),
            "outlier: max_ejection must be at least base_ejection",
        );
        ok = false;
    }
    ok.then(|| At {
        value: out,
        pos: crate::node::pos_of(node),
    })
}

/// Circuit breaking (DESIGN.md §4 cluster `limits`): over a limit a request fails fast (503,
/// `x-ringside-error: overflow`; gRPC UNAVAILABLE) instead of queueing behind a struggling
/// upstream. Counted across all workers. Unset: no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterLimits {
    /// Upstream connections open to the cluster at once (HTTP/1.1 in use and pooled, HTTP/2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Requests in flight to the cluster at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// Retries in flight at once (the exchange's safe replays and a policy's retries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

const LIMIT_FIELDS: &[&str] = &["max_connections", "max_requests", "max_retries"];

/// Decodes a cluster's `limits` mapping. `None` after a reported problem.
pub(crate) fn decode_limits(node: &Node, sink: &mut Sink<'_>) -> Option<At<ClusterLimits>> {
    let f = sink.mapping(node, "cluster limits", LIMIT_FIELDS)?;
    let mut out = ClusterLimits::default();
    let mut ok = true;
    for (key, slot) in [
        ("max_connections", &mut out.max_connections),
        ("max_requests", &mut out.max_requests),
        ("max_retries", &mut out.max_retries),
    ] {
        if let Some(n) = f.get(key) {
            match sink.uint(n, key).map(|v| (u32::try_from(v.value), v.pos)) {
                // A zero connection or request limit refuses every request: a typo's outage,
                // not a setting. `max_retries: 0` is a setting (no retries at all).
                Some((Ok(0), pos)) if key != "max_retries" => {
                    sink.report(pos, format!("{key} must be greater than zero"));
                    ok = false;
                }
                Some((Ok(v), _)) => *slot = Some(v),
                Some((Err(_), pos)) => {
                    sink.report(pos, format!("{key} is too large"));
                    ok = false;
                }
                None => ok = false,
            }
        }
    }
    ok.then(|| At {
        value: out,
        pos: crate::node::pos_of(node),
    })
}
