//! Helpers for the request-exchange tests (`tests/exchange_*.rs`): the origin's request
//! counter, the raw h2 server, a slow HTTP/1 uploader, raw response heads (1xx included),
//! configs with an HTTP/1 and an h2c cluster side by side, and a bounded command run.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Conn, Response};
use crate::procs::{start_go_server, Proc};

/// How many requests for `path` (URL path, no query) the Go origin at `origin` received,
/// from its `GET /seen?path=P` (`examples/internal/origin`), asked directly, not through
/// Ringside. `path` must not need escaping in a query.
pub fn origin_seen(origin: SocketAddr, path: &str) -> u64 {
    let r = crate::client::get(origin, &format!("/seen?path={path}"));
    r.header("x-seen")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("origin /seen answered {} {:?}", r.status, r.headers))
}

/// `examples/cmd/rawh2`: an h2c server on the http2 Framer. Paths `/rst/CODE`,
/// `/rst-after-deadline/CODE` and `/refuse-once/KEY` reset streams; others are answered
/// (gRPC requests with their body and `grpc-status: 0`), with `x-refused` and `x-goaways`
/// counters in every answer. See the command's doc comment.
#[derive(Debug)]
pub struct RawH2 {
    pub addr: SocketAddr,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl RawH2 {
    /// With `goaway_after` = Some(N): GOAWAY(NO_ERROR, last_stream_id = the Nth stream) on
    /// every connection, later streams ignored.
    pub fn start(name: &str, goaway_after: Option<u32>) -> RawH2 {
        let n = goaway_after.map(|n| n.to_string());
        let extra: Vec<&str> = match &n {
            Some(n) => vec!["-goaway-after", n],
            None => vec![],
        };
        let (addr, proc, dir) = start_go_server("rawh2", name, &extra);
        RawH2 {
            addr,
            _proc: proc,
            _dir: dir,
        }
    }
}

/// What a slow upload saw: the response (or why none came), when it came, and whether the
/// whole body had been written by then.
#[derive(Debug)]
pub struct SlowUpload {
    pub response: io::Result<Response>,
    pub elapsed: Duration,
    pub upload_finished: bool,
}

/// POSTs `total` bytes with `content-length` to `path` on `addr` over HTTP/1.1, `chunk`
/// bytes every `every` (a slow client), reading the response as it comes: the writer stops
/// once a response arrives or the connection fails. `elapsed` counts from the first byte
/// sent to the response head.
pub fn slow_http1_post(
    addr: SocketAddr,
    path: &str,
    total: usize,
    chunk: usize,
    every: Duration,
) -> SlowUpload {
    let mut conn = Conn::open(addr);
    let mut writer = conn.stream.try_clone().expect("clone stream");
    let answered = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (stop, done) = (answered.clone(), finished.clone());
    let head = format!("POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {total}\r\n\r\n");
    let begin = Instant::now();
    let t = std::thread::spawn(move || {
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        let data = vec![b'x'; chunk];
        let mut sent = 0;
        while sent < total && !stop.load(Ordering::SeqCst) {
            let k = chunk.min(total - sent);
            if writer.write_all(&data[..k]).is_err() {
                return;
            }
            sent += k;
            if sent < total {
                std::thread::sleep(every);
            }
        }
        done.store(sent == total, Ordering::SeqCst);
    });
    let response = conn.read_response(false);
    let elapsed = begin.elapsed();
    let upload_finished = finished.load(Ordering::SeqCst);
    answered.store(true, Ordering::SeqCst);
    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
    let _ = t.join();
    SlowUpload {
        response,
        elapsed,
        upload_finished,
    }
}

/// Every response head on `stream` up to and including the first final (non-1xx) one, each
/// as its raw text without the blank line, and the bytes read past the final head (the
/// start of its body).
pub fn read_heads(stream: &mut TcpStream) -> io::Result<(Vec<String>, Vec<u8>)> {
    let mut heads = Vec::new();
    let mut buf = Vec::new();
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let informational = head.starts_with("HTTP/1.1 1") || head.starts_with("HTTP/1.0 1");
            heads.push(head);
            if !informational {
                return Ok((heads, buf));
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "closed after {heads:?} and {:?}",
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A config with listener `to_h1` routing everything to `endpoints` over HTTP/1.1 (cluster
/// `h1`), and listener `to_h2` routing everything to the same endpoints over h2c (cluster
/// `h2`): one Ringside for all four client/upstream protocol pairs (the client side is
/// detected per connection on either listener).
pub fn h1_and_h2_clusters_config(endpoints: &[SocketAddr]) -> String {
    let eps: Vec<String> = endpoints.iter().map(|a| a.to_string()).collect();
    let eps = eps.join(", ");
    let listener = |name: &str, cluster: &str| {
        format!(
            "  - name: {name}\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      \
             - name: all\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: {cluster} }} ]\n"
        )
    };
    format!(
        "listeners:\n{}{}clusters:\n  - name: h1\n    endpoints: [ {eps} ]\n    protocol: http1\n  \
         - name: h2\n    endpoints: [ {eps} ]\n    protocol: http2\n",
        listener("to_h1", "h1"),
        listener("to_h2", "h2"),
    )
}

/// Runs `cmd` with stdout and stderr captured, killing it if it is still running after
/// `within`. Returns its exit success, its stdout+stderr, and whether it was killed.
pub fn run_bounded(cmd: &mut Command, within: Duration) -> (bool, String, bool) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let end = Instant::now() + within;
    let mut killed = false;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collect output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !killed, text, killed)
}

/// The value of header `name` in a raw response head (case-insensitive name; the first one).
pub fn head_header(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}
