//! HTTP/1.1 reverse proxying against the real Go origin, on both runtimes.

use std::io::{Read, Write};
use std::time::Duration;

use ringside_integration::{
    both_runtimes, client, go_bin, http_config, Conn, Options, Origin, Ringside,
};
use sha2::{Digest, Sha256};

fn setup(rt: ringside_integration::Runtime) -> (Origin, Ringside) {
    let origin = Origin::start("app");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    (origin, proxy)
}

fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let k = format!("\"{key}\":");
    let start = json.find(&k)? + k.len();
    let rest = json[start..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

both_runtimes!(fn proxies_a_get(rt) {
    let (_o, proxy) = setup(rt);
    let r = client::get(proxy.addr("inbound"), "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello from app\n");
    assert_eq!(r.header("x-origin"), Some("app"));
});

both_runtimes!(fn keep_alive_reuses_both_connections(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    let mut upstream_peers = std::collections::HashSet::new();
    for _ in 0..50 {
        let r = c.get("/headers", "");
        assert_eq!(r.status, 200);
        upstream_peers.insert(json_field(&r.text(), "remote_addr").expect("remote_addr").to_owned());
    }
    assert_eq!(upstream_peers.len(), 1, "one upstream connection should serve all 50: {upstream_peers:?}");
});

both_runtimes!(fn headers_are_rewritten_as_a_proxy_must(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    let r = c.send(
        b"GET /headers?q=1 HTTP/1.1\r\nHost: example.test:8080\r\nConnection: keep-alive, x-secret\r\n\
          X-Secret: drop me\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-For: 10.1.1.1\r\n\
          X-Keep: yes\r\n\r\n",
    ).read_response(false).expect("response");
    assert_eq!(r.status, 200);
    let body = r.text();
    assert!(body.contains("\"host\":\"example.test:8080\""), "Host preserved: {body}");
    assert!(body.contains("\"raw_query\":\"q=1\""), "{body}");
    assert!(body.contains("10.1.1.1, 127.0.0.1"), "x-forwarded-for appended: {body}");
    assert!(body.contains("\"x-keep\""), "{body}");
    for gone in ["x-secret", "keep-alive", "\"te\""] {
        assert!(!body.contains(gone), "{gone} must not reach the upstream: {body}");
    }
});

both_runtimes!(fn chunked_both_ways_with_trailers(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    let r = c.get("/chunked/100000", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 100000);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));

    let r = c.send(
        b"POST /sink HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n\
          5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: abc\r\n\r\n",
    ).read_response(false).expect("response");
    let body = r.text();
    assert_eq!(r.status, 200, "{body}");
    assert!(body.contains("\"bytes\":11"), "{body}");
    assert!(body.contains("\"chunked\":true"), "{body}");
    assert!(body.contains("abc"), "trailer forwarded: {body}");
    let expect = hex::encode(Sha256::digest(b"hello world"));
    assert!(body.contains(&expect), "{body}");
});

both_runtimes!(fn streams_100_mib_each_way_without_buffering(rt) {
    let (_o, proxy) = setup(rt);
    const N: usize = 100 * 1024 * 1024;
    let before = rss_kib(proxy.pid());

    // Upload: Content-Length body, hashed by the origin.
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(format!("POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: {N}\r\n\r\n").as_bytes());
    let chunk = vec![b'z'; 1 << 20];
    let mut h = Sha256::new();
    for _ in 0..N / chunk.len() {
        c.stream.write_all(&chunk).expect("upload");
        h.update(&chunk);
    }
    let r = c.read_response(false).expect("sink response");
    assert_eq!(r.status, 200);
    let body = r.text();
    assert!(body.contains(&format!("\"bytes\":{N}")), "{body}");
    assert!(body.contains(&hex::encode(h.finalize())), "{body}");

    // Download.
    c.send(format!("GET /bytes/{N} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let r = c.read_response(false).expect("download");
    assert_eq!(r.body.len(), N);
    assert!(r.body.iter().enumerate().step_by(4099).all(|(i, b)| *b == b'a' + (i % 26) as u8));

    let grown = rss_kib(proxy.pid()).saturating_sub(before);
    assert!(grown < 16 * 1024, "proxy RSS grew {grown} KiB moving 200 MiB: bodies must stream");
});

both_runtimes!(fn pipelined_requests_are_answered_in_order(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(
        b"GET /status/201 HTTP/1.1\r\nHost: t\r\n\r\nGET /bytes/5 HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /delay/50 HTTP/1.1\r\nHost: t\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let statuses: Vec<u16> = (0..4).map(|_| c.read_response(false).expect("response").status).collect();
    assert_eq!(statuses, [201, 200, 200, 202]);
});

both_runtimes!(fn head_204_304_have_no_body(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    let r = c.send(b"HEAD /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\n").read_response(true).expect("head");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(c.get("/status/204", "").status, 204);
    assert_eq!(c.get("/status/304", "").status, 304);
    // The connection is still in sync after the bodiless responses.
    assert_eq!(c.get("/", "").text(), "hello from app\n");
});

both_runtimes!(fn upstream_dying_mid_response_closes_the_client(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"GET /close-mid HTTP/1.1\r\nHost: t\r\n\r\n");
    let err = c.read_response(false).expect_err("a truncated body must not look complete");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    // The proxy survives and serves the next client.
    assert_eq!(client::get(proxy.addr("inbound"), "/").status, 200);
});

both_runtimes!(fn upstream_reset_before_response_is_502(rt) {
    let (_o, proxy) = setup(rt);
    let r = client::get(proxy.addr("inbound"), "/reset");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-ringside-error"), Some("upstream reset"));
});

both_runtimes!(fn expect_100_continue_gets_an_interim_response(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let mut first = [0u8; 25];
    c.stream.read_exact(&mut first).expect("interim response");
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"hello");
    let r = c.read_response(false).expect("final");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"bytes\":5"));
});

both_runtimes!(fn websocket_echo_through_the_proxy(rt) {
    let (_o, proxy) = setup(rt);
    let out = std::process::Command::new(go_bin("wsclient"))
        .args(["-url", &format!("ws://{}/ws", proxy.addr("inbound")), "-n", "200", "-size", "3000"])
        .output()
        .expect("run wsclient");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wsclient failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ok 200 messages"), "{text}");
});

both_runtimes!(fn upgrade_is_not_tunnelled_without_a_101(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    // The origin answers /status/200 with a plain 200: the connection must stay HTTP.
    let r = c.get("/status/200", "Connection: upgrade\r\nUpgrade: websocket\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/", "").text(), "hello from app\n", "the connection must still speak HTTP");
});

both_runtimes!(fn http_1_0_client_gets_a_close_delimited_body(rt) {
    let (_o, proxy) = setup(rt);
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"GET /chunked/1000 HTTP/1.0\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 1000);
    assert!(r.header("transfer-encoding").is_none(), "a 1.0 client cannot read chunked");
});

both_runtimes!(fn a_panicking_request_closes_only_its_connection(rt) {
    let (_o, mut proxy) = setup(rt);
    let mut other = Conn::open(proxy.addr("inbound"));
    assert_eq!(other.get("/", "").status, 200);
    let mut c = Conn::open(proxy.addr("inbound"));
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nx-ringside-test-panic: 1\r\n\r\n");
    c.assert_closed("the panicking connection");
    assert!(proxy.alive());
    assert_eq!(other.get("/", "").status, 200, "other connections on the worker carry on");
    assert_eq!(client::get(proxy.addr("inbound"), "/").status, 200, "and new ones are served");
    assert!(proxy.wait_log("connection task panicked", Duration::from_secs(5)));
});

both_runtimes!(fn slow_headers_get_408(rt) {
    let origin = Origin::start("app");
    let cfg = http_config(&[origin.addr]).replace(
        "    protocol: http\n",
        "    protocol: http\n    timeouts: { header_read: 300ms }\n",
    );
    let proxy = Ringside::start(rt, &cfg);
    let mut c = Conn::open(proxy.addr("inbound"));
    let sent = std::time::Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
    let r = c.read_response(false).expect("408");
    assert_eq!(r.status, 408);
    // Never before the timeout (a lower bound holds on any machine; no upper one is checked).
    assert!(sent.elapsed() >= Duration::from_millis(250), "408 after {:?}", sent.elapsed());
    c.assert_closed("after the 408");
});

both_runtimes!(fn idle_keep_alive_connection_holds_no_buffer(rt) {
    // The real measurement is the benchmark's (README: 1.84 KiB on epoll, 2.25 KiB on
    // io_uring, at 10,000 connections); this guards it at 2,000 idle keep-alive connections
    // that each served a request: ~2.05 KiB each on both runtimes here. A held read buffer
    // (4 KiB head, 16 KiB body) would add at least 4 KiB; the bound leaves room for noise only.
    let origin = Origin::start("app");
    let proxy = Ringside::start_with(rt, &http_config(&[origin.addr]), &Options { log_level: "info".into(), ..Options::default() });
    let mut conns: Vec<Conn> = Vec::new();
    for _ in 0..100 {
        let mut c = Conn::open(proxy.addr("inbound"));
        assert_eq!(c.get("/", "").status, 200);
        conns.push(c);
    }
    let base = rss_kib(proxy.pid());
    for _ in 0..2000 {
        let mut c = Conn::open(proxy.addr("inbound"));
        assert_eq!(c.get("/", "").status, 200);
        conns.push(c);
    }
    // Every connection got its response: each is idle in the proxy now, no wait needed.
    let per_conn = (rss_kib(proxy.pid()).saturating_sub(base)) as f64 / 2000.0;
    eprintln!("idle keep-alive connection: {per_conn:.2} KiB RSS each");
    assert!(per_conn < 2.6, "{per_conn:.2} KiB per idle connection: more than the README's 2.25 KiB allows");
});

both_runtimes!(fn idle_keep_alive_connections_close_at_the_idle_timeout(rt) {
    let origin = Origin::start("app");
    let cfg = http_config(&[origin.addr]).replace(
        "    protocol: http\n",
        "    protocol: http\n    timeouts: { idle: 600ms }\n",
    );
    let proxy = Ringside::start(rt, &cfg);
    let mut c = Conn::open(proxy.addr("inbound"));
    assert_eq!(c.get("/", "").status, 200);
    let idle_since = std::time::Instant::now();
    // The worker's sweep runs every 250 ms: closed a tick or two after the timeout. The upper
    // bound is what a loaded 2-core machine guarantees, and far below the client's 20 s.
    let how = c.closed_within(Duration::from_secs(5));
    let after = idle_since.elapsed();
    assert!(how.is_ok(), "the idle connection must be closed by the proxy: {how:?}");
    assert!(after >= Duration::from_millis(550), "closed too early: {after:?}");
    // A connection that keeps working is not closed by it.
    let mut busy = Conn::open(proxy.addr("inbound"));
    for _ in 0..8 {
        assert_eq!(busy.get("/", "").status, 200);
        std::thread::sleep(Duration::from_millis(150));
    }
});
