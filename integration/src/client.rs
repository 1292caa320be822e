//! A deliberately plain HTTP/1.1 client over `std::net::TcpStream`: tests need to send exact
//! bytes (smuggling shapes, pipelining, half-close) and see exactly what comes back.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Header or trailer fields: lowercased names with their values, in order.
pub type Fields = Vec<(String, String)>;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Chunked trailer fields (lowercased names), in order.
    pub trailers: Fields,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection with its own read buffer, so pipelined responses can be read back
/// one at a time.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to proxy");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, raw: &[u8]) -> &mut Self {
        self.stream.write_all(raw).expect("write request");
        self
    }

    /// Sends a GET with the given path and extra header lines, and reads the response.
    pub fn get(&mut self, path: &str, extra: &str) -> Response {
        let req = format!("GET {path} HTTP/1.1\r\nhost: test\r\n{extra}\r\n");
        self.send(req.as_bytes());
        self.read_response(false).expect("read response")
    }

    /// Reads one response. `head_request`: the request was HEAD, so no body follows.
    pub fn read_response(&mut self, head_request: bool) -> io::Result<Response> {
        loop {
            let end = find(&self.buf, b"\r\n\r\n");
            let Some(end) = end else {
                self.fill()?;
                continue;
            };
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            self.buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let mut r = Response {
                status,
                headers,
                body: Vec::new(),
                trailers: Vec::new(),
            };
            if head_request || status == 204 || status == 304 || status == 101 {
                return Ok(r);
            }
            if r.header("transfer-encoding")
                .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
            {
                (r.body, r.trailers) = self.read_chunked()?;
            } else if let Some(n) = r.header("content-length") {
                let n: usize = n.parse().map_err(io::Error::other)?;
                while self.buf.len() < n {
                    self.fill()?;
                }
                r.body = self.buf.drain(..n).collect();
            } else {
                while self.fill().is_ok() {}
                r.body = std::mem::take(&mut self.buf);
            }
            return Ok(r);
        }
    }

    fn read_chunked(&mut self) -> io::Result<(Vec<u8>, Fields)> {
        let mut body = Vec::new();
        let mut trailers = Vec::new();
        loop {
            let line_end = loop {
                match find(&self.buf, b"\r\n") {
                    Some(i) => break i,
                    None => self.fill()?,
                }
            };
            let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|e| io::Error::other(format!("bad chunk size {line:?}: {e}")))?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    match find(&self.buf, b"\r\n") {
                        Some(0) => {
                            self.buf.drain(..2);
                            return Ok((body, trailers));
                        }
                        Some(i) => {
                            let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                            if let Some((n, v)) = line.split_once(':') {
                                trailers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                            }
                            self.buf.drain(..i + 2);
                        }
                        None => self.fill()?,
                    }
                }
            }
            while self.buf.len() < size + 2 {
                self.fill()?;
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Waits up to `within` for the server to close the connection, and says how it ended.
    ///
    /// `Ok` only for a close: EOF (`Ok(0)`) or a reset. Bytes the server sent instead, or
    /// nothing at all by `within` (the read timing out), are an `Err` naming what happened,
    /// so a test that expects a close fails when the connection merely stays open.
    pub fn closed_within(&mut self, within: Duration) -> Result<Closed, String> {
        if !self.buf.is_empty() {
            return Err(format!(
                "{} unread bytes before any close: {:?}",
                self.buf.len(),
                String::from_utf8_lossy(&self.buf)
            ));
        }
        wait_closed(&mut self.stream, within)
    }

    /// Asserts the server closes the connection within [`CLOSE_BOUND`]; `what` names the case.
    #[track_caller]
    pub fn assert_closed(&mut self, what: &str) -> Closed {
        match self.closed_within(CLOSE_BOUND) {
            Ok(how) => how,
            Err(e) => panic!("{what}: the connection was not closed: {e}"),
        }
    }
}

/// How long a test waits for a close the proxy does at once (after an error answer, a drain,
/// a panic): generous for a loaded 2-core machine, and far below the client's 20 s read
/// timeout, so a connection left open fails instead of passing slowly.
pub const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// A FIN: `read` returned 0.
    Eof,
    /// An RST: `read` failed with ECONNRESET (or EPIPE/ECONNABORTED).
    Reset,
}

/// Reads from `stream` until it closes, at most `within`. See [`Conn::closed_within`].
pub fn wait_closed(stream: &mut TcpStream, within: Duration) -> Result<Closed, String> {
    let end = std::time::Instant::now() + within;
    let old = stream.read_timeout().ok().flatten();
    let result = loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break Err(format!("still open after {within:?}"));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let mut b = [0u8; 512];
        match stream.read(&mut b) {
            Ok(0) => break Ok(Closed::Eof),
            Ok(n) => {
                break Err(format!(
                    "got {n} bytes instead of a close: {:?}",
                    String::from_utf8_lossy(&b[..n])
                ))
            }
            Err(e) => match e.kind() {
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => break Ok(Closed::Reset),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {}
                io::ErrorKind::Interrupted => {}
                _ => break Err(format!("read failed without a close: {e}")),
            },
        }
    };
    let _ = stream.set_read_timeout(old);
    result
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Conn::open(addr).get(path, "")
}
