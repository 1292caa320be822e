//! Abusive HTTP/1.1 clients' small parts: many raw connections, and asking each, without
//! blocking, whether Ringside has answered or closed it.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Whether Ringside has ended `s`: closed it, reset it, or written anything (every
/// answer an abuser can get here is an error status followed by a close).
pub fn ended(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut b = [0u8; 4096];
    let r = match (&*s).read(&mut b) {
        Ok(_) => true,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).expect("blocking");
    r
}

/// Opens `n` connections to `addr` (fewer only if connect fails, which the caller checks).
pub fn open_many(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect()
}

/// Waits until every connection in `conns` [`ended`] or `within` passed; returns the time
/// from `since` to the moment the last one ended, or `None` if some are still open.
pub fn all_ended(conns: &[TcpStream], since: Instant, within: Duration) -> Option<Duration> {
    let end = Instant::now() + within;
    let mut open: Vec<&TcpStream> = conns.iter().collect();
    loop {
        open.retain(|s| !ended(s));
        if open.is_empty() {
            return Some(since.elapsed());
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
