//! Writing to a TLS connection a step at a time (`Stream::write_some`): plaintext goes into
//! the session, whose records then drain to the socket. Each step returns once the socket
//! took bytes (or the session took plaintext, which it does only as its bounded buffer drains
//! to the socket), so a caller can bound the time between two steps rather than the whole
//! write: a client that reads slowly but steadily is not mistaken for one that stopped.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use rustls::ConnectionCommon;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsStream;

use super::io::TlsIo;

/// One step of writing `buf` over TLS (see `Stream::write_some`): plaintext into the session
/// while any is left (`Some(rest)`), then the session's records to the socket (`Some` of an
/// empty rest while records are left, `None` once all are with the kernel). On the usual
/// path, a socket that takes everything, that is two steps and no extra syscall: the first
/// writes the records out as the plaintext goes in, the second finds nothing left.
///
/// # Errors
/// The session's or the socket's error; `WriteZero` when the socket takes nothing.
pub async fn write_some<T: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut TlsIo<T>,
    mut buf: Bytes,
) -> io::Result<Option<Bytes>> {
    if buf.is_empty() {
        return poll_fn(|cx| match tls {
            TlsStream::Client(s) => {
                let (io, conn) = s.get_mut();
                drain(io, conn, cx)
            }
            TlsStream::Server(s) => {
                let (io, conn) = s.get_mut();
                drain(io, conn, cx)
            }
        })
        .await;
    }
    let n = tls.write(&buf).await?;
    if n == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    buf.advance(n);
    Ok(Some(buf))
}

/// Passes the session's pending records to the socket until the socket takes some (`Some`,
/// more left) or all (`None`); `Pending` while it takes none. What tokio-rustls's
/// `poll_flush` does, but returning at each step instead of only at the end.
fn drain<T: AsyncWrite + Unpin, D>(
    io: &mut T,
    conn: &mut ConnectionCommon<D>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Option<Bytes>>> {
    if conn.wants_write() {
        match conn.write_tls(&mut SyncWrite { io, cx }) {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(_) if conn.wants_write() => return Poll::Ready(Ok(Some(Bytes::new()))),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Pin::new(io).poll_flush(cx).map_ok(|()| None)
}

/// A poll-based writer as the blocking `Write` rustls writes records into: `Pending` becomes
/// `WouldBlock`, with the task's waker registered by the poll.
struct SyncWrite<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
}

impl<T: AsyncWrite + Unpin> SyncWrite<'_, '_, T> {
    fn poll<U>(
        &mut self,
        f: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<U>>,
    ) -> io::Result<U> {
        match f(Pin::new(&mut *self.io), self.cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<T: AsyncWrite + Unpin> io::Write for SyncWrite<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.poll(|io, cx| io.poll_write(cx, buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.poll(|io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.poll(|io, cx| io.poll_flush(cx))
    }
}
