//! What an `http` listener's connection speaks: HTTP/2 with prior knowledge (h2c) opens with
//! the 24-byte client preface; anything else is HTTP/1. Decided from the first bytes, within
//! the listener's header-read timeout.

use std::time::Instant;

use bytes::BytesMut;

use super::conns::Conn;
use super::rt::{read_by, ReadHalf, Rt};

/// RFC 9113 §3.4.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Http1,
    Http2,
    /// The client left (or sent nothing before the deadline).
    Gone,
}

/// What the bytes so far say; `None` while they are a strict prefix of the preface.
pub fn classify(first: &[u8]) -> Option<Sniffed> {
    let n = first.len().min(PREFACE.len());
    if first[..n] != PREFACE[..n] {
        Some(Sniffed::Http1)
    } else if n == PREFACE.len() {
        Some(Sniffed::Http2)
    } else {
        None
    }
}

/// Reads into `buf` until [`classify`] decides. `ready`: readability was just confirmed, so
/// the first read goes straight to the socket (one ring operation on io_uring, as for any
/// HTTP/1 request). Everything read stays in `buf` for whichever protocol takes over.
pub async fn sniff<R: Rt, S: ReadHalf>(
    down: &mut S,
    buf: &mut BytesMut,
    mut ready: bool,
    deadline: Instant,
    conn: &Conn,
) -> Sniffed {
    loop {
        if !buf.is_empty() {
            if let Some(s) = classify(buf) {
                return s;
            }
        }
        let res = if ready {
            ready = false;
            buf.reserve(4096);
            let (res, b) = down.read(std::mem::take(buf)).await;
            *buf = b;
            match res {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => r.map_err(|_| ()),
            }
        } else {
            let (res, b) = read_by::<R, _>(down, std::mem::take(buf), 4096, deadline).await;
            *buf = b;
            res.map_err(|_| ())
        };
        match res {
            Ok(n) if n > 0 => conn.add_in(n as u64),
            // EOF, error or deadline: a partial preface is left to the HTTP/1 parser to refuse.
            _ if buf.is_empty() => return Sniffed::Gone,
            _ => return Sniffed::Http1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_decides_and_anything_else_is_http1() {
        assert_eq!(classify(PREFACE), Some(Sniffed::Http2));
        assert_eq!(
            classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"),
            Some(Sniffed::Http2)
        );
        assert_eq!(
            classify(b"PRI * HTTP/2"),
            None,
            "a partial preface waits for more"
        );
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Sniffed::Http1));
        assert_eq!(classify(b"P"), None);
        assert_eq!(classify(b"POST / HTTP/1.1"), Some(Sniffed::Http1));
        assert_eq!(classify(b"PRI * HTTP/1.1\r\n"), Some(Sniffed::Http1));
    }
}
