//! Opaque bidirectional copy: TCP proxying and upgraded (WebSocket) HTTP connections.
//!
//! Each direction holds at most one buffer, and only while bytes are in flight: it waits for
//! readiness with no buffer, reads, and writes everything before reading again, so a slow
//! receiver pushes back on the sender through TCP flow control instead of queueing in memory.
//! EOF on one side becomes a FIN on the other (half-close) while the other direction carries on.

use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::try_join;

use super::conns::Conn;
use super::rt::{read_by, ReadError, ReadHalf, Rt, Stream, WriteHalf};

/// Read size per direction: large enough for throughput, small enough that 10k busy tunnels
/// stay within a few hundred MiB.
const CHUNK: usize = 16 * 1024;

/// Bytes moved by a finished tunnel.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub a_to_b: u64,
    pub b_to_a: u64,
}

/// Copies `a` ⇄ `b` until both directions have seen EOF, or until neither direction has moved a
/// byte for `idle`. `a_first`/`b_first` are bytes already read from `a`/`b` that belong to the
/// other side (e.g. what followed a 101 response in the same read).
/// `a` is the downstream side: its bytes are counted as `bytes_in` of `conn`, live.
pub async fn run<R: Rt, A: Stream, B: Stream>(
    a: A,
    b: B,
    a_first: Bytes,
    b_first: Bytes,
    idle: Duration,
    conn: &Conn,
) -> io::Result<Moved> {
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let last = Cell::new(Instant::now());
    let (a_to_b, b_to_a) = try_join(
        copy::<R, _, _>(ar, bw, a_first, idle, &last, |n| conn.add_in(n)),
        copy::<R, _, _>(br, aw, b_first, idle, &last, |n| conn.add_out(n)),
    )
    .await?;
    Ok(Moved { a_to_b, b_to_a })
}

async fn copy<R: Rt, Rd: ReadHalf, Wr: WriteHalf>(
    mut from: Rd,
    mut to: Wr,
    first: Bytes,
    idle: Duration,
    last: &Cell<Instant>,
    count: impl Fn(u64),
) -> io::Result<u64> {
    let mut moved = first.len() as u64;
    if !first.is_empty() {
        to.write_all(first).await?;
    }
    loop {
        // The idle clock is shared: a quiet direction stays open while the other one works.
        let (res, buf) =
            read_by::<R, _>(&mut from, BytesMut::new(), CHUNK, last.get() + idle).await;
        let n = match res {
            Ok(n) => n,
            Err(ReadError::Elapsed) if last.get().elapsed() < idle => continue,
            Err(ReadError::Elapsed) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "tunnel idle timeout",
                ))
            }
            Err(ReadError::Io(e)) => return Err(e),
        };
        if n == 0 {
            to.shutdown_write().await?;
            return Ok(moved);
        }
        last.set(Instant::now());
        moved += n as u64;
        count(n as u64);
        to.write_all(buf.freeze()).await?;
    }
}
