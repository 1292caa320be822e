//! Issue 11, HTTP/1 request handling, on both runtimes: HTTP/1.0 keep-alive (RFC 9112
//! §9.3), absolute-form and asterisk-form OPTIONS (RFC 9112 §3.2.4), and chunked framing
//! that is visibly broken in the bytes that came with the head (nothing reaches the origin).

use std::time::{Duration, Instant};

use ringside_integration::exchange::{h1_and_h2_clusters_config, origin_seen};
use ringside_integration::http10::{ab_keep_alive, http10_keep_alive};
use ringside_integration::{both_runtimes, http_config, Conn, Origin, Ringside};

// Fault 5, raw: `GET / HTTP/1.0` with `Connection: keep-alive`.
both_runtimes!(fn http10_keep_alive_is_honoured_or_closed(rt) {
    let origin = Origin::start("o");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    if let Err(e) = http10_keep_alive(proxy.addr("inbound")) {
        panic!("HTTP/1.0 keep-alive request: {e}\nringside log:\n{}", proxy.log_text());
    }
});

// Fault 5 with a real client: `ab -k` speaks HTTP/1.0 keep-alive.
both_runtimes!(fn ab_keep_alive_completes(rt) {
    let origin = Origin::start("o");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    if let Err(e) = ab_keep_alive(proxy.addr("inbound")) {
        panic!("{e}\nringside log:\n{}", proxy.log_text());
    }
});

// Fault 7: OPTIONS in absolute form with an empty path goes upstream as `OPTIONS *`, and
// `OPTIONS *` itself passes through (the origin echoes its request target in x-origin-uri).
both_runtimes!(fn options_asterisk_and_absolute_form(rt) {
    // The same origin behind an HTTP/1 cluster and, speaking h2c, behind an http2 cluster:
    // `:path` `*` too (RFC 9113 §8.3.1).
    let origin = Origin::start_h2c("o");
    let proxy = Ringside::start(rt, &h1_and_h2_clusters_config(&[origin.addr]));
    let mut wrong = Vec::new();
    for listener in ["to_h1", "to_h2"] {
        for req in ["OPTIONS http://a HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"] {
            let r = Conn::open(proxy.addr(listener)).send(req.as_bytes()).read_response(false);
            let got = r.as_ref().map(|r| (r.status, r.header("x-origin-uri")));
            if !matches!(got, Ok((200, Some("*")))) {
                wrong.push(format!("{req:?} via {listener}: got {:?}", r.map(|r| (r.status, r.headers))));
            }
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
