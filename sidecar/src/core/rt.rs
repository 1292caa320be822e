//! The runtime seam: everything the core needs from an I/O runtime, and nothing more.
//!
//! The core is generic over [`Rt`] and never names a runtime. (It does name tokio's
//! `AsyncRead`/`AsyncWrite` traits: HTTP/2 is the `h2` crate, which is written against them,
//! and both backends provide them, monoio through `into_poll_io()`.) Buffers are owned
//! (`BytesMut` in, `Bytes` out) because io_uring needs the kernel to own a buffer while an
//! operation is in flight; tokio is adapted to the same shape, not the other way round.
//!
//! Cancellation rule (DESIGN.md §5.1): dropping an in-flight io_uring `read` loses the bytes it
//! was reading. So the core never puts a timeout around `read`. Where a wait may be long and
//! nothing is expected (an idle connection, a tunnel, a client's request body) it waits for
//! `readable()` (a readiness poll, safe to drop, no buffer held) under a deadline, and only then
//! reads ([`read_by`]). Where bytes are expected (the response to a request just sent, the rest
//! of a response body) it calls [`ReadHalf::read_within`], which the io_uring backend submits
//! as a read at once and cancels cleanly at the deadline (the buffer and any bytes that won
//! the race come back).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// One I/O runtime, used from a single worker thread.
pub trait Rt: 'static {
    type Stream: Stream;

    /// Opens a TCP connection with `TCP_NODELAY` set, failing with `ErrorKind::TimedOut` after
    /// `within`. The backend owns the deadline because cancelling a connect is not safe on
    /// every runtime (monoio 0.2.4 leaks the socket of a dropped connect op).
    fn connect(
        addr: SocketAddr,
        within: Duration,
    ) -> impl Future<Output = io::Result<Self::Stream>>;

    /// Completes after `d`. Dropping it early is always safe.
    fn sleep(d: Duration) -> impl Future<Output = ()>;

    /// The runtime's name, as shown in logs and metrics: `io_uring` or `epoll`.
    fn name() -> &'static str;

    /// Runs `fut` as a task of this worker (an upstream HTTP/2 connection's driver, shared by
    /// every downstream connection that sends streams over it).
    fn spawn(fut: impl Future<Output = ()> + 'static);
}

/// The reading side of a connection.
pub trait ReadHalf: 'static {
    /// `read` never waits: it returns `WouldBlock` when no data is there (a readiness-based
    /// runtime). Such a backend is read first and waited on only after `WouldBlock`, which
    /// saves a readiness syscall per read; a completion-based one (io_uring) must be waited on
    /// first, because its pending read cannot be dropped safely.
    const READ_NEVER_WAITS: bool = false;

    /// Waits until a `read` would not block (data, EOF or error). Holds no buffer while waiting
    /// and is safe to drop, which is what makes idle connections cheap and timeouts correct.
    fn readable(&self) -> impl Future<Output = io::Result<()>>;

    /// Like `readable`, but may return early when readiness is stale: for callers that read
    /// right after and handle `WouldBlock`. Defaults to `readable`.
    fn readable_hint(&self) -> impl Future<Output = io::Result<()>> {
        self.readable()
    }

    /// Appends into the spare capacity of `buf` (the caller reserves it) and hands it back.
    /// `Ok(0)` means end of stream. Must not be dropped while pending: see the module docs.
    /// A readiness-based runtime may report readiness that is gone by the time of the read;
    /// it then returns `ErrorKind::WouldBlock` rather than waiting without a deadline. Use
    /// [`read_by`], which handles that.
    fn read(&mut self, buf: BytesMut) -> impl Future<Output = (io::Result<usize>, BytesMut)>;

    /// Reads where bytes are expected soon (the response to a request just sent, the rest of
    /// a response body): reserves `want` bytes in `buf`, appends what one read returns, and
    /// gives up with [`ReadError::Elapsed`] at `deadline`. The buffer always comes back.
    ///
    /// The default is [`read_by`] (wait for readiness under the deadline, then read; a
    /// backend whose read never waits reads first). A completion-based backend submits the
    /// read at once, without a readiness wait first, and at the deadline cancels it and waits
    /// for the cancellation to complete, so nothing is lost and nothing is left in flight:
    /// bytes that arrived as the deadline passed are returned, not dropped. Dropping the
    /// future while it is pending may lose bytes (as with `read`): only a caller that then
    /// closes the connection may do so.
    fn read_within<R: Rt>(
        &mut self,
        buf: BytesMut,
        want: usize,
        deadline: std::time::Instant,
    ) -> impl Future<Output = (Result<usize, ReadError>, BytesMut)>
    where
        Self: Sized,
    {
        read_by::<R, Self>(self, buf, want, deadline)
    }
}

/// The writing side of a connection.
pub trait WriteHalf: 'static {
    /// Writes all of `buf`; completing means the kernel accepted every byte.
    fn write_all(&mut self, buf: Bytes) -> impl Future<Output = io::Result<()>>;

    /// Half-closes: sends FIN, leaves the read side open.
    fn shutdown_write(&mut self) -> impl Future<Output = io::Result<()>>;
}

/// A connected TCP stream, usable whole (HTTP/1 request/response turns) or split into halves
/// that can be driven concurrently from one task (tunnels).
pub trait Stream: ReadHalf + WriteHalf {
    type Read: ReadHalf;
    type Write: WriteHalf;
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static;

    fn into_split(self) -> (Self::Read, Self::Write);

    /// Whether an idle pooled connection may carry another request: a non-blocking peek finds
    /// neither EOF, nor an error, nor bytes the peer sent unasked. One syscall, no waiting.
    fn is_reusable(&self) -> bool;

    /// What a non-blocking peek finds on the read side, consuming nothing: how an HTTP/1
    /// exchange tells a client that closed (or reset) from one that pipelined its next
    /// request, after `readable()` fired while the request is in flight. One syscall.
    fn peek(&self) -> Peek;

    /// The stream as a poll-based tokio I/O object, for HTTP/2 (`h2` is written against those
    /// traits). One-way: the connection is HTTP/2 for the rest of its life.
    fn into_io(self) -> io::Result<Self::Io>;

    /// Writes part of `buf`: waits until the kernel accepts at least one byte of it, and
    /// returns what is left (`Some`, for the next call) or `None` once all of it is with the
    /// kernel. One write (one `SEND` on io_uring, as each turn of `write_all` is), so a caller
    /// can bound the time between two steps instead of the whole write (`bridge::stall`). A
    /// layer above the socket (TLS) may take every byte and return `Some` of an empty rest
    /// while its own buffer drains. Dropped in flight, it leaves the connection to be closed.
    fn write_some(&mut self, buf: Bytes) -> impl Future<Output = io::Result<Option<Bytes>>>;

    /// Makes the connection's close a reset (`SO_LINGER` 0): the kernel drops what is still
    /// unsent and frees the socket at once, and the peer sees `ECONNRESET`, instead of a FIN
    /// queued behind bytes a peer that stopped reading never takes. Only for a client Ringside
    /// gives up on (`send_stall`); a response that must arrive (a 408) closes with a FIN.
    fn reset_on_close(&self);

    /// [`Stream::reset_on_close`] for the stream's poll-based view (what TLS runs over).
    fn reset_io_on_close(io: &Self::Io);

    /// The local address this connection arrived on.
    fn local_addr(&self) -> Option<SocketAddr>;

    /// Where the client was connecting before an iptables `REDIRECT` rewrote the destination
    /// to this listener (`SO_ORIGINAL_DST`, from conntrack). For a connection that was not
    /// redirected it equals [`Stream::local_addr`]; `None` when the kernel has no NAT record
    /// for it (e.g. no conntrack).
    fn original_dst(&self) -> Option<SocketAddr>;
}

/// What [`Stream::peek`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// Nothing to read yet (readiness was stale).
    Empty,
    /// Bytes are waiting (left in place for the next read).
    Data,
    /// End of stream, or an error (a reset): the peer is gone.
    Closed,
}

/// Why a deadline-bound wait ended without its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Runs `fut` until `d` elapses. Only for futures that are safe to drop (readiness, connect,
/// writes on a connection that is then closed): never a pending `read`.
///
/// A plain function returning a two-field future, not an `async fn`: an `async fn` would store
/// `fut` twice (as its argument and again once pinned), and this sits in every idle
/// connection's state.
pub fn timeout<R: Rt, F: Future>(d: Duration, fut: F) -> Timeout<F, impl Future<Output = ()>> {
    Timeout {
        fut,
        sleep: R::sleep(d),
    }
}

pin_project_lite::pin_project! {
    /// See [`timeout`].
    pub struct Timeout<F, S> {
        #[pin]
        fut: F,
        #[pin]
        sleep: S,
    }
}

impl<F: Future, S: Future<Output = ()>> Future for Timeout<F, S> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        if let std::task::Poll::Ready(v) = this.fut.poll(cx) {
            return std::task::Poll::Ready(Ok(v));
        }
        this.sleep.poll(cx).map(|()| Err(Elapsed))
    }
}

/// Why [`read_by`] or [`ReadHalf::read_within`] returned without bytes.
#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed first.
    Elapsed,
    /// The read failed.
    Io(io::Error),
}

/// Waits for readability until `deadline`, then reserves `want` bytes and reads: how the core
/// reads where the wait may be long and holding no buffer matters (idle connections hold
/// none), and the default of [`ReadHalf::read_within`]. The buffer grows only once data is
/// there, and the deadline never covers the read itself (see the module docs).
pub async fn read_by<R: Rt, H: ReadHalf>(
    half: &mut H,
    mut buf: BytesMut,
    want: usize,
    deadline: std::time::Instant,
) -> (Result<usize, ReadError>, BytesMut) {
    // A backend whose read never waits is read first: data is usually there already (a
    // response right after its request was sent, the rest of a body). Any other waits first.
    let mut wait = !H::READ_NEVER_WAITS;
    loop {
        if wait {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match timeout::<R, _>(left, half.readable_hint()).await {
                Err(Elapsed) => return (Err(ReadError::Elapsed), buf),
                Ok(Err(e)) => return (Err(ReadError::Io(e)), buf),
                Ok(Ok(())) => {}
            }
        }
        wait = true;
        buf.reserve(want.max(1));
        let (res, b) = half.read(buf).await;
        buf = b;
        match res {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Nothing there (or stale readiness): wait, holding no empty buffer.
                if buf.is_empty() {
                    buf = BytesMut::new();
                }
                continue;
            }
            Err(e) => return (Err(ReadError::Io(e)), buf),
            Ok(n) => return (Ok(n), buf),
        }
    }
}
