//! HTTP/2 client to an HTTP/1.1 upstream: the stream becomes one request on a pooled HTTP/1
//! connection, with framing re-derived (Content-Length when the client declared one, else
//! chunked), `:authority` as Host, 1xx responses forwarded as informational HEADERS, and
//! chunked trailers back as HTTP/2 trailers.

use crate::core::wire::Wire;
use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;

use super::exchange::{idempotent, Done, Exchange, Failure, Replay};
use crate::core::bridge::headers;
use crate::core::bridge::interim::H2Interim;
use crate::core::bridge::pump::{self, H2Sink, PumpError};
use crate::core::bridge::relay::{relay, H1Sink, RelayError, Watched};
use crate::core::error::ProxyError;
use crate::core::h2::grpc;
use crate::core::http1::{scratch, BodyKind, ResponseHead};
use crate::core::rt::Rt;
use crate::core::up::h1::{read_response_head, send_head, Upstream, HEAD_CHUNK};
use crate::core::up::h2::stream_error;

pub async fn proxy<R: Rt>(
    x: &Exchange<'_, R>,
    parts: http::request::Parts,
    mut body: RecvStream,
    respond: &mut SendResponse<Bytes>,
) -> Result<Done, Failure> {
    let framing = if body.is_end_stream() {
        BodyKind::Empty
    } else {
        match parts.headers.get(http::header::CONTENT_LENGTH) {
            // h2 already checked it is a number matching the DATA that follows.
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or(BodyKind::Chunked, BodyKind::Length),
            None => BodyKind::Chunked,
        }
    };
    let head = headers::h1_request_head(&parts, framing, x.client_ip, x.conn.scheme(), x.extra)
        .map_err(|e| {
            Failure::Before(match e {
                headers::Malformed::Connect => ProxyError::Unsupported("method not supported"),
                other => ProxyError::DownstreamProtocol(other.to_string()),
            })
        })?
        .freeze();
    let is_head = parts.method == http::Method::HEAD;
    let replay = Replay {
        idempotent: idempotent(parts.method.as_str()),
        body_held: framing.is_empty(),
        reused: false,
    };
    let mut fresh = false;
    let (mut up, resp, mut ubuf, early, sent) = loop {
        let mut up = x.acquire_h1(replay, fresh).await.map_err(Failure::Before)?;
        match attempt::<R>(x, &mut body, respond, &head, framing, is_head, &mut up).await {
            Ok(Attempt::Answered(resp, ubuf, early, sent)) => {
                x.responded(resp.status());
                let facts = Replay {
                    reused: up.reused,
                    ..replay
                };
                // Retried by policy: this response and its connection are dropped unread.
                if !early && x.retry_status(resp.status(), facts).await {
                    continue;
                }
                break (up, resp, ubuf, early, sent);
            }
            Ok(Attempt::ClientGone) => return Err(Failure::Cancelled),
            Err(e) => {
                let facts = Replay {
                    reused: up.reused,
                    ..replay
                };
                if x.replay_after(&e, facts).await {
                    fresh = true;
                    continue;
                }
                return Err(Failure::Before(e));
            }
        }
    };
    let status = resp.status();
    if status == 101 {
        return Err(Failure::Before(ProxyError::UpstreamProtocol(
            "101 to an HTTP/2 request".into(),
        )));
    }
    let h2resp = headers::h2_response(&resp)
        .map_err(|e| Failure::Before(ProxyError::UpstreamProtocol(e.to_string())))?;
    let empty = resp.body().is_empty();
    let mut done = Done::status(status);
    done.bytes_in = sent;
    done.grpc_status = grpc::grpc_status(h2resp.headers()).map(str::to_owned);
    let Ok(mut down_send) = respond.send_response(h2resp, empty) else {
        return Err(Failure::Cancelled);
    };
    if !empty {
        let mut sink = H2Sink::<R>::new(&mut down_send, Some(x.send));
        // As on HTTP/1, the route timeout bounds each body read, not the whole body.
        let relayed = relay::<R, _, _>(
            &mut up.stream,
            &mut ubuf,
            &mut sink,
            resp.body(),
            x.deadline.stall,
        )
        .await;
        if let Some(g) = sink.trailers_seen.as_ref().and_then(grpc::grpc_status) {
            done.grpc_status = Some(g.to_owned());
        }
        match relayed {
            Ok(n) => done.bytes_out = n,
            Err(RelayError::Write(_)) => return Err(Failure::Cancelled),
            Err(e) => {
                down_send.send_reset(h2::Reason::INTERNAL_ERROR);
                return Err(Failure::After(done, e.on_response()));
            }
        }
    }
    if !early && resp.keep_alive() && ubuf.is_empty() {
        x.w.pool
            .checkin(up.addr, up.stream, up.slot, x.cluster.max_idle_per_endpoint);
    }
    Ok(done)
}

/// How one attempt ended without an error.
enum Attempt {
    /// The final response head, the bytes read past it, and whether it came before the
    /// request body ended.
    /// Also the request body bytes relayed.
    Answered(ResponseHead, BytesMut, bool, u64),
    /// The client reset its stream while its body was being sent.
    ClientGone,
}

async fn attempt<R: Rt>(
    x: &Exchange<'_, R>,
    body: &mut RecvStream,
    respond: &mut SendResponse<Bytes>,
    head: &Bytes,
    framing: BodyKind,
    is_head: bool,
    up: &mut Upstream<Wire<R::Stream>>,
) -> Result<Attempt, ProxyError> {
    send_head(up, head.clone()).await?;
    let mut early = false;
    let mut sent = 0;
    if !framing.is_empty() {
        let mut sink = Watched(H1Sink::new(&mut up.stream, framing));
        // A body behind its pace ends as the client's reset would: the upstream connection
        // is closed mid-body, and the client's stream reset (CANCEL) when it is dropped.
        match pump::h2_to_sink::<R, _>(body, &mut sink, x.pace.as_ref()).await {
            Ok((n, _)) => sent = n,
            Err(PumpError::Recv(_)) => return Ok(Attempt::ClientGone),
            // The upstream answered (or hung up) before taking the whole body.
            Err(PumpError::Write(_)) => early = true,
            Err(PumpError::Send(e)) => return Err(stream_error(e, true)),
        }
    }
    // From the worker's buffer: no allocation for the read, none to split the head off.
    let mut ubuf = scratch::read_buf(HEAD_CHUNK);
    let mut interim = H2Interim(respond);
    match read_response_head::<R, _>(
        &mut up.stream,
        &mut ubuf,
        is_head,
        x.head_deadline(),
        &mut interim,
    )
    .await
    {
        Ok(r) => Ok(Attempt::Answered(r, ubuf, early, sent)),
        Err(ProxyError::UpstreamClosed | ProxyError::UpstreamIo(_)) if early => {
            Err(ProxyError::UpstreamIo(std::io::Error::other(
                "upstream closed while the request body was being sent",
            )))
        }
        Err(e) => Err(x.timed_out(e)),
    }
}
