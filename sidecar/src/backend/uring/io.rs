//! monoio streams adapted to the owned-buffer seam (`core::rt`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::ops::counted;
use crate::core::rt::{ReadError, ReadHalf, Rt, Stream, WriteHalf};

/// The io_uring runtime as seen by the core.
#[derive(Debug, Clone, Copy)]
pub struct Uring;

impl Rt for Uring {
    type Stream = UringStream;

    async fn connect(addr: SocketAddr, within: Duration) -> io::Result<UringStream> {
        // Not monoio's connect op: dropping it on timeout leaks the socket in 0.2.4. A
        // non-blocking connect() plus a writability poll is safe to abandon.
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_nonblocking(true)?;
        sock.set_tcp_nodelay(true)?;
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // Under io_uring monoio expects blocking sockets; the kernel never blocks the ring.
        let stream = TcpStream::from_std(std::net::TcpStream::from(sock))?;
        let writable = monoio::time::timeout(within, stream.writable(false)).await;
        match writable {
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            Ok(r) => r?,
        }
        with_sock(&stream, |sock| {
            if let Some(e) = sock.take_error()? {
                return Err(e);
            }
            sock.set_nonblocking(false)
        })?;
        Ok(UringStream(stream))
    }

    async fn sleep(d: Duration) {
        monoio::time::sleep(d).await
    }

    fn name() -> &'static str {
        "io_uring"
    }

    fn spawn(fut: impl std::future::Future<Output = ()> + 'static) {
        drop(monoio::spawn(fut));
    }
}

pub struct UringStream(pub(crate) TcpStream);

thread_local! {
    /// Connections converted to poll-io on this worker (see [`poll_io_connections`]).
    static POLL_IO: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Connections this worker converted to monoio's poll-io (readiness) for HTTP/2: `/runtime`
/// shows it, so which I/O path ran is visible (ARCHITECTURE.md, "Two ways to do I/O").
pub fn poll_io_connections() -> u64 {
    POLL_IO.with(|c| c.get())
}

/// Runs `f` with socket2's view of a monoio socket, for options and peeks monoio lacks.
fn with_sock<T>(s: &TcpStream, f: impl FnOnce(SockRef<'_>) -> T) -> T {
    // SAFETY: the fd stays open while `s` is borrowed: monoio closes it only when the last
    // handle to the stream drops, and `SockRef` never closes what it borrows.
    let fd = unsafe { BorrowedFd::borrow_raw(s.as_raw_fd()) };
    f(SockRef::from(&fd))
}

/// monoio's `BytesMut` impl writes from offset 0; a `SliceMut` over the spare capacity makes
/// the read append instead, which is what the seam promises.
async fn recv_append(s: &mut TcpStream, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
    let len = buf.len();
    let (res, slice) = s.read(buf.slice_mut(len..)).await;
    (res, slice.into_inner())
}

async fn send_all(s: &mut TcpStream, buf: Bytes) -> io::Result<()> {
    let (res, _) = s.write_all(buf).await;
    res.map(|_| ())
}

/// One `SEND` of what is left of `buf` (monoio's `write_all` is a loop of these), for
/// `Stream::write_some`: the rest, or `None` once the kernel took all of it.
async fn send_some(s: &mut TcpStream, buf: Bytes) -> io::Result<Option<Bytes>> {
    if buf.is_empty() {
        return Ok(None);
    }
    let (res, mut buf) = counted(s.write(buf)).await;
    match res {
        Ok(0) => Err(io::ErrorKind::WriteZero.into()),
        Ok(n) if n >= buf.len() => Ok(None),
        Ok(n) => {
            buf.advance(n);
            Ok(Some(buf))
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Some(buf)),
        Err(e) => Err(e),
    }
}

impl ReadHalf for UringStream {
    async fn readable(&self) -> io::Result<()> {
        counted(self.0.readable(false)).await
    }

    async fn read(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        counted(recv_append(&mut self.0, buf)).await
    }

    /// A `RECV` at once, no `POLL_ADD` first, cancelled cleanly at `deadline` (`recv.rs`).
    async fn read_within<R: Rt>(
        &mut self,
        buf: BytesMut,
        want: usize,
        deadline: Instant,
    ) -> (Result<usize, ReadError>, BytesMut) {
        super::recv::recv_within(&mut self.0, buf, want, deadline).await
    }
}

impl WriteHalf for UringStream {
    async fn write_all(&mut self, buf: Bytes) -> io::Result<()> {
        counted(send_all(&mut self.0, buf)).await
    }

    async fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

impl Stream for UringStream {
    type Read = UringRead;
    type Write = UringWrite;
    type Io = monoio::net::tcp::stream_poll::TcpStreamPoll;

    fn into_io(self) -> io::Result<Self::Io> {
        // The ring polls an inner epoll set for such streams (monoio `poll-io`): h2 needs
        // poll-style reads, whose dropped futures lose nothing.
        let io = self.0.try_into_poll_io().map_err(|(e, _)| e)?;
        POLL_IO.with(|c| c.set(c.get() + 1));
        Ok(io)
    }

    async fn write_some(&mut self, buf: Bytes) -> io::Result<Option<Bytes>> {
        send_some(&mut self.0, buf).await
    }

    fn reset_on_close(&self) {
        with_sock(&self.0, crate::backend::sock::reset_on_close);
    }

    fn reset_io_on_close(io: &Self::Io) {
        // SAFETY: the fd stays open while `io` is borrowed (monoio closes it when the stream
        // drops), and `SockRef` never closes what it borrows.
        let fd = unsafe { BorrowedFd::borrow_raw(io.as_raw_fd()) };
        crate::backend::sock::reset_on_close(SockRef::from(&fd));
    }

    fn is_reusable(&self) -> bool {
        with_sock(&self.0, crate::backend::sock::peek_reusable)
    }

    fn peek(&self) -> crate::core::rt::Peek {
        with_sock(&self.0, crate::backend::sock::peek)
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        with_sock(&self.0, crate::backend::sock::local_addr)
    }

    fn original_dst(&self) -> Option<SocketAddr> {
        with_sock(&self.0, crate::backend::sock::original_dst)
    }

    fn into_split(self) -> (UringRead, UringWrite) {
        let (r, w) = self.0.into_split();
        (UringRead(r), UringWrite(w))
    }
}

/// monoio's own halves, plus `readable()` on the read half, which monoio does not expose.
pub struct UringRead(OwnedReadHalf<TcpStream>);
pub struct UringWrite(OwnedWriteHalf<TcpStream>);

impl ReadHalf for UringRead {
    async fn readable(&self) -> io::Result<()> {
        // SAFETY: the halves share one stream through an `Rc<UnsafeCell<_>>` on this worker
        // thread only. `TcpStream::readable` takes `&self` and only clones the fd handle into a
        // poll op; monoio's half methods take their `&mut` just long enough to clone the same
        // handle into their own op. No code path mutates the stream itself while we hold this.
        let stream: &TcpStream = unsafe { &*self.0 .0.get() };
        counted(stream.readable(false)).await
    }

    async fn read(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let len = buf.len();
        let (res, slice) = counted(self.0.read(buf.slice_mut(len..))).await;
        (res, slice.into_inner())
    }

    /// As [`UringStream`]'s.
    async fn read_within<R: Rt>(
        &mut self,
        buf: BytesMut,
        want: usize,
        deadline: Instant,
    ) -> (Result<usize, ReadError>, BytesMut) {
        super::recv::recv_within(&mut self.0, buf, want, deadline).await
    }
}

impl WriteHalf for UringWrite {
    async fn write_all(&mut self, buf: Bytes) -> io::Result<()> {
        let (res, _) = counted(self.0.write_all(buf)).await;
        res.map(|_| ())
    }

    async fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

/// Shuts a listening socket down so a pending accept on it fails instead of waiting forever.
pub(crate) fn shutdown_listener(l: &monoio::net::TcpListener) {
    // SAFETY: the fd stays open while `l` is borrowed (monoio closes it when the listener
    // drops), and `SockRef` never closes what it borrows.
    let fd = unsafe { BorrowedFd::borrow_raw(l.as_raw_fd()) };
    let _ = SockRef::from(&fd).shutdown(std::net::Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::sync::Arc;

    use super::*;
    use crate::core::lifecycle::Lifecycle;
    use crate::core::serve;
    use crate::core::worker::Worker;

    /// The io_uring twin of the epoll test: an idle connection's floor is its future's size.
    /// No idle timer lives in it (monoio's timer entry alone is 768 bytes; the worker's sweep
    /// replaces it). The future is 128-byte aligned here, so its size moves in 128-byte steps.
    #[test]
    fn connection_future_stays_small() {
        let mut rt = match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                panic!("io_uring runtime unavailable here ({e}); set up the host or run epoll only")
            }
        };
        rt.block_on(async {
            let l = monoio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = l.local_addr().expect("addr");
            let client = TcpStream::connect_addr(addr).await.expect("connect");
            let s = UringStream(client);
            let snap =
                control::load_str("listeners: []\nclusters: []\n", "t.yaml").expect("config");
            let config = Arc::new(arc_swap::ArcSwap::from_pointee(snap));
            let w = Rc::new(Worker::<Uring>::new(
                0,
                config,
                Lifecycle::new(),
                Default::default(),
            ));
            let slot = Arc::new(crate::core::shed::Load::default())
                .try_connection(None)
                .expect("no limit");
            let fut = serve::guarded(serve::connection(w, s, addr, Rc::from("l"), slot), 0, addr);
            let size = std::mem::size_of_val(&fut);
            eprintln!("io_uring connection future: {size} bytes");
            assert!(size <= 1000, "connection future grew to {size} bytes");
        });
    }
}
