//! Clients that stall an exchange on purpose or by dying: one that takes none of its response
//! (`timeouts.send_stall`, nginx's `send_timeout`, Envoy's `stream_idle_timeout` with flow
//! control included) and one that trickles its request body (`timeouts.body_read` and
//! `limits.min_body_rate`, Apache mod_reqtimeout's `body=…,MinRate=…`). Each is held in
//! bounded memory by backpressure alone, but holds its connection, an upstream request and
//! their buffers for as long as it likes; these bound that time. Each cut is counted in
//! `ringside_downstream_cutoffs_total` (`core::cutoff`).

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use control::snapshot::BodyPace;
use h2::SendStream;

use crate::core::cutoff::{self, Reason};
use crate::core::rt::{timeout, Rt, Stream};

/// How long a response may wait on its client, and where a cut is counted. One per exchange,
/// toward the client only (never toward an upstream).
#[derive(Clone, Copy)]
pub struct SendStall<'a> {
    /// The listener's `timeouts.send_stall`.
    pub limit: Duration,
    pub listener: &'a str,
    /// Whether metrics are recorded (`--no-metrics` turns them off).
    pub metrics: bool,
    /// HTTP/2: the connection's send progress, so that a connection on which nothing moves
    /// at all is ended too ([`Progress::stuck`]). `None` on HTTP/1.1.
    pub conn: Option<&'a Progress>,
}

impl SendStall<'_> {
    /// Writes all of `bytes` to an HTTP/1.1 client, failing with `TimedOut` (and counting the
    /// cut) when the kernel accepted none of them for the limit: the gap between two partial
    /// writes is bounded, as nginx's `send_timeout` does, not the whole write, so a client
    /// that reads slowly but steadily is never cut. On a stall the connection is set to reset
    /// when it closes (`Stream::reset_on_close`): the kernel frees what the client never took
    /// at once instead of keeping it behind a FIN. The write may then be dropped in flight, so
    /// the caller must close the connection, as it does after any failed write to a client.
    ///
    /// On the usual path this costs what a bound on the whole write did: a write the kernel
    /// takes whole is one `write_some` (one write; one `SEND` on io_uring) under one timer.
    ///
    /// # Errors
    /// The write's own error, or `TimedOut` on a stall.
    pub async fn write<R: Rt, S: Stream>(&self, down: &mut S, bytes: Bytes) -> io::Result<()> {
        let mut left = Some(bytes);
        while let Some(bytes) = left {
            left = match timeout::<R, _>(self.limit, down.write_some(bytes)).await {
                Ok(r) => r?,
                Err(_) => {
                    self.cut();
                    down.reset_on_close();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took none of the response (send_stall)",
                    ));
                }
            };
        }
        Ok(())
    }

    /// Waits until `dst` (a stream to an HTTP/2 client that asked for `want` bytes of
    /// capacity) has send window, for at most the limit; then returns it. On a stall the
    /// stream is reset with CANCEL and the cut counted.
    ///
    /// CANCEL, not FLOW_CONTROL_ERROR: keeping a window closed is the receiver's right (RFC
    /// 9113 §5.2.2: flow control cannot be disabled, a receiver may stop granting), so the
    /// client broke no rule; Ringside simply no longer wants the stream ("the stream is no
    /// longer needed", §7), as Envoy resets a stream its idle timeout ended.
    ///
    /// # Errors
    /// The stream's error, or CANCEL on a stall.
    pub async fn capacity<R: Rt>(&self, dst: &mut SendStream<Bytes>) -> Result<usize, h2::Error> {
        let until = Instant::now() + self.limit;
        loop {
            let cap = dst.capacity();
            if cap > 0 {
                if let Some(p) = self.conn {
                    p.granted();
                }
                return Ok(cap);
            }
            let left = until.saturating_duration_since(Instant::now());
            match timeout::<R, _>(left, poll_fn(|cx| dst.poll_capacity(cx))).await {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => return Err(h2::Error::from(h2::Reason::CANCEL)),
                Err(_) => {
                    dst.send_reset(h2::Reason::CANCEL);
                    self.cut();
                    return Err(h2::Error::from(h2::Reason::CANCEL));
                }
            }
        }
    }

    fn cut(&self) {
        cutoff::count(self.metrics, self.listener, Reason::SendStall);
        if let Some(p) = self.conn {
            p.stalled(self.limit);
        }
    }
}

/// A downstream HTTP/2 connection's send progress: when any of its streams was last granted
/// window, and whether a stream stalled while none was.
///
/// `h2` does not say whether a stream waits on its own window or the connection's. From
/// outside the difference shows as this: when a stream is cut and no stream of the
/// connection was granted any window during the whole stall, nothing moves on the connection
/// at all (its window is shut, or every stream's is, or the client reads nothing), so the
/// connection is ended too (GOAWAY, `down/h2.rs`). A client that leaves one stream unread
/// while others flow loses only that stream.
#[derive(Debug)]
pub struct Progress {
    last_grant: Cell<Instant>,
    stuck: Cell<bool>,
}

impl Progress {
    /// For a connection that starts now (its start counts as the last grant).
    pub fn new() -> Self {
        Self {
            last_grant: Cell::new(Instant::now()),
            stuck: Cell::new(false),
        }
    }

    fn granted(&self) {
        self.last_grant.set(Instant::now());
    }

    fn stalled(&self, limit: Duration) {
        if self.last_grant.get().elapsed() >= limit {
            self.stuck.set(true);
        }
    }

    /// Whether a stream stalled while no stream of the connection was granted window.
    pub fn stuck(&self) -> bool {
        self.stuck.get()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// A request body's pace ([`BodyPace`]) from when its head was read, and where a cut is
/// counted.
#[derive(Clone, Copy)]
pub struct Pace<'a> {
    pub pace: BodyPace,
    pub start: Instant,
    pub listener: &'a str,
    pub metrics: bool,
}

impl Pace<'_> {
    /// When the body must have gone on, `received` bytes into it.
    pub fn deadline(&self, received: u64) -> Instant {
        self.pace.deadline(self.start, received)
    }

    /// Counts a body cut for being too slow.
    pub fn cut(&self) {
        cutoff::count(self.metrics, self.listener, Reason::SlowBody);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_without_any_grant_in_it_marks_the_connection_stuck() {
        let p = Progress::new();
        p.stalled(Duration::from_secs(3600));
        assert!(!p.stuck(), "granted (started) within the stall");
        p.stalled(Duration::ZERO);
        assert!(p.stuck());
    }

    #[test]
    fn the_body_deadline_moves_a_second_per_min_rate_bytes() {
        let start = Instant::now();
        let pace = Pace {
            pace: BodyPace {
                grace: Duration::from_secs(30),
                min_rate: 1024,
            },
            start,
            listener: "l",
            metrics: false,
        };
        assert_eq!(pace.deadline(0), start + Duration::from_secs(30));
        assert_eq!(pace.deadline(10 * 1024), start + Duration::from_secs(40));
        // A trickle of 2 bytes a second earns 2 ms a second: cut just past the grace.
        let after_30s = pace.deadline(60);
        assert!(after_30s < start + Duration::from_millis(30_060));
        // No overflow for absurd counts.
        let _ = pace.deadline(u64::MAX);
    }
}
