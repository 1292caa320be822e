//! Hot reload the way Kubernetes delivers it, under load, on both runtimes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_integration::{both_runtimes, client, metrics, Conn, Options, Origin, Ringside};

const APPLIED: &str = "ringside_config_reloads_total{result=\"applied\"}";

/// Reloads applied so far (the counter is stored after the new snapshot is, so every request
/// that arrives after it rises routes on the new config).
fn applied(proxy: &Ringside) -> f64 {
    metrics::sample(&metrics::scrape(proxy.addr("admin")), APPLIED).unwrap_or(0.0)
}

/// Waits for the reload counter to pass `before`: bounded by what a loaded 2-core machine
/// guarantees, not by the typical latency (printed instead).
fn wait_applied(proxy: &Ringside, before: f64) {
    metrics::wait_sample(proxy.addr("admin"), APPLIED, Duration::from_secs(5), |v| {
        v > before
    });
}

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
        if i % 10 == 0 {
            // The load must overlap the swaps: every ten swaps, wait until it has served ten
            // more requests (an event: a slow machine makes this slower, not wrong).
            let from = ok.load(Ordering::Relaxed);
            let end = Instant::now() + Duration::from_secs(10);
            while ok.load(Ordering::Relaxed) < from + 10 {
                assert!(Instant::now() < end, "the load stalled at {from} requests");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
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
        let before = applied(&proxy);
        let renamed = proxy.kubelet_update(&routes_to(want, &a, &b));
        wait_applied(&proxy, before);
        latencies.push(renamed.elapsed());
        // Once applied, the very next new connection routes on the new config.
        let r = client::get(addr, "/");
        assert_eq!((r.status, r.header("x-origin")), (200, Some(want)), "swap {i}: applied but not routed");
        current = want;
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
    assert!(ok >= 100, "the load kept running ({ok} requests)");
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
    let before = applied(&proxy);
    let renamed = proxy.kubelet_update(&cluster(&a.addr.to_string()));
    // Keep sending on the same keep-alive connection until the reload is applied (an event,
    // bounded at 5 s): every request succeeds, and afterwards only `a` answers.
    let mut failed = 0;
    let mut sent = 0;
    while applied(&proxy) <= before {
        assert!(renamed.elapsed() < Duration::from_secs(5), "the reload was not applied within 5 s");
        let r = c.get("/", "");
        sent += 1;
        if r.status != 200 {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "{failed} of {sent} requests failed while the endpoint was removed");
    for _ in 0..20 {
        assert_eq!(c.get("/", "").header("x-origin"), Some("a"));
    }
});
