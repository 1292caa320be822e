//! One buffer per worker thread that outgoing heads are encoded into, instead of a fresh
//! allocation per head (and a second one when it is frozen into `Bytes` for the write), and
//! that response heads from upstreams are read into.
//!
//! Heads (and read buffers) are carved from the buffer one after another, each a `BytesMut`
//! of its own. When the
//! buffer runs out it is reused from the start if no head carved from it is still held (the
//! common case: a head is written, then dropped); otherwise a new one of the same size is
//! started, and the old one is freed with the last head that holds it. A head held for a whole
//! exchange (the request head, kept for a replay) thus pins at most one `CHUNK`.

use std::cell::Cell;

use bytes::BytesMut;

/// Size of each worker's buffer: about 50 typical heads, or a few exchanges' heads and reads.
const CHUNK: usize = 32 * 1024;

thread_local! {
    /// Empty (every head carved so far was split off), with spare capacity for the next.
    static BUF: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// Runs `encode` on an empty buffer with room for at least `hint` bytes, carved from this
/// thread's buffer, and returns what it wrote: `freeze()` it for a write (no allocation).
/// `encode` may write past `hint` (the buffer grows as any `BytesMut` does).
pub fn encode(hint: usize, encode: impl FnOnce(&mut BytesMut)) -> BytesMut {
    BUF.with(|cell| {
        let mut b = cell.take();
        if b.capacity() < hint {
            // Reclaims the buffer in place when nothing carved from it is still held.
            b.reserve(hint.max(CHUNK));
        }
        encode(&mut b);
        let head = b.split();
        cell.set(b);
        head
    })
}

/// An empty buffer with room for exactly `want` bytes, carved from this thread's buffer, to
/// read into: the read allocates nothing, and a head parsed from it is split off without the
/// shared header `bytes` adds to a plain buffer on its first split. Growing it past `want`
/// moves it to an allocation of its own.
pub fn read_buf(want: usize) -> BytesMut {
    BUF.with(|cell| {
        let mut b = cell.take();
        if b.capacity() < want {
            b.reserve(want.max(CHUNK));
        }
        let rest = b.split_off(want);
        cell.set(rest);
        b
    })
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

    #[test]
    fn heads_share_one_buffer_and_stay_independent() {
        let a = encode(64, |b| b.put_slice(b"first head"));
        let b = encode(64, |b| b.put_slice(b"second"));
        assert_eq!(&a[..], b"first head");
        assert_eq!(&b[..], b"second");
        // Carved from one allocation: the second starts where the first ends.
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
        let (a, b) = (a.freeze(), b.freeze());
        assert_eq!((&a[..], &b[..]), (&b"first head"[..], &b"second"[..]));
    }

    #[test]
    fn a_head_larger_than_the_buffer_is_whole() {
        let big = vec![b'x'; CHUNK * 3];
        let h = encode(16, |b| b.put_slice(&big));
        assert_eq!(&h[..], &big[..]);
        assert_eq!(&encode(8, |b| b.put_slice(b"after"))[..], b"after");
    }

    #[test]
    fn read_buffers_are_carved_with_exact_room() {
        let mut a = read_buf(4096);
        let b = read_buf(4096);
        assert_eq!((a.len(), a.capacity()), (0, 4096));
        assert_eq!(a.as_ptr().wrapping_add(4096), b.as_ptr());
        a.put_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        let head = a.split_to(19).freeze();
        assert_eq!(&head[..], b"HTTP/1.1 200 OK\r\n\r\n");
        // Growing past its room leaves the shared buffer alone.
        a.put_slice(&[b'x'; 8192]);
        assert_eq!(a.len(), 8192);
        assert_eq!(b.capacity(), 4096);
    }

    #[test]
    fn the_buffer_is_reused_once_its_heads_are_dropped() {
        let before = crate::alloc_count::this_thread();
        for _ in 0..10 * CHUNK / 100 {
            drop(encode(100, |b| b.put_slice(&[b'h'; 100])).freeze());
        }
        let allocs = crate::alloc_count::this_thread() - before;
        // Ten times the buffer's size went through it: at most the first allocation (and the
        // shared header `bytes` adds when a buffer is first split) on this thread.
        assert!(
            allocs <= 2,
            "{allocs} allocations for heads that were each dropped"
        );
    }
}
