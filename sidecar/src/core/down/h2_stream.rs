//! One HTTP/2 request stream: normalise its path, route it, proxy it to an HTTP/2 or HTTP/1.1
//! upstream, or answer it locally (as a gRPC Trailers-Only response when the client speaks
//! gRPC), then record it.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use control::model::UpstreamProtocol;
use control::snapshot::ListenerKind;
use control::RequestView;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderValue, Request, Response};

use super::limits;
use crate::core::authz;
use crate::core::bridge::stall::{Pace, Progress, SendStall};
use crate::core::conns::Conn;
use crate::core::error::{grpc_code_for_http, ProxyError};
use crate::core::h2::grpc;
use crate::core::http1::XFCC;
use crate::core::path;
use crate::core::proxy::exchange::{
    self, Deadline, Done, Exchange, Failure, Record, RequestInfo, Tried,
};
use crate::core::proxy::{h2_h1, h2_h2};
use crate::core::rate;
use crate::core::rt::Rt;
use crate::core::stats::NONE;
use crate::core::trace;
use crate::core::worker::Worker;

/// What every stream of one connection shares.
pub struct StreamCtx<'a, R: Rt> {
    pub w: &'a Worker<R>,
    pub peer: SocketAddr,
    /// The peer's IP as text, formatted once per connection (`x-forwarded-for`).
    pub client_ip: &'a str,
    pub listener: &'a str,
    pub conn: &'a Conn,
    /// The connection's send progress, for the send stall (`bridge::stall`).
    pub progress: &'a Progress,
}

pub async fn handle<R: Rt>(
    ctx: &StreamCtx<'_, R>,
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let started = Instant::now();
    let w = ctx.w;
    let snap = w.snapshot();
    let Some(spec) = snap.listener(ctx.listener) else {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return;
    };
    let ListenerKind::Http { routes } = &spec.kind else {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return;
    };
    let (mut parts, body) = req.into_parts();
    #[cfg(feature = "test-hooks")]
    if parts.headers.contains_key("x-ringside-test-panic") {
        panic!("test hook: x-ringside-test-panic");
    }
    let is_grpc = grpc::is_grpc(&parts.headers);
    // Only Ringside vouches for a client certificate (Envoy's SANITIZE_SET).
    parts.headers.remove(XFCC);
    let trace = trace::context_from(
        parts.headers.get("traceparent").map(|v| v.as_bytes()),
        w.opts.start_traces,
    )
    .map(|t| t.into_owned());
    if let Some(tp) = &trace {
        if !parts.headers.contains_key("traceparent") {
            if let Ok(v) = HeaderValue::from_str(tp) {
                parts.headers.insert("traceparent", v);
            }
        }
    }
    let normalized = normalize(&mut parts, &spec.path_normalization);
    // Owned, and only for the access log: the request's parts move into the proxy while the
    // record outlives them.
    let logged = w.opts.access_log.as_ref().map(|_| Logged {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        host: View(&parts).host().map(str::to_owned),
    });
    let rec = Finish {
        ctx,
        logged: logged.as_ref(),
        started,
        trace: trace.as_deref(),
    };
    // The same checks an HTTP/1.1 request passes, on the same counts.
    let limits = limits::check_h2(&parts, spec.max_header_bytes, spec.max_headers);
    let refused = match (normalized, limits) {
        (Err(label), _) => Some((400, label)),
        (Ok(()), Err(r)) => Some((r.status, r.label)),
        (Ok(()), Ok(())) => None,
    };
    if let Some((status, label)) = refused {
        let code = is_grpc.then(|| grpc_code_for_http(status).to_string());
        let sent = local(&mut respond, status, label, is_grpc);
        rec.record(
            NONE,
            NONE,
            Tried::NONE,
            &Done::status(sent),
            code.as_deref(),
        );
        return;
    }
    let Some(route) = routes.find(&View(&parts)) else {
        let status = local(&mut respond, 404, "no route", is_grpc);
        let code = is_grpc.then(|| grpc_code_for_http(404).to_string());
        rec.record(
            NONE,
            NONE,
            Tried::NONE,
            &Done::status(status),
            code.as_deref(),
        );
        return;
    };
    if !authz::admits_request(spec, route, ctx.conn) {
        let status = local(&mut respond, 403, "forbidden by authz", is_grpc);
        let code = is_grpc.then(|| grpc_code_for_http(403).to_string());
        rec.record(
            &route.name,
            NONE,
            Tried::NONE,
            &Done::status(status),
            code.as_deref(),
        );
        return;
    }
    if let Err(secs) = rate::admit(&spec.name, route) {
        let status = local_with(&mut respond, 429, "rate limited", is_grpc, Some(secs));
        let code = is_grpc.then(|| grpc_code_for_http(429).to_string());
        rec.record(
            &route.name,
            NONE,
            Tried::NONE,
            &Done::status(status),
            code.as_deref(),
        );
        return;
    }
    let xfcc = ctx.conn.tls.get().and_then(|t| t.xfcc.as_deref());
    let extra: &[(&str, &[u8])] = match &xfcc {
        Some(v) => &[(XFCC, v.as_bytes())],
        None => &[],
    };
    let cluster = snap.cluster(route.pick_cluster(fastrand::u32(..)));
    let grpc_timeout = is_grpc
        .then(|| grpc::grpc_timeout(&parts.headers))
        .flatten();
    let limit = grpc_timeout.map_or(route.timeout, |g| g.min(route.timeout));
    let x = Exchange {
        w,
        peer: ctx.peer,
        client_ip: ctx.client_ip,
        conn: ctx.conn,
        cluster,
        retry: exchange::policy(route, cluster),
        deadline: Deadline {
            at: started + limit,
            grpc: grpc_timeout.is_some_and(|g| g <= route.timeout),
            stall: limit,
        },
        send: SendStall {
            limit: spec.send_stall,
            listener: ctx.listener,
            metrics: !w.opts.no_metrics,
            conn: Some(ctx.progress),
        },
        // gRPC client and bidirectional streams send messages when the application has
        // them: a minimum rate would end live calls (gRPC has deadlines and keepalives).
        pace: (!is_grpc).then_some(Pace {
            pace: spec.body_pace,
            start: started,
            listener: ctx.listener,
            metrics: !w.opts.no_metrics,
        }),
        listener: ctx.listener,
        closing: false,
        extra,
        endpoint: Default::default(),
        attempts: Default::default(),
    };
    let outcome = match cluster.protocol {
        UpstreamProtocol::Http2 => h2_h2::proxy::<R>(&x, parts, body, &mut respond).await,
        UpstreamProtocol::Http1 => h2_h1::proxy::<R>(&x, parts, body, &mut respond).await,
    };
    let (r, c) = (route.name.as_str(), cluster.name.as_str());
    let tried = x.tried();
    match outcome {
        Ok(done) => rec.record(r, c, tried, &done, done.grpc_status.as_deref()),
        Err(Failure::Before(e)) => {
            tracing::debug!(peer = %ctx.peer, route = r, cluster = c, error = %e, "h2 request failed");
            if matches!(e, ProxyError::Timeout | ProxyError::AttemptTimeout) {
                w.stats.cluster(c).timeouts.increment(1);
            }
            let (status, code) = answer_failure(&mut respond, &e, is_grpc, &x.deadline);
            rec.record(r, c, tried, &Done::status(status), code.as_deref());
        }
        Err(Failure::After(done, e)) => {
            tracing::debug!(peer = %ctx.peer, route = r, cluster = c, error = %e, "h2 response aborted");
            rec.record(r, c, tried, &done, done.grpc_status.as_deref());
        }
        // 499, as nginx counts a client that went away before the response.
        Err(Failure::Cancelled) => {
            rec.record(r, c, tried, &Done::status(499), is_grpc.then_some("1"))
        }
    }
}

/// Answers a stream whose exchange failed before its response head: a Trailers-Only gRPC
/// status for a gRPC client (DEADLINE_EXCEEDED winning over whatever reset or timeout raced
/// the call's deadline), else the HTTP status with `x-ringside-error`. Returns the status and
/// the gRPC code sent, if any.
fn answer_failure(
    respond: &mut SendResponse<Bytes>,
    e: &ProxyError,
    is_grpc: bool,
    deadline: &Deadline,
) -> (u16, Option<String>) {
    if is_grpc {
        let code = e.grpc_code(deadline.grpc && deadline.passed());
        (local_grpc(respond, code, e.label()), Some(code.to_string()))
    } else {
        (local(respond, e.status(), e.label(), false), None)
    }
}

/// Normalises `:path` per the listener; `Err`: the reason for a 400.
fn normalize(
    parts: &mut http::request::Parts,
    opts: &control::model::PathNormalization,
) -> Result<(), &'static str> {
    let Some(pq) = parts.uri.path_and_query() else {
        return Ok(());
    };
    let normalized = match path::normalize(pq.as_str(), opts) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(()),
        Err(path::PathError::BadPercent) => return Err("invalid percent-encoding in path"),
        Err(path::PathError::EscapedSlash) => return Err("encoded slash in path"),
    };
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.path_and_query = Some(normalized.parse().map_err(|_| "invalid path")?);
    parts.uri = http::Uri::from_parts(uri).map_err(|_| "invalid path")?;
    Ok(())
}

/// What the access log says about a request.
struct Logged {
    method: String,
    path: String,
    host: Option<String>,
}

/// Everything the metrics and the access log need about one stream.
struct Finish<'a, R: Rt> {
    ctx: &'a StreamCtx<'a, R>,
    logged: Option<&'a Logged>,
    started: Instant,
    trace: Option<&'a str>,
}

impl<R: Rt> Finish<'_, R> {
    fn record(
        &self,
        route: &str,
        cluster: &str,
        upstream: Tried,
        done: &Done,
        grpc_status: Option<&str>,
    ) {
        let info = self.logged.map(|l| RequestInfo {
            method: &l.method,
            path: &l.path,
            host: l.host.as_deref(),
            peer_identity: self.ctx.conn.peer_identity().map(|p| p.display()),
        });
        let r = Record {
            listener: self.ctx.listener,
            route,
            cluster,
            upstream,
            status: done.status,
            grpc_status,
            started: self.started,
            bytes: (done.bytes_in, done.bytes_out),
            trace: self.trace,
        };
        exchange::record(self.ctx.w, self.ctx.peer, info, &r);
    }
}

/// Answers with `status` and a one-line body, or, to a gRPC client, with the matching gRPC
/// status as a Trailers-Only response (gRPC clients ignore HTTP bodies). Returns the status.
fn local(respond: &mut SendResponse<Bytes>, status: u16, detail: &str, is_grpc: bool) -> u16 {
    local_with(respond, status, detail, is_grpc, None)
}

/// [`local`] with `Retry-After: SECONDS` (RFC 9110 §10.2.3) on a plain HTTP answer.
fn local_with(
    respond: &mut SendResponse<Bytes>,
    status: u16,
    detail: &str,
    is_grpc: bool,
    retry_after: Option<u64>,
) -> u16 {
    if is_grpc {
        return local_grpc(respond, grpc_code_for_http(status), detail);
    }
    let mut resp = Response::new(());
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/plain"));
    if let Ok(v) = HeaderValue::from_str(detail) {
        h.insert("x-ringside-error", v);
    }
    let body = Bytes::from(format!("{detail}\n"));
    h.insert("content-length", HeaderValue::from(body.len()));
    if let Some(secs) = retry_after {
        h.insert("retry-after", HeaderValue::from(secs));
    }
    if let Ok(mut s) = respond.send_response(resp, false) {
        let _ = s.send_data(body, true);
    }
    status
}

/// A gRPC Trailers-Only response: HTTP 200 whose only HEADERS frame carries the status.
fn local_grpc(respond: &mut SendResponse<Bytes>, code: u8, message: &str) -> u16 {
    let mut resp = Response::new(());
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(v) = HeaderValue::from_str(&grpc::percent_encode(message)) {
        h.insert("grpc-message", v);
    }
    if let Ok(v) = HeaderValue::from_str(message) {
        h.insert("x-ringside-error", v);
    }
    let _ = respond.send_response(resp, true);
    200
}

/// An HTTP/2 request as the route table sees it.
pub struct View<'a>(pub &'a http::request::Parts);

impl RequestView for View<'_> {
    fn method(&self) -> &str {
        self.0.method.as_str()
    }
    fn host(&self) -> Option<&str> {
        match self.0.uri.authority() {
            Some(a) => Some(a.as_str()),
            None => self.0.headers.get(http::header::HOST)?.to_str().ok(),
        }
    }
    fn path(&self) -> &str {
        // An asterisk-form OPTIONS is about the server as a whole: the catch-all route's.
        match self.0.uri.path() {
            "*" => "/",
            p => p,
        }
    }
    fn header(&self, lowercase_name: &str) -> Option<&[u8]> {
        self.0.headers.get(lowercase_name).map(|v| v.as_bytes())
    }
}
