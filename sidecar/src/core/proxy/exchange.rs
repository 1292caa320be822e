//! What every protocol pair shares: the exchange's context, how it ends, the one retry rule,
//! and the one place an exchange is recorded (metrics and access log).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use control::snapshot::ClusterSpec;

use crate::core::access_log::Entry;
use crate::core::conns::Conn;
use crate::core::error::{ProxyError, Retry};
use crate::core::rt::Rt;
use crate::core::up;
use crate::core::up::balance::Target;
use crate::core::up::h1::Upstream;
use crate::core::worker::Worker;

/// Attempts per request, the first included: a replay is only ever of a request the rule below
/// allows, so this bounds how long a burst of refusals (a GOAWAY storm) may delay one request.
pub const MAX_ATTEMPTS: u32 = 3;

/// One request's trip to one cluster, whatever the protocols on each side.
pub struct Exchange<'a, R: Rt> {
    pub w: &'a Worker<R>,
    pub peer: SocketAddr,
    /// The peer's IP as text, formatted once per connection (`x-forwarded-for`).
    pub client_ip: &'a str,
    pub conn: &'a Conn,
    pub cluster: &'a ClusterSpec,
    pub deadline: Deadline,
    /// The listener the request arrived on.
    pub listener: &'a str,
    /// The downstream connection must close after this response (drain, listener removed).
    pub closing: bool,
    /// Fields added upstream (a trace context Ringside started).
    pub extra: &'a [(&'a str, &'a [u8])],
    /// The endpoint of the latest attempt (for the access log, and where its outcome is
    /// reported for outlier ejection).
    pub endpoint: Attempted,
    /// Attempts made so far.
    pub attempts: Cell<u32>,
}

impl<R: Rt> Exchange<'_, R> {
    /// Whether the request may be sent again after `e`; counts the replay if so. Every
    /// failed attempt passes here, so this is also where the attempt's endpoint is told it
    /// failed (outlier ejection), when the failure is the endpoint's.
    pub fn replay_after(&self, e: &ProxyError, req: Replay) -> bool {
        self.attempt_failed(e);
        let ok = may_replay(e, req, self.attempts.get());
        if ok {
            tracing::debug!(cluster = %self.cluster.name, error = %e, attempt = self.attempts.get() + 1, "replaying request");
        }
        ok
    }

    /// Whether an HTTP/1 client must be told to close after this response: it was closing
    /// when the request began, or since then a drain began or a reload removed its listener.
    pub fn must_close(&self) -> bool {
        self.closing || self.w.lifecycle.is_draining() || !self.w.has_listener(self.listener)
    }

    /// An HTTP/1 connection for the next attempt (a fresh one after a replay), counted as an
    /// attempt. A recently pooled connection is trusted without a liveness peek only when a
    /// failure on it could be replayed.
    pub async fn acquire_h1(
        &self,
        req: Replay,
        fresh: bool,
    ) -> Result<Upstream<R::Stream>, ProxyError> {
        let trust_recent = req.idempotent && req.body_held;
        let lb = self.w.balancers.get(self.cluster);
        let up = up::h1::acquire::<R>(
            &self.w.pool,
            lb,
            &self.w.stats,
            self.cluster,
            fresh,
            trust_recent,
        )
        .await?;
        self.attempt(up._in_flight.target());
        Ok(up)
    }

    /// Marks the start of an attempt on `endpoint`.
    pub fn attempt(&self, endpoint: Target) {
        self.attempts.set(self.attempts.get() + 1);
        self.endpoint.addr.set(Some(endpoint.addr()));
        self.endpoint.target.replace(Some(endpoint));
    }

    /// The attempt failed with `e` before a response head: reported against its endpoint
    /// when the failure is the endpoint's ([`endpoint_failure`]).
    pub fn attempt_failed(&self, e: &ProxyError) {
        if endpoint_failure(e) {
            self.endpoint.report(false);
        }
    }

    /// The attempt got its final response head: a 5xx counts against the endpoint, anything
    /// else clears its failure count.
    pub fn responded(&self, status: u16) {
        self.endpoint.report(status < 500);
    }
}

/// The endpoint of an exchange's latest attempt.
#[derive(Debug, Default)]
pub struct Attempted {
    addr: Cell<Option<SocketAddr>>,
    target: RefCell<Option<Target>>,
}

impl Attempted {
    /// Its address, if an attempt was made.
    pub fn get(&self) -> Option<SocketAddr> {
        self.addr.get()
    }

    fn report(&self, ok: bool) {
        if let Some(t) = self.target.borrow().as_ref() {
            t.report(ok);
        }
    }
}

/// Failures that count against the endpoint for outlier ejection: it accepted the request
/// and then reset, closed, broke the protocol or did not answer in time. Connect failures
/// are counted where they happen (`up::dial::walk`); a refused stream or a stale pooled
/// connection says nothing about the endpoint's health.
fn endpoint_failure(e: &ProxyError) -> bool {
    match e {
        ProxyError::UpstreamClosed
        | ProxyError::UpstreamIo(_)
        | ProxyError::UpstreamProtocol(_)
        | ProxyError::Timeout => true,
        ProxyError::UpstreamReset(r) => *r != h2::Reason::REFUSED_STREAM,
        _ => false,
    }
}

/// The upstream call's deadline and what it is for.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    /// Set by the client's `grpc-timeout`: expiry is DEADLINE_EXCEEDED, not a 504.
    pub grpc: bool,
    /// The longest wait for any one read of a body (the route timeout).
    pub stall: Duration,
}

impl Deadline {
    /// Time left (zero once passed).
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// The facts about a request and its attempt that decide whether it may be replayed.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
    pub idempotent: bool,
    /// The request body is absent, or every byte of it is still held to send again.
    pub body_held: bool,
    /// The attempt used a connection that had carried earlier requests. A reused connection
    /// failing without a response is the keep-alive race (the upstream closed it as the
    /// request went out), worth one replay of an idempotent request; a fresh connection
    /// failing is the upstream's own failure, left to retry policies.
    pub reused: bool,
}

/// The one retry rule, for every protocol pair (DESIGN.md §5.11): replay a request only if the
/// upstream provably did not process it, or if it is idempotent and its body is held, and
/// never more than [`MAX_ATTEMPTS`] in all. RFC 9110 §9.2.2: a proxy must not automatically
/// retry a non-idempotent request the upstream may have seen.
pub fn may_replay(e: &ProxyError, req: Replay, attempts: u32) -> bool {
    attempts < MAX_ATTEMPTS
        && req.body_held
        && match e.retry() {
            Retry::Always => true,
            Retry::IfIdempotent => req.idempotent && req.reused,
            Retry::Never => false,
        }
}

/// RFC 9110 §9.2.2.
pub fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// What an HTTP/1 client connection does after an exchange.
pub enum Next<S> {
    KeepAlive,
    Close,
    /// The upstream answered 101: both connections become one opaque tunnel. The bytes are
    /// what each side sent past the handshake in the same read.
    Tunnel {
        up: S,
        to_up: Bytes,
        to_down: Bytes,
    },
}

/// How a proxied exchange ended once its response head went out.
#[derive(Debug, Default)]
pub struct Done {
    pub status: u16,
    /// gRPC status from the response's trailers (or Trailers-Only headers).
    pub grpc_status: Option<String>,
    /// Request body bytes relayed upstream.
    pub bytes_in: u64,
    /// Response bytes relayed downstream (body only on HTTP/2; head included on HTTP/1).
    pub bytes_out: u64,
}

impl Done {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }
}

/// How a proxied exchange failed.
#[derive(Debug)]
pub enum Failure {
    /// Before the response head went out: the client can still be told with a status.
    Before(ProxyError),
    /// After the response head went out: the only honest signal left is closing the
    /// connection (HTTP/1) or resetting the stream (HTTP/2).
    After(Done, ProxyError),
    /// The client went away (an HTTP/2 reset, or the connection closed): nothing to answer.
    Cancelled,
}

/// What the access log says about the request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub host: Option<&'a str>,
}

/// Everything recorded about one finished request.
pub struct Record<'a> {
    pub listener: &'a str,
    pub route: &'a str,
    pub cluster: &'a str,
    pub endpoint: Option<SocketAddr>,
    pub status: u16,
    pub grpc_status: Option<&'a str>,
    pub started: Instant,
    pub bytes: (u64, u64),
    pub trace: Option<&'a str>,
}

/// Records a finished request, whatever its protocols: metrics always (unless `--no-metrics`),
/// the access log when it is on.
pub fn record<R: Rt>(
    w: &Worker<R>,
    peer: SocketAddr,
    req: Option<RequestInfo<'_>>,
    r: &Record<'_>,
) {
    let took = r.started.elapsed();
    if !w.opts.no_metrics {
        match r.grpc_status {
            Some(g) => w
                .stats
                .grpc_request(r.listener, r.route, r.cluster, r.status, g, took),
            None => w
                .stats
                .request(r.listener, r.route, r.cluster, r.status, took),
        }
    }
    let (Some(log), Some(req)) = (&w.opts.access_log, req) else {
        return;
    };
    log.record(&Entry {
        ts_unix: crate::core::access_log::unix_now(),
        worker: w.id,
        listener: r.listener,
        peer,
        method: req.method,
        path: req.path,
        host: req.host,
        route: r.route,
        cluster: r.cluster,
        endpoint: r.endpoint,
        status: r.status,
        duration_ms: took.as_secs_f64() * 1e3,
        bytes_in: r.bytes.0,
        bytes_out: r.bytes.1,
        traceparent: r.trace,
        grpc_status: r.grpc_status,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const POST_NO_BODY: Replay = Replay {
        idempotent: false,
        body_held: true,
        reused: true,
    };
    const GET: Replay = Replay {
        idempotent: true,
        body_held: true,
        reused: true,
    };

    #[test]
    fn a_non_idempotent_request_the_upstream_may_have_seen_is_never_replayed() {
        assert!(!may_replay(&ProxyError::UpstreamClosed, POST_NO_BODY, 1));
        assert!(may_replay(&ProxyError::UpstreamClosed, GET, 1));
        let fresh = Replay {
            reused: false,
            ..GET
        };
        assert!(!may_replay(&ProxyError::UpstreamClosed, fresh, 1));
    }

    #[test]
    fn an_unprocessed_request_is_replayed_whatever_its_method() {
        let refused = ProxyError::Refused("GOAWAY".into());
        assert!(may_replay(&refused, POST_NO_BODY, 1));
        let streamed = Replay {
            body_held: false,
            ..POST_NO_BODY
        };
        assert!(!may_replay(&refused, streamed, 1), "its body is gone");
        assert!(!may_replay(&refused, POST_NO_BODY, MAX_ATTEMPTS));
    }

    #[test]
    fn timeouts_and_client_faults_are_never_replayed() {
        assert!(!may_replay(&ProxyError::Timeout, GET, 1));
        assert!(!may_replay(&ProxyError::DownstreamClosed, GET, 1));
        assert!(idempotent("PUT") && !idempotent("POST") && !idempotent("PATCH"));
    }
}
