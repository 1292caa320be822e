//! Just enough HTTP/1.1 for the admin API: one request per connection, small bodies, always
//! `Connection: close`. Kept apart from the data plane's codec on purpose: the admin server
//! must keep working even if a data-plane bug is what you are debugging.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
        }
    }

    pub fn bytes(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type,
            body,
        }
    }
}

/// Reads one request; `None` for anything malformed, oversized or too slow.
pub async fn read_request(stream: &mut TcpStream, peer: SocketAddr) -> Option<Request> {
    let read = async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let target = req.path?.to_owned();
                    let method = req.method?.to_owned();
                    let body_len = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| {
                            std::str::from_utf8(h.value)
                                .ok()?
                                .trim()
                                .parse::<usize>()
                                .ok()
                        })
                        .unwrap_or(0);
                    if body_len > MAX_BODY {
                        return None;
                    }
                    let mut body = buf.split_off(len);
                    while body.len() < body_len {
                        let n = stream.read(&mut chunk).await.ok()?;
                        if n == 0 {
                            return None;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                    body.truncate(body_len);
                    let (path, query) = match target.split_once('?') {
                        Some((p, q)) => (p.to_owned(), q.to_owned()),
                        None => (target, String::new()),
                    };
                    return Some(Request {
                        method,
                        path,
                        query,
                        body,
                        peer,
                    });
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
                _ => return None,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()
        .flatten()
}

pub async fn write_response(stream: &mut TcpStream, r: &Response) {
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        r.status,
        crate::core::http1::reason(r.status),
        r.content_type,
        r.body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&r.body).await;
    let _ = stream.shutdown().await;
}
