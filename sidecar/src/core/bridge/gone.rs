//! Noticing an HTTP/1.1 client that leaves while its request is in flight (a long-poll, a
//! server stream between messages): the upstream request is then cancelled at once, as
//! Envoy, nginx and Go do, instead of at the next failed write or the route timeout.
//!
//! DESIGN.md §5.1: an in-flight io_uring read must never be dropped on a connection that is
//! kept. So the client connection is never read here: the watch waits on readiness (safe to
//! drop) and then peeks without consuming. A client that pipelined its next request made the
//! connection readable with bytes, not EOF: those stay in the socket (or in the TLS layer's
//! buffer) for the next request, and the watch stops for this request.

use std::future::pending;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;

use super::interim::{h1_informational, h1_informational_h2, Interim};
use super::relay::{H1Sink, Sink};
use super::stall::SendStall;
use crate::core::http1::{BodyKind, ResponseHead};
use crate::core::rt::{Peek, Rt, Stream};

/// How long the upstream may stay quiet before the client connection is watched: a response
/// that keeps arriving never pays for a readiness poll (on io_uring a poll operation and its
/// cancellation per wait). The detection delay is this plus scheduling, well under 100 ms.
pub const QUIET: Duration = Duration::from_millis(20);

/// Completes when the client closed its connection (EOF) or reset it, once the upstream was
/// quiet for [`QUIET`]. Never completes when the client sent more bytes (pipelining): they are
/// left unread. Safe to drop at any point: it only waits on readiness and peeks.
pub async fn client_gone<R: Rt, S: Stream>(down: &S) {
    R::sleep(QUIET).await;
    loop {
        if down.readable().await.is_err() {
            return;
        }
        match down.peek() {
            Peek::Closed => return,
            Peek::Data => return pending().await,
            // Stale readiness: wait again.
            Peek::Empty => {}
        }
    }
}

/// An HTTP/1 client connection as a response body's sink that also says when the client
/// left (see [`client_gone`]), each write bounded by the client's send stall.
pub struct Watching<'a, R, D> {
    sink: H1Sink<'a, D>,
    stall: SendStall<'a>,
    rt: PhantomData<R>,
}

impl<'a, R: Rt, D: Stream> Watching<'a, R, D> {
    pub fn new(dst: &'a mut D, framing: BodyKind, stall: SendStall<'a>) -> Self {
        Self {
            sink: H1Sink::new(dst, framing),
            stall,
            rt: PhantomData,
        }
    }
}

impl<R: Rt, D: Stream> Sink for Watching<'_, R, D> {
    async fn data(&mut self, data: Bytes) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let bytes = self.sink.framed(data);
        self.stall.write::<R, _>(self.sink.dst_mut(), bytes).await
    }

    async fn end(&mut self, trailers: &[u8]) -> io::Result<()> {
        match self.sink.last(trailers) {
            Some(last) => self.stall.write::<R, _>(self.sink.dst_mut(), last).await,
            None => Ok(()),
        }
    }

    async fn gone(&self) {
        client_gone::<R, _>(self.sink.dst()).await
    }
}

/// Takes informational (1xx) responses out of a response-head wait, encoded for an HTTP/1.1
/// client, and stops the wait (with an error the caller recognises by [`Held1xx::take`]). The
/// caller writes them itself: while the head is awaited, the client connection is borrowed
/// by the watch, so nothing may write to it inside the wait.
#[derive(Default)]
pub struct Held1xx(Option<Bytes>);

impl Held1xx {
    /// The informational head that stopped the wait, if one did.
    pub fn take(&mut self) -> Option<Bytes> {
        self.0.take()
    }

    fn hold(&mut self, out: Bytes) -> io::Result<()> {
        self.0 = Some(out);
        Err(io::Error::other(
            "informational response held for the client",
        ))
    }
}

impl Interim for Held1xx {
    async fn informational(&mut self, head: &ResponseHead) -> io::Result<()> {
        self.hold(h1_informational(head))
    }

    async fn informational_h2(&mut self, head: http::Response<()>) -> io::Result<()> {
        self.hold(h1_informational_h2(head))
    }
}
