//! HTTP/1.1 client to an HTTP/1.1 upstream: the head re-encoded once, sent on a pooled or new
//! connection, the body relayed while watching for an early response, the response relayed
//! back, and the connection pooled when both sides allow it.

use crate::core::wire::Wire;
use std::pin::pin;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::{select, Either};

use super::exchange::{idempotent, Done, Exchange, Failure, Next, Replay};
use crate::core::bridge::gone::{client_gone, Held1xx, Watching};
use crate::core::bridge::relay::{self, H1Sink, RelayError, Watched};
use crate::core::error::ProxyError;
use crate::core::http1::{
    scratch, BodyKind, DownstreamOpts, RequestHead, ResponseHead, UpstreamOpts, Version, CONTINUE,
};
use crate::core::rt::Rt;
use crate::core::up::h1::{read_response_head, send_head, Upstream, HEAD_CHUNK};

/// Proxies one request whose head was read from `down` (`buf` holds what followed it).
pub async fn proxy<R: Rt>(
    x: &Exchange<'_, R>,
    down: &mut Wire<R::Stream>,
    buf: &mut BytesMut,
    head: &RequestHead,
) -> Result<(Done, Next<Wire<R::Stream>>), Failure> {
    use Failure::Before;
    let upgrade = head.upgrade().is_some();
    // Into the worker's head buffer (no allocation): held for the whole exchange, for a replay.
    let encoded = scratch::encode(1024, |out| {
        head.encode_upstream(
            out,
            &UpstreamOpts {
                client_ip: x.peer.ip(),
                forward_expect: false,
                keep_upgrade: upgrade,
                proto: x.conn.scheme(),
                extra: x.extra,
            },
        )
    })
    .freeze();
    let replay = Replay {
        idempotent: idempotent(head.method()),
        body_held: head.body().is_empty(),
        reused: false,
    };
    let mut fresh = false;
    let (mut up, resp, mut ubuf, early) = loop {
        let mut up = x.acquire_h1(replay, fresh).await.map_err(Before)?;
        match attempt::<R>(x, down, buf, head, &encoded, &mut up).await {
            Ok(Some((resp, ubuf, early))) => {
                x.responded(resp.status());
                let facts = Replay {
                    reused: up.reused,
                    ..replay
                };
                // Retried by policy: this response and its connection are dropped unread.
                if !early && x.retry_status(resp.status(), facts).await {
                    continue;
                }
                break (up, resp, ubuf, early);
            }
            // Dropping `up` closes it: the upstream sees the request cancelled.
            Ok(None) => return Err(Failure::Cancelled),
            Err(e) => {
                let facts = Replay {
                    reused: up.reused,
                    ..replay
                };
                if x.replay_after(&e, facts).await {
                    fresh = true;
                    continue;
                }
                return Err(Before(e));
            }
        }
    };
    if resp.status() == 101 {
        return tunnel(x, down, buf, up, &resp, ubuf, upgrade).await;
    }
    let (done, close) = relay_response(x, down, head, &resp, &mut up, &mut ubuf, early).await?;
    if !early && resp.keep_alive() && ubuf.is_empty() {
        x.w.pool
            .checkin(up.addr, up.stream, up.slot, x.cluster.max_idle_per_endpoint);
    }
    Ok((done, if close { Next::Close } else { Next::KeepAlive }))
}

/// Sends the response head (with its first body bytes when they came with it), then the rest
/// of the body, with framing re-derived for this client; whether the client must be closed.
async fn relay_response<R: Rt>(
    x: &Exchange<'_, R>,
    down: &mut Wire<R::Stream>,
    head: &RequestHead,
    resp: &ResponseHead,
    up: &mut Upstream<Wire<R::Stream>>,
    ubuf: &mut BytesMut,
    early: bool,
) -> Result<(Done, bool), Failure> {
    // An early response leaves the rest of the request body unread on both connections.
    let client_keeps = !early && head.keep_alive() && !x.must_close();
    let out_body = match (resp.body(), head.version()) {
        (BodyKind::Chunked, Version::Http10) => BodyKind::CloseDelimited,
        (k, _) => k,
    };
    let close = !client_keeps || out_body == BodyKind::CloseDelimited;
    let mut done = Done::status(resp.status());
    // A small response usually arrives whole with its head: one write for both.
    let take = match (resp.body(), out_body == resp.body()) {
        (BodyKind::Length(n), true) => (ubuf.len() as u64).min(n) as usize,
        _ => 0,
    };
    let body_in = match resp.body() {
        BodyKind::Length(n) => BodyKind::Length(n - take as u64),
        k => k,
    };
    // Into the worker's head buffer (no allocation), with the first body bytes.
    let out = scratch::encode(1024 + take, |out| {
        resp.encode_downstream(
            out,
            &DownstreamOpts {
                close,
                keep_alive: !close && head.version() == Version::Http10,
                body: out_body,
                keep_upgrade: false,
            },
        );
        out.extend_from_slice(&ubuf[..take]);
    });
    ubuf.advance(take);
    done.bytes_out = out.len() as u64;
    x.conn.add_out(out.len() as u64);
    // A client that cannot take the response left: 499, as on HTTP/2 (the caller drops `up`).
    // A client that takes none of it for `send_stall` is cut the same way (counted there).
    if x.send.write::<R, _>(down, out.freeze()).await.is_err() {
        return Err(Failure::Cancelled);
    }
    if !body_in.is_empty() {
        let mut sink = Watching::<R, _>::new(down, out_body, x.send);
        match relay::relay::<R, _, _>(&mut up.stream, ubuf, &mut sink, body_in, x.deadline.stall)
            .await
        {
            Ok(n) => {
                done.bytes_out += n;
                x.conn.add_out(n);
            }
            Err(RelayError::Gone | RelayError::Write(_)) => return Err(Failure::Cancelled),
            Err(e) => return Err(Failure::After(done, e.on_response())),
        }
    }
    Ok((done, close))
}

/// One attempt on `up`: the head, the body (stopping at an early response), then the final
/// response head. Returns the head, the bytes read past it, and whether it came early;
/// `None` when the client left while the response was awaited (the caller closes `up`).
async fn attempt<R: Rt>(
    x: &Exchange<'_, R>,
    down: &mut Wire<R::Stream>,
    buf: &mut BytesMut,
    head: &RequestHead,
    encoded: &Bytes,
    up: &mut Upstream<Wire<R::Stream>>,
) -> Result<Option<(ResponseHead, BytesMut, bool)>, ProxyError> {
    send_head(up, encoded.clone()).await?;
    let mut early = false;
    if !head.body().is_empty() {
        if head.expect_continue() {
            x.send
                .write::<R, _>(down, Bytes::from_static(CONTINUE))
                .await
                .map_err(ProxyError::DownstreamIo)?;
        }
        let mut sink = Watched(H1Sink::new(&mut up.stream, head.body()));
        let (stall, pace) = (x.deadline.stall, x.pace.as_ref());
        match relay::relay_paced::<R, _, _>(down, buf, &mut sink, head.body(), stall, pace).await {
            Ok(sent) => x.conn.add_in(sent),
            // The upstream spoke (or hung up) before taking the whole body: if what it said
            // is a response, that is the answer (RFC 9110 §15.5.14, RFC 9112 §9.5).
            Err(RelayError::Write(_)) => early = true,
            Err(e) => return Err(e.on_request()),
        }
    }
    // From the worker's buffer: no allocation for the read, none to split the head off.
    let mut ubuf = scratch::read_buf(HEAD_CHUNK);
    let resp = match response_head::<R>(x, down, head, &mut up.stream, &mut ubuf).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => return Ok(None),
        Err(e) => Err(e),
    };
    match resp {
        Ok(r) => Ok(Some((r, ubuf, early))),
        // The body write failed and no response explains why: the upstream went away with
        // part of the body, which cannot be replayed.
        Err(ProxyError::UpstreamClosed | ProxyError::UpstreamIo(_)) if early => {
            Err(ProxyError::UpstreamIo(std::io::Error::other(
                "upstream closed while the request body was being sent",
            )))
        }
        Err(e) => Err(e),
    }
}

/// The final response head from `up`, 1xx forwarded to an HTTP/1.1 client as they come,
/// while watching the client: `None` when it left first (the read on `up` may then have been
/// dropped in flight, so the caller must close `up`: DESIGN.md §5.1).
async fn response_head<R: Rt>(
    x: &Exchange<'_, R>,
    down: &mut Wire<R::Stream>,
    head: &RequestHead,
    up: &mut Wire<R::Stream>,
    ubuf: &mut BytesMut,
) -> Result<Option<ResponseHead>, ProxyError> {
    loop {
        let mut held = Held1xx::default();
        let read =
            read_response_head::<R, _>(up, ubuf, head.is_head(), x.head_deadline(), &mut held);
        let res = match select(pin!(read), pin!(client_gone::<R, _>(&*down))).await {
            Either::Left((r, _)) => r,
            Either::Right(((), _)) => return Ok(None),
        };
        match (res, held.take()) {
            // HTTP/1.0 clients get no 1xx (RFC 9110 §15.2).
            (Err(ProxyError::DownstreamIo(_)), Some(_)) if head.version() == Version::Http10 => {}
            (Err(ProxyError::DownstreamIo(_)), Some(info)) => {
                x.send
                    .write::<R, _>(down, info)
                    .await
                    .map_err(ProxyError::DownstreamIo)?;
            }
            (r, _) => return r.map(Some).map_err(|e| x.timed_out(e)),
        }
    }
}

/// The upstream's 101: both connections become one opaque tunnel.
async fn tunnel<R: Rt>(
    x: &Exchange<'_, R>,
    down: &mut Wire<R::Stream>,
    buf: &mut BytesMut,
    up: Upstream<Wire<R::Stream>>,
    resp: &ResponseHead,
    mut ubuf: BytesMut,
    asked: bool,
) -> Result<(Done, Next<Wire<R::Stream>>), Failure> {
    if !asked {
        return Err(Failure::Before(ProxyError::UpstreamProtocol(
            "101 to a request that did not ask to upgrade".into(),
        )));
    }
    let mut out = BytesMut::with_capacity(256);
    resp.encode_downstream(
        &mut out,
        &DownstreamOpts {
            close: false,
            keep_alive: false,
            body: BodyKind::Empty,
            keep_upgrade: true,
        },
    );
    x.conn.add_out(out.len() as u64);
    if let Err(e) = x.send.write::<R, _>(down, out.freeze()).await {
        return Err(Failure::After(
            Done::status(101),
            ProxyError::DownstreamIo(e),
        ));
    }
    let next = Next::Tunnel {
        up: up.stream,
        to_up: std::mem::take(buf).freeze(),
        to_down: std::mem::take(&mut ubuf).freeze(),
    };
    Ok((Done::status(101), next))
}
