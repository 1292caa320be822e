//! Reload by SIGHUP, listener changes, drain on SIGTERM and `POST /shutdown`, on both runtimes.

use std::time::{Duration, Instant};

use ringside_integration::h2raw::{Script, ScriptedH2Upstream};
use ringside_integration::{both_runtimes, client, metrics, Conn, HeldUpstream, Origin, Ringside};

fn routes_to(origin: &Origin, extra_listener: &str) -> String {
    routes_to_addr(origin.addr, extra_listener)
}

fn routes_to_addr(upstream: std::net::SocketAddr, extra_listener: &str) -> String {
    format!(
        "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      \
         - {{ name: all, match: {{ path_prefix: / }}, backends: [ {{ cluster: app }} ] }}\n{extra_listener}\
         clusters:\n  - {{ name: app, endpoints: [ {} ] }}\n",
        upstream
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
    // Bounded by wait_for_origin's 5 s: what a loaded 2-core machine guarantees.
    let took = wait_for_origin(&proxy, "b");
    eprintln!("SIGHUP reload visible after {took:?}");
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
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let served = std::sync::Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, served) = (stop.clone(), served.clone());
        std::thread::spawn(move || {
            let mut failed = 0u64;
            let mut c = Conn::open(inbound);
            while !stop.load(Ordering::Relaxed) {
                c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                match c.read_response(false) {
                    Ok(r) if r.status == 200 => {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        failed += 1;
                        c = Conn::open(inbound);
                    }
                }
            }
            failed
        })
    };
    // The load must overlap each change: wait until it has served `n` more requests (an
    // event, so a slow machine only makes the test slower).
    let load_runs = |n: u64| {
        let from = served.load(Ordering::SeqCst);
        let end = Instant::now() + Duration::from_secs(10);
        while served.load(Ordering::SeqCst) < from + n {
            assert!(Instant::now() < end, "the load stalled at {} requests", served.load(Ordering::SeqCst));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    load_runs(20);
    let extra = "  - name: second\n    address: 127.0.0.1:0\n    protocol: tcp\n    cluster: app\n";
    rewrite(&proxy, &routes_to(&a, extra));
    signal(&proxy, libc::SIGHUP);
    assert!(proxy.wait_log("listener bound listener=second", Duration::from_secs(5)));
    let line = proxy.log_text().lines().find(|l| l.contains("listener bound listener=second")).expect("line").to_owned();
    let second: std::net::SocketAddr = line.rsplit("address=").next().expect("addr").trim().parse().expect("addr");
    // The TCP listener tunnels to the origin: HTTP through it works.
    assert_eq!(client::get(second, "/").status, 200);

    load_runs(20);
    // Remove it again: it stops accepting.
    rewrite(&proxy, &routes_to(&a, ""));
    signal(&proxy, libc::SIGHUP);
    assert!(proxy.wait_log("listener removed", Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(3);
    while std::net::TcpStream::connect(second).is_ok() {
        assert!(Instant::now() < deadline, "removed listener still accepts");
        std::thread::sleep(Duration::from_millis(20));
    }
    load_runs(20);
    stop.store(true, Ordering::Relaxed);
    let failed = load.join().expect("load");
    assert_eq!(failed, 0, "requests on the unchanged listener failed during the listener changes");
    // The inbound listener was never re-bound: same port, still serving.
    assert_eq!(client::get(inbound, "/").status, 200);
});

both_runtimes!(fn sigterm_lets_in_flight_requests_finish(rt) {
    let up = HeldUpstream::start();
    let mut proxy = Ringside::start(rt, &routes_to_addr(up.addr, ""));
    let addr = proxy.addr("inbound");
    let mut idle = Conn::open(addr);
    assert_eq!(idle.get("/", "").status, 200);
    let slow = std::thread::spawn(move || {
        let mut c = Conn::open(addr);
        c.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response(false).expect("in-flight response");
        (r.status, r.text(), r.header("connection").map(str::to_owned))
    });
    // The request is at the upstream (in flight) when the signal comes: an event, not a sleep.
    up.wait_requests(1, Duration::from_secs(10));
    signal(&proxy, libc::SIGTERM);
    // The drain closes idle connections at once, while the held request is still in flight.
    idle.assert_closed("an idle keep-alive connection at the drain");
    up.release();
    let (status, body, connection) = slow.join().expect("slow request");
    assert_eq!((status, body.as_str()), (200, "held"), "an accepted request must not fail during drain");
    assert_eq!(connection.as_deref(), Some("close"), "the last response tells the client to go");
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.alive() {
        assert!(Instant::now() < deadline, "did not exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(proxy.log_text().contains("drained"), "{}", proxy.log_text());
});

both_runtimes!(fn admin_shutdown_drains_and_ready_turns_503(rt) {
    let up = HeldUpstream::start();
    let proxy = Ringside::start(rt, &routes_to_addr(up.addr, ""));
    let admin = proxy.addr("admin");
    assert_eq!(client::get(admin, "/ready").status, 200);
    let addr = proxy.addr("inbound");
    let slow = std::thread::spawn(move || client::get(addr, "/hold").status);
    up.wait_requests(1, Duration::from_secs(10));
    let mut c = Conn::open(admin);
    c.send(b"POST /shutdown HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response(false).expect("shutdown").status, 202);
    assert_eq!(client::get(admin, "/ready").status, 503, "draining is not ready");
    up.release();
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
    use std::io::Write;
    tunnel.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").expect("write");
    // The tunnel is open at the proxy before the listener goes (an event, not a sleep).
    metrics::wait_sample(proxy.addr("admin"), "ringside_downstream_connections_active{listener=\"second\"}", Duration::from_secs(5), |v| v == 1.0);
    rewrite(&proxy, &routes_to(&a, ""));
    let removed = Instant::now();
    assert!(proxy.wait_log("listener removed", Duration::from_secs(5)));
    // Closed (FIN or RST) by the drain timeout: 500 ms, with room for a loaded machine.
    let how = client::wait_closed(&mut tunnel, Duration::from_secs(8));
    let took = removed.elapsed();
    assert!(how.is_ok(), "the tunnel must be closed after the drain timeout: {how:?}");
    assert!(took >= Duration::from_millis(400), "closed before the drain timeout: {took:?}");
    assert!(proxy.wait_log("drain timeout: closed the removed listener", Duration::from_secs(2)));
});

/// [`routes_to_addr`] whose cluster speaks h2c to the upstream.
fn routes_to_h2(upstream: std::net::SocketAddr, extra_listener: &str) -> String {
    routes_to_addr(upstream, extra_listener).replace(
        "{ name: app, endpoints",
        "{ name: app, protocol: http2, endpoints",
    )
}

/// Sends `GET path` on a fresh connection in a thread; joins to (status, body, Connection).
fn request_in_thread(
    addr: std::net::SocketAddr,
    path: &'static str,
) -> std::thread::JoinHandle<(u16, String, Option<String>)> {
    std::thread::spawn(move || {
        let r = Conn::open(addr).get(path, "");
        (
            r.status,
            r.text(),
            r.header("connection").map(str::to_owned),
        )
    })
}

both_runtimes!(fn sigterm_lets_h2_upstream_streams_finish(rt) {
    let up = ScriptedH2Upstream::start(Script::HoldThenOk);
    let mut proxy = Ringside::start(rt, &routes_to_h2(up.addr, ""));
    let addr = proxy.addr("inbound");
    let reqs: Vec<_> = (0..3).map(|_| request_in_thread(addr, "/x")).collect();
    // Three streams in flight on the upstream h2 connection(s).
    up.wait_streams(3, Duration::from_secs(10));
    signal(&proxy, libc::SIGTERM);
    // The drain has begun (readiness is the event), then the upstream answers.
    let admin = proxy.addr("admin");
    let end = Instant::now() + Duration::from_secs(5);
    while client::get(admin, "/ready").status != 503 {
        assert!(Instant::now() < end, "/ready never turned 503 after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    up.release();
    for r in reqs {
        let (status, body, connection) = r.join().expect("request");
        assert_eq!((status, body.as_str()), (200, "held"), "an in-flight h2 upstream stream must finish");
        assert_eq!(connection.as_deref(), Some("close"));
    }
    let end = Instant::now() + Duration::from_secs(10);
    while proxy.alive() {
        assert!(Instant::now() < end, "did not exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    }
});

both_runtimes!(fn removing_a_listener_lets_its_h2_upstream_streams_finish(rt) {
    let up = ScriptedH2Upstream::start(Script::HoldThenOk);
    let extra = "  - name: second\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      \
                 - { name: all2, match: { path_prefix: / }, backends: [ { cluster: app } ] }\n";
    let proxy = Ringside::start(rt, &routes_to_h2(up.addr, extra));
    let second = proxy.addr("second");
    let inflight = request_in_thread(second, "/x");
    up.wait_streams(1, Duration::from_secs(10));
    rewrite(&proxy, &routes_to_h2(up.addr, ""));
    signal(&proxy, libc::SIGHUP);
    assert!(proxy.wait_log("listener removed", Duration::from_secs(5)), "{}", proxy.log_text());
    up.release();
    let (status, body, _) = inflight.join().expect("request");
    // (Its `Connection: close` is removing_a_listener_closes_its_connections_after_in_flight_requests'.)
    assert_eq!((status, body.as_str()), (200, "held"), "the removed listener's stream must finish");
    // The inbound listener still serves through the same h2 cluster.
    assert_eq!(client::get(proxy.addr("inbound"), "/y").text(), "held");
});

both_runtimes!(fn a_reload_removing_an_h2_cluster_in_use(rt) {
    let up = ScriptedH2Upstream::start(Script::HoldThenOk);
    let b = Origin::start("b");
    let both = |route_to: &str| {
        format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      \
             - {{ name: all, match: {{ path_prefix: / }}, backends: [ {{ cluster: {route_to} }} ] }}\n\
             clusters:\n  - {{ name: b, endpoints: [ {} ] }}\n",
            b.addr
        )
    };
    let with_app = format!("{}  - {{ name: app, protocol: http2, endpoints: [ {} ] }}\n", both("app"), up.addr);
    let proxy = Ringside::start(rt, &with_app);
    let inflight = request_in_thread(proxy.addr("inbound"), "/x");
    up.wait_streams(1, Duration::from_secs(10));
    assert_eq!(up.open_connections(), 1);
    // The new config routes to b and no longer has the cluster (nor its h2 endpoint).
    let applied = "ringside_config_reloads_total{result=\"applied\"}";
    rewrite(&proxy, &both("b"));
    signal(&proxy, libc::SIGHUP);
    metrics::wait_sample(proxy.addr("admin"), applied, Duration::from_secs(5), |v| v >= 1.0);
    assert_eq!(client::get(proxy.addr("inbound"), "/").header("x-origin"), Some("b"));
    // The stream in flight on the removed cluster still completes.
    up.release();
    let (status, body, _) = inflight.join().expect("request");
    assert_eq!((status, body.as_str()), (200, "held"), "a stream on a removed cluster must finish");
    // And the removed endpoint's connection is closed once its stream is done, not kept
    // forever (bounded by what a loaded machine guarantees, far below the idle timeout).
    let end = Instant::now() + Duration::from_secs(10);
    while up.open_connections() > 0 {
        assert!(Instant::now() < end, "the removed cluster's h2 connection is still open");
        std::thread::sleep(Duration::from_millis(20));
    }
});

both_runtimes!(fn removing_a_listener_closes_its_connections_after_in_flight_requests(rt) {
    let up = HeldUpstream::start();
    let extra = "  - name: second\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      \
                 - { name: all2, match: { path_prefix: / }, backends: [ { cluster: app } ] }\n";
    let proxy = Ringside::start(rt, &routes_to_addr(up.addr, extra));
    let inflight = request_in_thread(proxy.addr("second"), "/hold");
    up.wait_requests(1, Duration::from_secs(10));
    rewrite(&proxy, &routes_to_addr(up.addr, ""));
    signal(&proxy, libc::SIGHUP);
    assert!(proxy.wait_log("listener removed", Duration::from_secs(5)), "{}", proxy.log_text());
    up.release();
    let (status, body, connection) = inflight.join().expect("request");
    assert_eq!((status, body.as_str()), (200, "held"));
    // README: removed listeners drain, finishing in-flight requests with Connection: close.
    assert_eq!(connection.as_deref(), Some("close"), "the removed listener's connection is told to go");
});
