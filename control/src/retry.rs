//! Retry policy (of a route, or a cluster's default for its routes) and retry budget of a
//! cluster (DESIGN.md §4 `retry`, `retry_budget`). The data plane's one retry rule
//! (`proxy::exchange::may_replay`) decides what is safe; a policy only widens what is retried
//! within that.

use crate::node::{At, Sink};
use crate::yaml::Node;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When a request is retried, beyond the replays of requests an upstream never processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// The connection could not be made (refused, unreachable, timed out).
    ConnectFailure,
    /// HTTP/2 REFUSED_STREAM, or a stream above a GOAWAY's last stream id.
    RefusedStream,
    /// The upstream closed or reset the connection or stream before a response.
    Reset,
    /// A 502, 503 or 504 response, or a reset.
    GatewayError,
    /// Any 5xx response, or a reset.
    #[serde(rename = "5xx")]
    FiveXx,
    /// gRPC CANCELLED (1) in a Trailers-Only response.
    Cancelled,
    /// gRPC DEADLINE_EXCEEDED (4) in a Trailers-Only response.
    DeadlineExceeded,
    /// gRPC RESOURCE_EXHAUSTED (8) in a Trailers-Only response.
    ResourceExhausted,
    /// gRPC INTERNAL (13) in a Trailers-Only response.
    Internal,
    /// gRPC UNAVAILABLE (14) in a Trailers-Only response.
    Unavailable,
    /// This status.
    #[serde(untagged)]
    Status(u16),
}

impl RetryOn {
    const NAMES: &'static [(&'static str, RetryOn)] = &[
        ("connect-failure", RetryOn::ConnectFailure),
        ("refused-stream", RetryOn::RefusedStream),
        ("reset", RetryOn::Reset),
        ("gateway-error", RetryOn::GatewayError),
        ("5xx", RetryOn::FiveXx),
        ("cancelled", RetryOn::Cancelled),
        ("deadline-exceeded", RetryOn::DeadlineExceeded),
        ("resource-exhausted", RetryOn::ResourceExhausted),
        ("internal", RetryOn::Internal),
        ("unavailable", RetryOn::Unavailable),
    ];

    /// Whether a Trailers-Only gRPC response with status `code` is retried under this
    /// condition (gRPC status codes, as Envoy's `retry_on` names them).
    pub fn matches_grpc(self, code: u8) -> bool {
        matches!(
            (self, code),
            (RetryOn::Cancelled, 1)
                | (RetryOn::DeadlineExceeded, 4)
                | (RetryOn::ResourceExhausted, 8)
                | (RetryOn::Internal, 13)
                | (RetryOn::Unavailable, 14)
        )
    }

    /// Whether a response with `status` is retried under this condition.
    pub fn matches_status(self, status: u16) -> bool {
        match self {
            RetryOn::GatewayError => matches!(status, 502..=504),
            RetryOn::FiveXx => (500..600).contains(&status),
            RetryOn::Status(s) => s == status,
            _ => false,
        }
    }

    /// Whether a failure without a response is retried under this condition.
    pub fn matches_failure(self, kind: FailureKind) -> bool {
        matches!(
            (self, kind),
            (RetryOn::ConnectFailure, FailureKind::Connect)
                | (RetryOn::RefusedStream, FailureKind::Refused)
                | (
                    RetryOn::Reset | RetryOn::GatewayError | RetryOn::FiveXx,
                    FailureKind::Reset
                )
                // A per-try timeout is what Ringside would answer 504 for (as Envoy counts it).
                | (
                    RetryOn::GatewayError | RetryOn::FiveXx,
                    FailureKind::AttemptTimeout
                )
        )
    }
}

/// What kind of failure an attempt had, as retry conditions see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    Connect,
    Refused,
    Reset,
    /// The attempt's `per_try_timeout` ran out before a response head.
    AttemptTimeout,
}

/// A retry policy: a route's own, or its cluster's default for the routes that have none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (2 = one retry).
    pub attempts: u32,
    /// The conditions retried on (`retry_on`, Envoy's name; a bare `on` would be read as
    /// `true` by YAML 1.1 tools such as Helm and kubectl).
    pub retry_on: Vec<RetryOn>,
    /// Wait before retry n: a random time up to `backoff × 2^(n-1)` (full jitter), at most 1 s.
    #[serde(with = "crate::duration::serde_str")]
    pub backoff: Duration,
    /// The longest wait for one attempt's response head; `None`: only the route's timeout,
    /// which always bounds the whole request, retries included.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::serde_opt"
    )]
    pub per_try_timeout: Option<Duration>,
}

/// The most attempts a policy may ask for.
pub const MAX_POLICY_ATTEMPTS: u32 = 5;
/// Default base backoff.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(25);

impl RetryPolicy {
    pub fn on_status(&self, status: u16) -> bool {
        self.retry_on.iter().any(|o| o.matches_status(status))
    }

    pub fn on_failure(&self, kind: FailureKind) -> bool {
        self.retry_on.iter().any(|o| o.matches_failure(kind))
    }

    pub fn on_grpc(&self, code: u8) -> bool {
        self.retry_on.iter().any(|o| o.matches_grpc(code))
    }
}

/// How many policy retries a cluster allows (as Linkerd and Finagle do): over the last 10 s,
/// retries may be at most `ratio` × requests plus `min_per_second` × 10, so retries cannot
/// multiply the load of an outage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryBudget {
    /// 0..=1.
    pub ratio: f64,
    pub min_per_second: u32,
}

// `ratio` is validated finite, so equality is total.
impl Eq for RetryBudget {}

/// Linkerd's default: 20 % of requests plus 10 retries a second.
impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            ratio: 0.2,
            min_per_second: 10,
        }
    }
}

const RETRY_FIELDS: &[&str] = &["attempts", "retry_on", "backoff", "per_try_timeout"];
const BUDGET_FIELDS: &[&str] = &["ratio", "min_per_second"];

/// Decodes a cluster's `retry` mapping. `None` after a reported problem.
pub(crate) fn decode_retry(node: &Node, sink: &mut Sink<'_>) -> Option<At<RetryPolicy>> {
    let pos = crate::node::pos_of(node);
    let f = sink.mapping(node, "retry", RETRY_FIELDS)?;
    let mut ok = true;
    let attempts = match f
        .required(sink, "attempts", "retry")
        .map(|n| sink.uint(n, "attempts"))
    {
        Some(Some(v)) if (1..=u64::from(MAX_POLICY_ATTEMPTS)).contains(&v.value) => v.value as u32,
        Some(Some(v)) => {
            sink.report(
                v.pos,
                format!(
                    "retry attempts must be from 1 to {MAX_POLICY_ATTEMPTS} (the first included)"
                ),
            );
            ok = false;
            0
        }
        _ => {
            ok = false;
            0
        }
    };
    let mut conditions = Vec::new();
    match f
        .required(sink, "retry_on", "retry")
        .and_then(|n| sink.list(n, "retry_on"))
    {
        Some(items) => {
            for item in items {
                match retry_on(item, sink) {
                    Some(o) => conditions.push(o),
                    None => ok = false,
                }
            }
        }
        None => ok = false,
    }
    let backoff = match f.get("backoff").map(|n| sink.duration(n, "backoff")) {
        Some(Some(d)) => d.value,
        Some(None) => {
            ok = false;
            DEFAULT_BACKOFF
        }
        None => DEFAULT_BACKOFF,
    };
    let per_try_timeout = match f
        .get("per_try_timeout")
        .map(|n| sink.duration(n, "per_try_timeout"))
    {
        Some(Some(d)) if d.value.is_zero() => {
            sink.report(d.pos, "per_try_timeout must be greater than zero");
            ok = false;
            None
        }
        Some(Some(d)) => Some(d.value),
        Some(None) => {
            ok = false;
            None
        }
        None => None,
    };
    ok.then_some(At {
        value: RetryPolicy {
            attempts,
            retry_on: conditions,
            backoff,
            per_try_timeout,
        },
        pos,
    })
}

fn retry_on(node: &Node, sink: &mut Sink<'_>) -> Option<RetryOn> {
    let text = sink.string(node, "retry condition")?;
    if let Ok(code) = text.value.parse::<u16>() {
        if (500..600).contains(&code) {
            return Some(RetryOn::Status(code));
        }
        sink.report(text.pos, format!("retry status {code} is not a 5xx status"));
        return None;
    }
    sink.one_of(node, "retry condition", RetryOn::NAMES)
        .map(|a| a.value)
}

/// Decodes a cluster's `retry_budget` mapping; unset keys keep their defaults.
pub(crate) fn decode_budget(node: &Node, sink: &mut Sink<'_>) -> Option<At<RetryBudget>> {
    let pos = crate::node::pos_of(node);
    let f = sink.mapping(node, "retry_budget", BUDGET_FIELDS)?;
    let mut out = RetryBudget::default();
    let mut ok = true;
    if let Some(n) = f.get("ratio") {
        let text = sink.string(n, "ratio")?;
        match text.value.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => out.ratio = r,
            _ => {
                sink.report(text.pos, "retry_budget ratio must be a number from 0 to 1");
                ok = false;
            }
        }
    }
    if let Some(n) = f.get("min_per_second") {
        match sink
            .uint(n, "min_per_second")
            .map(|v| u32::try_from(v.value))
        {
            Some(Ok(v)) => out.min_per_second = v,
            _ => ok = false,
        }
    }
    ok.then_some(At { value: out, pos })
}
