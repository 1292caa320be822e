//! Reload by SIGHUP, listener changes, drain on SIGTERM and `POST /shutdown`, on both runtimes.

use std::time::{Duration, Instant};

use ringside_integration::{both_runtimes, client, Conn, Origin, Ringside};

fn routes_to(origin: &Origin, extra_listener: &str) -> String {
    format!(
        "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      \
         - {{ name: all, match: {{ path_prefix: / }}, backends: [ {{ cluster: app }} ] }}\n{extra_listener}\
         clusters:\n  - {{ name: app, endpoints: [ {} ] }}\n",
        origin.addr
    )
}

/// Rewrites the config in place, keeping the inbound listener's bound port so it is not re-bound.
fn rewrite(proxy: &Ringside, config: &str) {
    let port = proxy.addr("inbound").port();
    let config = config.replacen("127.0.0.1:0", &format!("127.0.0.1:{port}"), 1);
    let admin = proxy.addr("admin");
    std::fs::write(
        &proxy.config_path,
        format!("admin: {{ address: {admin} }}\n{config}"),
    )
    .expect("write config");
}

fn signal(proxy: &Ringside, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(proxy.pid() as i32, sig) };
    assert_eq!(rc, 0);
}

fn wait_for_origin(proxy: &Ringside, want: &str) -> Duration {
    let start = Instant::now();
    loop {
        let r = client::get(proxy.addr("inbound"), "/");
        if r.header("x-origin") == Some(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still not routed to {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

both_runtimes!(fn sighup_swaps_routes_and_rejects_bad_configs(rt) {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let proxy = Ringside::start(rt, &routes_to(&a, ""));
    assert_eq!(client::get(proxy.addr("inbound"), "/").header("x-origin"), Some("a"));
    // A keep-alive connection opened before the reload uses the new routes on its next request.
    let mut kept = Conn::open(proxy.addr("inbound"));
    assert_eq!(kept.get("/", "").header("x-origin"), Some("a"));

    rewrite(&proxy, &routes_to(&b, ""));
    signal(&proxy, libc::SIGHUP);
    let took = wait_for_origin(&proxy, "b");
    assert!(took < Duration::from_secs(1), "reload took {took:?}");
    assert_eq!(kept.get("/", "").header("x-origin"), Some("b"));

    std::fs::write(&proxy.config_path, "listeners:\n  - name: [oops\n").expect("write");
    signal(&proxy, libc::SIGHUP);
    assert!(proxy.wait_log("config rejected", Duration::from_secs(5)), "{}", proxy.log_text());
    let logs = proxy.log_text();
    assert!(logs.contains("ringside.yaml:"), "rejection names file and position: {logs}");
    for _ in 0..20 {
        assert_eq!(client::get(proxy.addr("inbound"), "/").header("x-origin"), Some("b"));
    }
});

both_runtimes!(fn listeners_are_added_and_removed_by_reload_under_load(rt) {
    let a = Origin::start("a");
    let proxy = Ringside::start(rt, &routes_to(&a, ""));
    let inbound = proxy.addr("inbound");
    // Keep-alive load on the unchanged listener for the whole test: nothing may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut c = Conn::open(inbound);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                match c.read_response(false) {
                    Ok(r) if r.status == 200 => ok += 1,
                    _ => {
                        failed += 1;
                        c = Conn::open(inbound);
                    }
                }
            }
            (ok, failed)
        })
    };
    let extra = "  - name: second\n    address: 127.0.0.1:0\n    protocol: tcp\n    cluster: app\n";
    rewrite(&proxy, &routes_to(&a, extra));
    signal(&proxy, libc::SIGHUP);
    assert!(proxy.wait_log("listener bound listener=second", Duration::from_secs(5)));
    let line = proxy.log_text().lines().find(|l| l.contains("listener bound listener=second")).expect("line").to_owned();
    let second: std::net::SocketAddr = line.rsplit("address=").next().expect("addr").trim().parse().expect("addr");
    // The TCP listener tunnels to the origin: HTTP through it works.
    assert_eq!(client::get(second, "/").status, 200);

    // Remove it again: it stops accepting.
    rewrite(&proxy, &routes_to(&a, ""));
    signal(&proxy, libc::SIGHUP);
    assert!(proxy.wait_log("listener removed", Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(3);
    while std::net::TcpStream::connect(second).is_ok() {
        assert!(Instant::now() < deadline, "removed listener still accepts");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.join().expect("load");
    assert_eq!(failed, 0, "requests on the unchanged listener failed during the listener changes");
    assert!(ok > 50, "load ran ({ok} requests)");
    // The inbound listener was never re-bound: same port, still serving.
    assert_eq!(client::get(inbound, "/").status, 200);
});

both_runtimes!(fn sigterm_lets_in_flight_requests_finish(rt) {
    let a = Origin::start("a");
    let mut proxy = Ringside::start(rt, &routes_to(&a, ""));
    let addr = proxy.addr("inbound");
    let mut idle = Conn::open(addr);
    assert_eq!(idle.get("/", "").status, 200);
    let slow = std::thread::spawn(move || {
        let mut c = Conn::open(addr);
        c.send(b"GET /delay/700 HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response(false).expect("in-flight response");
        (r.status, r.header("connection").map(str::to_owned))
    });
    std::thread::sleep(Duration::from_millis(200));
    signal(&proxy, libc::SIGTERM);
    let (status, connection) = slow.join().expect("slow request");
    assert_eq!(status, 200, "an accepted request must not fail during drain");
    assert_eq!(connection.as_deref(), Some("close"), "the last response tells the client to go");
    assert!(idle.is_closed(), "idle keep-alive connections are closed by the drain");
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.alive() {
        assert!(Instant::now() < deadline, "did not exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(proxy.log_text().contains("drained"), "{}", proxy.log_text());
});

both_runtimes!(fn admin_shutdown_drains_and_ready_turns_503(rt) {
    let a = Origin::start("a");
    let proxy = Ringside::start(rt, &routes_to(&a, ""));
    let admin = proxy.addr("admin");
    assert_eq!(client::get(admin, "/ready").status, 200);
    let addr = proxy.addr("inbound");
    let slow = std::thread::spawn(move || client::get(addr, "/delay/800").status);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Conn::open(admin);
    c.send(b"POST /shutdown HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response(false).expect("shutdown").status, 202);
    assert_eq!(client::get(admin, "/ready").status, 503, "draining is not ready");
    assert_eq!(slow.join().expect("slow"), 200);
});

both_runtimes!(fn removed_listener_connections_close_after_the_drain_timeout(rt) {
    let a = Origin::start("a");
    let extra = "  - name: second\n    address: 127.0.0.1:0\n    protocol: tcp\n    cluster: app\n";
    let opts = ringside_integration::Options {
        extra_args: vec!["--drain-timeout".into(), "500ms".into()],
        ..Default::default()
    };
    let proxy = Ringside::start_with(rt, &routes_to(&a, extra), &opts);
    let second = proxy.addr("second");
    // A tunnel that stays busy-open: an HTTP request whose head never ends.
    let mut tunnel = std::net::TcpStream::connect(second).expect("connect");
    use std::io::{Read, Write};
    tunnel.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").expect("write");
    tunnel.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    std::thread::sleep(Duration::from_millis(100));
    rewrite(&proxy, &routes_to(&a, ""));
    let removed = Instant::now();
    assert!(proxy.wait_log("listener removed", Duration::from_secs(5)));
    let mut b = [0u8; 64];
    let r = tunnel.read(&mut b);
    assert!(matches!(r, Ok(0) | Err(_)), "the tunnel must be closed: {r:?}");
    let took = removed.elapsed();
    assert!(took >= Duration::from_millis(400), "closed before the drain timeout: {took:?}");
    assert!(took < Duration::from_secs(3), "not closed after the drain timeout: {took:?}");
    assert!(proxy.wait_log("drain timeout: closed the removed listener", Duration::from_secs(2)));
});
