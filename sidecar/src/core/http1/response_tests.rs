use super::*;

const LIMITS: Limits = Limits {
    max_header_bytes: 8192,
    max_headers: 64,
};

fn parse(raw: &[u8], head: bool) -> ResponseHead {
    let mut buf = BytesMut::from(raw);
    parse_response(&mut buf, head, &LIMITS)
        .expect("valid")
        .expect("complete")
}

fn downstream(r: &ResponseHead, opts: DownstreamOpts) -> String {
    let mut out = BytesMut::new();
    r.encode_downstream(&mut out, &opts);
    String::from_utf8(out.to_vec()).expect("ascii")
}

#[test]
fn body_kinds_follow_rfc_9112_section_6_3() {
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false).body(),
        BodyKind::Length(5)
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).body(),
        BodyKind::Empty
    );
    assert_eq!(
        parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).body(),
        BodyKind::Empty
    );
    assert_eq!(
        parse(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            false
        )
        .body(),
        BodyKind::Empty
    );
    assert_eq!(
        parse(b"HTTP/1.1 100 Continue\r\n\r\n", false).body(),
        BodyKind::Empty
    );
    assert_eq!(
        parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false
        )
        .body(),
        BodyKind::Chunked
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\n\r\n", false).body(),
        BodyKind::CloseDelimited
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false).body(),
        BodyKind::CloseDelimited
    );
    let both = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
    );
    assert_eq!(both.body(), BodyKind::Chunked, "TE wins, CL is dropped");
    let out = downstream(
        &both,
        DownstreamOpts {
            close: false,
            keep_alive: false,
            body: BodyKind::Chunked,
            keep_upgrade: false,
        },
    );
    assert!(
        !out.to_ascii_lowercase().contains("content-length"),
        "{out}"
    );
}

#[test]
fn ambiguous_or_malformed_responses_are_errors() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n",
    ] {
        let mut buf = BytesMut::from(raw);
        assert!(
            parse_response(&mut buf, false, &LIMITS).is_err(),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // Equal repeated lengths from an upstream are tolerated.
    assert_eq!(
        parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            false
        )
        .body(),
        BodyKind::Length(5)
    );
}

#[test]
fn keep_alive_of_the_upstream_connection() {
    assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).keep_alive());
    assert!(!parse(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        false
    )
    .keep_alive());
    assert!(
        !parse(b"HTTP/1.1 200 OK\r\n\r\n", false).keep_alive(),
        "close-delimited"
    );
    assert!(!parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).keep_alive());
    assert!(parse(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        false
    )
    .keep_alive());
}

#[test]
fn downstream_head_is_rewritten() {
    let r = parse(b"HTTP/1.1 201 Created\r\nConnection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-App: a\r\nContent-Length: 3\r\n\r\n", false);
    let out = downstream(
        &r,
        DownstreamOpts {
            close: true,
            keep_alive: false,
            body: BodyKind::Length(3),
            keep_upgrade: false,
        },
    );
    assert_eq!(
        out,
        "HTTP/1.1 201 Created\r\nX-App: a\r\ncontent-length: 3\r\nconnection: close\r\n\r\n"
    );
    let head = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true);
    let out = downstream(
        &head,
        DownstreamOpts {
            close: false,
            keep_alive: false,
            body: BodyKind::Empty,
            keep_upgrade: false,
        },
    );
    assert!(
        out.contains("Content-Length: 1000\r\n"),
        "HEAD keeps the length: {out}"
    );
    let ws = parse(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: k\r\n\r\n", false);
    let out = downstream(
        &ws,
        DownstreamOpts {
            close: false,
            keep_alive: false,
            body: BodyKind::Empty,
            keep_upgrade: true,
        },
    );
    assert!(
        out.contains("connection: upgrade\r\nupgrade: websocket\r\n")
            && out.contains("Sec-WebSocket-Accept: k"),
        "{out}"
    );
    assert!(parse(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false).is_informational());
    assert!(!ws.is_informational());
}

#[test]
fn partial_response_waits_and_leftover_stays() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Len"[..]);
    assert!(parse_response(&mut buf, false, &LIMITS)
        .expect("ok")
        .is_none());
    buf.extend_from_slice(b"gth: 2\r\n\r\nhiHTTP");
    let r = parse_response(&mut buf, false, &LIMITS)
        .expect("ok")
        .expect("complete");
    assert_eq!(r.status(), 200);
    assert_eq!(&buf[..], b"hiHTTP");
}

/// Found by fuzzing (fuzz/corpus/http1_response/regression-*): httparse gives a missing
/// reason phrase, or one with obs-text, as a `""` outside the buffer, whose span was garbage
/// (an overflow panic in debug builds, an out-of-range slice when re-encoding in release).
#[test]
fn reason_phrases_with_obs_text_or_none_are_forwarded_as_received() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"HTTP/1.1 204 No Co\xdbntent\r\n\r\n", b"No Co\xdbntent"),
        (
            b"HTTP/1.1 103 Early \xb0Hints\r\nLink: </a>\r\n\r\n",
            b"Early \xb0Hints",
        ),
        (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", b""),
        (b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", b""),
        (b"\r\nHTTP/1.1 404 Not Found\r\n\r\n", b"Not Found"),
    ];
    for (raw, reason) in cases {
        let r = parse(raw, false);
        let mut out = BytesMut::new();
        r.encode_downstream(
            &mut out,
            &DownstreamOpts {
                close: false,
                keep_alive: false,
                body: r.body(),
                keep_upgrade: false,
            },
        );
        let line_end = out.iter().position(|b| *b == b'\r').expect("a status line");
        let mut want = format!("HTTP/1.1 {} ", r.status()).into_bytes();
        want.extend_from_slice(reason);
        assert_eq!(
            &out[..line_end],
            &want[..],
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

/// Found by fuzzing (fuzz/corpus/http1_response/regression-*): `099` parsed as status 99 and
/// went to the client as the two-digit status line `HTTP/1.1 99`, which no parser accepts.
#[test]
fn a_status_below_100_is_refused() {
    for raw in [
        &b"HTTP/1.1 099 Continue\r\n\r\n"[..],
        b"HTTP/1.1 000 X\r\n\r\n",
    ] {
        let mut buf = BytesMut::from(raw);
        assert!(parse_response(&mut buf, false, &LIMITS).is_err());
    }
    assert_eq!(parse(b"HTTP/1.1 100 Continue\r\n\r\n", false).status(), 100);
}
