//! tokio streams adapted to the owned-buffer seam (`core::rt`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::core::rt::{ReadHalf, Rt, Stream, WriteHalf};

/// The epoll runtime as seen by the core.
#[derive(Debug, Clone, Copy)]
pub struct Epoll;

impl Rt for Epoll {
    type Stream = EpollStream;

    async fn connect(addr: SocketAddr, within: Duration) -> io::Result<EpollStream> {
        // tokio's connect future is cancel-safe: dropping it closes the socket.
        let s = tokio::time::timeout(within, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        s.set_nodelay(true)?;
        Ok(EpollStream(s))
    }

    async fn sleep(d: Duration) {
        tokio::time::sleep(d).await
    }

    fn name() -> &'static str {
        "epoll"
    }

    fn spawn(fut: impl std::future::Future<Output = ()> + 'static) {
        drop(tokio::task::spawn_local(fut));
    }
}

pub struct EpollStream(pub(crate) TcpStream);

/// What [`read_into`] needs from a tokio socket or read half.
trait TryRead {
    fn try_read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize>;
}

impl TryRead for TcpStream {
    fn try_read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.try_read_buf(buf)
    }
}

impl TryRead for OwnedReadHalf {
    fn try_read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.try_read_buf(buf)
    }
}

/// One non-blocking read. The core calls it after `readable()`; if that readiness was stale,
/// this returns `WouldBlock` (tokio clears the flag) and the core waits again under its own
/// deadline, instead of this waiting without one.
async fn read_into<T: TryRead>(io: &mut T, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
    let res = io.try_read_into(&mut buf);
    (res, buf)
}

/// One write of what is left of `buf`, for `Stream::write_some`: the rest, or `None` once
/// the kernel took all of it.
async fn write_some(s: &mut TcpStream, mut buf: Bytes) -> io::Result<Option<Bytes>> {
    if buf.is_empty() {
        return Ok(None);
    }
    let n = s.write(&buf).await?;
    if n == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    buf.advance(n);
    Ok((!buf.is_empty()).then_some(buf))
}

/// tokio's readiness is sticky: a read that drained the socket leaves the flag set, so the
/// next `readable()` returns at once. The core waits for readiness precisely so that an idle
/// connection holds nothing, so confirm it with a non-blocking peek; a `WouldBlock` inside
/// `try_io` clears the flag and the next wait is a real one. The peek replaces the failed
/// read that stale readiness would otherwise cost.
async fn precise_readable<T>(io: &T) -> io::Result<()>
where
    T: AsRawFdReadiness,
{
    loop {
        io.ready().await?;
        match io.try_peek() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            // Errors surface on the read that follows.
            Err(_) => return Ok(()),
        }
    }
}

/// What `precise_readable` needs from a tokio socket or read half.
trait AsRawFdReadiness {
    async fn ready(&self) -> io::Result<()>;
    fn try_peek(&self) -> io::Result<()>;
}

impl AsRawFdReadiness for TcpStream {
    async fn ready(&self) -> io::Result<()> {
        self.readable().await
    }
    fn try_peek(&self) -> io::Result<()> {
        self.try_io(tokio::io::Interest::READABLE, || {
            peek(socket2::SockRef::from(self))
        })
    }
}

impl AsRawFdReadiness for OwnedReadHalf {
    async fn ready(&self) -> io::Result<()> {
        self.readable().await
    }
    fn try_peek(&self) -> io::Result<()> {
        let s: &TcpStream = self.as_ref();
        s.try_io(tokio::io::Interest::READABLE, || {
            peek(socket2::SockRef::from(s))
        })
    }
}

/// One byte, not consumed: `Ok` for data or EOF, `WouldBlock` when nothing is there.
fn peek(sock: socket2::SockRef<'_>) -> io::Result<()> {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    sock.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        .map(|_| ())
}

impl ReadHalf for EpollStream {
    const READ_NEVER_WAITS: bool = true;

    async fn readable(&self) -> io::Result<()> {
        precise_readable(&self.0).await
    }

    async fn readable_hint(&self) -> io::Result<()> {
        self.0.readable().await
    }

    async fn read(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        read_into(&mut self.0, buf).await
    }
}

impl WriteHalf for EpollStream {
    async fn write_all(&mut self, buf: Bytes) -> io::Result<()> {
        self.0.write_all(&buf).await
    }

    async fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

impl Stream for EpollStream {
    type Read = EpollRead;
    type Write = EpollWrite;
    type Io = TcpStream;

    fn into_io(self) -> io::Result<TcpStream> {
        Ok(self.0)
    }

    async fn write_some(&mut self, buf: Bytes) -> io::Result<Option<Bytes>> {
        write_some(&mut self.0, buf).await
    }

    fn reset_on_close(&self) {
        crate::backend::sock::reset_on_close(socket2::SockRef::from(&self.0));
    }

    fn reset_io_on_close(io: &TcpStream) {
        crate::backend::sock::reset_on_close(socket2::SockRef::from(io));
    }

    fn is_reusable(&self) -> bool {
        crate::backend::sock::peek_reusable(socket2::SockRef::from(&self.0))
    }

    fn peek(&self) -> crate::core::rt::Peek {
        crate::backend::sock::peek(socket2::SockRef::from(&self.0))
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        crate::backend::sock::local_addr(socket2::SockRef::from(&self.0))
    }

    fn original_dst(&self) -> Option<SocketAddr> {
        crate::backend::sock::original_dst(socket2::SockRef::from(&self.0))
    }

    fn into_split(self) -> (EpollRead, EpollWrite) {
        let (r, w) = self.0.into_split();
        (EpollRead(r), EpollWrite(w))
    }
}

pub struct EpollRead(OwnedReadHalf);
pub struct EpollWrite(OwnedWriteHalf);

impl ReadHalf for EpollRead {
    const READ_NEVER_WAITS: bool = true;

    async fn readable(&self) -> io::Result<()> {
        precise_readable(&self.0).await
    }

    async fn readable_hint(&self) -> io::Result<()> {
        self.0.readable().await
    }

    async fn read(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        read_into(&mut self.0, buf).await
    }
}

impl WriteHalf for EpollWrite {
    async fn write_all(&mut self, buf: Bytes) -> io::Result<()> {
        self.0.write_all(&buf).await
    }

    async fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::sync::Arc;

    use super::*;
    use crate::core::lifecycle::Lifecycle;
    use crate::core::serve;
    use crate::core::worker::Worker;

    /// An idle keep-alive connection costs its task's future and little else, so the future's
    /// size is the floor of per-connection memory; this keeps it from creeping up unseen.
    #[tokio::test(flavor = "current_thread")]
    async fn connection_future_stays_small() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let snap = control::load_str("listeners: []\nclusters: []\n", "t.yaml").expect("config");
        let config = Arc::new(arc_swap::ArcSwap::from_pointee(snap));
        let w = Rc::new(Worker::<Epoll>::new(
            0,
            config,
            Lifecycle::new(),
            Default::default(),
        ));
        let slot = Arc::new(crate::core::shed::Load::default())
            .try_connection(None)
            .expect("no limit");
        let fut = serve::guarded(
            serve::connection(w, EpollStream(client), addr, Rc::from("l"), slot),
            0,
            addr,
        );
        let size = std::mem::size_of_val(&fut);
        eprintln!("epoll connection future: {size} bytes");
        assert!(size <= 1000, "connection future grew to {size} bytes");
    }
}
