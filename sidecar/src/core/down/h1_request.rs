//! One HTTP/1.1 request: check what is in hand, normalise its path, route it, proxy it to the
//! cluster's protocol (or answer it locally), and record it.

use crate::core::wire::Wire;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use control::model::UpstreamProtocol;
use control::snapshot::{ListenerKind, ListenerSpec, Snapshot};
use control::RequestView;

use super::local::{self, Conn as LocalConn};
use crate::core::authz;
use crate::core::bridge::stall::{Pace, SendStall};
use crate::core::conns::Conn;
use crate::core::http1::{self, BodyKind, RequestHead, Version};
use crate::core::path;
use crate::core::proxy::exchange::{
    self, Deadline, Exchange, Failure, Next, Record, RequestInfo, Tried,
};
use crate::core::proxy::{h1_h1, h1_h2};
use crate::core::rate;
use crate::core::rt::{Rt, Stream};
use crate::core::shed;
use crate::core::stats::NONE;
use crate::core::trace;
use crate::core::worker::Worker;

/// Where the request arrived: its connection and the config it is served on.
pub struct At<'a, R: Rt> {
    pub w: &'a Worker<R>,
    pub snap: &'a Arc<Snapshot>,
    pub spec: &'a ListenerSpec,
    pub peer: SocketAddr,
    /// The connection must close after this response (drain, or its listener was removed).
    pub closing: bool,
    pub conn: &'a Conn,
}

/// Handles one request whose head was just read; `buf` holds the bytes that followed it.
pub async fn handle<R: Rt>(
    at: &At<'_, R>,
    down: &mut Wire<R::Stream>,
    buf: &mut BytesMut,
    mut head: RequestHead,
) -> Next<Wire<R::Stream>> {
    #[cfg(feature = "test-hooks")]
    if head.header("x-ringside-test-panic").is_some() {
        panic!("test hook: x-ringside-test-panic");
    }
    let started = Instant::now();
    let counted = (at.conn.bytes_in.get(), at.conn.bytes_out.get());
    // A local answer can keep the connection only if no request body is left unread.
    let keep = match (
        !at.closing && head.keep_alive() && head.body().is_empty(),
        head.version(),
    ) {
        (false, _) => LocalConn::Close,
        (true, Version::Http10) => LocalConn::KeepAlive10,
        (true, Version::Http11) => LocalConn::Keep,
    };
    let rec = Finish {
        at,
        started,
        counted,
    };
    // Shed first: an overloaded listener spends nothing more on the request.
    let _slot = match at.conn.load().admit_request(at.spec.max_requests) {
        Ok(slot) => slot,
        Err(_) => {
            shed::count_shed(!at.w.opts.no_metrics, &at.spec.name);
            let next = answer_retry(down, at, 503, "overloaded", keep, Some(1)).await;
            rec.record(&head, NONE, NONE, Tried::NONE, 503, None);
            return next;
        }
    };
    // Nothing visibly invalid reaches an upstream: the path the routes match is the one the
    // upstream receives, and body bytes already in hand must frame correctly.
    if let Err(reason) = normalize(&mut head, at.spec, buf) {
        let next = answer(down, at, 400, reason, LocalConn::Close).await;
        rec.record(&head, NONE, NONE, Tried::NONE, 400, None);
        return next;
    }
    let ListenerKind::Http { routes } = &at.spec.kind else {
        return Next::Close;
    };
    let trace = trace::context(&head, at.w.opts.start_traces);
    let Some(route) = routes.find(&View(&head)) else {
        let next = answer(down, at, 404, "no route", keep).await;
        rec.record(&head, NONE, NONE, Tried::NONE, 404, trace.as_deref());
        return next;
    };
    if !authz::admits_request(at.spec, route, at.conn) {
        let next = answer(down, at, 403, "forbidden by authz", keep).await;
        rec.record(&head, &route.name, NONE, Tried::NONE, 403, trace.as_deref());
        return next;
    }
    if let Err(secs) = rate::admit(&at.spec.name, route) {
        let next = answer_retry(down, at, 429, "rate limited", keep, Some(secs)).await;
        rec.record(&head, &route.name, NONE, Tried::NONE, 429, trace.as_deref());
        return next;
    }
    let cluster = at.snap.cluster(route.pick_cluster(fastrand::u32(..)));
    let mut extra = trace::started_field(&head, trace.as_deref());
    if let Some(xfcc) = at.conn.tls.get().and_then(|t| t.xfcc.as_deref()) {
        extra.push((http1::XFCC, xfcc.as_bytes()));
    }
    // Only the translation to HTTP/2 needs the client's address as text.
    let client_ip = match cluster.protocol {
        UpstreamProtocol::Http2 => at.peer.ip().to_string(),
        UpstreamProtocol::Http1 => String::new(),
    };
    let x = Exchange {
        w: at.w,
        peer: at.peer,
        client_ip: &client_ip,
        conn: at.conn,
        cluster,
        retry: exchange::policy(route, cluster),
        deadline: Deadline {
            at: started + route.timeout,
            grpc: false,
            stall: route.timeout,
        },
        send: send_stall(at),
        pace: Some(Pace {
            pace: at.spec.body_pace,
            start: started,
            listener: &at.spec.name,
            metrics: !at.w.opts.no_metrics,
        }),
        listener: &at.spec.name,
        closing: at.closing,
        extra: extra.as_slice(),
        endpoint: Default::default(),
        attempts: Default::default(),
    };
    let res = match cluster.protocol {
        UpstreamProtocol::Http2 => h1_h2::proxy::<R>(&x, down, buf, &head).await,
        UpstreamProtocol::Http1 => h1_h1::proxy::<R>(&x, down, buf, &head).await,
    };
    let (status, next) = match res {
        Ok((done, next)) => (done.status, next),
        Err(Failure::Before(e)) => {
            tracing::debug!(peer = %at.peer, route = %route.name, cluster = %cluster.name, error = %e, "request failed");
            if matches!(
                e,
                crate::core::error::ProxyError::Timeout
                    | crate::core::error::ProxyError::AttemptTimeout
            ) {
                at.w.stats.cluster(&cluster.name).timeouts.increment(1);
            }
            // The request body may be half-read: only a bodiless request keeps the connection.
            (
                e.status(),
                answer(down, at, e.status(), e.label(), keep).await,
            )
        }
        Err(Failure::After(done, e)) => {
            tracing::debug!(peer = %at.peer, route = %route.name, cluster = %cluster.name, error = %e, "response aborted");
            (done.status, Next::Close)
        }
        // 499, as nginx counts a client that went away before the response.
        Err(Failure::Cancelled) => (499, Next::Close),
    };
    rec.record(
        &head,
        &route.name,
        &cluster.name,
        x.tried(),
        status,
        trace.as_deref(),
    );
    next
}

/// Records the request once it is answered.
struct Finish<'a, 'b, R: Rt> {
    at: &'a At<'b, R>,
    started: Instant,
    /// The connection's byte counts when the request began.
    counted: (u64, u64),
}

impl<R: Rt> Finish<'_, '_, R> {
    fn record(
        &self,
        head: &RequestHead,
        route: &str,
        cluster: &str,
        upstream: Tried,
        status: u16,
        trace: Option<&str>,
    ) {
        let conn = self.at.conn;
        let info = RequestInfo {
            method: head.method(),
            path: head.path(),
            host: head.host(),
            peer_identity: conn.peer_identity().map(|p| p.display()),
        };
        let r = Record {
            listener: &self.at.spec.name,
            route,
            cluster,
            upstream,
            status,
            grpc_status: None,
            started: self.started,
            bytes: (
                conn.bytes_in.get() - self.counted.0,
                conn.bytes_out.get() - self.counted.1,
            ),
            trace,
        };
        exchange::record(self.at.w, self.at.peer, Some(info), &r);
    }
}

/// Normalises the request's path (per the listener) and checks chunked body bytes in hand.
/// `Err`: the reason for a 400.
fn normalize(
    head: &mut RequestHead,
    spec: &ListenerSpec,
    buf: &BytesMut,
) -> Result<(), &'static str> {
    match path::normalize(head.target(), &spec.path_normalization) {
        Ok(Some(p)) => head.set_target(p),
        Ok(None) => {}
        Err(path::PathError::BadPercent) => return Err("invalid percent-encoding in path"),
        Err(path::PathError::EscapedSlash) => return Err("encoded slash in path"),
    }
    if head.body() == BodyKind::Chunked && http1::check_in_hand(buf).is_err() {
        return Err("invalid request body");
    }
    Ok(())
}

async fn answer<R: Rt, S: Stream, T>(
    down: &mut S,
    at: &At<'_, R>,
    status: u16,
    detail: &str,
    keep: LocalConn,
) -> Next<T> {
    answer_retry(down, at, status, detail, keep, None).await
}

/// [`answer`] with `Retry-After: SECONDS` (429, 503). Bounded by the send stall like every
/// response: a client that pipelines without reading is cut here too.
async fn answer_retry<R: Rt, S: Stream, T>(
    down: &mut S,
    at: &At<'_, R>,
    status: u16,
    detail: &str,
    keep: LocalConn,
    retry_after: Option<u64>,
) -> Next<T> {
    let resp = local::response_retry(status, detail, keep, retry_after);
    at.conn.add_out(resp.len() as u64);
    match send_stall(at).write::<R, _>(down, resp).await {
        Ok(()) if keep != LocalConn::Close => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// How long a response on this connection may wait on the client.
fn send_stall<'a, R: Rt>(at: &At<'a, R>) -> SendStall<'a> {
    SendStall {
        limit: at.spec.send_stall,
        listener: &at.spec.name,
        metrics: !at.w.opts.no_metrics,
        conn: None,
    }
}

/// The codec's request head as the route table sees it.
struct View<'a>(&'a RequestHead);

impl RequestView for View<'_> {
    fn method(&self) -> &str {
        self.0.method()
    }
    fn host(&self) -> Option<&str> {
        self.0.host()
    }
    fn path(&self) -> &str {
        // An asterisk-form OPTIONS is about the server as a whole: the catch-all route's.
        match self.0.path() {
            "*" => "/",
            p => p,
        }
    }
    fn header(&self, lowercase_name: &str) -> Option<&[u8]> {
        self.0.header(lowercase_name)
    }
}
