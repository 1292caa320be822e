//! HTTP/2 downstream to an HTTP/2 upstream (gRPC's path): the stream is relayed frame for
//! frame in both directions at once, so every gRPC streaming kind works, trailers and resets
//! included. Each side's data moves only into window the other side granted.

use std::future::poll_fn;
use std::pin::pin;

use bytes::Bytes;
use control::snapshot::ClusterSpec;
use futures_util::future::{select, Either};
use h2::server::SendResponse;
use h2::RecvStream;
use http::Request;

use super::client::{self, Lease};
use super::headers;
use super::pump::{self, PumpError};
use super::stream::{client_reset, left, Deadline, Done, Failure, StreamCtx};
use crate::core::error::ProxyError;
use crate::core::rt::{timeout, Rt};

pub async fn proxy<R: Rt>(
    ctx: &StreamCtx<'_, R>,
    mut parts: http::request::Parts,
    mut body: RecvStream,
    respond: &mut SendResponse<Bytes>,
    cluster: &ClusterSpec,
    deadline: &Deadline,
) -> Result<Done, Failure> {
    headers::add_forwarded(&mut parts.headers, ctx.client_ip);
    let end = body.is_end_stream();
    let (lease, resp_fut, mut up_send) = open::<R>(ctx, &parts, cluster, end)
        .await
        .map_err(|e| Failure::Before(e, None))?;
    let endpoint = Some(lease.addr);

    // The request body streams upstream for as long as it lasts, alongside the response.
    let request_side = async {
        if end {
            return std::future::pending::<Result<(), ()>>().await;
        }
        match pump::h2_to_h2(&mut body, &mut up_send).await {
            // Done: keep the response side going alone.
            Ok(_) => std::future::pending().await,
            Err(PumpError::Recv(e)) => {
                // The client reset its stream (or its connection died): cancel upstream too.
                up_send.send_reset(e.reason().unwrap_or(h2::Reason::CANCEL));
                Err(())
            }
            // The upstream stopped reading (it answered early, or reset): the response side
            // sees that and reports it.
            Err(_) => std::future::pending().await,
        }
    };
    let response_side = async {
        // The response head, within the deadline, unless the client gives up first.
        let waited = {
            let head = pin!(timeout::<R, _>(left(deadline), resp_fut));
            let gone = pin!(client_reset(respond));
            match select(head, gone).await {
                Either::Left((r, _)) => Some(r),
                Either::Right(_) => None,
            }
        };
        let resp = match waited {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => return Err(Failure::Before(upstream_error(e), endpoint)),
            Some(Err(_)) => return Err(Failure::Before(ProxyError::Timeout, endpoint)),
            None => return Err(Failure::Cancelled(endpoint)),
        };
        let (rparts, mut rbody) = resp.into_parts();
        let status = rparts.status.as_u16();
        let head_grpc = headers::grpc_status(&rparts.headers).map(str::to_owned);
        let rend = rbody.is_end_stream();
        let mut done = Done {
            status,
            grpc_status: head_grpc,
            endpoint,
        };
        let mut down_send =
            match respond.send_response(http::Response::from_parts(rparts, ()), rend) {
                Ok(s) => s,
                Err(_) => return Err(Failure::Cancelled(endpoint)),
            };
        if rend {
            return Ok(done);
        }
        match pump::h2_to_h2(&mut rbody, &mut down_send).await {
            Ok((_, trailers)) => {
                if let Some(g) = trailers.as_ref().and_then(headers::grpc_status) {
                    done.grpc_status = Some(g.to_owned());
                }
                Ok(done)
            }
            Err(PumpError::Recv(e)) => {
                // The upstream reset its stream: tell the client the same.
                let reason = e.reason().unwrap_or(h2::Reason::INTERNAL_ERROR);
                down_send.send_reset(reason);
                Err(Failure::After(done, format!("upstream reset: {e}")))
            }
            Err(PumpError::Send(_)) | Err(PumpError::Write(_)) => Err(Failure::Cancelled(endpoint)),
        }
    };
    let out = match select(pin!(request_side), pin!(response_side)).await {
        Either::Left((_, _)) => Err(Failure::Cancelled(endpoint)),
        Either::Right((r, _)) => r,
    };
    drop(lease);
    out
}

/// Opens the upstream stream. A connection that refuses it before any byte of it was
/// processed (GOAWAY, closed) is replaced by a fresh one, once.
async fn open<R: Rt>(
    ctx: &StreamCtx<'_, R>,
    parts: &http::request::Parts,
    cluster: &ClusterSpec,
    end: bool,
) -> Result<(Lease, h2::client::ResponseFuture, h2::SendStream<Bytes>), ProxyError> {
    let mut fresh = false;
    loop {
        let mut lease = client::acquire::<R>(ctx.w, cluster, fresh).await?;
        let ready = poll_fn(|cx| lease.send.poll_ready(cx)).await;
        let sent = ready.and_then(|()| lease.send.send_request(clone_request(parts), end));
        match sent {
            Ok((resp, send)) => return Ok((lease, resp, send)),
            Err(e) if !fresh && retryable(&e) => fresh = true,
            Err(e) => return Err(upstream_error(e)),
        }
    }
}

/// The request without its body, for the upstream (`Parts` is not `Clone`).
pub fn clone_request(parts: &http::request::Parts) -> Request<()> {
    let mut req = Request::new(());
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.headers_mut() = parts.headers.clone();
    req
}

/// Failures that prove the upstream never saw the stream.
pub fn retryable(e: &h2::Error) -> bool {
    e.is_go_away() || e.is_io() || e.reason() == Some(h2::Reason::REFUSED_STREAM)
}

pub fn upstream_error(e: h2::Error) -> ProxyError {
    if !e.is_io() {
        return ProxyError::UpstreamProtocol(format!("h2: {e}"));
    }
    match e.into_io() {
        Some(io) => ProxyError::UpstreamIo(io),
        None => ProxyError::UpstreamClosed,
    }
}
