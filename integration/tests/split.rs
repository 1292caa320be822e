//! `--runtime split`: io_uring and epoll workers in one process on the same `SO_REUSEPORT`
//! listeners. Each test that needs both kinds first requires io_uring (like `both_runtimes!`);
//! the seccomp fallback test runs everywhere. `ringside compare` and pprof: `split_compare.rs`.

use std::time::{Duration, Instant};

use ringside_integration::split::*;
use ringside_integration::{
    client, http_config, metrics, Conn, HeldUpstream, Options, Origin, Ringside, Runtime,
};
use serde_json::Value;

#[test]
fn split_serves_on_both_kinds_and_metrics_by_runtime_add_up() {
    if !ringside_integration::require(Runtime::IoUring, "split::serves_on_both_kinds") {
        return;
    }
    let origin = Origin::start("app");
    let proxy = start(&http_config(&[origin.addr]));
    let logs = proxy.log_text();
    assert!(logs.contains("runtime selected runtime=split"), "{logs}");
    assert!(
        logs.contains("worker 0 on io_uring, worker 1 on epoll"),
        "{logs}"
    );
    let admin = proxy.addr("admin");
    let m = metrics::scrape(admin);
    for rt in RUNTIMES {
        let info = format!("ringside_runtime_info{{runtime=\"{rt}\"}}");
        assert_eq!(metrics::sample(&m, &info), Some(1.0), "{m}");
    }

    let sent = until_both_served(&proxy, "/", |r| assert_eq!(r.text(), "hello from app\n"));
    let seen = origin.seen("/");
    assert_eq!(seen, sent, "every request reached the origin once");
    // Each request is counted as its response completes: wait for the last one.
    let total = TOTAL_200;
    metrics::wait_sample(admin, total, Duration::from_secs(5), |v| v == sent as f64);
    let m = metrics::scrape(admin);
    let per: Vec<f64> = RUNTIMES
        .iter()
        .map(|rt| metrics::sample_exact(&m, &by_runtime(total, rt)).unwrap_or(0.0))
        .collect();
    assert!(per.iter().all(|n| *n > 0.0), "{per:?}\n{m}");
    assert_eq!(per.iter().sum::<f64>(), sent as f64, "{m}");
    let opened_sum: f64 = RUNTIMES.iter().map(|rt| opened(&m, rt)).sum();
    assert_eq!(opened_sum, sent as f64, "one connection per request");
    let durations =
        "ringside_request_duration_seconds_count{listener=\"inbound\",route=\"default\"}";
    assert_eq!(metrics::sample(&m, durations), Some(sent as f64), "{m}");

    // /runtime: one entry per worker, saying its runtime; the comparison counts the same.
    let rt = runtime_json(&proxy);
    assert_eq!(rt["runtime"], "split");
    let names: Vec<&str> = rt["per_worker"]
        .as_array()
        .expect("per_worker")
        .iter()
        .map(|w| w["runtime"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, RUNTIMES);
    let c = &rt["comparison"];
    let counted: Vec<u64> = RUNTIMES
        .iter()
        .map(|r| c[r]["since_start"]["requests"].as_u64().expect("requests"))
        .collect();
    assert_eq!(counted.iter().sum::<u64>(), sent, "{c}");
    assert_eq!(
        counted,
        per.iter().map(|n| *n as u64).collect::<Vec<_>>(),
        "{c}"
    );
}

#[test]
fn worker_cpu_by_runtime_is_within_the_process_cpu() {
    if !ringside_integration::require(Runtime::IoUring, "split::worker_cpu") {
        return;
    }
    let origin = Origin::start("app");
    let proxy = start(&http_config(&[origin.addr]));
    let admin = proxy.addr("admin");
    let sent = until_both_served(&proxy, "/", |r| assert_eq!(r.status, 200));
    // A request is counted as its response completes: wait for the last one.
    metrics::wait_sample(admin, TOTAL_200, Duration::from_secs(5), |v| {
        v == sent as f64
    });
    // Each worker publishes its CPU clock every 250 ms tick: wait until both have.
    let cpu = |m: &str, w: usize, rt: &str| {
        let s = format!("ringside_worker_cpu_seconds_total{{worker=\"{w}\",runtime=\"{rt}\"}}");
        metrics::sample_exact(m, &s)
    };
    let end = Instant::now() + Duration::from_secs(5);
    let (workers, process, tick) = loop {
        let m = metrics::scrape(admin);
        // Read after the scrape: the process clock only grows, so it bounds the workers'.
        let (process, tick) = process_cpu(proxy.pid());
        let w = [cpu(&m, 0, "io_uring"), cpu(&m, 1, "epoll")];
        if let [Some(a), Some(b)] = w {
            if a > 0.0 && b > 0.0 {
                break ([a, b], process, tick);
            }
        }
        assert!(Instant::now() < end, "worker CPU never published:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // /proc rounds each clock down to whole ticks; the thread clocks are exact.
    assert!(
        workers.iter().sum::<f64>() <= process + tick,
        "workers {workers:?} > process {process}"
    );
    // The comparison's CPU per request is that CPU over that runtime's requests.
    let rt = runtime_json(&proxy);
    let (process, _) = process_cpu(proxy.pid());
    for r in RUNTIMES {
        let s = &rt["comparison"][r]["since_start"];
        let per = s["cpu_us_per_request"].as_f64().expect("cpu per request");
        let n = s["requests"].as_f64().expect("requests");
        assert!(per > 0.0, "{s}");
        assert!(
            per * n / 1e6 <= process + tick,
            "{r}: {per} µs × {n} > {process} s"
        );
    }
}

#[test]
fn connections_lists_both_runtimes_while_held_open() {
    if !ringside_integration::require(Runtime::IoUring, "split::connections") {
        return;
    }
    let origin = Origin::start("app");
    let proxy = start(&http_config(&[origin.addr]));
    let mut held = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        // A keep-alive connection with one request done stays open and listed.
        let mut c = Conn::open(proxy.addr("inbound"));
        assert_eq!(c.get("/", "").status, 200);
        held.push(c);
        let list = client::get(proxy.addr("admin"), "/connections").text();
        let v: Value = serde_json::from_str(&list).expect("json");
        let shown: Vec<&str> = v["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .map(|c| c["runtime"].as_str().expect("runtime"))
            .collect();
        assert_eq!(shown.len(), held.len(), "{list}");
        if RUNTIMES.iter().all(|rt| shown.contains(rt)) {
            break;
        }
        assert!(Instant::now() < end && held.len() < 500, "{list}");
    }
}

fn routes_to(origin: &Origin, port: u16, admin: &str) -> String {
    format!(
        "admin: {{ address: {admin} }}\nlisteners:\n  - name: inbound\n    address: \
         127.0.0.1:{port}\n    protocol: http\n    routes:\n      - {{ name: all, match: {{ \
         path_prefix: / }}, backends: [ {{ cluster: app }} ] }}\nclusters:\n  - {{ name: app, \
         endpoints: [ {} ] }}\n",
        origin.addr
    )
}

#[test]
fn a_reload_reaches_both_kinds_of_worker() {
    if !ringside_integration::require(Runtime::IoUring, "split::reload") {
        return;
    }
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let proxy = start(&routes_to(&a, 0, "127.0.0.1:0"));
    let admin = proxy.addr("admin").to_string();
    let port = proxy.addr("inbound").port();
    until_both_served(&proxy, "/", |r| assert_eq!(r.header("x-origin"), Some("a")));
    std::fs::write(&proxy.config_path, routes_to(&b, port, &admin)).expect("write config");
    assert!(
        proxy.wait_log("config applied", Duration::from_secs(10)),
        "{}",
        proxy.log_text()
    );
    // Every new connection, on either kind of worker, now goes to b.
    until_both_served(&proxy, "/", |r| {
        assert_eq!(
            r.header("x-origin"),
            Some("b"),
            "a worker kept the old route"
        )
    });
}

/// The runtimes of the connections `/connections` lists with a request in flight.
fn in_flight_runtimes(proxy: &Ringside) -> Vec<String> {
    let v: Value = serde_json::from_str(&client::get(proxy.addr("admin"), "/connections").text())
        .expect("json");
    v["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter(|c| c["in_flight"] == true)
        .map(|c| c["runtime"].as_str().expect("runtime").to_owned())
        .collect()
}

#[test]
fn sigterm_drains_in_flight_requests_on_both_kinds() {
    if !ringside_integration::require(Runtime::IoUring, "split::drain") {
        return;
    }
    let up = HeldUpstream::start();
    let mut proxy = start(&http_config(&[up.addr]));
    let addr = proxy.addr("inbound");
    let mut held = Vec::new();
    loop {
        held.push(std::thread::spawn(move || {
            let mut c = Conn::open(addr);
            c.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
            let r = c.read_response(false).expect("in-flight response");
            (r.status, r.text())
        }));
        up.wait_requests(held.len(), Duration::from_secs(10));
        let rts = in_flight_runtimes(&proxy);
        assert_eq!(rts.len(), held.len(), "{rts:?}");
        if RUNTIMES.iter().all(|rt| rts.iter().any(|r| r == rt)) {
            break;
        }
        assert!(held.len() < 200, "in flight only on {rts:?}");
    }
    // SAFETY: a signal to our own child process.
    assert_eq!(unsafe { libc::kill(proxy.pid() as i32, libc::SIGTERM) }, 0);
    let admin = proxy.addr("admin");
    let end = Instant::now() + Duration::from_secs(5);
    while client::get(admin, "/ready").status != 503 {
        assert!(
            Instant::now() < end,
            "/ready never turned 503 after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    up.release();
    for h in held {
        assert_eq!(h.join().expect("held request"), (200, "held".to_owned()));
    }
    let end = Instant::now() + Duration::from_secs(5);
    while proxy.alive() {
        assert!(Instant::now() < end, "did not exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(proxy.log_text().contains("drained"), "{}", proxy.log_text());
}

#[test]
fn split_under_a_seccomp_block_runs_all_on_epoll_and_says_why() {
    let origin = Origin::start("app");
    let opts = Options {
        block_io_uring: Some(libc::EPERM),
        ..split_opts()
    };
    let proxy = Ringside::start_with(Runtime::Epoll, &http_config(&[origin.addr]), &opts);
    let why = "split: io_uring unusable (io_uring_setup failed: EPERM";
    let logs = proxy.log_text();
    assert!(logs.contains(why), "{logs}");
    assert!(logs.contains("all 2 workers on epoll"), "{logs}");
    let rt = runtime_json(&proxy);
    assert_eq!(rt["runtime"], "split");
    let reason = rt["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with(why) && reason.ends_with("all 2 workers on epoll"),
        "{reason}"
    );
    assert_eq!(rt["comparison"]["runtimes"], serde_json::json!(["epoll"]));
    let verdict = rt["comparison"]["verdict"].as_str().expect("verdict");
    assert!(verdict.contains("nothing to compare"), "{verdict}");
    let m = metrics::scrape(proxy.addr("admin"));
    assert_eq!(
        metrics::sample(&m, "ringside_runtime_info{runtime=\"epoll\"}"),
        Some(1.0)
    );
    assert!(!m.contains("runtime=\"io_uring\""), "{m}");
    assert_eq!(
        client::get(proxy.addr("inbound"), "/").text(),
        "hello from app\n"
    );
}

#[test]
fn io_uring_workers_chooses_the_share() {
    if !ringside_integration::require(Runtime::IoUring, "split::io_uring_workers") {
        return;
    }
    let origin = Origin::start("app");
    let opts = Options {
        workers: 3,
        extra_args: vec!["--io-uring-workers".into(), "2".into()],
        ..split_opts()
    };
    let proxy = Ringside::start_with(Runtime::Epoll, &http_config(&[origin.addr]), &opts);
    let rt = runtime_json(&proxy);
    let names: Vec<&str> = rt["per_worker"]
        .as_array()
        .expect("per_worker")
        .iter()
        .map(|w| w["runtime"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["io_uring", "io_uring", "epoll"], "{rt}");
    let m = metrics::scrape(proxy.addr("admin"));
    for (w, r) in names.iter().enumerate() {
        let cpu = format!("ringside_worker_cpu_seconds_total{{worker=\"{w}\",runtime=\"{r}\"}}");
        assert!(metrics::sample_exact(&m, &cpu).is_some(), "{cpu}:\n{m}");
    }
}
