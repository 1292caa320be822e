//! `ReadHalf::read_within` on io_uring (`recv.rs`): a deadline cancels the in-flight read
//! cleanly (the buffer comes back, no op is left in flight, the connection stays usable), one
//! read's cancellation touches no other, and a read that gets its bytes in time is one ring
//! operation with no allocation; and which body relays read directly.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::future::join3;
use monoio::io::AsyncWriteRentExt;
use monoio::net::{TcpListener, TcpStream};

use super::io::{Uring, UringStream};
use super::ops::op_counts;
use super::recv::free_cancellers;
use crate::core::rt::{ReadError, ReadHalf};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => rt.block_on(f),
        Err(e) => {
            panic!("io_uring runtime unavailable here ({e}); set up the host or run epoll only")
        }
    }
}

/// A connection under test and its peer.
async fn pair() -> (UringStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let c = TcpStream::connect_addr(addr).await.expect("connect");
    let (p, _) = l.accept().await.expect("accept");
    (UringStream(c), p)
}

async fn send(peer: &mut TcpStream, what: &'static [u8]) {
    let (r, _) = peer.write_all(what).await;
    r.expect("peer write");
}

/// Ops `[submitted, completed, abandoned]` since `before`.
fn ops_since(before: [u64; 3]) -> [u64; 3] {
    let now = op_counts();
    [0, 1, 2].map(|i| now[i] - before[i])
}

#[test]
fn a_timeout_cancels_the_read_and_returns_the_buffer() {
    block_on(async {
        let (mut s, mut peer) = pair().await;
        let mut buf = BytesMut::with_capacity(8192);
        buf.extend_from_slice(b"hd");
        let (ptr, cap) = (buf.as_ptr(), buf.capacity());
        let before = op_counts();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(50);
        let (res, buf) = s.read_within::<Uring>(buf, 4096, deadline).await;
        let took = start.elapsed();
        assert!(matches!(res, Err(ReadError::Elapsed)), "{res:?}");
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_secs(2),
            "{took:?}"
        );
        // The same buffer, its bytes untouched.
        assert_eq!((buf.as_ptr(), buf.capacity()), (ptr, cap));
        assert_eq!(&buf[..], b"hd");
        // The RECV and its ASYNC_CANCEL, both completed: nothing left in flight.
        assert_eq!(ops_since(before), [2, 2, 0]);
        assert!(
            free_cancellers() >= 1,
            "the canceller went back to the free list"
        );
        // Still usable: bytes sent now are read, after the ones held.
        send(&mut peer, b"hello").await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let (res, buf) = s.read_within::<Uring>(buf, 4096, deadline).await;
        assert_eq!(res.expect("read after the timeout"), 5);
        assert_eq!(&buf[..], b"hdhello");
        // And end of stream is seen as such.
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (res, _) = s.read_within::<Uring>(buf, 4096, deadline).await;
        assert_eq!(res.expect("read at EOF"), 0);
    });
}

#[test]
fn a_timeout_cancels_only_its_own_read() {
    block_on(async {
        let (mut a, _pa) = pair().await;
        let (mut b, mut pb) = pair().await;
        let now = Instant::now();
        let short = a.read_within::<Uring>(BytesMut::new(), 64, now + Duration::from_millis(30));
        let long = b.read_within::<Uring>(BytesMut::new(), 64, now + Duration::from_secs(5));
        let late = async {
            monoio::time::sleep(Duration::from_millis(100)).await;
            send(&mut pb, b"late").await;
        };
        let ((ra, _), (rb, bb), ()) = join3(short, long, late).await;
        assert!(matches!(ra, Err(ReadError::Elapsed)), "{ra:?}");
        assert_eq!(rb.expect("the other read survives the cancel"), 4);
        assert_eq!(&bb[..], b"late");
    });
}

#[test]
fn bytes_in_time_cost_one_op_and_no_allocation() {
    block_on(async {
        let (mut s, mut peer) = pair().await;
        let deadline = || Instant::now() + Duration::from_secs(5);
        let mut buf = BytesMut::with_capacity(4096);
        // Warm-up: the free list, monoio's op slab and timer wheel.
        send(&mut peer, b"one").await;
        let (res, b) = s.read_within::<Uring>(buf, 64, deadline()).await;
        assert_eq!(res.expect("first read"), 3);
        buf = b;
        buf.clear();
        // A response that comes a moment later: one RECV, no readiness wait before it.
        let before = op_counts();
        let (read, ()) =
            futures_util::future::join(s.read_within::<Uring>(buf, 64, deadline()), async {
                monoio::time::sleep(Duration::from_millis(20)).await;
                send(&mut peer, b"two").await;
            })
            .await;
        let (res, b) = read;
        assert_eq!(res.expect("second read"), 3);
        assert_eq!(ops_since(before), [1, 1, 0]);
        buf = b;
        buf.clear();
        // Bytes already there: no allocation on this thread for the read.
        send(&mut peer, b"three").await;
        monoio::time::sleep(Duration::from_millis(10)).await;
        let allocs = crate::alloc_count::this_thread();
        let (res, _) = s.read_within::<Uring>(buf, 64, deadline()).await;
        let allocs = crate::alloc_count::this_thread() - allocs;
        assert_eq!(res.expect("third read"), 5);
        assert_eq!(allocs, 0, "allocator calls for one direct read");
    });
}

/// A body sink that keeps what it is given, one entry per relayed read.
#[derive(Default)]
struct Collect(Vec<bytes::Bytes>);

impl crate::core::bridge::relay::Sink for Collect {
    async fn data(&mut self, data: bytes::Bytes) -> std::io::Result<()> {
        self.0.push(data);
        Ok(())
    }

    async fn end(&mut self, _trailers: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

/// Relays a 3-part body the peer writes 20 ms apart; ring ops per read (one read per part).
async fn body_ops(paced: bool) -> f64 {
    use crate::core::bridge::relay::{relay, relay_paced};
    use crate::core::http1::BodyKind;
    let (mut s, mut peer) = pair().await;
    let parts: [&'static [u8]; 3] = [b"first,", b"second,", b"third"];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let writer = async {
        for p in parts {
            monoio::time::sleep(Duration::from_millis(20)).await;
            send(&mut peer, p).await;
        }
    };
    let (mut buf, mut sink) = (BytesMut::new(), Collect::default());
    let before = op_counts();
    let (relayed, ()) = futures_util::future::join(
        async {
            let (body, stall) = (BodyKind::Length(total as u64), Duration::from_secs(5));
            if paced {
                relay_paced::<Uring, _, _>(&mut s, &mut buf, &mut sink, body, stall, None).await
            } else {
                relay::<Uring, _, _>(&mut s, &mut buf, &mut sink, body, stall).await
            }
        },
        writer,
    )
    .await;
    let ops = ops_since(before);
    assert_eq!(relayed.expect("relay") as usize, total);
    assert_eq!(sink.0.concat(), b"first,second,third");
    assert_eq!(ops[0], ops[1], "every op completed: {ops:?}");
    assert_eq!(ops[2], 0, "nothing abandoned: {ops:?}");
    ops[0] as f64 / sink.0.len() as f64
}

#[test]
fn a_response_body_is_read_directly_a_request_body_after_readiness() {
    block_on(async {
        // A response body (`relay`): the rest is expected, one RECV per read.
        assert_eq!(body_ops(false).await, 1.0);
        // A request body (`relay_paced`): a client may trickle it, so each read waits for
        // readiness first, holding no buffer (POLL_ADD, then RECV).
        assert_eq!(body_ops(true).await, 2.0);
    });
}
