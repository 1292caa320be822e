//! Issue 11, HTTP/1 request handling, on both runtimes: HTTP/1.0 keep-alive (RFC 9112
//! §9.3), absolute-form and asterisk-form OPTIONS (RFC 9112 §3.2.4), and chunked framing
//! that is visibly broken in the bytes that came with the head (nothing reaches the origin).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use ringside_integration::exchange::{head_header, origin_seen, read_heads, run_bounded};
use ringside_integration::{both_runtimes, http_config, Conn, Origin, Ringside};

/// How long a closed connection may take to show EOF, or a kept-alive one to answer.
const BOUND: Duration = Duration::from_secs(2);

fn status_of(head: &str) -> &str {
    head.get(9..12).unwrap_or(head)
}

// Fault 5, raw: `GET / HTTP/1.0` with `Connection: keep-alive`.
both_runtimes!(fn http10_keep_alive_is_honoured_or_closed(rt) {
    let origin = Origin::start("o");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    let mut s = TcpStream::connect(proxy.addr("inbound")).expect("connect");
    s.set_read_timeout(Some(BOUND)).expect("timeout");
    let req = b"GET / HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n";
    s.write_all(req).expect("send");
    let (heads, mut body) = read_heads(&mut s).expect("the first response head");
    let head = heads.last().expect("a final head");
    assert_eq!(status_of(head), "200", "{head}");
    let keep = head_header(head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive"));
    if keep {
        assert!(head_header(head, "transfer-encoding").is_none(), "chunked to an HTTP/1.0 client:\n{head}");
        let len: usize = head_header(head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("Connection: keep-alive needs a length-delimited body:\n{head}"));
        let mut buf = [0u8; 4096];
        while body.len() < len {
            let n = s.read(&mut buf).expect("the first body");
            assert!(n > 0, "closed mid-body");
            body.extend_from_slice(&buf[..n]);
        }
        s.write_all(req).expect("send the second request");
        let (heads, _) = read_heads(&mut s).unwrap_or_else(|e| {
            panic!("kept alive, but the second request got no answer within {BOUND:?}: {e}")
        });
        assert_eq!(status_of(heads.last().expect("head")), "200", "{heads:?}");
    } else {
        // Without keep-alive in the answer the client waits for EOF to end the body.
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                    "HTTP/1.0 keep-alive request: the answer has no `Connection: keep-alive` and \
                     the connection was not closed within {BOUND:?} (RFC 9112 §9.3: keep it \
                     alive and say so, or close):\n{head}\nringside log:\n{}",
                    proxy.log_text()
                ),
                Err(_) => break, // reset: closed too
            }
        }
    }
});

fn field(out: &str, name: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

// Fault 5 with a real client: `ab -k` speaks HTTP/1.0 keep-alive.
both_runtimes!(fn ab_keep_alive_completes(rt) {
    let origin = Origin::start("o");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    let url = format!("http://{}/", proxy.addr("inbound"));
    let (ok, out, killed) = run_bounded(
        Command::new("ab").args(["-k", "-n", "3", "-c", "1", "-s", "5", &url]),
        Duration::from_secs(15),
    );
    assert!(
        ok && field(&out, "Complete requests:") == Some(3) && field(&out, "Failed requests:") == Some(0),
        "ab -k -n 3 -c 1 (HTTP/1.0 keep-alive) must complete 3 requests, 0 failed (killed after \
         15 s: {killed}):\n{out}\nringside log:\n{}",
        proxy.log_text()
    );
});

// Fault 7: OPTIONS in absolute form with an empty path goes upstream as `OPTIONS *`, and
// `OPTIONS *` itself passes through (the origin echoes its request target in x-origin-uri).
both_runtimes!(fn options_asterisk_and_absolute_form(rt) {
    let origin = Origin::start("o");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    let mut wrong = Vec::new();
    for req in ["OPTIONS http://a HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"] {
        let r = Conn::open(proxy.addr("inbound")).send(req.as_bytes()).read_response(false);
        let got = r.as_ref().map(|r| (r.status, r.header("x-origin-uri")));
        if !matches!(got, Ok((200, Some("*")))) {
            wrong.push(format!("{req:?}: got {:?}", r.map(|r| (r.status, r.headers))));
        }
    }
    assert!(
        wrong.is_empty(),
        "must reach the origin as `OPTIONS *` (RFC 9112 §3.2.4):\n{}\nringside log:\n{}",
        wrong.join("\n"),
        proxy.log_text()
    );
});

// Fault 9: the head and visibly broken chunked framing arrive in one write: 400, and the
// origin never sees the request.
both_runtimes!(fn broken_chunked_framing_in_hand_never_reaches_the_origin(rt) {
    let origin = Origin::start("o");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    let cases: [(&str, &str); 5] = [
        ("size-line", "zz\r\nhello\r\n0\r\n\r\n"),
        ("overflow", "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        ("bare-lf", "5\nhello\r\n0\r\n\r\n"),
        ("extension", "5 junk\r\nhello\r\n0\r\n\r\n"),
        ("extension-ctl", "5;a=\x01\r\nhello\r\n0\r\n\r\n"),
    ];
    let mut wrong = Vec::new();
    for (name, body) in cases {
        let req = format!(
            "POST /bad-chunk/{name} HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n{body}"
        );
        let mut c = Conn::open(proxy.addr("inbound"));
        c.send(req.as_bytes());
        let status = c.read_response(false).map(|r| r.status);
        if !matches!(status, Ok(400)) {
            wrong.push(format!("{name}: want 400, got {status:?}"));
        }
    }
    // The same shape with valid framing does reach the origin (the counter works).
    let ok = "POST /chunk-ok HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let r = Conn::open(proxy.addr("inbound")).send(ok.as_bytes()).read_response(false).expect("answer");
    assert_eq!((r.status, origin_seen(origin.addr, "/chunk-ok")), (200, 1), "valid chunked POST");
    // A forwarded head would have been written before the 400s; give the origin a moment to
    // have read it.
    let end = Instant::now() + Duration::from_millis(500);
    let reached = loop {
        let reached: Vec<(&str, u64)> = cases
            .iter()
            .map(|(name, _)| (*name, origin_seen(origin.addr, &format!("/bad-chunk/{name}"))))
            .filter(|(_, n)| *n > 0)
            .collect();
        if !reached.is_empty() || Instant::now() > end {
            break reached;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !reached.is_empty() {
        wrong.push(format!("reached the origin (path, times): {reached:?}"));
    }
    assert!(
        wrong.is_empty(),
        "requests whose chunked framing is visibly broken in the bytes that came with the head \
         must get a 400 and never reach the origin:\n{}\nringside log:\n{}",
        wrong.join("\n"),
        proxy.log_text()
    );
});
