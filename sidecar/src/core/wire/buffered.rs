//! A poll-based reader (TLS, or one half of it) adapted to the core's readiness-then-read
//! seam (`core::rt::ReadHalf`): `readable` reads what is there into a small pending buffer
//! (a TLS record must be decrypted to know whether any application data arrived) and `read`
//! hands it over. Dropping either is always safe: nothing is in flight across polls.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

/// Bytes taken from the stream per readiness poll: the stack buffer is only alive within a
/// poll, so an idle connection holds none of it.
const PEEK: usize = 8 * 1024;

pub struct Buffered<R> {
    inner: RefCell<Inner<R>>,
}

struct Inner<R> {
    io: R,
    /// Plaintext read by `readable`, not yet taken by `read`.
    pending: BytesMut,
    /// `readable` saw end of stream.
    eof: bool,
}

impl<R: AsyncRead + Unpin> Buffered<R> {
    pub fn new(io: R, pending: BytesMut) -> Self {
        Self {
            inner: RefCell::new(Inner {
                io,
                pending,
                eof: false,
            }),
        }
    }

    /// Completes when `read` would return bytes, end of stream or an error without waiting.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_fill(cx)).await
    }

    fn poll_fill(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        if !inner.pending.is_empty() || inner.eof {
            return Poll::Ready(Ok(()));
        }
        let mut stack = [0u8; PEEK];
        let mut rb = ReadBuf::new(&mut stack);
        match Pin::new(&mut inner.io).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                if rb.filled().is_empty() {
                    inner.eof = true;
                } else {
                    inner.pending.extend_from_slice(rb.filled());
                }
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Appends what is there to `buf`; `WouldBlock` when nothing is (never waits, so the
    /// caller's deadline governs every wait).
    pub async fn read(&mut self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let inner = self.inner.get_mut();
        if !inner.pending.is_empty() {
            let n = inner.pending.len();
            if buf.is_empty() && buf.capacity() < n {
                std::mem::swap(&mut buf, &mut inner.pending);
            } else {
                buf.extend_from_slice(&inner.pending);
                inner.pending.clear();
            }
            return (Ok(n), buf);
        }
        if inner.eof {
            return (Ok(0), buf);
        }
        let io = &mut inner.io;
        let res =
            poll_fn(
                |cx| match tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, &mut buf) {
                    Poll::Pending => Poll::Ready(Err(io::ErrorKind::WouldBlock.into())),
                    ready => ready,
                },
            )
            .await;
        (res, buf)
    }

    /// Whether the stream is quiet: no bytes, no end, no error (an idle pooled connection).
    /// Polls once with a no-op waker; whatever it finds makes the connection unusable anyway.
    pub fn is_quiet(&self) -> bool {
        let mut inner = self.inner.borrow_mut();
        if !inner.pending.is_empty() || inner.eof {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut stack = [0u8; 64];
        let mut rb = ReadBuf::new(&mut stack);
        matches!(
            Pin::new(&mut inner.io).poll_read(&mut cx, &mut rb),
            Poll::Pending
        )
    }

    /// What `readable` left for `read`, consuming nothing (plaintext already decrypted, or
    /// the end of the stream); `Empty` when it found nothing yet.
    pub fn peek(&self) -> crate::core::rt::Peek {
        use crate::core::rt::Peek;
        let inner = self.inner.borrow();
        if !inner.pending.is_empty() {
            Peek::Data
        } else if inner.eof {
            Peek::Closed
        } else {
            Peek::Empty
        }
    }

    /// Runs `f` with the stream (for socket options); does nothing if a read is in progress,
    /// which cannot be the case between polls.
    pub fn with_io(&self, f: impl FnOnce(&R)) {
        if let Ok(inner) = self.inner.try_borrow() {
            f(&inner.io);
        }
    }

    /// The stream, for writing (a whole TLS stream reads and writes through one object).
    pub fn io_mut(&mut self) -> &mut R {
        &mut self.inner.get_mut().io
    }

    /// The stream and any bytes read but not yet taken.
    pub fn into_parts(self) -> (R, BytesMut) {
        let inner = self.inner.into_inner();
        (inner.io, inner.pending)
    }
}
