//! The exchange tests' peers and clients checked against each other WITHOUT Ringside: what
//! the tests through Ringside demand is what the real servers give a client directly, so a
//! failure there is the proxy's. (The Go peers' own tests cover the Go-client side:
//! `examples/cmd/{h2client,rawh2}`, `examples/internal/origin`.)

use std::time::Duration;

use ringside_integration::exchange::{read_heads, slow_http1_post, RawH2};
use ringside_integration::http10::{ab_keep_alive, http10_keep_alive};
use ringside_integration::{h2_client, Conn, Origin};

#[test]
fn origin_answers_a_slow_upload_413_early() {
    let origin = Origin::start("o");
    for path in ["/limit/1048576", "/reject-then-drain"] {
        let up = slow_http1_post(
            origin.addr,
            path,
            8 << 20,
            64 << 10,
            Duration::from_millis(40),
        );
        let status = up.response.as_ref().map(|r| r.status).ok();
        assert!(
            status == Some(413) && up.elapsed < Duration::from_secs(2) && !up.upload_finished,
            "{path}: {up:?}"
        );
    }
}

#[test]
fn origin_keeps_http10_keep_alive() {
    let origin = Origin::start("o");
    http10_keep_alive(origin.addr).unwrap_or_else(|e| panic!("{e}"));
    ab_keep_alive(origin.addr).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn origin_sends_1xx_and_sees_options_asterisk() {
    let origin = Origin::start("o");
    let mut c = Conn::open(origin.addr);
    c.send(b"GET /early-hints HTTP/1.1\r\nhost: test\r\n\r\n");
    let (heads, _) = read_heads(&mut c.stream).expect("heads");
    let statuses: Vec<&str> = heads.iter().map(|h| h.get(9..12).unwrap_or(h)).collect();
    assert_eq!(statuses, ["102", "103", "200"], "{heads:?}");
    let r = Conn::open(origin.addr)
        .send(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        .read_response(false)
        .expect("answer");
    assert_eq!(
        (r.status, r.header("x-origin-uri")),
        (200, Some("*")),
        "{r:?}"
    );
}

#[test]
fn go_client_retries_streams_above_rawh2_goaway() {
    let server = RawH2::start("ga", Some(5));
    let (ok, out) = h2_client(
        server.addr,
        &[
            "-method",
            "POST",
            "-body-size",
            "100",
            "-count",
            "60",
            "-concurrency",
            "4",
            "-timeout",
            "20s",
        ],
    );
    assert!(ok && out.contains(r#""statuses":{"200":60}"#), "{out}");
}
