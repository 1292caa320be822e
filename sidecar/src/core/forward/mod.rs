//! HTTP/1.1 reverse proxying: one downstream connection, request after request.
//!
//! A request's path: read head (strict codec) → route (current snapshot) → pick cluster and
//! endpoint → pooled or new upstream connection → head and body upstream → response head and
//! body downstream → upstream connection back to the pool. Requests are handled one at a time,
//! so pipelined requests are answered in order by construction.
//!
//! Between requests the connection holds no buffer: it waits for readability first (see
//! `core::rt`), which is what keeps an idle keep-alive connection well under a KiB.

mod body;
mod local;
mod to_h2;
pub(crate) mod trace;
pub(crate) mod upstream;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use control::snapshot::{ListenerKind, ListenerSpec, Snapshot};
use control::RequestView;

use super::access_log::Entry;
use super::conns::{Conn, Protocol};
use super::detect::{self, Sniffed};
use super::error::ProxyError;
use super::h2;
use super::http1::{
    self, BodyKind, DownstreamOpts, Limits, RequestHead, ResponseHead, UpstreamOpts, Version,
};
use super::rt::{read_by, ReadError, ReadHalf, Rt, WriteHalf};
use super::stats::NONE;
use super::tunnel;
use super::worker::Worker;
use body::RelayError;
pub use body::{relay, H1Sink, RelayError as BodyError, Sink};
pub use local::reason;

/// First read for a request head: most heads fit, and it grows on demand to the limit.
const HEAD_CHUNK: usize = 4 * 1024;

/// What the connection does after an exchange.
enum Next<S> {
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

pub async fn serve<R: Rt>(
    w: &Worker<R>,
    mut down: R::Stream,
    peer: SocketAddr,
    listener: Rc<str>,
    conn: &Conn,
) {
    // Empty `BytesMut::new()` owns no allocation: an idle connection costs no buffer.
    let mut buf = BytesMut::new();
    let mut first = true;
    loop {
        // The only state an idle connection keeps: waiting for the next request's first byte.
        // Everything after it is one boxed future per request, so the connection's own future
        // stays small (see `connection_future_stays_small`).
        if buf.is_empty() {
            let snap = w.snapshot();
            let Some(spec) = snap.listener(&listener) else {
                return;
            };
            // A new connection must send its head promptly (slowloris); a kept-alive one may idle.
            let wait = if first {
                spec.header_read_timeout
            } else {
                spec.idle_timeout
            };
            drop(snap);
            match idle_wait::<R>(w, &down, Instant::now() + wait, &listener, conn).await {
                Some(Ok(())) => {}
                _ => return,
            }
        }
        // Readiness was just confirmed (unless pipelined bytes were already buffered).
        let mut ready = buf.is_empty();
        if first {
            // Same port, two protocols: the first bytes say which (an h2c client opens with
            // the HTTP/2 preface). Boxed, like the request, to keep idle connections small.
            let deadline = Instant::now()
                + w.snapshot()
                    .listener(&listener)
                    .map_or(Duration::ZERO, |s| s.header_read_timeout);
            let sniffed = Box::pin(detect::sniff::<R, _>(
                &mut down, &mut buf, ready, deadline, conn,
            ))
            .await;
            match sniffed {
                Sniffed::Http1 => ready = false,
                Sniffed::Http2 => {
                    let preface = std::mem::take(&mut buf);
                    Box::pin(h2::server::serve(w, down, preface, peer, listener, conn)).await;
                    return;
                }
                Sniffed::Gone => return,
            }
        }
        first = false;
        let next = Box::pin(request::<R>(
            w, &mut down, &mut buf, peer, &listener, conn, ready,
        ))
        .await;
        match next {
            Next::KeepAlive => {}
            Next::Close => {
                let _ = down.shutdown_write().await;
                return;
            }
            Next::Tunnel { up, to_up, to_down } => {
                let idle = w
                    .snapshot()
                    .listener(&listener)
                    .map_or(Duration::from_secs(3600), |s| s.idle_timeout);
                conn.protocol.set(Protocol::Upgraded);
                let tunnel = Box::pin(tunnel::run::<R, _, _>(down, up, to_up, to_down, idle, conn));
                if let Err(e) = tunnel.await {
                    tracing::debug!(%peer, error = %e, "upgraded connection closed with error");
                }
                return;
            }
        }
        if buf.is_empty() {
            buf = BytesMut::new();
        }
    }
}

/// One request, from its first byte to the end of its response.
async fn request<R: Rt>(
    w: &Worker<R>,
    down: &mut R::Stream,
    buf: &mut BytesMut,
    peer: SocketAddr,
    listener: &str,
    conn: &Conn,
    ready: bool,
) -> Next<R::Stream> {
    let waiting = w.snapshot();
    let Some(spec) = waiting.listener(listener) else {
        return Next::Close;
    };
    let head = match read_head::<R>(down, buf, spec, conn, ready).await {
        Ok(Some(h)) => h,
        Ok(None) => return Next::Close,
        Err(status) => {
            let _ = down
                .write_all(local::response(status, "invalid request", true))
                .await;
            return Next::Close;
        }
    };
    // The wait for this head may have spanned a reload: route on the newest config. If the
    // reload removed this listener, answer on the config the connection knew, then close.
    let newest = w.snapshot();
    let (snap, closing) = if newest.listener(listener).is_some() {
        (newest, w.lifecycle.is_draining())
    } else {
        (waiting, true)
    };
    let Some(spec) = snap.listener(listener) else {
        return Next::Close;
    };
    conn.requests.set(conn.requests.get() + 1);
    conn.in_flight.set(true);
    let ctx = Exchange {
        w,
        snap: &snap,
        spec,
        peer,
        closing,
        conn,
        endpoint: Cell::new(None),
    };
    let next = exchange::<R>(&ctx, down, buf, head).await;
    conn.in_flight.set(false);
    next
}

/// Reads until a complete head is parsed, within the header-read timeout from the first byte.
/// `Ok(None)`: the client left mid-head (nothing to answer). `Err(status)`: answer and close.
async fn read_head<R: Rt>(
    down: &mut R::Stream,
    buf: &mut BytesMut,
    spec: &ListenerSpec,
    conn: &Conn,
    mut ready: bool,
) -> Result<Option<RequestHead>, u16> {
    let limits = Limits {
        max_header_bytes: spec.max_header_bytes,
        max_headers: spec.max_headers,
    };
    let deadline = Instant::now() + spec.header_read_timeout;
    loop {
        if ready {
            // The idle wait just saw data (or EOF): read without waiting again. Even an
            // io_uring recv completes at once, so this read can never hang.
            ready = false;
            buf.reserve(HEAD_CHUNK);
            let (res, b) = down.read(std::mem::take(buf)).await;
            *buf = b;
            match res {
                Ok(0) => return Ok(None),
                Ok(n) => conn.add_in(n as u64),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Ok(None),
            }
        }
        if !buf.is_empty() {
            match http1::parse_request(buf, &limits) {
                Ok(Some(h)) => return Ok(Some(h)),
                Ok(None) => {}
                Err(e) if !e.answerable() => {
                    tracing::debug!(error = %e, "closed: not HTTP");
                    return Ok(None);
                }
                Err(e) => {
                    tracing::debug!(error = %e, status = e.status(), "rejected request");
                    return Err(e.status());
                }
            }
        }
        let (res, b) = read_by::<R, _>(down, std::mem::take(buf), HEAD_CHUNK, deadline).await;
        *buf = b;
        match res {
            Ok(n) if n > 0 => conn.add_in(n as u64),
            Err(ReadError::Elapsed) if !buf.is_empty() => return Err(408),
            // EOF, reset, or a client that connected and never spoke: nobody to answer.
            _ => return Ok(None),
        }
    }
}

/// Waits for the next request's first bytes with no buffer held and no timer of its own: the
/// worker's housekeeping tick kicks the connection when its idle deadline passes (within a
/// tick, 250 ms), when a drain begins or when the config changes. `None`: close now.
async fn idle_wait<R: Rt>(
    w: &Worker<R>,
    down: &R::Stream,
    deadline: Instant,
    listener: &str,
    conn: &Conn,
) -> Option<std::io::Result<()>> {
    use futures_util::future::{select, Either};
    loop {
        let gone = w.lifecycle.is_draining() || w.snapshot().listener(listener).is_none();
        if gone || Instant::now() >= deadline {
            conn.set_idle_until(None);
            return None;
        }
        conn.set_idle_until(Some(deadline));
        let ready = std::pin::pin!(down.readable());
        match select(ready, conn.kicked()).await {
            Either::Left((r, _)) => {
                conn.set_idle_until(None);
                return Some(r);
            }
            Either::Right(((), _)) => continue,
        }
    }
}

/// What one exchange needs to know about its connection and config.
struct Exchange<'a, R: Rt> {
    w: &'a Worker<R>,
    snap: &'a Arc<Snapshot>,
    spec: &'a ListenerSpec,
    peer: SocketAddr,
    /// The connection must close after this response (drain, or its listener was removed).
    closing: bool,
    conn: &'a Conn,
    /// The upstream endpoint, once one was chosen (for the access log).
    endpoint: Cell<Option<SocketAddr>>,
}

/// Routes and proxies one request; answers locally when it cannot be proxied.
async fn exchange<R: Rt>(
    ctx: &Exchange<'_, R>,
    down: &mut R::Stream,
    buf: &mut BytesMut,
    head: RequestHead,
) -> Next<R::Stream> {
    let Exchange {
        w,
        snap,
        spec,
        peer,
        closing,
        conn,
        ..
    } = *ctx;
    #[cfg(feature = "test-hooks")]
    if head.header("x-ringside-test-panic").is_some() {
        panic!("test hook: x-ringside-test-panic");
    }
    let started = Instant::now();
    let counted = (conn.bytes_in.get(), conn.bytes_out.get());
    let trace = trace::context(&head, w.opts.start_traces);
    // A local answer can keep the connection only if no request body is left unread.
    let can_keep = !closing && head.keep_alive() && head.body().is_empty();
    let ListenerKind::Http { routes } = &spec.kind else {
        return Next::Close;
    };
    let Some(route) = routes.find(&View(&head)) else {
        let next = answer(down, conn, 404, "no route", can_keep).await;
        finish(
            ctx,
            &head,
            (NONE, NONE, 404),
            started,
            counted,
            trace.as_deref(),
        );
        return next;
    };
    let cluster = snap.cluster(route.pick_cluster(fastrand::u32(..)));
    let extra = trace::started_field(&head, trace.as_deref());
    let res = proxy::<R>(
        ctx,
        down,
        buf,
        &head,
        cluster,
        route.timeout,
        extra.as_slice(),
    )
    .await;
    let (status, next) = match res {
        Ok((status, next)) => (status, next),
        Err(Failure::BeforeResponse(e)) => {
            tracing::debug!(%peer, route = %route.name, cluster = %cluster.name, error = %e, "request failed");
            if matches!(e, ProxyError::Timeout) {
                w.stats.cluster(&cluster.name).timeouts.increment(1);
            }
            // The request body may be half-read: only a bodiless request keeps the connection.
            (
                e.status(),
                answer(down, conn, e.status(), short(&e), can_keep).await,
            )
        }
        Err(Failure::AfterResponse(status, e)) => {
            tracing::debug!(%peer, route = %route.name, cluster = %cluster.name, error = %e, "response aborted");
            (status, Next::Close)
        }
    };
    finish(
        ctx,
        &head,
        (&route.name, &cluster.name, status),
        started,
        counted,
        trace.as_deref(),
    );
    next
}

/// Records a finished exchange: metrics always, the access log when it is on.
fn finish<R: Rt>(
    ctx: &Exchange<'_, R>,
    head: &RequestHead,
    (route, cluster, status): (&str, &str, u16),
    started: Instant,
    (in0, out0): (u64, u64),
    trace: Option<&str>,
) {
    let took = started.elapsed();
    let listener = ctx.spec.name.as_str();
    if !ctx.w.opts.no_metrics {
        ctx.w.stats.request(listener, route, cluster, status, took);
    }
    let Some(log) = &ctx.w.opts.access_log else {
        return;
    };
    log.record(&Entry {
        ts_unix: super::access_log::unix_now(),
        worker: ctx.w.id,
        listener,
        peer: ctx.peer,
        method: head.method(),
        path: head.path(),
        host: head.host(),
        route,
        cluster,
        endpoint: ctx.endpoint.get(),
        status,
        duration_ms: took.as_secs_f64() * 1e3,
        bytes_in: ctx.conn.bytes_in.get() - in0,
        bytes_out: ctx.conn.bytes_out.get() - out0,
        traceparent: trace,
        grpc_status: None,
    });
}

/// How an exchange failed: before the response head went out (the client can still get a
/// status), or after (the only honest signal left is closing the connection).
enum Failure {
    BeforeResponse(ProxyError),
    /// The status already sent, and what went wrong after it.
    AfterResponse(u16, ProxyError),
}

async fn proxy<R: Rt>(
    ctx: &Exchange<'_, R>,
    down: &mut R::Stream,
    buf: &mut BytesMut,
    head: &RequestHead,
    cluster: &control::snapshot::ClusterSpec,
    timeout: Duration,
    extra: &[(&str, &[u8])],
) -> Result<(u16, Next<R::Stream>), Failure> {
    use Failure::BeforeResponse as Before;
    let Exchange {
        w,
        peer,
        closing,
        conn,
        ..
    } = *ctx;
    if cluster.protocol == control::model::UpstreamProtocol::Http2 {
        return to_h2::proxy::<R>(ctx, down, buf, head, cluster, timeout, extra).await;
    }
    let deadline = Instant::now() + timeout;
    let upgrade = head.upgrade().is_some();
    let mut out = BytesMut::with_capacity(1024);
    head.encode_upstream(
        &mut out,
        &UpstreamOpts {
            client_ip: peer.ip(),
            forward_expect: false,
            keep_upgrade: upgrade,
            proto: "http",
            extra,
        },
    );
    let encoded = out.freeze();

    // Connect, send the head, and (for bodiless requests) wait for the response head. A
    // pooled connection that turns out dead gets one retry on a fresh one; a request whose
    // body has started streaming cannot be replayed, so it gets none.
    let replayable = head.body().is_empty();
    let mut fresh = false;
    let (mut up, resp, mut ubuf) = loop {
        let mut up = upstream::acquire::<R>(w, cluster, fresh, replayable)
            .await
            .map_err(Before)?;
        ctx.endpoint.set(Some(up.addr));
        if let Err(e) = up.stream.write_all(encoded.clone()).await {
            if up.reused && !fresh {
                fresh = true;
                continue;
            }
            return Err(Before(ProxyError::UpstreamIo(e)));
        }
        if head.expect_continue() && !head.body().is_empty() {
            down.write_all(Bytes::from_static(local::CONTINUE))
                .await
                .map_err(|e| Before(ProxyError::DownstreamIo(e)))?;
        }
        if !head.body().is_empty() {
            let mut sink = H1Sink::new(&mut up.stream, head.body());
            let sent = body::relay::<R, _, _>(down, buf, &mut sink, head.body(), timeout)
                .await
                .map_err(|e| Before(request_body_error(e)))?;
            conn.add_in(sent);
        }
        let mut ubuf = BytesMut::new();
        let interim = Some(&mut *down);
        match read_response_head::<R, _>(
            &mut up.stream,
            &mut ubuf,
            head.is_head(),
            deadline,
            interim,
        )
        .await
        {
            Ok(resp) => break (up, resp, ubuf),
            Err(ProxyError::UpstreamClosed)
                if up.reused && replayable && !fresh && ubuf.is_empty() =>
            {
                fresh = true;
            }
            Err(e) => return Err(Before(e)),
        }
    };

    if resp.status() == 101 {
        if !upgrade {
            return Err(Before(ProxyError::UpstreamProtocol(
                "101 to a request that did not ask to upgrade".into(),
            )));
        }
        let mut out = BytesMut::with_capacity(256);
        resp.encode_downstream(
            &mut out,
            &DownstreamOpts {
                close: false,
                body: BodyKind::Empty,
                keep_upgrade: true,
            },
        );
        down.write_all(out.freeze())
            .await
            .map_err(|e| Failure::AfterResponse(101, ProxyError::DownstreamIo(e)))?;
        // Only now, with the upstream's 101 seen, do the connections become a tunnel.
        return Ok((
            101,
            Next::Tunnel {
                up: up.stream,
                to_up: std::mem::take(buf).freeze(),
                to_down: std::mem::take(&mut ubuf).freeze(),
            },
        ));
    }

    // Checked again here: a drain that began while this request was in flight should still
    // tell this client to go.
    let client_keeps = head.keep_alive() && !closing && !w.lifecycle.is_draining();
    let out_body = match (resp.body(), head.version()) {
        (BodyKind::Chunked, Version::Http10) => BodyKind::CloseDelimited,
        (k, _) => k,
    };
    let close = !client_keeps || out_body == BodyKind::CloseDelimited;
    let mut out = BytesMut::with_capacity(1024);
    resp.encode_downstream(
        &mut out,
        &DownstreamOpts {
            close,
            body: out_body,
            keep_upgrade: false,
        },
    );
    let status = resp.status();
    let after = |e| Failure::AfterResponse(status, e);
    // A small response usually arrives whole with its head: send head and body bytes in one
    // write instead of two.
    let mut body_in = resp.body();
    if let (BodyKind::Length(n), true) = (body_in, out_body == body_in) {
        let take = (ubuf.len() as u64).min(n) as usize;
        out.extend_from_slice(&ubuf.split_to(take));
        body_in = BodyKind::Length(n - take as u64);
    }
    conn.add_out(out.len() as u64);
    down.write_all(out.freeze())
        .await
        .map_err(|e| after(ProxyError::DownstreamIo(e)))?;
    let sent = if body_in.is_empty() {
        0
    } else {
        let mut sink = H1Sink::new(down, out_body);
        body::relay::<R, _, _>(&mut up.stream, &mut ubuf, &mut sink, body_in, timeout)
            .await
            .map_err(|e| after(response_body_error(e)))?
    };
    conn.add_out(sent);

    if resp.keep_alive() && ubuf.is_empty() {
        w.pool
            .checkin(up.addr, up.stream, cluster.max_idle_per_endpoint);
    }
    Ok((status, if close { Next::Close } else { Next::KeepAlive }))
}

/// Reads the final response head, forwarding any 1xx interim responses to the client.
/// `interim`: where 1xx responses go (an HTTP/1 client); `None` drops them (HTTP/2 clients,
/// which the proxy does not send informational responses to).
pub(crate) async fn read_response_head<R: Rt, W: WriteHalf>(
    up: &mut R::Stream,
    ubuf: &mut BytesMut,
    is_head: bool,
    deadline: Instant,
    mut interim: Option<&mut W>,
) -> Result<ResponseHead, ProxyError> {
    let limits = Limits {
        max_header_bytes: 64 * 1024,
        max_headers: 200,
    };
    loop {
        if !ubuf.is_empty() {
            match http1::parse_response(ubuf, is_head, &limits) {
                Ok(Some(r)) if r.is_informational() => {
                    let Some(down) = interim.as_deref_mut() else {
                        continue;
                    };
                    let mut out = BytesMut::with_capacity(128);
                    r.encode_downstream(
                        &mut out,
                        &DownstreamOpts {
                            close: false,
                            body: BodyKind::Empty,
                            keep_upgrade: false,
                        },
                    );
                    down.write_all(out.freeze())
                        .await
                        .map_err(ProxyError::DownstreamIo)?;
                    continue;
                }
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(ProxyError::UpstreamProtocol(e.to_string())),
            }
        }
        let (res, b) = read_by::<R, _>(up, std::mem::take(ubuf), HEAD_CHUNK, deadline).await;
        *ubuf = b;
        match res {
            Ok(0) => return Err(ProxyError::UpstreamClosed),
            Ok(_) => {}
            Err(ReadError::Elapsed) => return Err(ProxyError::Timeout),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(ProxyError::UpstreamClosed)
            }
            Err(ReadError::Io(e)) => return Err(ProxyError::UpstreamIo(e)),
        }
    }
}

pub(super) fn request_body_error(e: RelayError) -> ProxyError {
    match e {
        RelayError::Read(e) => ProxyError::DownstreamIo(e),
        RelayError::Write(e) => ProxyError::UpstreamIo(e),
        RelayError::Truncated => ProxyError::DownstreamClosed,
        RelayError::Framing(m) => ProxyError::DownstreamProtocol(m),
        RelayError::Stalled(_) => ProxyError::DownstreamProtocol("request body stalled".into()),
    }
}

fn response_body_error(e: RelayError) -> ProxyError {
    match e {
        RelayError::Read(e) => ProxyError::UpstreamIo(e),
        RelayError::Write(e) => ProxyError::DownstreamIo(e),
        RelayError::Truncated => ProxyError::UpstreamClosed,
        RelayError::Framing(m) => ProxyError::UpstreamProtocol(m),
        RelayError::Stalled(_) => ProxyError::Timeout,
    }
}

pub(crate) fn short(e: &ProxyError) -> &'static str {
    match e {
        ProxyError::NoRoute => "no route",
        ProxyError::NoEndpoint => "no endpoint",
        ProxyError::Connect { .. } | ProxyError::ConnectTimeout(_) => "upstream connect failed",
        ProxyError::UpstreamClosed | ProxyError::UpstreamIo(_) => "upstream reset",
        ProxyError::UpstreamProtocol(_) => "invalid upstream response",
        ProxyError::Timeout => "upstream timeout",
        ProxyError::DownstreamIo(_)
        | ProxyError::DownstreamClosed
        | ProxyError::DownstreamProtocol(_) => "invalid request body",
    }
}

async fn answer<S: WriteHalf, T>(
    down: &mut S,
    conn: &Conn,
    status: u16,
    detail: &str,
    keep: bool,
) -> Next<T> {
    let resp = local::response(status, detail, !keep);
    conn.add_out(resp.len() as u64);
    match down.write_all(resp).await {
        Ok(()) if keep => Next::KeepAlive,
        _ => Next::Close,
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
        self.0.path()
    }
    fn header(&self, lowercase_name: &str) -> Option<&[u8]> {
        self.0.header(lowercase_name)
    }
}
