//! Abusive HTTP/1.1 clients' small parts: many raw connections, and asking each, without
//! blocking, whether Ringside has answered or closed it.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Whether Ringside has ended `s`: closed it, reset it, or written anything (every
/// answer an abuser can get here is an error status followed by a close). Peeks: what was
/// written stays to be read.
pub fn ended(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut b = [0u8; 1];
    let r = match s.peek(&mut b) {
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

/// Whether Ringside closed or reset `s`, without reading from it (a client that reads
/// nothing must not start reading to find out): `poll(2)` for POLLRDHUP, POLLHUP or POLLERR.
pub fn peer_closed(s: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd for a socket this test owns; no timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// Waits until every connection in `conns` was [`peer_closed`] or `within` passed; the time
/// from `since` to the last close, or `None` if some are still open.
pub fn all_closed(conns: &[TcpStream], since: Instant, within: Duration) -> Option<Duration> {
    let end = Instant::now() + within;
    loop {
        if conns.iter().all(peer_closed) {
            return Some(since.elapsed());
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether Ringside, listening at `listener`, still holds any of `conns` established. A
/// connection Ringside closed while its send buffer was full (a client that reads nothing)
/// shows the client no FIN until it reads what is queued before it; Ringside's end has left
/// ESTABLISHED (FIN_WAIT1, owned by the kernel alone) at once, which `ss` shows.
pub fn ringside_holds_any(conns: &[TcpStream], listener: SocketAddr) -> bool {
    let out = std::process::Command::new("ss")
        .args(["-tnH", "state", "established", "src", &listener.to_string()])
        .output()
        .expect("run ss");
    let text = String::from_utf8_lossy(&out.stdout);
    let peers: Vec<String> = conns
        .iter()
        .filter_map(|c| c.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .any(|peer| peers.iter().any(|p| p == peer))
}

/// Waits until Ringside holds none of `conns` ([`ringside_holds_any`]) or `within` passed;
/// the time from `since` until it held none, or `None`.
pub fn all_released(
    conns: &[TcpStream],
    listener: SocketAddr,
    since: Instant,
    within: Duration,
) -> Option<Duration> {
    let end = Instant::now() + within;
    loop {
        if !ringside_holds_any(conns, listener) {
            return Some(since.elapsed());
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ringside's sockets between `listener` and the client `conn`, in any state (`ss -tan`,
/// with `-m` for their memory): one line each, e.g. `FIN-WAIT-1 0 2609152 ... skmem:(...)`.
/// Empty once the kernel freed them.
pub fn ringside_sockets(conn: &TcpStream, listener: SocketAddr) -> Vec<String> {
    let peer = conn.local_addr().expect("client address").to_string();
    let out = std::process::Command::new("ss")
        .args(["-tanmH", "src", &listener.to_string(), "dst", &peer])
        .output()
        .expect("run ss");
    // `-m` puts each socket's memory on a continuation line that starts with a tab.
    let mut sockets: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match sockets.last_mut() {
            Some(last) if line.starts_with(char::is_whitespace) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => sockets.push(line.trim().to_string()),
        }
    }
    sockets
}

/// Bytes that arrived on `s` and were not read yet (`FIONREAD`); 0 on error.
pub fn unread(s: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, for a socket this test owns.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r == 0 {
        usize::try_from(n).unwrap_or(0)
    } else {
        0
    }
}

/// A client with a small receive buffer (`SO_RCVBUF` 4 KiB, set before connecting, so its
/// window never grows) and a real path's MSS (1460, not loopback's 64 KiB, so its window
/// reopens a segment at a time as it reads): what it has not read backs up into the sender
/// at once, and drains from it as steadily as it reads.
pub fn small_window_client(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    s.set_tcp_mss(1460).expect("TCP_MAXSEG");
    s.connect(&addr.into()).expect("connect");
    s.into()
}
