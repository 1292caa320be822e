//! Gives back the bytes read while detecting the protocol (the HTTP/2 connection must see the
//! client preface that detection already consumed), and counts the connection's bytes for
//! `/connections`, as the HTTP/1 path does. On a downstream HTTP/2 connection it also watches
//! the client's frames for a control-frame flood (`flood.rs`).

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::flood::ControlFrames;
use crate::core::conns::Conn;

pub struct Rewind<'c, T> {
    prefix: Bytes,
    io: T,
    /// Where the bytes are counted (the preface was counted when it was read).
    conn: Option<&'c Conn>,
    /// The flood watch and where a flood is reported (see [`Rewind::watch_floods`]).
    flood: Option<(ControlFrames, &'c Cell<bool>)>,
}

impl<'c, T> Rewind<'c, T> {
    pub fn new(io: T, prefix: Bytes, conn: Option<&'c Conn>) -> Self {
        Self {
            prefix,
            io,
            conn,
            flood: None,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Watches the bytes read (the prefix included, which must begin with the 24-byte client
    /// preface) for a PING or SETTINGS flood. Once one is seen, `flooded` is set, the reading
    /// task is woken to act on it, and nothing more is read: the connection owner is
    /// expected to send GOAWAY(ENHANCE_YOUR_CALM) and close.
    pub fn watch_floods(mut self, flooded: &'c Cell<bool>) -> Self {
        self.flood = Some((
            ControlFrames::new(crate::core::detect::PREFACE.len(), Instant::now()),
            flooded,
        ));
        self
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.flood.as_ref().is_some_and(|(_, f)| f.get()) {
            // Flooded: read nothing more; the owner closes the connection.
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let r = if self.prefix.is_empty() {
            let r = Pin::new(&mut self.io).poll_read(cx, buf);
            if let Some(c) = self.conn {
                c.add_in((buf.filled().len() - before) as u64);
            }
            r
        } else {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            Poll::Ready(Ok(()))
        };
        if let Some((frames, flooded)) = &mut self.flood {
            if frames.feed(&buf.filled()[before..], Instant::now()) {
                flooded.set(true);
                cx.waker().wake_by_ref();
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.count_out(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.count_out(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T> Rewind<'_, T> {
    fn count_out(&self, r: &Poll<io::Result<usize>>) {
        if let (Some(c), Poll::Ready(Ok(n))) = (self.conn, r) {
            c.add_out(*n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn replays_the_prefix_then_reads_through() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let inner: &[u8] = b" world";
            let mut r = Rewind::new(inner, Bytes::from_static(b"hello"), None);
            let mut out = String::new();
            r.read_to_string(&mut out).await.expect("read");
            assert_eq!(out, "hello world");
        });
    }
}
