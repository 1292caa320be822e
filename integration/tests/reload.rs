//! Hot reload the way Kubernetes delivers it, under load, on both runtimes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_integration::{both_runtimes, client, Conn, Options, Origin, Ringside};

fn routes_to(cluster: &str, a: &Origin, b: &Origin) -> String {
    format!(
        "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      \
         - {{ name: all, match: {{ path_prefix: / }}, backends: [ {{ cluster: {cluster} }} ] }}\n\
         clusters:\n  - {{ name: a, endpoints: [ {} ] }}\n  - {{ name: b, endpoints: [ {} ] }}\n",
        a.addr, b.addr
    )
}

const INVALID: &str = "listeners:\n  - name: inbound\n    address: not-an-address\n    protocol: http\nclusters: []\n";

both_runtimes!(fn hundred_kubelet_swaps_under_load_drop_nothing(rt) {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let opts = Options { kubelet_layout: true, log_level: "info".into(), ..Options::default() };
    let proxy = Ringside::start_with(rt, &routes_to("a", &a, &b), &opts);
    let addr = proxy.addr("inbound");

    // Continuous keep-alive load on two connections while the config changes underneath.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                while !stop.load(Ordering::Relaxed) {
                    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                    match c.read_response(false) {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            c = Conn::open(addr);
                            0
                        }
                    };
                }
            })
        })
        .collect();

    let mut latencies = Vec::new();
    let mut rejected = 0;
    let mut current = "a";
    for i in 0..100 {
        if i % 10 == 5 {
            // An invalid config in between: rejected, and traffic keeps its routes.
            let before = proxy.log_text().matches("config rejected").count();
            proxy.kubelet_update(INVALID);
            let deadline = Instant::now() + Duration::from_secs(5);
            while proxy.log_text().matches("config rejected").count() == before {
                assert!(Instant::now() < deadline, "invalid config was not reported");
                std::thread::sleep(Duration::from_millis(10));
            }
            rejected += 1;
            assert_eq!(client::get(addr, "/").header("x-origin"), Some(current), "swap {i}: invalid config changed routing");
        }
        let want = if i % 2 == 0 { "b" } else { "a" };
        let renamed = proxy.kubelet_update(&routes_to(want, &a, &b));
        loop {
            // New connections must see the swap within a second of the rename.
            let r = client::get(addr, "/");
            assert_eq!(r.status, 200);
            if r.header("x-origin") == Some(want) {
                latencies.push(renamed.elapsed());
                current = want;
                break;
            }
            assert!(renamed.elapsed() < Duration::from_secs(1), "swap {i} not visible after 1 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("load thread");
    }
    latencies.sort();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "{rt:?}: 100 kubelet swaps ({rejected} invalid in between): rename → new routes median {:?}, max {:?}; \
         {ok} requests under load, {failed} failed",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    assert_eq!(failed, 0, "requests failed during reloads");
    assert!(ok > 200, "the load kept running ({ok} requests)");
});

both_runtimes!(fn endpoint_removed_under_load(rt) {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let cluster = |eps: &str| {
        format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      \
             - {{ name: all, match: {{ path_prefix: / }}, backends: [ {{ cluster: app }} ] }}\n\
             clusters:\n  - {{ name: app, endpoints: [ {eps} ] }}\n"
        )
    };
    let opts = Options { kubelet_layout: true, log_level: "info".into(), ..Options::default() };
    let proxy = Ringside::start_with(rt, &cluster(&format!("{}, {}", a.addr, b.addr)), &opts);
    let addr = proxy.addr("inbound");
    let mut c = Conn::open(addr);
    let seen: std::collections::HashSet<String> =
        (0..20).map(|_| c.get("/", "").header("x-origin").unwrap_or("-").to_owned()).collect();
    assert_eq!(seen.len(), 2, "round robin over both endpoints: {seen:?}");
    let renamed = proxy.kubelet_update(&cluster(&a.addr.to_string()));
    // Keep sending on the same keep-alive connection: every request succeeds, and once the
    // new config is in, only `a` answers.
    let mut failed = 0;
    let mut last_b = renamed;
    while renamed.elapsed() < Duration::from_millis(800) {
        let r = c.get("/", "");
        if r.status != 200 {
            failed += 1;
        }
        if r.header("x-origin") == Some("b") {
            last_b = Instant::now();
        }
    }
    assert_eq!(failed, 0);
    assert!(last_b.duration_since(renamed) < Duration::from_millis(500), "b kept serving after the reload");
    for _ in 0..20 {
        assert_eq!(c.get("/", "").header("x-origin"), Some("a"));
    }
});
