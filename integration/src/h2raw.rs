//! HTTP/2 frames by hand (RFC 9113 §4, §6), for what no real peer will do on request: a
//! client sending malformed requests or resetting streams in bulk, and a scripted upstream
//! that resets a stream with a chosen error code before or after its response head.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0;
pub const PROTOCOL_ERROR: u32 = 1;
pub const INTERNAL_ERROR: u32 = 2;
pub const REFUSED_STREAM: u32 = 7;
pub const CANCEL: u32 = 8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One frame's bytes: 9-byte header and payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// An HPACK header block of literals without indexing or Huffman (RFC 7541 §6.2.2; names
/// and values under 127 bytes).
pub fn hpack(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in headers {
        b.push(0);
        b.push(n.len() as u8);
        b.extend(n.as_bytes());
        b.push(v.len() as u8);
        b.extend(v.as_bytes());
    }
    b
}

/// HPACK's indexed `:status: 200` (static table entry 8): how the `h2` crate and Go encode a
/// 200, so a header block starting with it is a 200.
pub const STATUS_200: u8 = 0x88;

/// One frame as read off the wire.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The 32-bit big-endian value at `at` in the payload (error codes: RST_STREAM at 0,
    /// GOAWAY at 4).
    pub fn code(&self, at: usize) -> u32 {
        self.payload
            .get(at..at + 4)
            .map_or(u32::MAX, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// Reads whole frames from a raw connection, acking SETTINGS and PINGs as a peer must (a
/// graceful GOAWAY is followed by a PING, and the final GOAWAY waits for its ack).
pub struct Frames {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Frames {
    /// Wraps an open connection (the preface already exchanged or not: the caller's choice).
    pub fn new(s: TcpStream) -> Frames {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Frames { s, buf: Vec::new() }
    }

    /// Connects as a client: the preface, an empty SETTINGS, and `then`.
    pub fn open(addr: SocketAddr, then: &[u8]) -> Frames {
        let mut s = TcpStream::connect(addr).expect("connect");
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[]));
        out.extend(then);
        s.write_all(&out).expect("write");
        Frames::new(s)
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes)
    }

    /// The next frame; `Err(true)` when the connection closed, `Err(false)` at `until`.
    pub fn next(&mut self, until: Instant) -> Result<Frame, bool> {
        loop {
            if self.buf.len() >= 9 {
                let b = &self.buf;
                let len = (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
                if b.len() >= 9 + len {
                    let f = Frame {
                        kind: b[3],
                        flags: b[4],
                        stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
                        payload: b[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    if f.kind == SETTINGS && f.flags & 1 == 0 {
                        let _ = self.s.write_all(&frame(SETTINGS, 1, 0, &[]));
                    }
                    if f.kind == PING && f.flags & 1 == 0 {
                        let _ = self.s.write_all(&frame(PING, 1, 0, &f.payload));
                    }
                    return Ok(f);
                }
            }
            if Instant::now() >= until {
                return Err(false);
            }
            let mut chunk = [0u8; 16384];
            match self.s.read(&mut chunk) {
                Ok(0) => return Err(true),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Err(true),
            }
        }
    }

    /// Reads the client preface (24 bytes) off a server-side connection.
    fn read_preface(&mut self, until: Instant) -> bool {
        while self.buf.len() < PREFACE.len() {
            if Instant::now() >= until {
                return false;
            }
            let mut chunk = [0u8; 1024];
            match self.s.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
        }
        let ok = self.buf.starts_with(PREFACE);
        self.buf.drain(..PREFACE.len());
        ok
    }
}

/// What [`ScriptedH2Upstream`] does with each request stream.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// RST_STREAM with this code as soon as the request's HEADERS arrive.
    ResetBeforeHead(u32),
    /// A `:status 200`, `content-type: application/grpc` head at once, then RST_STREAM with
    /// this code once [`ScriptedH2Upstream::release`] was called (at once if it already was).
    HeadThenReset(u32),
    /// Hold each stream until [`ScriptedH2Upstream::release`], then answer `:status 200` and
    /// the body `held` (DATA with END_STREAM).
    HoldThenOk,
    /// On the first connection: GOAWAY (last stream 0, NO_ERROR) at its first request, then
    /// close, so the request was refused unprocessed. Later connections answer `:status 200`
    /// `held` at once.
    GoawayOnFirstConnection,
}

/// An h2c upstream that answers every request stream by its [`Script`], and counts streams
/// and connections.
#[derive(Debug)]
pub struct ScriptedH2Upstream {
    pub addr: SocketAddr,
    state: Arc<UpState>,
}

#[derive(Debug, Default)]
struct UpState {
    streams: AtomicUsize,
    released: AtomicBool,
    open_connections: AtomicUsize,
    connections: AtomicUsize,
}

impl ScriptedH2Upstream {
    pub fn start(script: Script) -> ScriptedH2Upstream {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind scripted h2 upstream");
        let addr = l.local_addr().expect("addr");
        let state = Arc::new(UpState::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                let st = st.clone();
                std::thread::spawn(move || {
                    st.open_connections.fetch_add(1, Ordering::SeqCst);
                    let index = st.connections.fetch_add(1, Ordering::SeqCst);
                    serve(Frames::new(s), script, &st, index);
                    st.open_connections.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        ScriptedH2Upstream { addr, state }
    }

    /// Request streams (HEADERS frames that open a stream) received so far.
    pub fn streams(&self) -> usize {
        self.state.streams.load(Ordering::SeqCst)
    }

    /// Blocks until `n` streams have arrived in all, at most `within`; panics otherwise.
    pub fn wait_streams(&self, n: usize, within: Duration) {
        let end = Instant::now() + within;
        while self.streams() < n {
            assert!(
                Instant::now() < end,
                "{} of {n} streams reached the upstream within {within:?}",
                self.streams()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Connections the proxy has opened to this upstream in all.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections the proxy has open to this upstream now.
    pub fn open_connections(&self) -> usize {
        self.state.open_connections.load(Ordering::SeqCst)
    }

    /// Answers held streams ([`Script::HoldThenOk`]), and later ones at once.
    pub fn release(&self) {
        self.state.released.store(true, Ordering::SeqCst);
    }
}

fn serve(mut f: Frames, script: Script, st: &UpState, index: usize) {
    let setup = Instant::now() + Duration::from_secs(10);
    if !f.read_preface(setup) || f.send(&frame(SETTINGS, 0, 0, &[])).is_err() {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let mut held: Vec<u32> = Vec::new();
    let mut to_reset: Vec<(u32, u32)> = Vec::new();
    loop {
        if st.released.load(Ordering::SeqCst) {
            for (stream, code) in to_reset.drain(..) {
                if f.send(&frame(RST_STREAM, 0, stream, &code.to_be_bytes()))
                    .is_err()
                {
                    return;
                }
            }
            for stream in held.drain(..) {
                let mut out = frame(HEADERS, END_HEADERS, stream, &[STATUS_200]);
                out.extend(frame(DATA, END_STREAM, stream, b"held"));
                if f.send(&out).is_err() {
                    return;
                }
            }
        }
        // Wakes every 100 ms (the read timeout) to look at `released`; connections stay open
        // until the proxy closes them.
        let fr = match f.next(Instant::now() + Duration::from_millis(100)) {
            Ok(fr) => fr,
            Err(false) => continue,
            Err(true) => return,
        };
        if fr.kind != HEADERS || !seen.insert(fr.stream) {
            continue;
        }
        st.streams.fetch_add(1, Ordering::SeqCst);
        let mut out = Vec::new();
        let code = match script {
            Script::ResetBeforeHead(code) => code,
            Script::HeadThenReset(code) => {
                let mut block = vec![STATUS_200];
                block.extend(hpack(&[("content-type", "application/grpc")]));
                if f.send(&frame(HEADERS, END_HEADERS, fr.stream, &block))
                    .is_err()
                {
                    return;
                }
                // Sent at the top of the loop once released.
                to_reset.push((fr.stream, code));
                continue;
            }
            Script::HoldThenOk => {
                held.push(fr.stream);
                continue;
            }
            Script::GoawayOnFirstConnection if index == 0 => {
                let mut payload = 0u32.to_be_bytes().to_vec();
                payload.extend(NO_ERROR.to_be_bytes());
                let _ = f.send(&frame(GOAWAY, 0, 0, &payload));
                return;
            }
            Script::GoawayOnFirstConnection => {
                let mut out = frame(HEADERS, END_HEADERS, fr.stream, &[STATUS_200]);
                out.extend(frame(DATA, END_STREAM, fr.stream, b"held"));
                if f.send(&out).is_err() {
                    return;
                }
                continue;
            }
        };
        out.extend(frame(RST_STREAM, 0, fr.stream, &code.to_be_bytes()));
        if f.send(&out).is_err() {
            return;
        }
    }
}
