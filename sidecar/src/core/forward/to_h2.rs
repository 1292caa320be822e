//! HTTP/1.1 downstream to an HTTP/2 upstream (a cluster with `protocol: http2`): the request
//! becomes one stream on a multiplexed upstream connection; the response comes back with
//! HTTP/1 framing re-derived (Content-Length when the upstream declared one, else chunked,
//! with HTTP/2 trailers as chunked trailers).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use control::snapshot::ClusterSpec;
use http::{HeaderValue, Request};

use super::body::relay;
use super::{local, request_body_error, Exchange, Failure, H1Sink, Next};
use crate::core::error::ProxyError;
use crate::core::h2::{client, headers, pump, to_h2};
use crate::core::http1::{BodyKind, RequestHead, Version};
use crate::core::rt::{timeout, Rt, WriteHalf};

pub(super) async fn proxy<R: Rt>(
    ctx: &Exchange<'_, R>,
    down: &mut R::Stream,
    buf: &mut BytesMut,
    head: &RequestHead,
    cluster: &ClusterSpec,
    route_timeout: Duration,
    extra: &[(&str, &[u8])],
) -> Result<(u16, Next<R::Stream>), Failure> {
    use Failure::BeforeResponse as Before;
    let deadline = Instant::now() + route_timeout;
    if head.upgrade().is_some() {
        return Err(Before(ProxyError::UpstreamProtocol(
            "upgrades cannot be carried to an HTTP/2 cluster".into(),
        )));
    }
    let client = ctx.peer.ip().to_string();
    let req = translate(head, &client, extra).map_err(Before)?;
    let end = head.body().is_empty();
    let (parts, ()) = req.into_parts();
    let mut fresh = false;
    let (lease, resp_fut, mut up_send) = loop {
        let mut lease = client::acquire::<R>(ctx.w, cluster, fresh)
            .await
            .map_err(Before)?;
        ctx.endpoint.set(Some(lease.addr));
        let ready = std::future::poll_fn(|cx| lease.send.poll_ready(cx)).await;
        match ready.and_then(|()| lease.send.send_request(to_h2::clone_request(&parts), end)) {
            Ok((resp, send)) => break (lease, resp, send),
            Err(e) if !fresh && to_h2::retryable(&e) => fresh = true,
            Err(e) => return Err(Before(to_h2::upstream_error(e))),
        }
    };
    if !end {
        if head.expect_continue() {
            down.write_all(Bytes::from_static(local::CONTINUE))
                .await
                .map_err(|e| Before(ProxyError::DownstreamIo(e)))?;
        }
        let mut sink = pump::H2Sink {
            dst: &mut up_send,
            trailers_seen: None,
        };
        let sent = relay::<R, _, _>(down, buf, &mut sink, head.body(), route_timeout)
            .await
            .map_err(|e| Before(request_body_error(e)))?;
        ctx.conn.add_in(sent);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let resp = match timeout::<R, _>(left, resp_fut).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(Before(to_h2::upstream_error(e))),
        Err(_) => return Err(Before(ProxyError::Timeout)),
    };
    let (rparts, mut rbody) = resp.into_parts();
    let status = rparts.status.as_u16();
    let declared = rparts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let no_body = head.is_head() || status == 204 || status == 304 || (100..200).contains(&status);
    let framing = match (no_body, declared, head.version()) {
        (true, _, _) => BodyKind::Empty,
        (false, Some(n), _) => BodyKind::Length(n),
        (false, None, _) if rbody.is_end_stream() => BodyKind::Length(0),
        (false, None, Version::Http10) => BodyKind::CloseDelimited,
        (false, None, _) => BodyKind::Chunked,
    };
    let client_keeps = head.keep_alive() && !ctx.closing && !ctx.w.lifecycle.is_draining();
    let close = !client_keeps || framing == BodyKind::CloseDelimited;
    let out = headers::h1_response_head(&rparts, framing, close);
    ctx.conn.add_out(out.len() as u64);
    let after = |e| Failure::AfterResponse(status, e);
    down.write_all(out.freeze())
        .await
        .map_err(|e| after(ProxyError::DownstreamIo(e)))?;
    if !framing.is_empty() {
        let mut sink = H1Sink::new(down, framing);
        match pump::h2_to_sink(&mut rbody, &mut sink).await {
            Ok((n, _)) => ctx.conn.add_out(n),
            Err(pump::PumpError::Write(e)) => return Err(after(ProxyError::DownstreamIo(e))),
            Err(pump::PumpError::Recv(e) | pump::PumpError::Send(e)) => {
                return Err(after(to_h2::upstream_error(e)))
            }
        }
    }
    drop(lease);
    Ok((status, if close { Next::Close } else { Next::KeepAlive }))
}

/// The HTTP/1 request as an HTTP/2 request: `:authority` from Host, hop-by-hop fields
/// dropped, the client appended to `x-forwarded-for`.
fn translate(
    head: &RequestHead,
    client: &str,
    extra: &[(&str, &[u8])],
) -> Result<Request<()>, ProxyError> {
    let bad = |m: String| ProxyError::DownstreamProtocol(m);
    let authority = head
        .host()
        .ok_or_else(|| bad("an HTTP/2 upstream needs a Host".into()))?;
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
    headers::add_forwarded(h, client);
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            if let Ok(n) = http::HeaderName::from_bytes(name.as_bytes()) {
                h.insert(n, v);
            }
        }
    }
    if let BodyKind::Length(n) = head.body() {
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(req)
}
