//! Upstream connection pools and connection lifetimes that the docs describe, on both
//! runtimes: the idle sweep of pooled HTTP/1.1 and HTTP/2 upstream connections, the retry of
//! a stream an h2 upstream refused unprocessed, and GOAWAY on an idle downstream h2
//! connection.

use std::time::{Duration, Instant};

use ringside_integration::h2raw::{
    frame, hpack, Frames, Script, ScriptedH2Upstream, END_HEADERS, END_STREAM, GOAWAY, HEADERS,
    NO_ERROR,
};
use ringside_integration::{both_runtimes, client, http_config_proto, HeldUpstream, Ringside};

/// How long a test waits for an idle timeout of 500 ms to act: the sweep's period on top, and
/// room for a loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(8);

fn with_cluster_idle(config: String, idle: &str) -> String {
    format!("{config}    idle_timeout: {idle}\n")
}

/// Waits until `open()` is 0; returns how long it took.
fn until_closed(open: impl Fn() -> usize, what: &str) -> Duration {
    let start = Instant::now();
    while open() > 0 {
        assert!(
            start.elapsed() < WITHIN,
            "{what} still open after {WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

both_runtimes!(fn idle_pooled_http1_connections_are_closed_at_the_idle_timeout(rt) {
    let up = HeldUpstream::start();
    up.release();
    let proxy = Ringside::start(rt, &with_cluster_idle(http_config_proto(&[up.addr], "http1"), "500ms"));
    assert_eq!(client::get(proxy.addr("inbound"), "/").text(), "done");
    let idle_since = Instant::now();
    assert_eq!(up.open_connections(), 1, "the upstream connection is pooled after the request");
    until_closed(|| up.open_connections(), "the idle pooled HTTP/1.1 connection");
    assert!(idle_since.elapsed() >= Duration::from_millis(450), "closed before the idle timeout: {:?}", idle_since.elapsed());
});

both_runtimes!(fn idle_h2_upstream_connections_are_closed_at_the_idle_timeout(rt) {
    let up = ScriptedH2Upstream::start(Script::HoldThenOk);
    up.release();
    let proxy = Ringside::start(rt, &with_cluster_idle(http_config_proto(&[up.addr], "http2"), "500ms"));
    assert_eq!(client::get(proxy.addr("inbound"), "/").text(), "held");
    let idle_since = Instant::now();
    assert_eq!(up.open_connections(), 1);
    until_closed(|| up.open_connections(), "the idle h2 upstream connection");
    assert!(idle_since.elapsed() >= Duration::from_millis(450), "closed before the idle timeout: {:?}", idle_since.elapsed());
});

both_runtimes!(fn a_stream_refused_by_goaway_is_retried_once_on_a_new_connection(rt) {
    // docs/http2.md: a connection that refuses a stream before processing it (GOAWAY) is
    // replaced and the stream retried once.
    let up = ScriptedH2Upstream::start(Script::GoawayOnFirstConnection);
    let proxy = Ringside::start(rt, &http_config_proto(&[up.addr], "http2"));
    let r = client::get(proxy.addr("inbound"), "/");
    assert_eq!((r.status, r.text().as_str()), (200, "held"), "{:?}\n{}", r.headers, proxy.log_text());
    assert_eq!(up.connections(), 2, "the retry went out on a second connection");
    assert_eq!(up.streams(), 2, "one refused stream and its one retry");
});

both_runtimes!(fn an_idle_h2_client_connection_gets_goaway_and_is_closed(rt) {
    let up = HeldUpstream::start();
    let cfg = http_config_proto(&[up.addr], "http1").replace(
        "    protocol: http\n",
        "    protocol: http\n    timeouts: { idle: 500ms }\n",
    );
    let proxy = Ringside::start(rt, &cfg);
    let req = [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/")];
    let mut conn = Frames::open(proxy.addr("inbound"), &frame(HEADERS, END_STREAM | END_HEADERS, 1, &hpack(&req)));
    let end = Instant::now() + WITHIN;
    let mut idle_since = None;
    let mut goaway = None;
    loop {
        match conn.next(end) {
            Ok(f) if f.stream == 1 && f.flags & END_STREAM != 0 => idle_since = Some(Instant::now()),
            Ok(f) if f.kind == GOAWAY => goaway = Some((f.code(4), idle_since.map(|t| t.elapsed()))),
            Ok(_) => {}
            Err(true) => break,
            Err(false) => panic!("the idle h2 connection was not closed within {WITHIN:?} (GOAWAY: {goaway:?})"),
        }
    }
    let (code, after) = goaway.expect("a GOAWAY before the close");
    assert_eq!(code, NO_ERROR);
    let after = after.expect("the GOAWAY came after the response");
    assert!(after >= Duration::from_millis(450), "GOAWAY before the idle timeout: {after:?}");
});
