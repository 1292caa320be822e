//! HTTP/2 client to an HTTP/2 upstream (gRPC's path): the stream is relayed frame for frame in
//! both directions at once, so every gRPC streaming kind works, trailers and resets included.
//! Each side's data moves only into window the other side granted.
//!
//! Until the response head arrives, the request body's first [`REPLAY_LIMIT`] bytes are also
//! kept: a stream the upstream refused (REFUSED_STREAM, or above a GOAWAY's last_stream_id) is
//! then opened again on a fresh connection and replayed, whatever its method, because it was
//! provably never processed (RFC 9113 §8.7).

use std::cell::Cell;
use std::pin::pin;

use bytes::Bytes;
use futures_util::future::{select, Either};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, Request};

use super::exchange::{idempotent, Done, Exchange, Failure, Replay};
use super::h2_open::open;
use crate::core::bridge::headers;
use crate::core::bridge::pump::{self, PumpError};
use crate::core::bridge::stall::Pace;
use crate::core::error::ProxyError;
use crate::core::h2::grpc;
use crate::core::rt::{timeout, Rt};
use crate::core::up::h2::{next_head, stream_error, Head};

/// Request body bytes kept for a replay until the response head arrives (gRPC unary calls and
/// most API requests fit). A longer body can no longer be replayed.
pub const REPLAY_LIMIT: usize = 64 * 1024;

pub async fn proxy<R: Rt>(
    x: &Exchange<'_, R>,
    mut parts: http::request::Parts,
    body: RecvStream,
    respond: &mut SendResponse<Bytes>,
) -> Result<Done, Failure> {
    headers::add_forwarded(&mut parts.headers, x.client_ip, x.conn.scheme());
    headers::insert_extra(&mut parts.headers, x.extra);
    let idem = idempotent(parts.method.as_str());
    let req = Request::from_parts(parts, ());
    let mut src = Source {
        body,
        held: Vec::new(),
        held_len: 0,
        ended: false,
        trailers: None,
        moved: 0,
    };
    // The response head arrived: replays are over, keep nothing more.
    let answered = Cell::new(false);
    // Part of the body was not kept: no replay is possible any more.
    let overflowed = Cell::new(false);
    let mut fresh = false;
    loop {
        // HEADERS end the stream only for a request with no body at all: on a replay, the
        // body already read is sent again from what was held.
        let end = src.held.is_empty() && src.trailers.is_none() && src.body.is_end_stream();
        let mut opened = open::<R>(x, &req, end, fresh)
            .await
            .map_err(Failure::Before)?;
        let outcome = {
            let request_side = request_side::<R>(
                &mut src,
                &answered,
                &overflowed,
                &mut opened.send,
                end,
                x.pace.as_ref(),
            );
            let held = Held {
                answered: &answered,
                overflowed: &overflowed,
                idempotent: idem,
            };
            let response_side = response_side::<R>(x, &mut opened.response, respond, held);
            match select(pin!(request_side), pin!(response_side)).await {
                Either::Left((gone, _)) => Err(gone.err()),
                Either::Right((r, _)) => Ok(r),
            }
        };
        match outcome {
            Err(_) => return Err(Failure::Cancelled),
            Ok(Err(Failure::Before(e))) => {
                let facts = Replay {
                    idempotent: idem,
                    body_held: !overflowed.get(),
                    reused: true,
                };
                if x.replay_after(&e, facts).await {
                    fresh = true;
                    continue;
                }
                return Err(Failure::Before(e));
            }
            Ok(Ok(Some(mut done))) => {
                done.bytes_in = src.moved;
                return Ok(done);
            }
            // Retried by policy: the next attempt replays what is held.
            Ok(Ok(None)) => continue,
            Ok(Err(f)) => return Err(f),
        }
    }
}

/// The client's request body, read once and kept for replays while that is still possible.
struct Source {
    body: RecvStream,
    held: Vec<Bytes>,
    held_len: usize,
    ended: bool,
    trailers: Option<HeaderMap>,
    moved: u64,
}

/// Sends the request body upstream (first what a previous attempt already read), for as long
/// as it lasts. Completes only if the client reset its stream (`Err(())`); otherwise it stays
/// pending and the response side decides.
async fn request_side<R: Rt>(
    src: &mut Source,
    answered: &Cell<bool>,
    overflowed: &Cell<bool>,
    dst: &mut SendStream<Bytes>,
    headers_ended: bool,
    pace: Option<&Pace<'_>>,
) -> Result<(), ()> {
    if headers_ended {
        return std::future::pending().await;
    }
    for chunk in &src.held {
        if pump::send_data::<R>(dst, chunk.clone(), None)
            .await
            .is_err()
        {
            return std::future::pending().await;
        }
    }
    if !src.ended {
        loop {
            let next =
                pump::paced::<R, _>(pace, src.moved, pump::recv_watching(&mut src.body, dst));
            let chunk = match next.await.and_then(|r| r.map_err(PumpError::Recv)) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                // The client reset its stream, its connection died, or its body fell behind
                // its pace: cancel upstream (the upstream never sees the body end).
                Err(PumpError::Recv(e)) => {
                    dst.send_reset(e.reason().unwrap_or(h2::Reason::CANCEL));
                    return Err(());
                }
                // The upstream stopped reading (it answered early, or reset): the response
                // side sees that and reports it.
                Err(_) => return std::future::pending().await,
            };
            let n = chunk.len();
            src.moved += n as u64;
            if answered.get() || src.held_len + n > REPLAY_LIMIT {
                overflowed.set(overflowed.get() || !answered.get());
                src.held = Vec::new();
            } else if !overflowed.get() {
                src.held.push(chunk.clone());
                src.held_len += n;
            }
            let _ = src.body.flow_control().release_capacity(n);
            if pump::send_data::<R>(dst, chunk, None).await.is_err() {
                return std::future::pending().await;
            }
        }
        match src.body.trailers().await {
            Ok(t) => src.trailers = t,
            Err(e) => {
                dst.send_reset(e.reason().unwrap_or(h2::Reason::CANCEL));
                return Err(());
            }
        }
        src.ended = true;
    }
    let _ = match src.trailers.clone() {
        Some(t) => dst.send_trailers(t),
        None => dst.send_data(Bytes::new(), true),
    };
    std::future::pending().await
}

/// What the response side knows of the request for a retry by status.
struct Held<'a> {
    /// Set once the response head goes to the client: the body is no longer kept.
    answered: &'a Cell<bool>,
    /// Part of the body was not kept: no replay is possible any more.
    overflowed: &'a Cell<bool>,
    idempotent: bool,
}

/// Waits for the response head (within the deadline, unless the client gives up first), then
/// relays the response, trailers and resets included. `Ok(None)`: the cluster's retry policy
/// retries this response's status; it was dropped unread (its stream reset).
async fn response_side<R: Rt>(
    x: &Exchange<'_, R>,
    response: &mut h2::client::ResponseFuture,
    respond: &mut SendResponse<Bytes>,
    held: Held<'_>,
) -> Result<Option<Done>, Failure> {
    let resp = loop {
        // The next head within the deadline, unless the client gives up first.
        let waited = {
            let head = pin!(timeout::<R, _>(x.head_left(), next_head(response)));
            let gone = pin!(pump::client_reset(respond));
            match select(head, gone).await {
                Either::Left((r, _)) => Some(r),
                Either::Right(_) => None,
            }
        };
        match waited {
            Some(Ok(Ok(Head::Final(r)))) => break r,
            // RFC 9110 §15.2: forward 1xx (RFC 9113 §8.1: as informational HEADERS).
            Some(Ok(Ok(Head::Informational(r)))) => {
                if respond.send_informational(r).is_err() {
                    return Err(Failure::Cancelled);
                }
            }
            Some(Ok(Err(e))) => return Err(Failure::Before(stream_error(e, true))),
            Some(Err(_)) => return Err(Failure::Before(x.timed_out(ProxyError::Timeout))),
            None => return Err(Failure::Cancelled),
        }
    };
    let status = resp.status().as_u16();
    x.responded(status);
    let facts = Replay {
        idempotent: held.idempotent,
        body_held: !held.overflowed.get(),
        reused: true,
    };
    // The request side may still be reading the body while the retry waits its backoff: a
    // body that outgrew what is held since cannot be replayed after all.
    if x.retry_status(status, facts).await && !held.overflowed.get() {
        return Ok(None);
    }
    // A Trailers-Only gRPC answer (its status in the head, the stream ended) with a code the
    // route's policy names: the call is sent again, whatever its method.
    let trailers_only = resp.body().is_end_stream();
    if let Some(code) = grpc::grpc_status(resp.headers())
        .filter(|_| trailers_only)
        .and_then(|c| c.parse::<u8>().ok())
    {
        if x.retry_grpc(code, facts).await && !held.overflowed.get() {
            return Ok(None);
        }
    }
    held.answered.set(true);
    let (mut rparts, mut rbody) = resp.into_parts();
    if headers::length_forbidden(rparts.status.as_u16()) {
        rparts.headers.remove(http::header::CONTENT_LENGTH);
    }
    let mut done = Done::status(rparts.status.as_u16());
    done.grpc_status = grpc::grpc_status(&rparts.headers).map(str::to_owned);
    let rend = rbody.is_end_stream();
    let Ok(mut down_send) = respond.send_response(http::Response::from_parts(rparts, ()), rend)
    else {
        return Err(Failure::Cancelled);
    };
    if rend {
        return Ok(Some(done));
    }
    match pump::h2_to_h2::<R>(&mut rbody, &mut down_send, Some(&x.send)).await {
        Ok((n, trailers)) => {
            done.bytes_out = n;
            if let Some(g) = trailers.as_ref().and_then(grpc::grpc_status) {
                done.grpc_status = Some(g.to_owned());
            }
            Ok(Some(done))
        }
        Err(PumpError::Recv(e)) => {
            if x.deadline.grpc && x.deadline.passed() {
                // The call's deadline passed: DEADLINE_EXCEEDED wins over whatever reset raced
                // it (gRPC's PROTOCOL-HTTP2), so the client gets trailers, not the reset.
                let mut t = HeaderMap::new();
                t.insert("grpc-status", http::HeaderValue::from_static("4"));
                t.insert(
                    "grpc-message",
                    http::HeaderValue::from_static("deadline exceeded"),
                );
                let _ = down_send.send_trailers(t);
                done.grpc_status = Some("4".to_owned());
            } else {
                // The upstream reset its stream: tell the client the same.
                let reason = e.reason().unwrap_or(h2::Reason::INTERNAL_ERROR);
                down_send.send_reset(reason);
            }
            Err(Failure::After(done, stream_error(e, true)))
        }
        Err(PumpError::Send(_) | PumpError::Write(_)) => Err(Failure::Cancelled),
    }
}
