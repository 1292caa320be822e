//! HTTP/2 edges through Ringside, on both runtimes: bodiless responses (HEAD, 204, 304) and
//! trailers across h2 ↔ HTTP/1.1, upstream stream resets before and after the response head,
//! rapid reset, and `x-forwarded-proto`.

use std::time::{Duration, Instant};

use ringside_integration::h2raw::{
    frame, hpack, Frames, Script, ScriptedH2Upstream, DATA, END_HEADERS, END_STREAM,
    ENHANCE_YOUR_CALM, GOAWAY, HEADERS, INTERNAL_ERROR, RST_STREAM, STATUS_200,
};
use ringside_integration::{
    both_runtimes, h2_client, http_config_proto, json_field, Conn, HeldUpstream, Origin, Ringside,
};

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

both_runtimes!(fn head_204_304_from_h1_origin_to_h2_client(rt) {
    let origin = Origin::start("h1o");
    let proxy = Ringside::start(rt, &http_config_proto(&[origin.addr], "http1"));
    let out = h2(&proxy, &["-method", "HEAD", "-path", "/bytes/1000"]);
    assert_eq!(status(&out), 200, "{out}");
    assert_eq!(json_field(&out, "body_len").as_deref(), Some("0"), "HEAD has no body: {out}");
    assert!(out.contains(r#""content-length":"1000""#), "HEAD keeps the length of the GET: {out}");
    for code in [204, 304] {
        let out = h2(&proxy, &["-path", &format!("/status/{code}")]);
        assert_eq!(status(&out), code, "{out}");
        assert_eq!(json_field(&out, "body_len").as_deref(), Some("0"), "{out}");
    }
    // The connection is still fine for a body afterwards.
    let out = h2(&proxy, &["-path", "/bytes/10"]);
    assert_eq!(json_field(&out, "body_len").as_deref(), Some("10"), "{out}");
});

both_runtimes!(fn head_from_h2_origin_to_h1_client_keeps_its_length(rt) {
    // RFC 9110 §9.3.2: a HEAD answer carries the GET's header fields, Content-Length included
    // (Go's h2 server sends `content-length: 1000` here); a proxy passes it on.
    let origin = Origin::start_h2c("h2o");
    let proxy = Ringside::start(rt, &http_config_proto(&[origin.addr], "http2"));
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"HEAD /bytes/1000 HTTP/1.1\r\nhost: t\r\n\r\n");
    let r = c.read_response(true).expect("HEAD response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"), "{:?}", r.headers);
    // And no body bytes followed: the next response parses.
    assert_eq!(c.get("/bytes/10", "").body.len(), 10);
});

both_runtimes!(fn head_204_304_from_h2_origin_to_h1_client(rt) {
    let origin = Origin::start_h2c("h2o");
    let proxy = Ringside::start(rt, &http_config_proto(&[origin.addr], "http2"));
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"HEAD /bytes/1000 HTTP/1.1\r\nhost: t\r\n\r\n");
    let r = c.read_response(true).expect("HEAD response");
    assert_eq!(r.status, 200);
    for code in [204, 304] {
        let r = c.get(&format!("/status/{code}"), "");
        assert_eq!(r.status, code);
        assert!(r.header("transfer-encoding").is_none(), "{code} has no body framing: {:?}", r.headers);
        let cl = r.header("content-length");
        assert!(cl.is_none() || cl == Some("0") || code == 304, "{code}: {:?}", r.headers);
    }
    // No stray body bytes were sent after the bodiless answers: the next response parses.
    let r = c.get("/bytes/10", "");
    assert_eq!((r.status, r.body.len()), (200, 10));
});

both_runtimes!(fn http1_request_trailers_reach_an_h2_upstream(rt) {
    // HTTP/1.1 chunked trailers → h2 upstream (the origin's /sink reports the trailers it
    // got). Go's HTTP/2 server keeps only trailers the request declared in `Trailer`, as RFC
    // 9110 §6.6.2 has senders do, so the proxy must forward that field (it is end-to-end, not
    // hop-by-hop; RFC 9113 §8.2.2 does not list it).
    let h2o = Origin::start_h2c("h2o");
    let proxy = Ringside::start(rt, &http_config_proto(&[h2o.addr], "http2"));
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"POST /sink HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\ntrailer: x-t\r\n\r\n5\r\nhello\r\n0\r\nx-t: v1\r\n\r\n");
    let r = c.read_response(false).expect("sink");
    assert!(r.text().contains(r#""trailers":{"x-t":"v1"}"#), "h1 trailer reached the h2 origin: {}", r.text());
});

both_runtimes!(fn h2_response_trailers_reach_an_http1_client(rt) {
    let h2o = Origin::start_h2c("h2o");
    let proxy = Ringside::start(rt, &http_config_proto(&[h2o.addr], "http2"));
    let r = Conn::open(proxy.addr("inbound")).get("/trailers", "te: trailers\r\n");
    assert_eq!(r.text(), "hello trailers");
    assert!(r.trailers.iter().any(|(n, v)| n == "x-checksum" && v.len() == 64), "as chunked trailers: {:?}", r.trailers);
});

both_runtimes!(fn h2_request_trailers_reach_an_http1_upstream(rt) {
    let h1o = Origin::start("h1o");
    let proxy = Ringside::start(rt, &http_config_proto(&[h1o.addr], "http1"));
    let req = [(":method", "POST"), (":scheme", "http"), (":authority", "t"), (":path", "/sink"), ("trailer", "x-t")];
    let mut out = frame(HEADERS, END_HEADERS, 1, &hpack(&req));
    out.extend(frame(DATA, 0, 1, b"hello"));
    out.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &hpack(&[("x-t", "v2")])));
    let mut conn = Frames::open(proxy.addr("inbound"), &out);
    let end = Instant::now() + Duration::from_secs(10);
    let mut body = Vec::new();
    loop {
        let f = conn.next(end).unwrap_or_else(|closed| panic!("no full response (closed: {closed}); body {:?}", String::from_utf8_lossy(&body)));
        if f.stream == 1 && f.kind == DATA {
            body.extend(&f.payload);
        }
        assert!(!(f.stream == 1 && f.kind == RST_STREAM), "reset: {f:?}");
        if f.stream == 1 && f.flags & END_STREAM != 0 {
            break;
        }
    }
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains(r#""trailers":{"x-t":"v2"}"#), "h2 trailer reached the h1 origin: {body}");
});

both_runtimes!(fn http1_response_trailers_reach_an_h2_client(rt) {
    let h1o = Origin::start("h1o");
    let proxy = Ringside::start(rt, &http_config_proto(&[h1o.addr], "http1"));
    let out = h2(&proxy, &["-path", "/trailers"]);
    assert!(out.contains(r#""trailers":{"x-checksum":""#), "h1 trailers became h2 trailers: {out}");
});

/// What an h2 client sees on stream 1: the frames until the stream ends, as (type, flags,
/// first payload byte or error code).
fn h2_stream_outcome(proxy: &Ringside) -> Vec<(u8, u8, u32)> {
    let req = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "t"),
        (":path", "/x"),
    ];
    let mut conn = Frames::open(
        proxy.addr("inbound"),
        &frame(HEADERS, END_STREAM | END_HEADERS, 1, &hpack(&req)),
    );
    let end = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let f = conn
            .next(end)
            .unwrap_or_else(|closed| panic!("stream 1 did not end (closed: {closed}): {seen:?}"));
        if f.stream != 1 {
            continue;
        }
        let detail = match f.kind {
            RST_STREAM => f.code(0),
            _ => f.payload.first().map_or(0, |b| u32::from(*b)),
        };
        seen.push((f.kind, f.flags, detail));
        if f.kind == RST_STREAM || f.flags & END_STREAM != 0 {
            return seen;
        }
    }
}

both_runtimes!(fn upstream_reset_before_the_head(rt) {
    let up = ScriptedH2Upstream::start(Script::ResetBeforeHead(INTERNAL_ERROR));
    let proxy = Ringside::start(rt, &http_config_proto(&[up.addr], "http2"));
    // An HTTP/1.1 client gets a 502: nothing was sent yet, so an answer is still possible.
    let mut c = Conn::open(proxy.addr("inbound"));
    let r = c.get("/x", "");
    assert_eq!(r.status, 502, "{:?} {}", r.headers, r.text());
    assert!(r.header("x-ringside-error").is_some(), "{:?}", r.headers);
    // An h2 client gets the same: a 502 head (not a reset), since no head was forwarded.
    let seen = h2_stream_outcome(&proxy);
    assert_eq!(seen.first().map(|f| f.0), Some(HEADERS), "a response head, not a reset: {seen:?}");
    assert_ne!(seen[0].2, u32::from(STATUS_200), "{seen:?}");
    assert!(up.streams() >= 2, "both requests reached the upstream");
});

both_runtimes!(fn upstream_reset_after_the_head(rt) {
    // The upstream sends its head, and resets the stream only once the test releases it:
    // after the client has the head, so "after the head" is a fact, not a race.
    let up = ScriptedH2Upstream::start(Script::HeadThenReset(INTERNAL_ERROR));
    let proxy = Ringside::start(rt, &http_config_proto(&[up.addr], "http2"));
    // h2 client: the 200 head, then the stream is reset (the response cannot complete).
    let req = [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/x")];
    let mut conn = Frames::open(proxy.addr("inbound"), &frame(HEADERS, END_STREAM | END_HEADERS, 1, &hpack(&req)));
    let end = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let f = conn.next(end).unwrap_or_else(|closed| panic!("stream 1 did not end (closed: {closed}): {seen:?}"));
        if f.stream != 1 {
            continue;
        }
        seen.push((f.kind, f.code(0), f.payload.first().copied()));
        if f.kind == HEADERS {
            assert_eq!(f.payload.first(), Some(&STATUS_200), "{seen:?}");
            up.release();
        }
        if f.kind == RST_STREAM || f.flags & END_STREAM != 0 {
            break;
        }
    }
    assert_eq!(seen.first().map(|f| f.0), Some(HEADERS), "{seen:?}");
    assert_eq!(seen.last().map(|f| f.0), Some(RST_STREAM), "the cut reaches the client as a reset, not a clean end: {seen:?}");
    // HTTP/1.1 client (a new upstream, not yet released): the head went out, so the only
    // signal left is closing the connection before the body's end.
    let up = ScriptedH2Upstream::start(Script::HeadThenReset(INTERNAL_ERROR));
    let proxy = Ringside::start(rt, &http_config_proto(&[up.addr], "http2"));
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n");
    let mut b = [0u8; 1];
    c.stream.peek(&mut b).expect("the response head arrives");
    up.release();
    let r = c.read_response(false);
    assert!(r.is_err(), "a cut response must not read as complete: {r:?}");
});

both_runtimes!(fn rapid_reset_gets_goaway_enhance_your_calm(rt) {
    // CVE-2023-44487: open streams and reset them at once, in bulk. docs/http2.md: after 20
    // streams reset before Ringside accepted them, GOAWAY ENHANCE_YOUR_CALM.
    let up = HeldUpstream::start();
    let proxy = Ringside::start(rt, &http_config_proto(&[up.addr], "http1"));
    let req = [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/hold")];
    let block = hpack(&req);
    let mut burst = Vec::new();
    for i in 0..500u32 {
        let id = 2 * i + 1;
        burst.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &block));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let mut conn = Frames::open(proxy.addr("inbound"), &burst);
    let end = Instant::now() + Duration::from_secs(10);
    let goaway = loop {
        match conn.next(end) {
            Ok(f) if f.kind == GOAWAY => break f.code(4),
            Ok(_) => {}
            Err(closed) => panic!("no GOAWAY (closed: {closed})\n{}", proxy.log_text()),
        }
    };
    assert_eq!(goaway, ENHANCE_YOUR_CALM, "GOAWAY code");
    up.release();
    // Far fewer than 500 requests were forwarded.
    assert!(up.requests() < 500, "{} of 500 reset streams reached the upstream", up.requests());
    // The proxy serves other connections.
    let out = h2(&proxy, &["-path", "/"]);
    assert_eq!(status(&out), 200, "{out}");
});

both_runtimes!(fn x_forwarded_proto_is_set_when_absent_and_kept_when_present(rt) {
    let origin = Origin::start("h1o");
    let proxy = Ringside::start(rt, &http_config_proto(&[origin.addr], "http1"));
    // HTTP/1.1 client.
    let body = Conn::open(proxy.addr("inbound")).get("/headers", "").text();
    assert!(body.contains(r#""x-forwarded-proto":["http"]"#), "{body}");
    let body = Conn::open(proxy.addr("inbound")).get("/headers", "x-forwarded-proto: https\r\n").text();
    assert!(body.contains(r#""x-forwarded-proto":["https"]"#), "kept as received: {body}");
    // h2 client.
    let out = h2(&proxy, &["-path", "/headers"]);
    assert!(out.contains(r#"\"x-forwarded-proto\":[\"http\"]"#), "{out}");
    let out = h2(&proxy, &["-path", "/headers", "-header", "x-forwarded-proto: https"]);
    assert!(out.contains(r#"\"x-forwarded-proto\":[\"https\"]"#), "{out}");
});
