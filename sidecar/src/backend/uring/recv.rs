//! Reads where bytes are expected (`ReadHalf::read_within`): a `RECV` submitted at once, with
//! no readiness wait (`POLL_ADD`) before it, cancelled cleanly at the deadline.
//!
//! Dropping an in-flight monoio op cancels it and throws its result away, bytes included
//! (DESIGN.md §5.1), so a plain read cannot be put under a timeout. monoio's cancelable read
//! (`CancelableAsyncReadRent`, 0.2.4) can: at the deadline the read is cancelled
//! (`ASYNC_CANCEL`) and then awaited to its end, which is `ECANCELED` (nothing read) or the
//! bytes that won the race; the buffer comes back either way and no op is left in flight.
//!
//! A `Canceller` cancels every op associated with it, so each pending read needs its own, and
//! making one allocates (an `Rc`, then its op set on first use). They are kept in a per-worker
//! free list: a read takes one and gives it back once the read has completed (nothing is
//! associated with it any more). `Canceller::cancel` hands back a fresh one in place of the
//! used one: an allocation per timeout, not per request. A read whose future is dropped while
//! pending frees its canceller rather than risk reusing one that still names a live op.

use std::cell::RefCell;
use std::pin::pin;
use std::time::Instant;

use bytes::BytesMut;
use futures_util::future::{select, Either};
use monoio::buf::IoBufMut;
use monoio::io::{CancelableAsyncReadRent, Canceller};

use super::ops::{bump, counted};
use crate::core::rt::ReadError;

/// Most cancellers a worker keeps for reuse (one per read pending at once); more are freed.
const KEEP: usize = 1024;

thread_local! {
    static FREE: RefCell<Vec<Canceller>> = const { RefCell::new(Vec::new()) };
}

fn take() -> Canceller {
    FREE.with(|f| f.borrow_mut().pop()).unwrap_or_default()
}

fn give_back(c: Canceller) {
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(c);
        }
    });
}

/// Cancellers on this worker's free list (for tests).
#[cfg(test)]
pub(super) fn free_cancellers() -> usize {
    FREE.with(|f| f.borrow().len())
}

/// One read of up to `want` more bytes into `buf`, or [`ReadError::Elapsed`] at `deadline`
/// with the read cancelled and completed. See the module docs.
pub(super) async fn recv_within<T: CancelableAsyncReadRent>(
    io: &mut T,
    mut buf: BytesMut,
    want: usize,
    deadline: Instant,
) -> (Result<usize, ReadError>, BytesMut) {
    let now = Instant::now();
    if now >= deadline {
        return (Err(ReadError::Elapsed), buf);
    }
    buf.reserve(want.max(1));
    let len = buf.len();
    let mut canceller = take();
    let handle = canceller.handle();
    // The slice appends (monoio's `BytesMut` impl would write from offset 0).
    let mut read = pin!(counted(io.cancelable_read(buf.slice_mut(len..), handle)));
    let sleep = pin!(monoio::time::sleep(deadline - now));
    // `select` polls the read first: a read that completed wins over a deadline that passed.
    let ((res, slice), cancelled) = match select(read.as_mut(), sleep).await {
        Either::Left((r, _)) => (r, false),
        Either::Right(((), _)) => {
            canceller = canceller.cancel();
            // The ASYNC_CANCEL op: monoio reaps its completion itself.
            bump(0);
            bump(1);
            (read.await, true)
        }
    };
    // The read completed, so its op is no longer associated with the canceller.
    give_back(canceller);
    let buf = slice.into_inner();
    match res {
        Ok(n) => (Ok(n), buf),
        Err(e) if cancelled && matches!(e.raw_os_error(), Some(libc::ECANCELED | libc::EINTR)) => {
            (Err(ReadError::Elapsed), buf)
        }
        Err(e) => (Err(ReadError::Io(e)), buf),
    }
}
