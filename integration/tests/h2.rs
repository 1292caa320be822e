//! HTTP/2 through Ringside, on both runtimes: h2c (prior knowledge) clients in front of
//! HTTP/1.1 and h2c origins, HTTP/1.1 clients in front of an h2c origin, many streams on one
//! connection, and malformed h2 requests that must never reach an origin.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringside_integration::h2raw::{
    frame, hpack, Frames, END_HEADERS, END_STREAM, HEADERS, STATUS_200,
};
use ringside_integration::metrics::sum_json;
use ringside_integration::{
    both_runtimes, h2_client, http_config_proto, json_field, Conn, HeldUpstream, Origin, Ringside,
};
use sha2::{Digest, Sha256};

/// The origin's deterministic payload (`origin.Pattern`): byte i is 'a' + i % 26.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn proxy_to(rt: ringside_integration::Runtime, origin: &Origin, protocol: &str) -> Ringside {
    Ringside::start(rt, &http_config_proto(&[origin.addr], protocol))
}

/// One h2client run that must complete; returns its JSON line.
fn h2(proxy: &Ringside, args: &[&str]) -> String {
    let (ok, out) = h2_client(proxy.addr("inbound"), args);
    assert!(ok, "{out}\nringside log:\n{}", proxy.log_text());
    out
}

fn status(out: &str) -> u16 {
    json_field(out, "status")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"))
}

/// POSTs `size` pattern bytes to /sink over h2 and checks the origin got exactly them.
fn h2_post_arrives(proxy: &Ringside, size: usize, unknown_length: bool) {
    let size_s = size.to_string();
    let mut args = vec!["-method", "POST", "-path", "/sink", "-body-size", &size_s];
    if unknown_length {
        args.push("-unknown-length");
    }
    let out = h2(proxy, &args);
    assert_eq!(status(&out), 200, "{out}");
    assert!(
        out.contains(&format!("\\\"bytes\\\":{size},")),
        "origin got another length: {out}"
    );
    assert!(
        out.contains(&sha_hex(&pattern(size))),
        "origin got other bytes: {out}"
    );
}

both_runtimes!(fn h2_client_to_http1_origin(rt) {
    let origin = Origin::start("h1o");
    let proxy = proxy_to(rt, &origin, "http1");
    let out = h2(&proxy, &["-path", "/headers?q=1", "-host", "example.test:8080"]);
    assert_eq!(status(&out), 200, "{out}");
    assert_eq!(json_field(&out, "proto").as_deref(), Some("HTTP/2.0"), "client side is h2: {out}");
    assert_eq!(json_field(&out, "x-origin-proto").as_deref(), Some("HTTP/1.1"), "{out}");
    assert!(out.contains(r#"\"proto\":\"HTTP/1.1\""#), "origin saw HTTP/1.1: {out}");
    assert!(out.contains(r#"\"host\":\"example.test:8080\""#), "Host = :authority: {out}");
    assert!(out.contains(r#"\"raw_query\":\"q=1\""#), "{out}");

    let out = h2(&proxy, &["-path", "/bytes/1048576"]);
    assert_eq!(json_field(&out, "body_len").as_deref(), Some("1048576"), "{out}");
    assert_eq!(json_field(&out, "body_sha256"), Some(sha_hex(&pattern(1 << 20))), "{out}");
    let out = h2(&proxy, &["-path", "/chunked/100000"]);
    assert_eq!(json_field(&out, "body_sha256"), Some(sha_hex(&pattern(100_000))), "{out}");
    let out = h2(&proxy, &["-path", "/status/404"]);
    assert_eq!(status(&out), 404, "{out}");

    for size in [0, 10, 5 << 20] {
        h2_post_arrives(&proxy, size, false);
    }
    // No content-length on the h2 side: the proxy must still frame it for HTTP/1.1.
    h2_post_arrives(&proxy, 5 << 20, true);
    h2_post_arrives(&proxy, 0, true);
});

both_runtimes!(fn http1_client_to_h2c_origin(rt) {
    let origin = Origin::start_h2c("h2o");
    let proxy = proxy_to(rt, &origin, "http2");
    let mut c = Conn::open(proxy.addr("inbound"));
    let r = c.get("/headers", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-origin-proto"), Some("HTTP/2.0"), "{:?}", r.headers);
    assert!(r.text().contains("\"proto\":\"HTTP/2.0\""), "{}", r.text());
    assert!(r.text().contains("\"host\":\"test\""), "Host became :authority: {}", r.text());

    let r = c.get("/bytes/1000000", "");
    assert_eq!(r.body, pattern(1_000_000));
    let r = c.get("/chunked/100000", "");
    assert_eq!(r.body, pattern(100_000));

    // A content-length body and a chunked body, both on the same keep-alive connection.
    let body = pattern(3 << 20);
    c.send(format!("POST /sink HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
    c.send(&body);
    let r = c.read_response(false).expect("sink response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&format!("\"bytes\":{}", body.len())), "{}", r.text());
    assert!(r.text().contains(&sha_hex(&body)), "{}", r.text());

    c.send(b"POST /sink HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    let r = c.read_response(false).expect("chunked sink response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"bytes\":11"), "{}", r.text());
    assert!(r.text().contains(&sha_hex(b"hello world")), "{}", r.text());

    let r = c.get("/status/503", "");
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "status 503\n");
});

both_runtimes!(fn h2_client_to_h2c_origin(rt) {
    let origin = Origin::start_h2c("h2o");
    let proxy = proxy_to(rt, &origin, "http2");
    let out = h2(&proxy, &["-path", "/headers", "-host", "example.test"]);
    assert_eq!(status(&out), 200, "{out}");
    assert_eq!(json_field(&out, "x-origin-proto").as_deref(), Some("HTTP/2.0"), "{out}");
    assert!(out.contains(r#"\"host\":\"example.test\""#), ":authority kept: {out}");
    for size in [0, 10, 5 << 20] {
        h2_post_arrives(&proxy, size, false);
    }
    h2_post_arrives(&proxy, 1 << 20, true);
    let out = h2(&proxy, &["-path", "/trailers"]);
    assert_eq!(json_field(&out, "body").as_deref(), Some("hello trailers"), "{out}");
    assert!(out.contains("\"x-checksum\""), "h2 response trailers forwarded: {out}");
});

both_runtimes!(fn many_concurrent_streams_on_one_connection(rt) {
    for (origin, protocol) in [(Origin::start("h1o"), "http1"), (Origin::start_h2c("h2o"), "http2")] {
        let proxy = proxy_to(rt, &origin, protocol);
        let out = h2(&proxy, &["-path", "/bytes/1000", "-count", "200", "-concurrency", "200"]);
        assert!(out.contains(r#""statuses":{"200":200}"#), "{protocol}: {out}");
        assert_eq!(json_field(&out, "dials").as_deref(), Some("1"), "one client connection: {out}");
        assert_eq!(json_field(&out, "body_bytes").as_deref(), Some("200000"), "{out}");
    }
});

// === raw h2 frames, for requests no real client will send ===

/// What came back for stream 1.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Reset(u32),
    GoAway(u32),
    Closed,
    /// A response HEADERS frame; `true` when its first field is `:status 200` (index 8).
    Response {
        ok: bool,
    },
    Nothing,
}

fn send_raw_request(addr: SocketAddr, headers: &[(&str, &str)]) -> Outcome {
    // END_STREAM | END_HEADERS
    let mut frames = Frames::open(
        addr,
        &frame(HEADERS, END_STREAM | END_HEADERS, 1, &hpack(headers)),
    );
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match frames.next(end) {
            Ok(f) => match (f.kind, f.stream) {
                (3, 1) => return Outcome::Reset(f.code(0)),
                (7, _) => return Outcome::GoAway(f.code(4)),
                (1, 1) => {
                    return Outcome::Response {
                        ok: f.payload.first() == Some(&STATUS_200),
                    }
                }
                _ => {}
            },
            Err(true) => return Outcome::Closed,
            Err(false) => return Outcome::Nothing,
        }
    }
}

both_runtimes!(fn malformed_h2_requests_never_reach_the_origin(rt) {
    // An upstream that counts every request it gets.
    let up = HeldUpstream::start();
    let proxy = Ringside::start(rt, &http_config_proto(&[up.addr], "http1"));
    let base = [(":method", "GET"), (":scheme", "http"), (":authority", "test")];
    let good = [&base[..], &[(":path", "/")]].concat();
    assert_eq!(send_raw_request(proxy.addr("inbound"), &good), Outcome::Response { ok: true }, "the well-formed control request");
    assert_eq!(up.all_requests(), 1, "the control request reached the upstream");
    use ringside_integration::h2raw::PROTOCOL_ERROR;
    // docs/http2.md: RST_STREAM PROTOCOL_ERROR (a stream error, RFC 9113 §8.1.1), except an
    // uppercase name, which the h2 crate's HPACK decoder rejects for the whole connection:
    // GOAWAY PROTOCOL_ERROR (RFC 9113 §5.4.1 lets a stream error be a connection error).
    let reset = Outcome::Reset(PROTOCOL_ERROR);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Outcome);
    let cases: Vec<Case> = vec![
        ("space in :path", [&base[..], &[(":path", "/a b")]].concat(), reset),
        ("connection header", [&good[..], &[("connection", "keep-alive")]].concat(), reset),
        ("te other than trailers", [&good[..], &[("te", "gzip")]].concat(), reset),
        ("uppercase header name", [&good[..], &[("X-Upper", "1")]].concat(), Outcome::GoAway(PROTOCOL_ERROR)),
        ("no :path", base.to_vec(), reset),
        ("pseudo-header after a regular one", [&base[..], &[("x-a", "1"), (":path", "/")]].concat(), reset),
    ];
    let mut wrong = Vec::new();
    for (what, headers, want) in cases {
        let got = send_raw_request(proxy.addr("inbound"), &headers);
        if got != want {
            wrong.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}\nringside log:\n{}", proxy.log_text());
    // Each refusal was final when the client saw it; a forwarded request would have been
    // counted before the upstream's answer could reach the client.
    assert_eq!(up.all_requests(), 1, "a malformed request reached the upstream");
});

both_runtimes!(fn sigterm_sends_goaway_and_in_flight_streams_finish(rt) {
    let up = HeldUpstream::start();
    let mut proxy = Ringside::start(rt, &http_config_proto(&[up.addr], "http1"));
    let req = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "t"),
        (":path", "/hold"),
    ];
    let mut conn = Frames::open(proxy.addr("inbound"), &frame(HEADERS, END_STREAM | END_HEADERS, 1, &hpack(&req)));
    // In flight: the request is at the upstream, which holds it until released.
    up.wait_requests(1, Duration::from_secs(10));
    // SAFETY: plain kill(2) on the child we started.
    let rc = unsafe { libc::kill(proxy.pid() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    // (type, stream, first payload byte or, for GOAWAY, its error code), until the close.
    let mut frames = Vec::new();
    let mut released = false;
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match conn.next(end) {
            Ok(f) if f.kind == 7 => {
                frames.push((7, f.stream, f.code(4)));
                // The drain has begun: now let the in-flight response come.
                up.release();
                released = true;
            }
            Ok(f) => frames.push((f.kind, f.stream, f.payload.first().map_or(0, |b| u32::from(*b)))),
            Err(true) => break,
            Err(false) => panic!("still open 10 s after SIGTERM (released: {released}): {frames:?}"),
        }
    }
    let goaway = frames.iter().position(|f| f.0 == 7);
    let response = frames.iter().position(|f| f.0 == 1 && f.1 == 1);
    let (Some(goaway), Some(response)) = (goaway, response) else {
        panic!("want GOAWAY and the response, got {frames:?}\n{}", proxy.log_text());
    };
    assert_eq!(frames[goaway].2, 0, "GOAWAY NO_ERROR: {frames:?}");
    assert!(goaway < response, "GOAWAY comes at the drain, before the slow response: {frames:?}");
    assert_eq!(frames[response].2, u32::from(STATUS_200), "the in-flight stream still gets its 200: {frames:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.alive() {
        assert!(Instant::now() < deadline, "did not exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    }
});

both_runtimes!(fn saturated_upstream_connections_are_joined_by_new_ones(rt) {
    // The origin allows 4 streams per connection: 20 slow requests at once need 5 of them.
    // Queued on one connection they would take 5 × 500 ms.
    let origin = Origin::start_with_flags("h2o", &["-h2c", "-h2-max-streams", "4"]);
    let proxy = proxy_to(rt, &origin, "http2");
    let started = Instant::now();
    let out = h2(&proxy, &["-path", "/delay/500", "-count", "20", "-concurrency", "20"]);
    let took = started.elapsed();
    assert!(out.contains("\"ok\":true"), "{out}");
    let runtime = ringside_integration::client::get(proxy.addr("admin"), "/runtime").text();
    let upstream = sum_json(&runtime, "upstream_h2_connections");
    // docs/http2.md: exactly 5, each filled to the peer's limit before the next is opened.
    assert_eq!(upstream, 5, "20 concurrent streams at 4 per connection: {runtime}");
    // Queued 4 at a time they would take 5 × 500 ms; together, one request's 500 ms. The bound
    // sits just under the queued time, so it holds on a loaded machine and still tells them apart.
    assert!(took < Duration::from_millis(2400), "streams waited for each other: {took:?} {out}");
    eprintln!("20 streams, max 4 per upstream connection: {upstream} connections, {took:?}");
});

both_runtimes!(fn h2_connections_show_in_admin_connections(rt) {
    let origin = Origin::start("h1o");
    let proxy = proxy_to(rt, &origin, "http1");
    let req = [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/")];
    let mut conn = Frames::open(proxy.addr("inbound"), &frame(HEADERS, END_STREAM | END_HEADERS, 1, &hpack(&req)));
    let end = Instant::now() + Duration::from_secs(5);
    // Until the response's last DATA frame (END_STREAM on stream 1).
    loop {
        let f = conn.next(end).expect("response");
        if f.stream == 1 && f.flags & 1 == 1 && (f.kind == 0 || f.kind == 1) {
            break;
        }
    }
    let list = ringside_integration::client::get(proxy.addr("admin"), "/connections").text();
    let list: String = list.chars().filter(|c| !c.is_whitespace()).collect();
    let entry = list
        .split('{')
        .find(|e| e.contains("\"protocol\":\"h2\""))
        .unwrap_or_else(|| panic!("no h2 connection listed: {list}"));
    let field = |k: &str| sum_json(entry, k);
    assert_eq!(field("requests"), 1, "{entry}");
    assert!(field("bytes_in") > 24, "the preface and more were counted: {entry}");
    assert!(field("bytes_out") > 20, "the response frames were counted: {entry}");
});

both_runtimes!(fn on_io_uring_h2_runs_over_poll_io_and_http1_over_completions(rt) {
    // ARCHITECTURE.md, docs/http2.md: on io_uring, HTTP/2 connections (both sides) are converted
    // to monoio's poll-io (readiness through an inner epoll), HTTP/1.1 stays on completion I/O.
    // /runtime counts the conversions per worker (`poll_io_connections`), which proves which
    // path ran: none after HTTP/1.1 traffic, one per h2 connection after h2 traffic.
    let origin = Origin::start_h2c("h2o");
    let proxy = proxy_to(rt, &origin, "http1");
    let runtime = |p: &Ringside| ringside_integration::client::get(p.addr("admin"), "/runtime").text();
    assert_eq!(Conn::open(proxy.addr("inbound")).get("/", "").status, 200);
    let after_h1 = runtime(&proxy);
    let h2_proxy = proxy_to(rt, &origin, "http2");
    let out = h2(&h2_proxy, &["-path", "/"]);
    assert_eq!(status(&out), 200, "{out}");
    let after_h2 = runtime(&h2_proxy);
    if rt == ringside_integration::Runtime::IoUring {
        assert!(after_h1.contains("\"poll_io_connections\""), "no poll-io counter in /runtime: {after_h1}");
        assert_eq!(sum_json(&after_h1, "poll_io_connections"), 0, "HTTP/1.1 used poll-io: {after_h1}");
        // The client's h2 connection and the h2c upstream connection.
        assert_eq!(sum_json(&after_h2, "poll_io_connections"), 2, "{after_h2}");
    } else {
        assert_eq!(sum_json(&after_h2, "poll_io_connections"), 0, "epoll has no poll-io: {after_h2}");
    }
});
