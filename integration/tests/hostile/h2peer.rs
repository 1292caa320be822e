//! An abusive HTTP/2 client: frames written by hand (`h2raw`, RFC 9113 §4) from the test's
//! thread, while a reader thread records what Ringside answers (GOAWAY and its code, stream
//! resets, response heads) and when the connection closed. The reader never writes: a
//! flooding abuser does not answer, and two writers would interleave frames.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringside_integration::h2raw::{frame, hpack, GOAWAY, HEADERS, PREFACE, RST_STREAM, SETTINGS};

/// CONTINUATION (RFC 9113 §6.10).
pub const CONTINUATION: u8 = 9;
/// SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 §6.5.2).
pub const INITIAL_WINDOW_SIZE: u16 = 4;
pub const FRAME_SIZE_ERROR: u32 = 6;
pub const COMPRESSION_ERROR: u32 = 9;

/// What Ringside has sent on the abusive connection so far.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The first GOAWAY: its error code and when it arrived.
    pub goaway: Option<(u32, Instant)>,
    /// RST_STREAM frames by error code.
    pub resets: Vec<u32>,
    /// HEADERS frames (response heads and trailers).
    pub heads: usize,
    /// When the connection closed (EOF or error).
    pub closed: Option<Instant>,
}

pub struct Abuser {
    pub w: TcpStream,
    pub started: Instant,
    seen: Arc<Mutex<Seen>>,
}

/// A GET header block for `path` (literals, no indexing).
pub fn get(path: &str) -> Vec<u8> {
    hpack(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "test"),
    ])
}

/// An HPACK integer with an `n`-bit prefix whose high bits are `first` (RFC 7541 §5.1).
pub fn hpack_int(first: u8, n: u32, mut v: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

impl Abuser {
    /// Connects, sends the preface and a SETTINGS frame carrying `settings` (id, value).
    pub fn open(addr: SocketAddr, settings: &[(u16, u32)]) -> Abuser {
        let w = TcpStream::connect(addr).expect("connect abuser");
        w.set_nodelay(true).expect("nodelay");
        let mut payload = Vec::new();
        for (id, v) in settings {
            payload.extend(id.to_be_bytes());
            payload.extend(v.to_be_bytes());
        }
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &payload));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let r = w.try_clone().expect("clone");
        let sink = seen.clone();
        std::thread::spawn(move || read_frames(r, &sink));
        let mut a = Abuser {
            w,
            started: Instant::now(),
            seen,
        };
        a.send(&out);
        a
    }

    /// Writes `bytes`; false once Ringside has closed or reset the connection.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.w.write_all(bytes).is_ok()
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("seen").clone()
    }

    /// Whether Ringside has sent GOAWAY or closed.
    pub fn cut(&self) -> bool {
        let s = self.seen();
        s.goaway.is_some() || s.closed.is_some()
    }

    /// Waits up to `within` for `pred` on what was seen; returns the last [`Seen`].
    pub fn wait(&self, within: Duration, pred: impl Fn(&Seen) -> bool) -> Seen {
        let end = Instant::now() + within;
        loop {
            let s = self.seen();
            if pred(&s) || Instant::now() >= end {
                return s;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits up to `within` for the connection to close; returns the GOAWAY code (if one
    /// came) and the time from [`Abuser::open`] to the GOAWAY (or the close, without one).
    /// Panics if the connection is still open at `within`.
    pub fn wait_closed(&self, within: Duration) -> (Option<u32>, Duration) {
        let s = self.wait(within, |s| s.closed.is_some());
        let closed = s
            .closed
            .unwrap_or_else(|| panic!("the abuser was not cut off within {within:?}: {s:?}"));
        let at = s.goaway.map_or(closed, |(_, t)| t);
        (s.goaway.map(|(c, _)| c), at - self.started)
    }
}

impl Drop for Abuser {
    /// Ends the reader thread too (it holds a clone of the socket).
    fn drop(&mut self) {
        let _ = self.w.shutdown(std::net::Shutdown::Both);
    }
}

fn read_frames(mut r: TcpStream, seen: &Mutex<Seen>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let kind = buf[3];
            let p = &buf[9..9 + len];
            let code = |at: usize| {
                p.get(at..at + 4)
                    .map_or(u32::MAX, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            };
            let mut s = seen.lock().expect("seen");
            match kind {
                GOAWAY if s.goaway.is_none() => s.goaway = Some((code(4), Instant::now())),
                RST_STREAM => s.resets.push(code(0)),
                HEADERS => s.heads += 1,
                _ => {}
            }
            drop(s);
            buf.drain(..9 + len);
        }
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => {
                seen.lock().expect("seen").closed = Some(Instant::now());
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
