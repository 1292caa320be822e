//! One connection as the core sees it, plaintext or TLS, behind the same seam
//! (`core::rt::Stream`): HTTP/1, HTTP/2, tunnels and pools never ask which.
//!
//! Plaintext stays on the backend's own stream (native io_uring operations on monoio). TLS runs
//! tokio-rustls over the backend's poll-based stream (`Stream::into_io`), on both runtimes
//! (DESIGN.md §5.4: monoio-rustls panics with h2 and cannot show the peer certificate).

mod buffered;
mod io;
mod write;

use std::cell::Cell;
use std::io as stdio;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;

pub use self::buffered::Buffered;
pub use self::io::TlsIo;
pub use self::io::WireIo;
use crate::core::h2::rewind::Rewind;
use crate::core::rt::{read_by, Peek, ReadError, ReadHalf, Rt, Stream, WriteHalf};

/// A connection: the backend's stream, or TLS over it.
pub enum Wire<S: Stream> {
    Plain(S),
    /// Boxed: the session is tens of KiB and only TLS connections pay for it.
    Tls(Box<Tls<S::Io>>),
}

/// A TLS connection with the addresses its TCP socket had.
pub struct Tls<T> {
    io: Buffered<TlsIo<T>>,
    local: Option<SocketAddr>,
    original_dst: Option<SocketAddr>,
    /// [`Stream::reset_on_close`] was called: no close_notify, whose flush would wait on a
    /// client that reads nothing.
    reset: Cell<bool>,
}

impl<S: Stream> Wire<S> {
    /// Wraps an established TLS session; `plain` is the socket it runs on, for its addresses.
    pub fn tls(
        io: TlsIo<S::Io>,
        local: Option<SocketAddr>,
        original_dst: Option<SocketAddr>,
    ) -> Self {
        Wire::Tls(Box::new(Tls {
            io: Buffered::new(io, BytesMut::new()),
            local,
            original_dst,
            reset: Cell::new(false),
        }))
    }

    /// Whether this connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Wire::Tls(_))
    }
}

impl<S: Stream> ReadHalf for Wire<S> {
    const READ_NEVER_WAITS: bool = S::READ_NEVER_WAITS;

    async fn readable(&self) -> stdio::Result<()> {
        match self {
            Wire::Plain(s) => s.readable().await,
            Wire::Tls(t) => t.io.readable().await,
        }
    }

    async fn readable_hint(&self) -> stdio::Result<()> {
        match self {
            Wire::Plain(s) => s.readable_hint().await,
            Wire::Tls(t) => t.io.readable().await,
        }
    }

    async fn read(&mut self, buf: BytesMut) -> (stdio::Result<usize>, BytesMut) {
        match self {
            Wire::Plain(s) => s.read(buf).await,
            Wire::Tls(t) => t.io.read(buf).await,
        }
    }

    /// Plaintext: the backend's own (a direct read on io_uring). TLS: readiness, then read
    /// (a record must be decrypted before any bytes are known to be there).
    async fn read_within<R: Rt>(
        &mut self,
        buf: BytesMut,
        want: usize,
        deadline: Instant,
    ) -> (Result<usize, ReadError>, BytesMut) {
        if let Wire::Plain(s) = self {
            return s.read_within::<R>(buf, want, deadline).await;
        }
        read_by::<R, _>(self, buf, want, deadline).await
    }
}

impl<S: Stream> WriteHalf for Wire<S> {
    async fn write_all(&mut self, buf: Bytes) -> stdio::Result<()> {
        match self {
            Wire::Plain(s) => s.write_all(buf).await,
            Wire::Tls(t) => {
                let io = t.io.io_mut();
                io.write_all(&buf).await?;
                io.flush().await
            }
        }
    }

    async fn shutdown_write(&mut self) -> stdio::Result<()> {
        match self {
            Wire::Plain(s) => s.shutdown_write().await,
            // Reset: nothing more is sent, and the close is a reset.
            Wire::Tls(t) if t.reset.get() => Ok(()),
            // close_notify, then FIN (RFC 8446 §6.1).
            Wire::Tls(t) => t.io.io_mut().shutdown().await,
        }
    }
}

impl<S: Stream> Stream for Wire<S> {
    type Read = WireRead<S>;
    type Write = WireWrite<S>;
    type Io = WireIo<S::Io>;

    fn into_split(self) -> (WireRead<S>, WireWrite<S>) {
        match self {
            Wire::Plain(s) => {
                let (r, w) = s.into_split();
                (WireRead::Plain(r), WireWrite::Plain(w))
            }
            Wire::Tls(t) => {
                let (io, pending) = t.io.into_parts();
                let (r, w) = tokio::io::split(io);
                (
                    WireRead::Tls(Box::new(Buffered::new(r, pending))),
                    WireWrite::Tls(Box::new(w)),
                )
            }
        }
    }

    fn is_reusable(&self) -> bool {
        match self {
            Wire::Plain(s) => s.is_reusable(),
            Wire::Tls(t) => t.io.is_quiet(),
        }
    }

    fn peek(&self) -> Peek {
        match self {
            Wire::Plain(s) => s.peek(),
            Wire::Tls(t) => t.io.peek(),
        }
    }

    fn into_io(self) -> stdio::Result<WireIo<S::Io>> {
        match self {
            Wire::Plain(s) => Ok(WireIo::Plain(s.into_io()?)),
            Wire::Tls(t) => {
                let (io, pending) = t.io.into_parts();
                Ok(WireIo::Tls(Box::new(Rewind::new(
                    io,
                    pending.freeze(),
                    None,
                ))))
            }
        }
    }

    async fn write_some(&mut self, buf: Bytes) -> stdio::Result<Option<Bytes>> {
        match self {
            Wire::Plain(s) => s.write_some(buf).await,
            Wire::Tls(t) => write::write_some(t.io.io_mut(), buf).await,
        }
    }

    fn reset_on_close(&self) {
        match self {
            Wire::Plain(s) => s.reset_on_close(),
            Wire::Tls(t) => {
                t.reset.set(true);
                t.io.with_io(|tls| S::reset_io_on_close(tls.get_ref().0.get_ref()));
            }
        }
    }

    fn reset_io_on_close(io: &WireIo<S::Io>) {
        match io {
            WireIo::Plain(p) => S::reset_io_on_close(p),
            WireIo::Tls(t) => S::reset_io_on_close(t.get_ref().get_ref().0.get_ref()),
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Wire::Plain(s) => s.local_addr(),
            Wire::Tls(t) => t.local,
        }
    }

    fn original_dst(&self) -> Option<SocketAddr> {
        match self {
            Wire::Plain(s) => s.original_dst(),
            Wire::Tls(t) => t.original_dst,
        }
    }
}

/// The reading half of a [`Wire`] (tunnels).
pub enum WireRead<S: Stream> {
    Plain(S::Read),
    Tls(Box<Buffered<tokio::io::ReadHalf<TlsIo<S::Io>>>>),
}

/// The writing half of a [`Wire`] (tunnels).
pub enum WireWrite<S: Stream> {
    Plain(S::Write),
    Tls(Box<tokio::io::WriteHalf<TlsIo<S::Io>>>),
}

impl<S: Stream> ReadHalf for WireRead<S> {
    const READ_NEVER_WAITS: bool = <S::Read as ReadHalf>::READ_NEVER_WAITS;

    async fn readable(&self) -> stdio::Result<()> {
        match self {
            WireRead::Plain(r) => r.readable().await,
            WireRead::Tls(t) => t.readable().await,
        }
    }

    async fn readable_hint(&self) -> stdio::Result<()> {
        match self {
            WireRead::Plain(r) => r.readable_hint().await,
            WireRead::Tls(t) => t.readable().await,
        }
    }

    async fn read(&mut self, buf: BytesMut) -> (stdio::Result<usize>, BytesMut) {
        match self {
            WireRead::Plain(r) => r.read(buf).await,
            WireRead::Tls(t) => t.read(buf).await,
        }
    }

    /// As [`Wire`]'s: the backend's own for plaintext, readiness then read for TLS.
    async fn read_within<R: Rt>(
        &mut self,
        buf: BytesMut,
        want: usize,
        deadline: Instant,
    ) -> (Result<usize, ReadError>, BytesMut) {
        if let WireRead::Plain(r) = self {
            return r.read_within::<R>(buf, want, deadline).await;
        }
        read_by::<R, _>(self, buf, want, deadline).await
    }
}

impl<S: Stream> WriteHalf for WireWrite<S> {
    async fn write_all(&mut self, buf: Bytes) -> stdio::Result<()> {
        match self {
            WireWrite::Plain(w) => w.write_all(buf).await,
            WireWrite::Tls(w) => {
                w.write_all(&buf).await?;
                w.flush().await
            }
        }
    }

    async fn shutdown_write(&mut self) -> stdio::Result<()> {
        match self {
            WireWrite::Plain(w) => w.shutdown_write().await,
            WireWrite::Tls(w) => w.shutdown().await,
        }
    }
}
