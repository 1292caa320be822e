//! HTTP/1.0 keep-alive checks (RFC 9112 §9.3), shared by the exchange tests through Ringside
//! and the same checks straight against the Go origin: a keep-alive request must be either
//! kept alive (`Connection: keep-alive` and a length-delimited body, then a second answer)
//! or answered and closed.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::exchange::{head_header, read_heads, run_bounded};

/// How long a closed connection may take to show EOF, or a kept-alive one to answer.
pub const BOUND: Duration = Duration::from_secs(2);

/// Sends `GET / HTTP/1.0` with `Connection: keep-alive` to `addr` on a raw socket and checks
/// the server keeps its word either way (see the module doc). Err says what went wrong.
pub fn http10_keep_alive(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(BOUND)).map_err(|e| e.to_string())?;
    let req = b"GET / HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n";
    s.write_all(req).map_err(|e| format!("send: {e}"))?;
    let (heads, mut body) = read_heads(&mut s).map_err(|e| format!("first response: {e}"))?;
    let head = heads.last().ok_or("no final head")?;
    if head.get(9..12) != Some("200") {
        return Err(format!("not a 200:\n{head}"));
    }
    let keep =
        head_header(head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive"));
    let mut buf = [0u8; 4096];
    if !keep {
        // Without keep-alive in the answer the client waits for EOF to end the body.
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(format!(
                        "the answer has no `Connection: keep-alive` and the connection was not \
                         closed within {BOUND:?} (RFC 9112 §9.3: keep it alive and say so, or \
                         close):\n{head}"
                    ))
                }
                Err(_) => return Ok(()), // a reset closes too
            }
        }
    }
    if head_header(head, "transfer-encoding").is_some() {
        return Err(format!(
            "a transfer-encoding to an HTTP/1.0 client:\n{head}"
        ));
    }
    let len: usize = head_header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("Connection: keep-alive needs a content-length:\n{head}"))?;
    while body.len() < len {
        match s.read(&mut buf) {
            Ok(0) => return Err("closed mid-body".into()),
            Ok(n) => body.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("the first body: {e}")),
        }
    }
    s.write_all(req)
        .map_err(|e| format!("send the second request: {e}"))?;
    let (heads, _) = read_heads(&mut s).map_err(|e| {
        format!("kept alive, but the second request got no answer within {BOUND:?}: {e}")
    })?;
    match heads.last() {
        Some(h) if h.get(9..12) == Some("200") => Ok(()),
        other => Err(format!("second answer: {other:?}")),
    }
}

fn ab_field(out: &str, name: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs `ab -k -n 3 -c 1 -s 5 http://ADDR/` (a real HTTP/1.0 keep-alive client, from
/// apache2-utils), killed after 15 s; Ok when it completed 3 requests and none failed.
pub fn ab_keep_alive(addr: SocketAddr) -> Result<(), String> {
    let url = format!("http://{addr}/");
    let (ok, out, killed) = run_bounded(
        Command::new("ab").args(["-k", "-n", "3", "-c", "1", "-s", "5", &url]),
        Duration::from_secs(15),
    );
    if ok
        && ab_field(&out, "Complete requests:") == Some(3)
        && ab_field(&out, "Failed requests:") == Some(0)
    {
        Ok(())
    } else {
        Err(format!(
            "ab -k -n 3 -c 1 (HTTP/1.0 keep-alive) must complete 3 requests, 0 failed (killed \
             after 15 s: {killed}):\n{out}"
        ))
    }
}
