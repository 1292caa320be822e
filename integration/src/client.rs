//! A deliberately plain HTTP/1.1 client over `std::net::TcpStream`: tests need to send exact
//! bytes (smuggling shapes, pipelining, half-close) and see exactly what comes back.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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
            };
            if head_request || status == 204 || status == 304 || status == 101 {
                return Ok(r);
            }
            if r.header("transfer-encoding")
                .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
            {
                r.body = self.read_chunked()?;
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

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
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
                            return Ok(body);
                        }
                        Some(i) => {
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

    /// True when the server closed the connection (read returns EOF or reset).
    pub fn is_closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Conn::open(addr).get(path, "")
}
