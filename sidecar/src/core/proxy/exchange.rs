//! What every protocol pair shares: the exchange's context, how it ends, how the one retry
//! rule (`proxy::replay`) and a cluster's retry policy are applied to it, and the one place an
//! exchange is recorded (metrics and access log).

use crate::core::wire::Wire;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use control::retry::RetryPolicy;
use control::snapshot::ClusterSpec;

use crate::core::access_log::Entry;
use crate::core::bridge::stall::{Pace, SendStall};
use crate::core::conns::Conn;
use crate::core::error::ProxyError;
use crate::core::rt::Rt;
use crate::core::up;
use crate::core::up::balance::{ClusterState, Target};
use crate::core::up::breaker::{Kind, Slot};
use crate::core::up::h1::Upstream;
use crate::core::worker::Worker;

pub use super::replay::{
    failure_kind, idempotent, kind_label, may_replay, may_retry_grpc, may_retry_status, Replay,
    Verdict, MAX_ATTEMPTS,
};

/// One request's trip to one cluster, whatever the protocols on each side.
pub struct Exchange<'a, R: Rt> {
    pub w: &'a Worker<R>,
    pub peer: SocketAddr,
    /// The peer's IP as text, formatted once per connection (`x-forwarded-for`).
    pub client_ip: &'a str,
    pub conn: &'a Conn,
    pub cluster: &'a ClusterSpec,
    /// The route's retry policy, else the cluster's ([`policy`]).
    pub retry: Option<&'a RetryPolicy>,
    pub deadline: Deadline,
    /// How long the response may wait on the client (`timeouts.send_stall`).
    pub send: SendStall<'a>,
    /// The pace the request body must keep (`timeouts.body_read`, `limits.min_body_rate`);
    /// `None` for gRPC calls, whose streams send messages when the application has them.
    pub pace: Option<Pace<'a>>,
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
    /// Whether the request may be sent again after `e`: the one rule ([`may_replay`]) with
    /// the cluster's retry policy, a policy retry only within the cluster's retry budget and
    /// after its backoff. Counts the retry if so. Every failed attempt passes here, so this is
    /// also where the attempt's endpoint is told it failed (outlier ejection).
    pub async fn replay_after(&self, e: &ProxyError, req: Replay) -> bool {
        self.attempt_failed(e);
        let verdict = may_replay(e, req, self.attempts.get(), self.retry);
        let reason = failure_kind(e).map_or("other", kind_label);
        match verdict {
            Verdict::No => return false,
            Verdict::Safe => {}
            Verdict::Policy => {
                if !self.budget_retry() {
                    return false;
                }
            }
        }
        if !self.admit_retry() {
            return false;
        }
        if verdict == Verdict::Policy {
            self.backoff().await;
        }
        tracing::debug!(cluster = %self.cluster.name, error = %e, attempt = self.attempts.get() + 1, ?verdict, "replaying request");
        self.count_retry(reason);
        true
    }

    /// Whether a response with `status` is retried (the retry policy, for idempotent
    /// requests whose body is held, within the budget), after the backoff. The caller has
    /// reported the response ([`Self::responded`]) and drops it if so.
    pub async fn retry_status(&self, status: u16, req: Replay) -> bool {
        if !may_retry_status(status, req, self.attempts.get(), self.retry)
            || !self.budget_retry()
            || !self.admit_retry()
        {
            return false;
        }
        self.backoff().await;
        tracing::debug!(cluster = %self.cluster.name, status, attempt = self.attempts.get() + 1, "retrying after status");
        self.count_retry("status");
        true
    }

    /// Whether a Trailers-Only gRPC response with status `code` is retried ([`may_retry_grpc`],
    /// within the budget), after the backoff. The caller drops the response if so.
    pub async fn retry_grpc(&self, code: u8, req: Replay) -> bool {
        if !may_retry_grpc(code, req, self.attempts.get(), self.retry)
            || !self.budget_retry()
            || !self.admit_retry()
        {
            return false;
        }
        self.backoff().await;
        tracing::debug!(cluster = %self.cluster.name, grpc_status = code, attempt = self.attempts.get() + 1, "retrying after gRPC status");
        self.count_retry("grpc-status");
        true
    }

    /// When the current attempt's response head must have arrived: the route's deadline, or
    /// sooner the policy's `per_try_timeout` after the attempt began.
    pub fn head_deadline(&self) -> Instant {
        match (
            self.retry.and_then(|p| p.per_try_timeout),
            self.endpoint.started.get(),
        ) {
            (Some(t), Some(began)) => (began + t).min(self.deadline.at),
            _ => self.deadline.at,
        }
    }

    /// Time left until [`Self::head_deadline`] (zero once passed).
    pub fn head_left(&self) -> Duration {
        self.head_deadline()
            .saturating_duration_since(Instant::now())
    }

    /// A head wait that ran out is the route's timeout, or only the attempt's: an
    /// [`ProxyError::AttemptTimeout`] a policy may retry.
    pub fn timed_out(&self, e: ProxyError) -> ProxyError {
        match e {
            ProxyError::Timeout if !self.deadline.passed() => ProxyError::AttemptTimeout,
            e => e,
        }
    }

    /// The latest attempt's endpoint and how many attempts were made, for the record.
    pub fn tried(&self) -> Tried {
        Tried {
            endpoint: self.endpoint.get(),
            attempts: self.attempts.get(),
        }
    }

    fn budget_retry(&self) -> bool {
        self.endpoint
            .target
            .borrow()
            .as_ref()
            .is_some_and(|t| t.cluster().budget_retry())
    }

    fn count_retry(&self, reason: &'static str) {
        if !self.w.opts.no_metrics {
            metrics::counter!("ringside_retries_total", "cluster" => self.cluster.name.clone(), "reason" => reason)
                .increment(1);
        }
    }

    /// Full jitter (a random wait up to `backoff × 2^(retries so far)`, at most 1 s), never
    /// past the request's deadline.
    async fn backoff(&self) {
        let Some(p) = self.retry else {
            return;
        };
        let doublings = self.attempts.get().saturating_sub(1).min(10);
        let cap = p
            .backoff
            .saturating_mul(1 << doublings)
            .min(Duration::from_secs(1))
            .min(self.deadline.left());
        let wait = cap.mul_f64(fastrand::f64());
        if !wait.is_zero() {
            R::sleep(wait).await;
        }
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
    ) -> Result<Upstream<Wire<R::Stream>>, ProxyError> {
        let trust_recent = req.idempotent && req.body_held;
        let lb = self.w.balancers.get(self.cluster);
        self.admit(&lb)?;
        let up = up::h1::acquire::<R>(
            &self.w.pool,
            lb,
            &self.w.stats,
            self.cluster,
            fresh,
            self.endpoint.get(),
            trust_recent,
        )
        .await?;
        self.attempt(up._in_flight.target());
        Ok(up)
    }

    /// Takes the request's slot under the cluster's `max_requests`, once per exchange.
    ///
    /// # Errors
    /// [`ProxyError::Overflow`] when the cluster is at its limit.
    pub fn admit(&self, lb: &ClusterState) -> Result<(), ProxyError> {
        let mut slot = self.endpoint.request_slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(
                lb.admit(Kind::Request)
                    .ok_or(ProxyError::Overflow("max_requests"))?,
            );
        }
        Ok(())
    }

    /// Takes a slot under the cluster's `max_retries` for the retry about to be made.
    fn admit_retry(&self) -> bool {
        let Some(slot) = self
            .endpoint
            .target
            .borrow()
            .as_ref()
            .and_then(|t| t.cluster().admit(Kind::Retry))
        else {
            return false;
        };
        self.endpoint.retry_slot.replace(Some(slot));
        true
    }

    /// Marks the start of an attempt on `endpoint`. The first one counts the request for the
    /// cluster's retry budget (requests with a retry policy only: the budget is a share of
    /// the requests that could be retried).
    pub fn attempt(&self, endpoint: Target) {
        self.attempts.set(self.attempts.get() + 1);
        if self.attempts.get() == 1 && self.retry.is_some() {
            endpoint.cluster().budget_request();
        }
        self.endpoint.addr.set(Some(endpoint.addr()));
        self.endpoint.started.set(Some(Instant::now()));
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
        if let (Some(t), Some(since)) = (
            self.endpoint.target.borrow().as_ref(),
            self.endpoint.started.get(),
        ) {
            t.observe(since.elapsed());
        }
    }
}

/// The retry policy that applies to a request: its route's, else its cluster's.
pub fn policy<'a>(
    route: &'a control::RouteSpec,
    cluster: &'a ClusterSpec,
) -> Option<&'a RetryPolicy> {
    route.retry.as_deref().or(cluster.retry.as_ref())
}

/// What the record says of an exchange's upstream side.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tried {
    /// The latest attempt's endpoint; `None` if no attempt was made.
    pub endpoint: Option<SocketAddr>,
    /// Attempts made, the first included (0: answered locally).
    pub attempts: u32,
}

impl Tried {
    /// Answered by Ringside itself.
    pub const NONE: Tried = Tried {
        endpoint: None,
        attempts: 0,
    };
}

/// The endpoint of an exchange's latest attempt.
#[derive(Debug, Default)]
pub struct Attempted {
    addr: Cell<Option<SocketAddr>>,
    target: RefCell<Option<Target>>,
    /// The exchange's slots under the cluster's circuit breaker, released when it ends.
    request_slot: RefCell<Option<Slot>>,
    retry_slot: RefCell<Option<Slot>>,
    /// When the latest attempt began (for the `ewma` balancer).
    started: Cell<Option<Instant>>,
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
        | ProxyError::Timeout
        | ProxyError::AttemptTimeout => true,
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
    /// The client certificate's identity (SPIFFE ID, else first DNS SAN) on mutual TLS.
    pub peer_identity: Option<&'a str>,
}

/// Everything recorded about one finished request.
pub struct Record<'a> {
    pub listener: &'a str,
    pub route: &'a str,
    pub cluster: &'a str,
    pub upstream: Tried,
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
        endpoint: r.upstream.endpoint,
        attempts: r.upstream.attempts,
        status: r.status,
        duration_ms: took.as_secs_f64() * 1e3,
        bytes_in: r.bytes.0,
        bytes_out: r.bytes.1,
        traceparent: r.trace,
        grpc_status: r.grpc_status,
        peer_identity: req.peer_identity,
    });
}
