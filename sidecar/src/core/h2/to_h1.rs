//! HTTP/2 downstream to an HTTP/1.1 upstream: the stream becomes one request on a pooled
//! HTTP/1 connection, with framing re-derived (Content-Length when the client declared one,
//! else chunked), `:authority` as Host, and chunked trailers back as HTTP/2 trailers.

use bytes::{Bytes, BytesMut};
use control::snapshot::ClusterSpec;
use h2::server::SendResponse;
use h2::RecvStream;

use super::headers;
use super::pump::{self, H2Sink, PumpError};
use super::stream::{Deadline, Done, Failure, StreamCtx};
use crate::core::error::ProxyError;
use crate::core::forward::{read_response_head, relay, upstream, BodyError, H1Sink};
use crate::core::http1::BodyKind;
use crate::core::rt::{Rt, WriteHalf};

pub async fn proxy<R: Rt>(
    ctx: &StreamCtx<'_, R>,
    parts: http::request::Parts,
    mut body: RecvStream,
    respond: &mut SendResponse<Bytes>,
    cluster: &ClusterSpec,
    deadline: &Deadline,
) -> Result<Done, Failure> {
    let w = ctx.w;
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
    let head = headers::h1_request_head(&parts, framing, ctx.client_ip, &[])
        .map_err(|e| Failure::Before(ProxyError::DownstreamProtocol(e.to_string()), None))?
        .freeze();
    let is_head = parts.method == http::Method::HEAD;
    let replayable = framing.is_empty();
    let mut fresh = false;
    let (mut up, resp, mut ubuf) = loop {
        let mut up = upstream::acquire::<R>(w, cluster, fresh, replayable)
            .await
            .map_err(|e| Failure::Before(e, None))?;
        let endpoint = Some(up.addr);
        let before = |e| Failure::Before(e, endpoint);
        if let Err(e) = up.stream.write_all(head.clone()).await {
            if up.reused && !fresh {
                fresh = true;
                continue;
            }
            return Err(before(ProxyError::UpstreamIo(e)));
        }
        if !replayable {
            let mut sink = H1Sink::new(&mut up.stream, framing);
            match pump::h2_to_sink(&mut body, &mut sink).await {
                Ok(_) => {}
                Err(PumpError::Recv(_)) => return Err(Failure::Cancelled(endpoint)),
                Err(PumpError::Write(e)) => return Err(before(ProxyError::UpstreamIo(e))),
                Err(PumpError::Send(e)) => return Err(before(super::to_h2::upstream_error(e))),
            }
        }
        let mut ubuf = BytesMut::new();
        let interim: Option<&mut R::Stream> = None;
        match read_response_head::<R, _>(&mut up.stream, &mut ubuf, is_head, deadline.at, interim)
            .await
        {
            Ok(r) => break (up, r, ubuf),
            Err(ProxyError::UpstreamClosed)
                if up.reused && replayable && !fresh && ubuf.is_empty() =>
            {
                fresh = true;
            }
            Err(e) => return Err(before(e)),
        }
    };
    let endpoint = Some(up.addr);
    let status = resp.status();
    if status == 101 {
        return Err(Failure::Before(
            ProxyError::UpstreamProtocol("101 to an HTTP/2 request".into()),
            endpoint,
        ));
    }
    let h2resp = headers::h2_response(&resp)
        .map_err(|e| Failure::Before(ProxyError::UpstreamProtocol(e.to_string()), endpoint))?;
    let empty = resp.body().is_empty();
    let mut done = Done {
        status,
        grpc_status: headers::grpc_status(h2resp.headers()).map(str::to_owned),
        endpoint,
    };
    let Ok(mut down_send) = respond.send_response(h2resp, empty) else {
        return Err(Failure::Cancelled(endpoint));
    };
    if !empty {
        let mut sink = H2Sink {
            dst: &mut down_send,
            trailers_seen: None,
        };
        // As on the HTTP/1 path, the route timeout bounds each body read, not the whole body.
        let relayed = relay::<R, _, _>(
            &mut up.stream,
            &mut ubuf,
            &mut sink,
            resp.body(),
            deadline.stall,
        )
        .await;
        if let Some(g) = sink.trailers_seen.as_ref().and_then(headers::grpc_status) {
            done.grpc_status = Some(g.to_owned());
        }
        if let Err(e) = relayed {
            let why = match &e {
                BodyError::Write(_) => return Err(Failure::Cancelled(endpoint)),
                other => other.to_string(),
            };
            down_send.send_reset(h2::Reason::INTERNAL_ERROR);
            return Err(Failure::After(done, why));
        }
    }
    if resp.keep_alive() && ubuf.is_empty() {
        w.pool
            .checkin(up.addr, up.stream, cluster.max_idle_per_endpoint);
    }
    Ok(done)
}
