//! One HTTP/2 request stream: route it, proxy it to an HTTP/2 or HTTP/1.1 upstream, or answer
//! it locally (as a gRPC Trailers-Only response when the client speaks gRPC), then record it.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use control::model::UpstreamProtocol;
use control::snapshot::ListenerKind;
use control::RequestView;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderValue, Request, Response};

use super::headers;
use crate::core::access_log::Entry;
use crate::core::conns::Conn;
use crate::core::error::ProxyError;
use crate::core::forward::{self, trace};
use crate::core::rt::Rt;
use crate::core::stats::NONE;
use crate::core::worker::Worker;

/// What every stream of one connection shares.
pub struct StreamCtx<'a, R: Rt> {
    pub w: &'a Worker<R>,
    pub peer: SocketAddr,
    /// The peer's IP as text, formatted once per connection (`x-forwarded-for`).
    pub client_ip: &'a str,
    pub listener: &'a str,
    pub conn: &'a Conn,
}

/// How a proxied stream ended.
pub struct Done {
    pub status: u16,
    /// gRPC status from the response's trailers (or Trailers-Only headers).
    pub grpc_status: Option<String>,
    pub endpoint: Option<SocketAddr>,
}

/// How a proxied stream failed: before the response head went out (a status can still be
/// sent), or after (the stream was reset; nothing else can be said).
pub enum Failure {
    Before(ProxyError, Option<SocketAddr>),
    After(Done, String),
    /// The client reset the stream: nothing to answer.
    Cancelled(Option<SocketAddr>),
}

/// The upstream call's deadline and what it is for.
pub struct Deadline {
    pub at: Instant,
    /// Set by the client's `grpc-timeout` (expiry is DEADLINE_EXCEEDED, not a 504).
    pub grpc: bool,
    /// The longest wait for any one read of an HTTP/1 upstream's body.
    pub stall: Duration,
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
    let grpc = headers::is_grpc(&parts.headers);
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
    // Owned, and only for the access log: the request's parts move into the proxy while the
    // record outlives them.
    let logged = w.opts.access_log.as_ref().map(|_| Logged {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        host: View(&parts).host().map(str::to_owned),
    });
    let rec = Record {
        ctx,
        logged: logged.as_ref(),
        started,
        trace: trace.as_deref(),
    };
    let Some(route) = routes.find(&View(&parts)) else {
        let status = local(&mut respond, 404, "no route", grpc);
        rec.finish(NONE, NONE, status, None, None);
        return;
    };
    let cluster = snap.cluster(route.pick_cluster(fastrand::u32(..)));
    let grpc_timeout = if grpc {
        headers::grpc_timeout(&parts.headers)
    } else {
        None
    };
    let limit = grpc_timeout.map_or(route.timeout, |g| g.min(route.timeout));
    let deadline = Deadline {
        at: started + limit,
        grpc: grpc_timeout.is_some_and(|g| g <= route.timeout),
        stall: limit,
    };
    let outcome = match cluster.protocol {
        UpstreamProtocol::Http2 => {
            super::to_h2::proxy::<R>(ctx, parts, body, &mut respond, cluster, &deadline).await
        }
        UpstreamProtocol::Http1 => {
            super::to_h1::proxy::<R>(ctx, parts, body, &mut respond, cluster, &deadline).await
        }
    };
    let (r, c) = (route.name.as_str(), cluster.name.as_str());
    match outcome {
        Ok(done) => rec.finish(
            r,
            c,
            done.status,
            done.grpc_status.as_deref(),
            done.endpoint,
        ),
        Err(Failure::Before(e, endpoint)) => {
            tracing::debug!(peer = %ctx.peer, route = r, cluster = c, error = %e, "h2 request failed");
            if matches!(e, ProxyError::Timeout) {
                w.stats.cluster(c).timeouts.increment(1);
            }
            let (status, grpc_code) = if deadline.grpc && matches!(e, ProxyError::Timeout) {
                (
                    local_grpc(
                        &mut respond,
                        4,
                        "deadline exceeded before the upstream answered",
                    ),
                    Some("4"),
                )
            } else {
                let s = local(&mut respond, e.status(), forward::short(&e), grpc);
                (s, None)
            };
            let grpc_code = grpc_code
                .map(str::to_owned)
                .or_else(|| grpc.then(|| headers::grpc_code_for_http(e.status()).to_string()));
            rec.finish(r, c, status, grpc_code.as_deref(), endpoint);
        }
        Err(Failure::After(done, why)) => {
            tracing::debug!(peer = %ctx.peer, route = r, cluster = c, error = %why, "h2 response aborted");
            rec.finish(
                r,
                c,
                done.status,
                done.grpc_status.as_deref(),
                done.endpoint,
            );
        }
        Err(Failure::Cancelled(endpoint)) => {
            // 499, as nginx counts a client that went away before the response.
            rec.finish(r, c, 499, grpc.then_some("1"), endpoint);
        }
    }
}

/// What the access log says about a request.
struct Logged {
    method: http::Method,
    path: String,
    host: Option<String>,
}

/// Everything the metrics and the access log need about one stream.
struct Record<'a, R: Rt> {
    ctx: &'a StreamCtx<'a, R>,
    logged: Option<&'a Logged>,
    started: Instant,
    trace: Option<&'a str>,
}

impl<R: Rt> Record<'_, R> {
    fn finish(
        &self,
        route: &str,
        cluster: &str,
        status: u16,
        grpc_status: Option<&str>,
        endpoint: Option<SocketAddr>,
    ) {
        let took = self.started.elapsed();
        let w = self.ctx.w;
        if !w.opts.no_metrics {
            match grpc_status {
                Some(g) => w
                    .stats
                    .grpc_request(self.ctx.listener, route, cluster, status, g, took),
                None => w
                    .stats
                    .request(self.ctx.listener, route, cluster, status, took),
            }
        }
        let (Some(log), Some(req)) = (&w.opts.access_log, self.logged) else {
            return;
        };
        log.record(&Entry {
            ts_unix: crate::core::access_log::unix_now(),
            worker: w.id,
            listener: self.ctx.listener,
            peer: self.ctx.peer,
            method: req.method.as_str(),
            path: &req.path,
            host: req.host.as_deref(),
            route,
            cluster,
            endpoint,
            status,
            duration_ms: took.as_secs_f64() * 1e3,
            bytes_in: 0,
            bytes_out: 0,
            traceparent: self.trace,
            grpc_status,
        });
    }
}

/// Answers with `status` and a one-line body, or, to a gRPC client, with the matching gRPC
/// status as a Trailers-Only response (gRPC clients ignore HTTP bodies). Returns the status.
fn local(respond: &mut SendResponse<Bytes>, status: u16, detail: &str, grpc: bool) -> u16 {
    if grpc {
        return local_grpc(respond, headers::grpc_code_for_http(status), detail);
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
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        h.insert("grpc-message", v);
    }
    if let Ok(v) = HeaderValue::from_str(message) {
        h.insert("x-ringside-error", v);
    }
    let _ = respond.send_response(resp, true);
    200
}

/// gRPC's percent-encoding of `grpc-message`: everything outside printable ASCII, and `%`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Waits until the client resets the stream; the reason it gave.
pub async fn client_reset(respond: &mut SendResponse<Bytes>) -> h2::Reason {
    poll_fn(|cx| respond.poll_reset(cx))
        .await
        .unwrap_or(h2::Reason::CANCEL)
}

/// Time left until the deadline (zero once passed).
pub fn left(d: &Deadline) -> Duration {
    d.at.saturating_duration_since(Instant::now())
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
        self.0.uri.path()
    }
    fn header(&self, lowercase_name: &str) -> Option<&[u8]> {
        self.0.headers.get(lowercase_name).map(|v| v.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("no route"), "no route");
        assert_eq!(percent_encode("100% ünïcode"), "100%25 %C3%BCn%C3%AFcode");
    }
}
