//! The poll-based view of a [`super::Wire`], for HTTP/2 (the `h2` crate reads and writes
//! through tokio's traits).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::core::h2::rewind::Rewind;

/// A TLS session over a backend's poll-based stream. The `Rewind` replays the bytes read
/// while detecting the protocol (the ClientHello's first bytes).
pub type TlsIo<T> = tokio_rustls::TlsStream<Rewind<'static, T>>;

/// The backend's poll-based stream, or TLS over it.
pub enum WireIo<T> {
    Plain(T),
    Tls(Box<Rewind<'static, TlsIo<T>>>),
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for WireIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WireIo::Plain(t) => Pin::new(t).poll_read(cx, buf),
            WireIo::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WireIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WireIo::Plain(t) => Pin::new(t).poll_write(cx, buf),
            WireIo::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WireIo::Plain(t) => Pin::new(t).poll_write_vectored(cx, bufs),
            WireIo::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WireIo::Plain(t) => t.is_write_vectored(),
            WireIo::Tls(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WireIo::Plain(t) => Pin::new(t).poll_flush(cx),
            WireIo::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WireIo::Plain(t) => Pin::new(t).poll_shutdown(cx),
            WireIo::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}
