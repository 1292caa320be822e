//! Request smuggling shapes (DESIGN.md §5.10): each is refused with the right status and the
//! connection closed, and none of them reaches the upstream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::time::{Duration, Instant};

use ringside_integration::{both_runtimes, http_config, Conn, HeldUpstream, Origin, Ringside};

/// An upstream that counts connections and answers every request 200: if a smuggled request
/// reached it, the count says so.
fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            h.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0
                        || s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    (addr, hits)
}

const SHAPES: &[(&str, &[u8], u16)] = &[
    ("CL and TE together", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("two Content-Lengths", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("Content-Length list", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 4\r\n\r\nabcd", 400),
    ("signed Content-Length", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\nabcd", 400),
    ("chunked not last", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("unknown transfer coding", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length : 0\r\n\r\n", 400),
    ("bare LF", b"GET / HTTP/1.1\nHost: t\n\n", 400),
    ("NUL in a value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
    ("missing Host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 505),
    ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501),
    // Last: its head is forwarded before the body error is found, so it does reach the upstream,
    // and the upstream's accept may be counted a moment after the client sees the 400.
    ("bad chunk size", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", 400),
];

both_runtimes!(fn smuggling_shapes_are_refused_and_never_forwarded(rt) {
    let (up, hits) = counting_upstream();
    let proxy = Ringside::start(rt, &http_config(&[up]));
    for (what, raw, want) in SHAPES {
        let before = hits.load(Ordering::SeqCst);
        let mut c = Conn::open(proxy.addr("inbound"));
        c.send(raw);
        let r = c.read_response(false).unwrap_or_else(|e| panic!("{what}: no response: {e}"));
        // A chunk-size error is found while streaming the body upstream, after the head went:
        // the upstream sees a request cut short, never a different request.
        if *what != "bad chunk size" {
            assert_eq!(r.status, *want, "{what}");
            assert_eq!(hits.load(Ordering::SeqCst), before, "{what} reached the upstream");
        } else {
            assert!(r.status == 400 || r.status == 502, "{what}: {}", r.status);
        }
        c.assert_closed(what);
    }
});

both_runtimes!(fn oversized_headers_get_431(rt) {
    let (up, hits) = counting_upstream();
    let proxy = Ringside::start(rt, &http_config(&[up]));
    let mut c = Conn::open(proxy.addr("inbound"));
    let big = "x".repeat(70 * 1024);
    let r = c.send(format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n").as_bytes()).read_response(false).expect("431");
    assert_eq!(r.status, 431);
    let mut c = Conn::open(proxy.addr("inbound"));
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = c.send(format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes()).read_response(false).expect("431");
    assert_eq!(r.status, 431);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
});

both_runtimes!(fn h2c_upgrade_is_not_forwarded(rt) {
    let up = HeldUpstream::start();
    up.release();
    let proxy = Ringside::start(rt, &http_config(&[up.addr]));
    let mut c = Conn::open(proxy.addr("inbound"));
    let r = c.get("/hold", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n");
    // The upstream answers 200; the client stays on HTTP/1.1.
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/", "").status, 200);
    // docs/http2.md: `Upgrade: h2c` is stripped, with HTTP2-Settings and the Connection tokens.
    let head = up.wait_requests(1, Duration::from_secs(5))[0].to_ascii_lowercase();
    for gone in ["upgrade", "http2-settings"] {
        assert!(!head.lines().any(|l| l.starts_with(&format!("{gone}:"))), "{gone} reached the upstream:\n{head}");
    }
    assert!(!head.contains("connection: upgrade"), "{head}");
});

both_runtimes!(fn request_line_over_the_head_limit_gets_414(rt) {
    let (up, hits) = counting_upstream();
    let proxy = Ringside::start(rt, &http_config(&[up]));
    let mut c = Conn::open(proxy.addr("inbound"));
    // Longer than limits.max_header_bytes (64 KiB) before the line even ends.
    let path = "p".repeat(70 * 1024);
    c.send(format!("GET /{path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let r = c.read_response(false).expect("414");
    assert_eq!(r.status, 414);
    c.assert_closed("after the 414");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the request reached the upstream");
});

both_runtimes!(fn a_stalled_request_body_ends_at_the_route_timeout(rt) {
    // The client promises 100 bytes, sends 10, and stalls. The origin's /sink answers only
    // after the whole body, so only the route's whole-request timeout (1 s) can end this, and
    // it is the client that was too slow: 408 Request Timeout (RFC 9110 §15.5.9), not a 400
    // "invalid request body" (nothing was invalid) nor a 504 (the upstream was waiting on us).
    let origin = Origin::start("app");
    let cfg = http_config(&[origin.addr]).replace("        backends: [ { cluster: app } ]\n", "        backends: [ { cluster: app } ]\n        timeout: 1s\n");
    assert!(cfg.contains("timeout: 1s"), "{cfg}");
    let proxy = Ringside::start(rt, &cfg);
    let mut c = Conn::open(proxy.addr("inbound"));
    let sent = Instant::now();
    c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
    let r = c.read_response(false).expect("an answer, not a hang");
    let took = sent.elapsed();
    assert_eq!(r.status, 408, "after {took:?}: {:?} {}", r.headers, r.text());
    assert!(took >= Duration::from_millis(900), "before the route timeout: {took:?}");
    // The body was never completed: the connection cannot carry another request.
    c.assert_closed("after a request whose body never ended");
});
