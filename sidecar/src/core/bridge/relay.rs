//! Streams one message body from a source to a sink, re-deriving its framing.
//!
//! Bodies are never buffered whole: at most one read's worth of bytes is held, and the next
//! read waits until the sink accepted the previous bytes. Chunked input is decoded and
//! re-encoded canonically (no extensions, our own sizes), so what the far side parses is
//! exactly what we parsed.

use std::io;
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::{select, Either};

use super::stall::Pace;
use crate::core::error::ProxyError;
use crate::core::http1::{self, BodyKind, Chunk, ChunkedDecoder};
use crate::core::rt::{read_by, ReadError, ReadHalf, Rt, WriteHalf};

/// Read size for bodies.
pub const BODY_CHUNK: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("read: {0}")]
    Read(io::Error),
    #[error("write: {0}")]
    Write(io::Error),
    #[error("body ended early")]
    Truncated,
    #[error("invalid chunked body: {0}")]
    Framing(String),
    #[error("no body bytes for {0:?}")]
    Stalled(Duration),
    /// The sink's reader left (an HTTP/1.1 client closed its connection: `gone`).
    #[error("client closed the connection")]
    Gone,
    /// A request body fell behind its pace (`stall::Pace`; counted where it was decided).
    #[error("request body slower than its minimum rate")]
    TooSlow,
}

impl RelayError {
    /// What a failed request-body relay (client → upstream) means.
    pub fn on_request(self) -> ProxyError {
        match self {
            Self::Read(e) => ProxyError::DownstreamIo(e),
            Self::Write(e) => ProxyError::UpstreamIo(e),
            Self::Truncated => ProxyError::DownstreamClosed,
            Self::Framing(m) => ProxyError::DownstreamProtocol(m),
            Self::Stalled(_) | Self::TooSlow => ProxyError::DownstreamTimeout,
            Self::Gone => ProxyError::DownstreamClosed,
        }
    }

    /// What a failed response-body relay (upstream → client) means.
    pub fn on_response(self) -> ProxyError {
        match self {
            Self::Read(e) => ProxyError::UpstreamIo(e),
            Self::Write(e) => ProxyError::DownstreamIo(e),
            Self::Truncated => ProxyError::UpstreamClosed,
            Self::Framing(m) => ProxyError::UpstreamProtocol(m),
            Self::Stalled(_) | Self::TooSlow => ProxyError::Timeout,
            Self::Gone => ProxyError::DownstreamClosed,
        }
    }
}

/// Where a relayed body goes: an HTTP/1 connection (framed by [`H1Sink`]) or an HTTP/2
/// stream (`core::h2`).
pub trait Sink {
    /// Sends body bytes; completes once the far side accepted them (flow control included).
    fn data(&mut self, data: Bytes) -> impl std::future::Future<Output = io::Result<()>>;
    /// The body ended. `trailers` are HTTP/1 field lines, each ending in CRLF (empty if none).
    fn end(&mut self, trailers: &[u8]) -> impl std::future::Future<Output = io::Result<()>>;
    /// Completes when the sink's reader went away while the source is quiet (see
    /// `bridge::gone`); never, for sinks that do not watch.
    fn gone(&self) -> impl std::future::Future<Output = ()> {
        std::future::pending()
    }
}

/// Relays a response body of framing `input` from an upstream `src` (with `buf` holding bytes
/// already read) to `sink`. `stall` bounds the wait for each read, not the whole body. The
/// rest of the body is expected, so each read is direct (`ReadHalf::read_within`: on io_uring
/// a `RECV` with no readiness wait first). Returns the body bytes relayed.
pub async fn relay<R: Rt, S: ReadHalf, K: Sink>(
    src: &mut S,
    buf: &mut BytesMut,
    sink: &mut K,
    input: BodyKind,
    stall: Duration,
) -> Result<u64, RelayError> {
    let read = Reading {
        stall,
        pace: None,
        received: buf.len() as u64,
        direct: true,
    };
    relay_with::<R, _, _>(src, buf, sink, input, read).await
}

/// Relays a request body from a client `src`, as [`relay`] does but waiting for readiness
/// before each read (a client may trickle its body: the wait holds no buffer), and held to
/// `pace` as well (when given): each read also waits no later than the pace's deadline for
/// the bytes received so far, and a body that falls behind it fails with
/// [`RelayError::TooSlow`], counted as a cut. The sink is then left without its end, so the
/// upstream never takes a truncated body as complete. Bytes past the body's end stay in
/// `buf` (pipelined requests).
pub async fn relay_paced<R: Rt, S: ReadHalf, K: Sink>(
    src: &mut S,
    buf: &mut BytesMut,
    sink: &mut K,
    input: BodyKind,
    stall: Duration,
    pace: Option<&Pace<'_>>,
) -> Result<u64, RelayError> {
    let read = Reading {
        stall,
        pace,
        received: buf.len() as u64,
        direct: false,
    };
    relay_with::<R, _, _>(src, buf, sink, input, read).await
}

async fn relay_with<R: Rt, S: ReadHalf, K: Sink>(
    src: &mut S,
    buf: &mut BytesMut,
    sink: &mut K,
    input: BodyKind,
    mut read: Reading<'_, '_>,
) -> Result<u64, RelayError> {
    let mut sent = 0u64;
    match input {
        BodyKind::Empty => {}
        BodyKind::Length(n) => {
            let mut left = n;
            while left > 0 {
                if buf.is_empty() && !read.fill::<R, _, _>(src, buf, left, sink).await? {
                    return Err(RelayError::Truncated);
                }
                let take = (buf.len() as u64).min(left) as usize;
                left -= take as u64;
                sent += take as u64;
                sink.data(buf.split_to(take).freeze())
                    .await
                    .map_err(RelayError::Write)?;
            }
        }
        BodyKind::CloseDelimited => loop {
            if buf.is_empty()
                && !read
                    .fill::<R, _, _>(src, buf, BODY_CHUNK as u64, sink)
                    .await?
            {
                break;
            }
            sent += buf.len() as u64;
            sink.data(buf.split().freeze())
                .await
                .map_err(RelayError::Write)?;
        },
        BodyKind::Chunked => {
            let mut dec = ChunkedDecoder::new();
            loop {
                match dec
                    .decode(buf)
                    .map_err(|e| RelayError::Framing(e.to_string()))?
                {
                    Some(Chunk::Data(d)) => {
                        sent += d.len() as u64;
                        sink.data(d).await.map_err(RelayError::Write)?
                    }
                    Some(Chunk::Trailers(t)) => {
                        sink.end(&t).await.map_err(RelayError::Write)?;
                        return Ok(sent);
                    }
                    None => {
                        if !read
                            .fill::<R, _, _>(src, buf, BODY_CHUNK as u64, sink)
                            .await?
                        {
                            return Err(RelayError::Truncated);
                        }
                    }
                }
            }
        }
    }
    sink.end(&[]).await.map_err(RelayError::Write)?;
    Ok(sent)
}

/// How a relay reads its source: each read within `stall`, and no later than `pace`'s
/// deadline for the `received` bytes; `direct`: read at once (bytes are expected), else wait
/// for readiness first.
struct Reading<'p, 'a> {
    stall: Duration,
    pace: Option<&'p Pace<'a>>,
    received: u64,
    direct: bool,
}

impl Reading<'_, '_> {
    /// Reads more into `buf`; false on EOF. [`RelayError::Gone`] when the sink's reader left
    /// first: the source's read may then be dropped in flight, so the caller must close the
    /// source (DESIGN.md §5.1), which every caller does with a failed exchange.
    async fn fill<R: Rt, S: ReadHalf, K: Sink>(
        &mut self,
        src: &mut S,
        buf: &mut BytesMut,
        want: u64,
        sink: &K,
    ) -> Result<bool, RelayError> {
        let want = (want as usize).clamp(1, BODY_CHUNK);
        let gap = Instant::now() + self.stall;
        let paced = self.pace.map(|p| p.deadline(self.received));
        let deadline = paced.map_or(gap, |p| p.min(gap));
        let (taken, direct) = (std::mem::take(buf), self.direct);
        let read = pin!(async move {
            if direct {
                src.read_within::<R>(taken, want, deadline).await
            } else {
                read_by::<R, _>(src, taken, want, deadline).await
            }
        });
        let (res, b) = match select(read, pin!(sink.gone())).await {
            Either::Left((r, _)) => r,
            Either::Right(((), _)) => return Err(RelayError::Gone),
        };
        *buf = b;
        match res {
            Ok(n) => {
                self.received += n as u64;
                Ok(n > 0)
            }
            // A request body that stopped (the gap) or fell behind its pace: either way a
            // slow body, cut.
            Err(ReadError::Elapsed) => match (self.pace, paced) {
                (Some(p), Some(at)) => {
                    p.cut();
                    if at <= gap {
                        Err(RelayError::TooSlow)
                    } else {
                        Err(RelayError::Stalled(self.stall))
                    }
                }
                _ => Err(RelayError::Stalled(self.stall)),
            },
            Err(ReadError::Io(e)) => Err(RelayError::Read(e)),
        }
    }
}

/// An HTTP/1 connection as a body sink, writing the framing chosen for it.
pub struct H1Sink<'a, D> {
    dst: &'a mut D,
    chunked: bool,
}

impl<'a, D: WriteHalf> H1Sink<'a, D> {
    pub fn new(dst: &'a mut D, framing: BodyKind) -> Self {
        Self {
            dst,
            chunked: framing == BodyKind::Chunked,
        }
    }

    /// The connection written to.
    pub fn dst(&self) -> &D {
        self.dst
    }

    /// The connection written to, to write [`H1Sink::framed`] bytes through another path
    /// (`gone::Watching` bounds each write by the client's send stall).
    pub fn dst_mut(&mut self) -> &mut D {
        self.dst
    }

    /// `data` framed for the connection (a chunk when chunked); empty for empty data.
    pub fn framed(&self, data: Bytes) -> Bytes {
        if data.is_empty() || !self.chunked {
            return data;
        }
        let mut framed = BytesMut::with_capacity(data.len() + 16);
        http1::encode_chunk_header(data.len(), &mut framed);
        framed.put_slice(&data);
        framed.put_slice(http1::CHUNK_END);
        framed.freeze()
    }

    /// The body's end framed for the connection (the last chunk and `trailers` when chunked);
    /// `None` when the framing needs nothing.
    pub fn last(&self, trailers: &[u8]) -> Option<Bytes> {
        if !self.chunked {
            return None;
        }
        let mut last = BytesMut::with_capacity(trailers.len() + 8);
        http1::encode_last_chunk(trailers, &mut last);
        Some(last.freeze())
    }
}

impl<D: WriteHalf> Sink for H1Sink<'_, D> {
    async fn data(&mut self, data: Bytes) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let bytes = self.framed(data);
        self.dst.write_all(bytes).await
    }

    async fn end(&mut self, trailers: &[u8]) -> io::Result<()> {
        match self.last(trailers) {
            Some(last) => self.dst.write_all(last).await,
            None => Ok(()),
        }
    }
}

/// An upstream HTTP/1 connection as a request body's sink that stops as soon as the upstream
/// has something to say (a response, EOF or an error) before the body ended: one
/// non-blocking peek per body chunk. The relay then fails with [`RelayError::Write`] and the
/// caller reads the early response (RFC 9110 §15.5.14, RFC 9112 §9.5).
pub struct Watched<'a, S>(pub H1Sink<'a, S>);

impl<S: crate::core::rt::Stream> Sink for Watched<'_, S> {
    async fn data(&mut self, data: Bytes) -> io::Result<()> {
        if !self.0.dst().is_reusable() {
            return Err(io::Error::other(
                "upstream answered before the request body ended",
            ));
        }
        self.0.data(data).await
    }

    async fn end(&mut self, trailers: &[u8]) -> io::Result<()> {
        self.0.end(trailers).await
    }
}
