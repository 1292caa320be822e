use super::*;

const LIMITS: Limits = Limits {
    max_header_bytes: 8192,
    max_headers: 64,
};

fn parse(raw: &[u8]) -> Result<Option<RequestHead>, RequestError> {
    let mut buf = BytesMut::from(raw);
    parse_request(&mut buf, &LIMITS)
}

fn ok(raw: &[u8]) -> RequestHead {
    parse(raw).expect("valid").expect("complete")
}

fn status(raw: &[u8]) -> u16 {
    parse(raw).expect_err("must be refused").status()
}

fn upstream(h: &RequestHead) -> String {
    let mut out = BytesMut::new();
    h.encode_upstream(
        &mut out,
        &UpstreamOpts {
            client_ip: "10.0.0.9".parse().expect("ip"),
            forward_expect: false,
            keep_upgrade: false,
            proto: "http",
            extra: &[],
        },
    );
    String::from_utf8(out.to_vec()).expect("ascii")
}

#[test]
fn parses_a_simple_get() {
    let h = ok(b"GET /a/b?c=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n\r\n");
    assert_eq!(h.method(), "GET");
    assert_eq!(h.target(), "/a/b?c=1");
    assert_eq!(h.path(), "/a/b");
    assert_eq!(h.host(), Some("example.com"));
    assert_eq!(h.header("x-a"), Some(&b"1"[..]));
    assert_eq!(h.body(), BodyKind::Empty);
    assert!(h.keep_alive());
    assert_eq!(h.headers().count(), 2);
}

#[test]
fn smuggling_shapes_are_refused_with_the_right_status() {
    let cases: &[(&[u8], u16)] = &[
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        (b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
        (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ];
    for (raw, want) in cases {
        assert_eq!(status(raw), *want, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn size_limits_give_431_and_414() {
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(9000)
    );
    assert_eq!(status(big.as_bytes()), 431);
    let long_line = format!("GET /{} HTTP/1.1\r\n", "p".repeat(9000));
    assert_eq!(status(long_line.as_bytes()), 414);
    let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        status(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes()),
        431
    );
    // Over the stack array but within the limit is fine.
    let fifty: String = (0..55).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        ok(format!("GET / HTTP/1.1\r\nHost: a\r\n{fifty}\r\n").as_bytes())
            .headers()
            .count(),
        56
    );
    // An incomplete head below the limit just waits.
    assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .expect("partial")
        .is_none());
}

#[test]
fn incremental_parsing_waits_for_the_whole_head() {
    let raw = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    let mut buf = BytesMut::new();
    let mut head = None;
    for (i, b) in raw.iter().enumerate() {
        buf.put_u8(*b);
        if let Some(h) = parse_request(&mut buf, &LIMITS).expect("valid so far") {
            assert_eq!(i, raw.len() - 6, "complete exactly at the blank line");
            head = Some(h);
            break;
        }
    }
    let head = head.expect("parsed");
    assert_eq!(head.body(), BodyKind::Length(5));
    buf.put_slice(b"");
    assert!(buf.is_empty(), "the body bytes were not fed yet");
}

#[test]
fn pipelined_requests_come_out_one_by_one() {
    let mut buf = BytesMut::from(
        &b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3"[..],
    );
    let a = parse_request(&mut buf, &LIMITS)
        .expect("ok")
        .expect("first");
    let b = parse_request(&mut buf, &LIMITS)
        .expect("ok")
        .expect("second");
    assert_eq!((a.path(), b.path()), ("/1", "/2"));
    assert!(parse_request(&mut buf, &LIMITS).expect("ok").is_none());
    assert_eq!(&buf[..], b"GET /3");
}

#[test]
fn leading_empty_lines_are_skipped() {
    assert_eq!(ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").path(), "/");
}

#[test]
fn absolute_form_becomes_origin_form_and_sets_host() {
    let h = ok(b"GET http://Backend.example:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(h.target(), "/p?q=1");
    assert_eq!(h.host(), Some("Backend.example:8080"));
    let up = upstream(&h);
    assert!(
        up.starts_with("GET /p?q=1 HTTP/1.1\r\nhost: Backend.example:8080\r\n"),
        "{up}"
    );
    assert!(!up.contains("other"), "the Host field is replaced: {up}");
    assert_eq!(
        ok(b"GET http://a.example?x=1 HTTP/1.1\r\n\r\n").target(),
        "/?x=1"
    );
    assert_eq!(ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").target(), "*");
}

#[test]
fn upstream_head_drops_hop_by_hop_and_rederives_framing() {
    let h = ok(
        b"POST /u HTTP/1.0\r\nHost: a\r\nConnection: keep-alive, X-Private\r\nX-Private: s\r\n\
Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: x\r\nProxy-Connection: x\r\nContent-Length: 4\r\n\
Expect: 100-continue\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nX-Keep: ok\r\n\r\n",
    );
    let up = upstream(&h);
    assert!(up.starts_with("POST /u HTTP/1.1\r\nhost: a\r\n"), "{up}");
    for gone in [
        "onnection",
        "X-Private",
        "Keep-Alive",
        "TE:",
        "Proxy-",
        "Expect",
        "Content-Length",
    ] {
        assert!(!up.contains(gone), "{gone} must be dropped: {up}");
    }
    assert!(up.contains("X-Keep: ok\r\n"), "{up}");
    // `Trailer` is end-to-end (RFC 9110 §6.6.2): an h2 upstream keeps only declared trailers.
    assert!(up.contains("Trailer: x\r\n"), "{up}");
    assert!(up.contains("content-length: 4\r\n"), "{up}");
    assert!(
        up.contains("x-forwarded-for: 1.1.1.1, 10.0.0.9\r\n"),
        "{up}"
    );
    assert!(up.contains("X-Forwarded-For: 2.2.2.2\r\n"), "{up}");
    assert!(up.contains("x-forwarded-proto: http\r\n"), "{up}");
    assert!(up.ends_with("\r\n\r\n"));
    assert!(h.expect_continue());
    assert!(h.keep_alive(), "HTTP/1.0 with keep-alive");
}

#[test]
fn chunked_request_is_forwarded_chunked() {
    let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_eq!(h.body(), BodyKind::Chunked);
    let up = upstream(&h);
    assert!(up.contains("transfer-encoding: chunked\r\n"), "{up}");
    assert_eq!(up.matches("ransfer-").count(), 1, "{up}");
}

#[test]
fn keep_alive_rules() {
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive());
    assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
    assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
}

#[test]
fn upgrades_are_reported_only_with_the_connection_token_and_never_for_h2c() {
    let ws =
        ok(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(ws.upgrade(), Some("websocket"));
    let mut out = BytesMut::new();
    ws.encode_upstream(
        &mut out,
        &UpstreamOpts {
            client_ip: "::1".parse().expect("ip"),
            forward_expect: false,
            keep_upgrade: true,
            proto: "http",
            extra: &[],
        },
    );
    let up = String::from_utf8(out.to_vec()).expect("ascii");
    assert!(
        up.contains("connection: upgrade\r\nupgrade: websocket\r\n"),
        "{up}"
    );
    assert_eq!(
        ok(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").upgrade(),
        None
    );
    let h2c = ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n");
    assert_eq!(h2c.upgrade(), None);
    let up = upstream(&h2c);
    assert!(
        !up.to_ascii_lowercase().contains("h2c")
            && !up.to_ascii_lowercase().contains("http2-settings"),
        "{up}"
    );
}

#[test]
fn itoa_formats_numbers() {
    assert_eq!(itoa(0, &mut [0; 20]), b"0");
    assert_eq!(itoa(1234567890, &mut [0; 20]), b"1234567890");
    assert_eq!(itoa(u64::MAX, &mut [0; 20]), b"18446744073709551615");
}

#[test]
fn a_line_with_no_http_version_is_not_answered_as_http1() {
    for raw in [
        &b"INVALID CONNECTION PREFACE\r\n\r\n"[..],
        b"FOO BAR BAZ\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    ] {
        let e = parse(raw).expect_err("must be refused");
        if raw.starts_with(b"PRI") {
            assert_eq!(e, RequestError::Version, "an HTTP/2.0 line names a version");
            continue;
        }
        assert_eq!(e, RequestError::NotHttp, "{}", String::from_utf8_lossy(raw));
        assert!(!e.answerable());
    }
    assert!(RequestError::Bad("x").answerable());
}

#[test]
fn an_http10_request_without_host_goes_upstream_with_an_empty_host() {
    let h = ok(b"GET /x HTTP/1.0\r\n\r\n");
    let up = upstream(&h);
    assert!(up.starts_with("GET /x HTTP/1.1\r\nhost: \r\n"), "{up}");
}

#[test]
fn authority_faults_carry_the_label_http2_gives_them() {
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: user:pw@a.example\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a.example@evil.example\r\n\r\n",
        b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let e = parse(raw).expect_err("refused");
        assert_eq!((e.status(), e.label()), (400, "invalid authority"), "{e}");
    }
    let e = parse(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n").expect_err("refused");
    assert_eq!((e.status(), e.label()), (501, "method not supported"));
}
