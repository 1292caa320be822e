//! Opening a stream on an upstream HTTP/2 connection, for both downstream protocols: a stream
//! the connection refuses before sending it (GOAWAY received, connection gone) is opened again
//! on a fresh connection, as the exchange's rule allows for anything never processed.

use std::future::poll_fn;

use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::SendStream;
use http::Request;

use super::exchange::{Exchange, Replay};
use crate::core::error::ProxyError;
use crate::core::rt::Rt;
use crate::core::up::h2::{acquire, stream_error, Lease};

/// An open upstream stream: its connection slot, its response, and its request body's sender.
pub struct Opened {
    /// The stream slot on its connection, freed when this is dropped.
    pub _lease: Lease,
    pub response: ResponseFuture,
    pub send: SendStream<Bytes>,
}

/// Opens a stream for `req` (`end`: no body follows). `fresh` starts on a new connection.
///
/// # Errors
/// No endpoint could be reached, or every attempt allowed by the retry rule was refused.
pub async fn open<R: Rt>(
    x: &Exchange<'_, R>,
    req: &Request<()>,
    end: bool,
    mut fresh: bool,
) -> Result<Opened, ProxyError> {
    loop {
        let lb = x.w.balancers.get(x.cluster);
        x.admit(&lb)?;
        let avoid = x.endpoint.get();
        let mut lease = acquire::<R>(&x.w.h2, lb, &x.w.stats, x.cluster, fresh, avoid).await?;
        x.attempt(lease.target());
        let ready = poll_fn(|cx| lease.send.poll_ready(cx)).await;
        match ready.and_then(|()| lease.send.send_request(clone_request(req), end)) {
            Ok((response, send)) => {
                return Ok(Opened {
                    _lease: lease,
                    response,
                    send,
                })
            }
            Err(e) => {
                let e = stream_error(e, false);
                // Nothing of the request was read from the client yet: it is all held.
                let facts = Replay {
                    idempotent: true,
                    body_held: true,
                    reused: true,
                };
                if !x.replay_after(&e, facts).await {
                    return Err(e);
                }
                fresh = true;
            }
        }
    }
}

/// The request without a body, for `send_request` (`Request` is not `Clone`).
pub fn clone_request(req: &Request<()>) -> Request<()> {
    let mut out = Request::new(());
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.headers_mut() = req.headers().clone();
    out
}
