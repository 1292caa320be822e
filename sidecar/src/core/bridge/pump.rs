//! Moving bodies into and out of HTTP/2 streams under flow control: data is sent only into
//! window the peer granted, and received window is released only after the bytes were
//! handed on, so a slow reader slows the writer instead of filling the proxy's memory.

use std::future::poll_fn;
use std::io;
use std::marker::PhantomData;
use std::pin::pin;
use std::task::Poll;

use bytes::Bytes;
use futures_util::future::{select, Either};
use h2::{RecvStream, SendStream};
use http::HeaderMap;

use h2::server::SendResponse;

use super::relay::Sink;
use super::stall::{Pace, SendStall};
use crate::core::rt::{timeout, Rt};

/// Sends `data` into `dst`, waiting for send window as needed. `stall` (toward a client
/// only) bounds each wait for window: past it the stream is reset (`stall::SendStall`).
pub async fn send_data<R: Rt>(
    dst: &mut SendStream<Bytes>,
    mut data: Bytes,
    stall: Option<&SendStall<'_>>,
) -> Result<(), h2::Error> {
    while !data.is_empty() {
        dst.reserve_capacity(data.len());
        let cap = match stall {
            Some(s) => s.capacity::<R>(dst).await?,
            None => loop {
                let cap = dst.capacity();
                if cap > 0 {
                    break cap;
                }
                match poll_fn(|cx| dst.poll_capacity(cx)).await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Err(h2::Error::from(h2::Reason::CANCEL)),
                }
            },
        };
        let chunk = data.split_to(cap.min(data.len()));
        dst.send_data(chunk, false)?;
    }
    Ok(())
}

/// Why a stream-to-stream relay stopped.
#[derive(Debug)]
pub enum PumpError {
    /// Reading the source failed (its peer reset the stream or the connection broke).
    Recv(h2::Error),
    /// Writing to the destination stream failed.
    Send(h2::Error),
    /// Writing to the destination connection (HTTP/1) failed.
    Write(io::Error),
}

/// The next chunk of `src`'s body (`None` at its end), while also watching `dst`: a reset
/// there (a gRPC client cancelling a server stream) ends the wait now, not at the next
/// message.
///
/// # Errors
/// [`PumpError::Recv`] when the source failed, [`PumpError::Send`] when the destination was
/// reset.
pub async fn recv_watching(
    src: &mut RecvStream,
    dst: &mut SendStream<Bytes>,
) -> Result<Option<Bytes>, PumpError> {
    poll_fn(|cx| match dst.poll_reset(cx) {
        Poll::Ready(r) => Poll::Ready(Err(PumpError::Send(reset_error(r)))),
        Poll::Pending => src.poll_data(cx).map(|c| match c {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => Err(PumpError::Recv(e)),
        }),
    })
    .await
}

/// Relays a whole body, then its trailers, from one HTTP/2 stream to another. Returns the
/// body bytes moved and the trailers forwarded (gRPC status lives there). `stall`: as in
/// [`send_data`], when `dst` is a client's stream.
///
/// # Errors
/// [`PumpError::Recv`] when the source failed, [`PumpError::Send`] when the destination did.
pub async fn h2_to_h2<R: Rt>(
    src: &mut RecvStream,
    dst: &mut SendStream<Bytes>,
    stall: Option<&SendStall<'_>>,
) -> Result<(u64, Option<HeaderMap>), PumpError> {
    let mut moved = 0u64;
    while let Some(chunk) = recv_watching(src, dst).await? {
        let n = chunk.len();
        moved += n as u64;
        send_data::<R>(dst, chunk, stall)
            .await
            .map_err(PumpError::Send)?;
        let _ = src.flow_control().release_capacity(n);
    }
    let trailers = poll_fn(|cx| match dst.poll_reset(cx) {
        Poll::Ready(r) => Poll::Ready(Err(PumpError::Send(reset_error(r)))),
        Poll::Pending => src.poll_trailers(cx).map(|t| t.map_err(PumpError::Recv)),
    })
    .await?;
    match &trailers {
        Some(t) => dst.send_trailers(t.clone()).map_err(PumpError::Send)?,
        None => dst.send_data(Bytes::new(), true).map_err(PumpError::Send)?,
    }
    Ok((moved, trailers))
}

/// Waits until the client resets the stream; the reason it gave.
pub async fn client_reset(respond: &mut SendResponse<Bytes>) -> h2::Reason {
    poll_fn(|cx| respond.poll_reset(cx))
        .await
        .unwrap_or(h2::Reason::CANCEL)
}

/// The error for a destination the peer reset (or whose connection failed).
fn reset_error(r: Result<h2::Reason, h2::Error>) -> h2::Error {
    r.map_or_else(|e| e, h2::Error::from)
}

/// Relays an HTTP/2 body into any [`Sink`] (an HTTP/1 connection); trailers become HTTP/1
/// trailer lines when the sink can carry them. `pace` (a client's request body): a body that
/// falls behind it fails as [`PumpError::Recv`] (CANCEL), counted as a cut; the sink is left
/// without its end.
pub async fn h2_to_sink<R: Rt, K: Sink>(
    src: &mut RecvStream,
    dst: &mut K,
    pace: Option<&Pace<'_>>,
) -> Result<(u64, Option<HeaderMap>), PumpError> {
    let mut moved = 0u64;
    // A sink whose reader left (`Sink::gone`) ends the wait: the source stream is then
    // dropped, which resets it (RST_STREAM CANCEL). Waits on h2 streams are safe to drop.
    while let Some(chunk) = paced::<R, _>(pace, moved, until_gone(dst, src.data()))
        .await?
        .map_err(PumpError::Recv)?
    {
        let chunk = chunk.map_err(PumpError::Recv)?;
        let n = chunk.len();
        moved += n as u64;
        dst.data(chunk).await.map_err(PumpError::Write)?;
        let _ = src.flow_control().release_capacity(n);
    }
    let trailers = until_gone(dst, src.trailers())
        .await?
        .map_err(PumpError::Recv)?;
    let lines = trailers
        .as_ref()
        .map(super::headers::h1_trailer_lines)
        .unwrap_or_default();
    dst.end(&lines).await.map_err(PumpError::Write)?;
    Ok((moved, trailers))
}

/// `fut`'s output, or, when `pace` is given and its deadline for `received` bytes passes
/// first, [`PumpError::Recv`] (CANCEL) with the cut counted. `fut` must be safe to drop (a
/// wait on an h2 stream).
pub async fn paced<R: Rt, T>(
    pace: Option<&Pace<'_>>,
    received: u64,
    fut: impl std::future::Future<Output = Result<T, PumpError>>,
) -> Result<Result<T, h2::Error>, PumpError> {
    let Some(p) = pace else {
        return fut.await.map(Ok);
    };
    let left = p
        .deadline(received)
        .saturating_duration_since(std::time::Instant::now());
    match timeout::<R, _>(left, fut).await {
        Ok(r) => r.map(Ok),
        Err(_) => {
            p.cut();
            Ok(Err(h2::Error::from(h2::Reason::CANCEL)))
        }
    }
}

/// `fut`'s output, or [`PumpError::Write`] (`ConnectionAborted`) if `dst`'s reader left first.
async fn until_gone<K: Sink, F: std::future::Future>(
    dst: &K,
    fut: F,
) -> Result<F::Output, PumpError> {
    match select(pin!(fut), pin!(dst.gone())).await {
        Either::Left((v, _)) => Ok(v),
        Either::Right(((), _)) => Err(PumpError::Write(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "client closed the connection",
        ))),
    }
}

/// An HTTP/2 stream as a [`Sink`] for bodies coming from HTTP/1: chunked trailers become
/// HTTP/2 trailers.
pub struct H2Sink<'a, R> {
    pub dst: &'a mut SendStream<Bytes>,
    /// gRPC status found in the trailers, for metrics.
    pub trailers_seen: Option<HeaderMap>,
    /// Toward a client: how long a wait for window may last ([`send_data`]).
    stall: Option<SendStall<'a>>,
    rt: PhantomData<R>,
}

impl<'a, R: Rt> H2Sink<'a, R> {
    /// A sink into `dst`; `stall` when `dst` is a client's stream.
    pub fn new(dst: &'a mut SendStream<Bytes>, stall: Option<SendStall<'a>>) -> Self {
        Self {
            dst,
            trailers_seen: None,
            stall,
            rt: PhantomData,
        }
    }
}

impl<R: Rt> Sink for H2Sink<'_, R> {
    async fn data(&mut self, data: Bytes) -> io::Result<()> {
        send_data::<R>(self.dst, data, self.stall.as_ref())
            .await
            .map_err(io::Error::other)
    }

    async fn end(&mut self, trailers: &[u8]) -> io::Result<()> {
        let map = super::headers::parse_h1_trailers(trailers);
        match map {
            Some(t) if !t.is_empty() => {
                self.trailers_seen = Some(t.clone());
                self.dst.send_trailers(t).map_err(io::Error::other)
            }
            _ => self
                .dst
                .send_data(Bytes::new(), true)
                .map_err(io::Error::other),
        }
    }
}
