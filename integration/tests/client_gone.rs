//! An HTTP/1.1 client that hangs up while its request is in flight is noticed at once, while
//! the upstream is quiet (issue 21, part 3): a long-poll to an HTTP/1.1 or an h2c cluster, and
//! a gRPC server stream between two messages, are cancelled at the upstream (its request
//! context ends), counted as 499 in metrics and the access log; a client that pipelines its
//! next request while the first is in flight is not mistaken for one that left. Both runtimes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringside_integration::exchange::origin_seen;
use ringside_integration::metrics::wait_sample;
use ringside_integration::{
    both_runtimes, http_config, http_config_proto, json_field, Conn, GrpcServer, Options, Origin,
    Ringside,
};

/// How soon the upstream must see the cancellation. The proxy's own bound is 100 ms; this
/// leaves room for a loaded 2-core machine (the origin and the test poll, too) while staying
/// far below what the old behaviour took (the route timeout, 15 s; the next message, 2 s).
const CANCELLED_WITHIN: Duration = Duration::from_millis(1500);

/// Polls `f` until it is true, at most `within`; how long it took.
fn until(within: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts Ringside with an access log; its path.
fn start(rt: ringside_integration::Runtime, config: &str) -> (Ringside, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.keep().join("access.log");
    let opts = Options {
        extra_args: vec!["--access-log".into(), log.display().to_string()],
        ..Options::default()
    };
    (Ringside::start_with(rt, config, &opts), log)
}

/// Waits for an access log line with `status`.
fn logged(log: &std::path::Path, status: &str) {
    until(Duration::from_secs(5), "access log line", || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .any(|l| json_field(l, "status").as_deref() == Some(status))
    });
}

fn counted_499(proxy: &Ringside) {
    wait_sample(
        proxy.addr("admin"),
        "ringside_requests_total{listener=\"inbound\",route=\"default\",cluster=\"app\",code=\"499\"}",
        Duration::from_secs(5),
        |v| v == 1.0,
    );
}

/// A long-poll (`/delay/30000`) whose client closes once the origin holds it: the origin's
/// request context must end within [`CANCELLED_WITHIN`].
fn long_poll_cancelled(origin: &Origin, proxy: &Ringside, reset: bool) -> Duration {
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"GET /delay/30000 HTTP/1.1\r\nHost: a.example\r\n\r\n");
    until(Duration::from_secs(5), "request at the origin", || {
        origin_seen(origin.addr, "/delay/30000") == 1
    });
    if reset {
        // SO_LINGER 0: close sends RST.
        socket2::SockRef::from(&c.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
    }
    drop(c);
    until(CANCELLED_WITHIN, "origin saw the cancel", || {
        origin_seen(origin.addr, "/cancelled/delay/30000") == 1
    })
}

both_runtimes!(fn long_poll_to_http1_cluster_is_cancelled_when_the_client_closes(rt) {
    let origin = Origin::start("o");
    let (proxy, log) = start(rt, &http_config(&[origin.addr]));
    let took = long_poll_cancelled(&origin, &proxy, false);
    eprintln!("http1 cluster, client EOF: upstream cancelled after {took:?}");
    counted_499(&proxy);
    logged(&log, "499");
    // The cut connection was closed, not pooled: the next request works on a fresh one.
    let mut c = Conn::open(proxy.addr("inbound"));
    assert_eq!(c.get("/", "").status, 200);
});

both_runtimes!(fn long_poll_to_h2_cluster_is_reset_when_the_client_resets(rt) {
    let origin = Origin::start_h2c("o");
    let (proxy, log) = start(rt, &http_config_proto(&[origin.addr], "http2"));
    let took = long_poll_cancelled(&origin, &proxy, true);
    eprintln!("h2 cluster, client RST: upstream cancelled after {took:?}");
    counted_499(&proxy);
    logged(&log, "499");
    // The h2 connection stays usable: only the stream was reset.
    let mut c = Conn::open(proxy.addr("inbound"));
    assert_eq!(c.get("/", "").status, 200);
});

/// The gRPC server's cancelled-handler count, asked through Ringside over HTTP/1.1 (Stats).
fn grpc_cancelled(proxy: SocketAddr) -> u64 {
    let mut c = Conn::open(proxy);
    let r = c
        .send(b"POST /ringside.examples.Echo/Stats HTTP/1.1\r\nHost: g\r\ncontent-type: application/grpc\r\nte: trailers\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0")
        .read_response(false)
        .expect("stats");
    let text = String::from_utf8_lossy(&r.body).to_string();
    let at = text
        .find("cancelled=")
        .unwrap_or_else(|| panic!("stats: {text:?}"));
    text[at + "cancelled=".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("count")
}

both_runtimes!(fn server_stream_to_h2_cluster_is_reset_between_messages(rt) {
    let server = GrpcServer::start("g");
    let (proxy, log) = start(rt, &http_config_proto(&[server.addr], "http2"));
    let inbound = proxy.addr("inbound");
    let before = grpc_cancelled(inbound);
    // One message now, the next in 5 s: the client reads the first and leaves.
    let mut s = TcpStream::connect(inbound).expect("connect");
    s.write_all(b"POST /ringside.examples.Echo/ServerStream HTTP/1.1\r\nHost: g\r\ncontent-type: application/grpc\r\nte: trailers\r\nx-count: 3\r\nx-size: 8\r\nx-interval-ms: 5000\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0").expect("send");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    // Head, then the first message (5-byte prefix + 10-byte BytesValue) in a chunk.
    while !got.windows(4).any(|w| w == b"\r\n\r\n") || got.len() < 200 && !has_message(&got) {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    s.shutdown(Shutdown::Both).expect("close");
    drop(s);
    let took = until(CANCELLED_WITHIN, "server saw the cancel", || grpc_cancelled(inbound) > before);
    eprintln!("grpc server stream, client EOF: upstream cancelled after {took:?}");
    counted_499(&proxy);
    logged(&log, "499");
});

/// Whether the bytes past the head hold the first message's chunk (a gRPC frame of 15 bytes).
fn has_message(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    got[end + 4..].windows(4).any(|w| w == b"f\r\n\0")
}

both_runtimes!(fn pipelined_request_during_a_slow_response_is_kept(rt) {
    let origin = Origin::start("o");
    let h2 = Origin::start_h2c("o2");
    for (proxy, at, what) in [
        (Ringside::start(rt, &http_config(&[origin.addr])), origin.addr, "http1 cluster"),
        (Ringside::start(rt, &http_config_proto(&[h2.addr], "http2")), h2.addr, "h2 cluster"),
    ] {
        // The second request arrives while the first waits 300 ms at the origin: the watch
        // sees bytes, not EOF, and leaves them for the next request.
        let mut c = Conn::open(proxy.addr("inbound"));
        c.send(b"GET /delay/300 HTTP/1.1\r\nHost: a\r\n\r\n");
        until(Duration::from_secs(5), "request at the origin", || origin_seen(at, "/delay/300") == 1);
        c.send(b"GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n");
        let first = c.read_response(false).expect("first");
        let second = c.read_response(false).expect("second");
        assert_eq!((first.status, second.status), (200, 201), "{what}");
        assert_eq!(first.text(), "waited 300ms\n", "{what}");
        // And the connection is still kept.
        assert_eq!(c.get("/", "").status, 200, "{what}");
    }
});

both_runtimes!(fn long_poll_over_tls_is_cancelled_when_curl_gives_up(rt) {
    // The watch works on a TLS connection too (readiness there decrypts into a buffer).
    let pki = ringside_integration::pki::Pki::new();
    let origin = Origin::start("o");
    let (_leaf, cert, key) = pki.server("server", "spiffe://td.test/ns/a/sa/server");
    let p = ringside_integration::pki::p;
    let config = http_config(&[origin.addr]).replacen(
        "    protocol: http\n",
        &format!("    protocol: http\n    tls: {{ cert: {}, key: {} }}\n", p(&cert), p(&key)),
        1,
    );
    let proxy = Ringside::start(rt, &config);
    let url = format!("https://localhost:{}/delay/30000", proxy.addr("inbound").port());
    // curl gives up after 1 s and closes its connection (close_notify, then FIN).
    let out = std::process::Command::new("curl")
        .args(["-sS", "--http1.1", "--max-time", "1", "--cacert", &p(&pki.ca_path), &url])
        .output()
        .expect("run curl");
    assert!(!out.status.success(), "curl should time out");
    assert_eq!(origin_seen(origin.addr, "/delay/30000"), 1, "{}", proxy.log_text());
    let took = until(CANCELLED_WITHIN, "origin saw the cancel", || {
        origin_seen(origin.addr, "/cancelled/delay/30000") == 1
    });
    eprintln!("TLS, curl gave up: upstream cancelled {took:?} after curl exited");
    counted_499(&proxy);
});
