//! HTTP/1.1 client to an HTTP/2 upstream (a cluster with `protocol: http2`): the request becomes
//! one stream on a multiplexed connection; the response comes back with HTTP/1 framing
//! re-derived (Content-Length when the upstream declared one, else chunked, with HTTP/2
//! trailers as chunked trailers).

use crate::core::wire::Wire;
use std::pin::pin;

use bytes::{Bytes, BytesMut};
use futures_util::future::{select, Either};
use h2::client::ResponseFuture;
use h2::RecvStream;
use http::{HeaderValue, Request};

use super::exchange::{idempotent, Done, Exchange, Failure, Next, Replay};
use super::h2_open::open;
use crate::core::bridge::gone::{client_gone, Held1xx, Watching};
use crate::core::bridge::headers;
use crate::core::bridge::interim::Drop1xx;
use crate::core::bridge::pump::{self, H2Sink, PumpError};
use crate::core::bridge::relay::{relay_paced, RelayError};
use crate::core::error::ProxyError;
use crate::core::http1::{BodyKind, RequestHead, Version, CONTINUE};
use crate::core::rt::{timeout, Rt};
use crate::core::up::h2::{final_response, stream_error};

pub async fn proxy<R: Rt>(
    x: &Exchange<'_, R>,
    down: &mut Wire<R::Stream>,
    buf: &mut BytesMut,
    head: &RequestHead,
) -> Result<(Done, Next<Wire<R::Stream>>), Failure> {
    use Failure::Before;
    if head.upgrade().is_some() {
        return Err(Before(ProxyError::Unsupported(
            "upgrade not supported to an HTTP/2 cluster",
        )));
    }
    let req = translate(head, x.client_ip, x.conn.scheme(), x.extra).map_err(Before)?;
    let end = head.body().is_empty();
    let replay = Replay {
        idempotent: idempotent(head.method()),
        body_held: end,
        reused: true,
    };
    let mut fresh = false;
    let (mut opened, resp, early) = loop {
        let mut opened = open::<R>(x, &req, end, fresh).await.map_err(Before)?;
        let mut early = false;
        let forward_1xx = end && head.version() != Version::Http10;
        let raced = if end {
            None
        } else {
            if head.expect_continue() {
                x.send
                    .write::<R, _>(down, Bytes::from_static(CONTINUE))
                    .await
                    .map_err(|e| Before(ProxyError::DownstreamIo(e)))?;
            }
            // The body streams up while the response is awaited: an upstream may answer
            // before the body ends (RFC 9110 §15.5.14), and then the rest is not sent.
            // Toward the upstream: no send stall (the route timeout bounds the exchange).
            let mut sink = H2Sink::<R>::new(&mut opened.send, None);
            let body = pin!(relay_paced::<R, _, _>(
                down,
                buf,
                &mut sink,
                head.body(),
                x.deadline.stall,
                x.pace.as_ref()
            ));
            // While the body streams the client connection is busy: 1xx responses are dropped
            // (the client got Ringside's own 100 Continue).
            let mut dropped = Drop1xx;
            let answered = final_response(&mut opened.response, &mut dropped);
            let answered = pin!(timeout::<R, _>(x.head_left(), answered));
            match select(body, answered).await {
                // The response wait is dropped (safe: it is a poll of the h2 stream) and
                // resumed below, watching the client.
                Either::Left((Ok(sent), _)) => {
                    x.conn.add_in(sent);
                    None
                }
                // The upstream stopped taking the body (a reset after an early answer, as Go
                // sends with a 413): its response, if it sent one, is the answer.
                Either::Left((Err(RelayError::Write(_)), answered)) => {
                    early = true;
                    Some(
                        answered
                            .await
                            .map_err(|_| x.timed_out(ProxyError::Timeout))
                            .and_then(|r| r.map(Some)),
                    )
                }
                Either::Left((Err(e), _)) => return Err(Before(e.on_request())),
                Either::Right((r, _)) => {
                    early = true;
                    Some(
                        r.map_err(|_| x.timed_out(ProxyError::Timeout))
                            .and_then(|r| r.map(Some)),
                    )
                }
            }
        };
        let waited = match raced {
            Some(r) => r,
            None => response_watching::<R>(x, down, forward_1xx, &mut opened.response).await,
        };
        match waited {
            Ok(Some(r)) => {
                let status = r.status().as_u16();
                x.responded(status);
                // Retried by policy: the stream is reset (dropped) unread.
                if !early && x.retry_status(status, replay).await {
                    continue;
                }
                break (opened, r, early);
            }
            // The client left: RST_STREAM(CANCEL) tells the upstream at once.
            Ok(None) => {
                opened.send.send_reset(h2::Reason::CANCEL);
                return Err(Failure::Cancelled);
            }
            Err(ProxyError::Timeout) => {
                x.attempt_failed(&ProxyError::Timeout);
                return Err(Before(ProxyError::Timeout));
            }
            Err(e) => {
                if !early && x.replay_after(&e, replay).await {
                    fresh = true;
                    continue;
                }
                return Err(Before(e));
            }
        }
    };
    let relayed = relay_response(x, down, head, resp, early).await;
    if matches!(relayed, Err(Failure::Cancelled)) {
        opened.send.send_reset(h2::Reason::CANCEL);
    }
    let (done, close) = relayed?;
    drop(opened);
    Ok((done, if close { Next::Close } else { Next::KeepAlive }))
}

/// The final response within the deadline, while watching the client; 1xx forwarded to it
/// when `forward_1xx`. `None` when the client left first.
async fn response_watching<R: Rt>(
    x: &Exchange<'_, R>,
    down: &mut Wire<R::Stream>,
    forward_1xx: bool,
    resp: &mut ResponseFuture,
) -> Result<Option<http::Response<RecvStream>>, ProxyError> {
    loop {
        let mut held = Held1xx::default();
        let wait = timeout::<R, _>(x.head_left(), final_response(resp, &mut held));
        let res = match select(pin!(wait), pin!(client_gone::<R, _>(&*down))).await {
            Either::Left((Ok(r), _)) => r,
            Either::Left((Err(_), _)) => return Err(x.timed_out(ProxyError::Timeout)),
            Either::Right(((), _)) => return Ok(None),
        };
        match (res, held.take()) {
            (Err(ProxyError::DownstreamIo(_)), Some(_)) if !forward_1xx => {}
            (Err(ProxyError::DownstreamIo(_)), Some(info)) => {
                x.send
                    .write::<R, _>(down, info)
                    .await
                    .map_err(ProxyError::DownstreamIo)?;
            }
            (r, _) => return r.map(Some),
        }
    }
}

/// Sends the upstream's response to the HTTP/1.1 client with framing re-derived; whether the
/// client connection must close after it.
async fn relay_response<R: Rt>(
    x: &Exchange<'_, R>,
    down: &mut Wire<R::Stream>,
    head: &RequestHead,
    resp: http::Response<h2::RecvStream>,
    early: bool,
) -> Result<(Done, bool), Failure> {
    let (rparts, mut rbody) = resp.into_parts();
    let status = rparts.status.as_u16();
    // RFC 9110 §6.4.1: HEAD, 1xx, 204 and 304 responses have no body; HEAD and 304 keep the
    // Content-Length they would have had, 204 never carries one.
    let no_body = head.is_head() || status == 204 || status == 304 || (100..200).contains(&status);
    let declared = rparts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let framing = match (no_body, declared, head.version()) {
        (true, _, _) => BodyKind::Empty,
        (false, Some(n), _) => BodyKind::Length(n),
        (false, None, _) if rbody.is_end_stream() => BodyKind::Length(0),
        (false, None, Version::Http10) => BodyKind::CloseDelimited,
        (false, None, _) => BodyKind::Chunked,
    };
    let client_keeps = !early && head.keep_alive() && !x.must_close();
    let close = !client_keeps || framing == BodyKind::CloseDelimited;
    let keep_alive = !close && head.version() == Version::Http10;
    let kept_length = match (no_body && !headers::length_forbidden(status), declared) {
        (true, Some(n)) => Some(n),
        _ => None,
    };
    let out = headers::h1_response_head(&rparts, framing, close, keep_alive, kept_length);
    let mut done = Done::status(status);
    done.bytes_out = out.len() as u64;
    x.conn.add_out(out.len() as u64);
    // A client that cannot take the response, or that left while the upstream was quiet
    // (a server stream between messages): 499, as on HTTP/2.
    if x.send.write::<R, _>(down, out.freeze()).await.is_err() {
        return Err(Failure::Cancelled);
    }
    if !framing.is_empty() {
        let mut sink = Watching::<R, _>::new(down, framing, x.send);
        match pump::h2_to_sink::<R, _>(&mut rbody, &mut sink, None).await {
            Ok((n, _)) => {
                done.bytes_out += n;
                x.conn.add_out(n);
            }
            Err(PumpError::Write(_)) => return Err(Failure::Cancelled),
            Err(PumpError::Recv(e) | PumpError::Send(e)) => {
                return Err(Failure::After(done, stream_error(e, true)))
            }
        }
    }
    Ok((done, close))
}

/// The HTTP/1 request as an HTTP/2 request: `:authority` from Host, hop-by-hop fields
/// dropped, the client appended to `x-forwarded-for`.
fn translate(
    head: &RequestHead,
    client: &str,
    proto: &'static str,
    extra: &[(&str, &[u8])],
) -> Result<Request<()>, ProxyError> {
    let bad = |m: String| ProxyError::DownstreamProtocol(m);
    let authority = head
        .host()
        .ok_or_else(|| bad("an HTTP/2 upstream needs a Host".into()))?;
    // RFC 9113 §8.3.1: a server-wide OPTIONS keeps `:path` `*`.
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(head.target())
        .build()
        .map_err(|e| bad(format!("request target: {e}")))?;
    let mut req = Request::new(());
    *req.method_mut() = http::Method::from_bytes(head.method().as_bytes())
        .map_err(|e| bad(format!("method: {e}")))?;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    headers::extend_from_h1(h, head.end_to_end_fields()).map_err(|e| bad(e.to_string()))?;
    headers::add_forwarded(h, client, proto);
    headers::insert_extra(h, extra);
    if let BodyKind::Length(n) = head.body() {
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(req)
}
