//! The admin API and metrics, after known traffic, on both runtimes.

use std::time::Duration;

use ringside_integration::{both_runtimes, client, Conn, Options, Origin, Ringside};

fn config(origin: &Origin) -> String {
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - {{ name: api, match: {{ path_prefix: /status }}, backends: [ {{ cluster: app }} ] }}
      - {{ name: rest, match: {{ path_prefix: /hello }}, backends: [ {{ cluster: app }} ] }}
      - {{ name: broken, match: {{ path_prefix: /broken }}, backends: [ {{ cluster: dead }} ] }}
clusters:
  - {{ name: app, endpoints: [ {} ] }}
  - {{ name: dead, endpoints: [ 127.0.0.1:9 ] }}
"#,
        origin.addr
    )
}

fn metrics(proxy: &Ringside) -> String {
    client::get(proxy.addr("admin"), "/metrics").text()
}

/// The value of `series`, summed over the `runtime` label (see `metrics::sample`).
fn sample(text: &str, series: &str) -> Option<f64> {
    ringside_integration::metrics::sample(text, series)
}

both_runtimes!(fn counters_match_the_traffic_sent(rt) {
    let origin = Origin::start("app");
    let proxy = Ringside::start(rt, &config(&origin));
    let mut c = Conn::open(proxy.addr("inbound"));
    for _ in 0..7 {
        assert_eq!(c.get("/status/201", "").status, 201);
    }
    for _ in 0..3 {
        assert_eq!(c.get("/status/503", "").status, 503);
    }
    assert_eq!(c.get("/hello", "").status, 200);
    assert_eq!(c.get("/nowhere", "").status, 404);
    assert_eq!(c.get("/broken", "").status, 502);
    drop(c);
    // The close is counted when the proxy sees it: wait for that event, not a fixed time.
    ringside_integration::metrics::wait_sample(
        proxy.addr("admin"),
        "ringside_downstream_connections_closed_total{listener=\"inbound\"}",
        Duration::from_secs(5),
        |v| v >= 1.0,
    );
    let m = metrics(&proxy);
    let req = |route: &str, cluster: &str, code: u16| {
        let s = format!(
            "ringside_requests_total{{listener=\"inbound\",route=\"{route}\",cluster=\"{cluster}\",code=\"{code}\"}}"
        );
        sample(&m, &s).unwrap_or_else(|| panic!("no sample {s} in:\n{m}"))
    };
    assert_eq!(req("api", "app", 201), 7.0);
    assert_eq!(req("api", "app", 503), 3.0);
    assert_eq!(req("rest", "app", 200), 1.0);
    assert_eq!(req("none", "none", 404), 1.0);
    assert_eq!(req("broken", "dead", 502), 1.0);
    assert_eq!(sample(&m, "ringside_request_duration_seconds_count{listener=\"inbound\",route=\"api\"}"), Some(10.0));
    assert_eq!(sample(&m, "ringside_upstream_connect_errors_total{cluster=\"dead\"}"), Some(1.0));
    assert_eq!(sample(&m, "ringside_downstream_connections_opened_total{listener=\"inbound\"}"), Some(1.0));
    assert_eq!(sample(&m, "ringside_downstream_connections_closed_total{listener=\"inbound\"}"), Some(1.0));
    assert_eq!(sample(&m, "ringside_downstream_connections_active{listener=\"inbound\"}"), Some(0.0));
    let runtime = if rt == ringside_integration::Runtime::IoUring { "io_uring" } else { "epoll" };
    assert_eq!(sample(&m, &format!("ringside_runtime_info{{runtime=\"{runtime}\"}}")), Some(1.0));
    assert!(m.contains("# TYPE ringside_request_duration_seconds histogram"), "histograms, not summaries");
});

both_runtimes!(fn connections_endpoint_shows_a_held_connection(rt) {
    let origin = Origin::start("app");
    let proxy = Ringside::start(rt, &config(&origin));
    let mut held = Conn::open(proxy.addr("inbound"));
    for _ in 0..3 {
        assert_eq!(held.get("/hello", "").status, 200);
    }
    let me = held.stream.local_addr().expect("addr").to_string();
    let body = client::get(proxy.addr("admin"), "/connections").text();
    let entry = body.split('{').find(|e| e.contains(&me)).unwrap_or_else(|| panic!("{me} not in {body}"));
    assert!(entry.contains("\"requests\": 3"), "{entry}");
    assert!(entry.contains("\"listener\": \"inbound\""), "{entry}");
    assert!(entry.contains("\"protocol\": \"http/1.1\""), "{entry}");
    assert!(entry.contains("\"in_flight\": false"), "{entry}");
    assert!(body.contains("\"workers_not_answering\": []"), "{body}");
});

both_runtimes!(fn log_level_changes_at_run_time(rt) {
    let origin = Origin::start("app");
    let opts = Options { log_level: "info".into(), ..Options::default() };
    let proxy = Ringside::start_with(rt, &config(&origin), &opts);
    assert_eq!(client::get(proxy.addr("inbound"), "/broken").status, 502);
    let mut c = Conn::open(proxy.addr("admin"));
    let filter = "info,ringside=debug";
    c.send(format!("PUT /log-level HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{filter}", filter.len()).as_bytes());
    assert_eq!(c.read_response(false).expect("put").status, 200);
    assert_eq!(client::get(proxy.addr("admin"), "/log-level").text().trim(), filter);
    assert_eq!(client::get(proxy.addr("inbound"), "/broken").status, 502);
    assert!(proxy.wait_log("request failed", Duration::from_secs(5)), "{}", proxy.log_text());
    // Checked only now, after the second request's debug line arrived: the first request's
    // line, had it been written at info, would be in the log before it. A check right after
    // the first request would pass when that line was merely late.
    let lines = proxy.log_text().matches("request failed").count();
    assert_eq!(lines, 1, "debug lines are off at info, on at debug:\n{}", proxy.log_text());
});

both_runtimes!(fn cpu_profile_parses_with_go_tool_pprof(rt) {
    let origin = Origin::start("app");
    let proxy = Ringside::start(rt, &config(&origin));
    let inbound = proxy.addr("inbound");
    // Load for as long as pprof runs: `go tool pprof` may first have to build itself, which
    // can take longer than the profile on a busy machine.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_load = stop.clone();
    let load = std::thread::spawn(move || {
        let mut c = Conn::open(inbound);
        let mut n = 0;
        while !stop_load.load(std::sync::atomic::Ordering::Relaxed) {
            assert_eq!(c.get("/hello", "").status, 200);
            n += 1;
        }
        n
    });
    let url = format!("http://{}/debug/pprof/profile?seconds=1", proxy.addr("admin"));
    let out = std::process::Command::new("go").args(["tool", "pprof", "-top", &url]).output().expect("go tool pprof");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pprof failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Type: cpu"), "{text}");
    assert!(load.join().expect("load") > 10);
    assert!(text.contains("ringside"), "samples should name ringside frames: {text}");
});

both_runtimes!(fn runtime_and_config_endpoints_describe_the_process(rt) {
    let origin = Origin::start("app");
    let proxy = Ringside::start(rt, &config(&origin));
    let runtime = client::get(proxy.addr("admin"), "/runtime").text();
    let want = if rt == ringside_integration::Runtime::IoUring { "\"runtime\": \"io_uring\"" } else { "\"runtime\": \"epoll\"" };
    assert!(runtime.contains(want), "{runtime}");
    // Per-worker figures, from each worker's own event loop.
    assert!(runtime.contains("\"per_worker\": ["), "{runtime}");
    assert!(runtime.contains("\"max_loop_lag_ms\""), "{runtime}");
    assert!(!runtime.contains("not_answering"), "{runtime}");
    let specific = if rt == ringside_integration::Runtime::IoUring { "\"ops_submitted\"" } else { "\"tokio_alive_tasks\"" };
    assert!(runtime.contains(specific), "{runtime}");
    let config = client::get(proxy.addr("admin"), "/config").text();
    let sha = config.split("\"sha256\": \"").nth(1).and_then(|s| s.get(..64)).expect("sha256");
    let file = std::fs::read(&proxy.config_path).expect("config file");
    use sha2::Digest;
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(&file)));
    assert!(config.contains("\"name\": \"inbound\""), "{config}");
});

both_runtimes!(fn metrics_pass_promtool(rt) {
    let origin = Origin::start("app");
    let proxy = Ringside::start(rt, &config(&origin));
    for path in ["/hello", "/status/500", "/nowhere", "/broken"] {
        client::get(proxy.addr("inbound"), path);
    }
    let text = metrics(&proxy);
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
});

both_runtimes!(fn access_log_and_trace_context(rt) {
    let origin = Origin::start("app");
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("access.log");
    let opts = Options {
        extra_args: vec!["--access-log".into(), log_path.display().to_string(), "--trace-start".into()],
        ..Options::default()
    };
    let proxy = Ringside::start_with(rt, &config(&origin), &opts);
    let mut c = Conn::open(proxy.addr("inbound"));
    let given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = c.get("/hello/headers", &format!("traceparent: {given}\r\n"));
    assert_eq!(r.status, 200);
    let r = c.get("/status/201", "");
    assert_eq!(r.status, 201);
    let r = c.get("/nowhere", "");
    assert_eq!(r.status, 404);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.lines().count() >= 3 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains(&format!("\"traceparent\":\"{given}\"")), "propagated: {}", lines[0]);
    assert!(lines[0].contains("\"route\":\"rest\"") && lines[0].contains("\"cluster\":\"app\""), "{}", lines[0]);
    assert!(lines[0].contains(&format!("\"endpoint\":\"{}\"", origin.addr)), "{}", lines[0]);
    assert!(lines[1].contains("\"status\":201") && lines[1].contains("\"traceparent\":\"00-"), "started: {}", lines[1]);
    assert!(lines[2].contains("\"status\":404") && lines[2].contains("\"route\":\"none\""), "{}", lines[2]);
    assert!(!lines[1].contains(given), "a new trace, not the previous one");
});

both_runtimes!(fn started_trace_context_reaches_the_upstream(rt) {
    let origin = Origin::start("app");
    let cfg = config(&origin).replace("path_prefix: /hello", "path_prefix: /headers");
    let opts = Options { extra_args: vec!["--trace-start".into()], ..Options::default() };
    let proxy = Ringside::start_with(rt, &cfg, &opts);
    let body = client::get(proxy.addr("inbound"), "/headers").text();
    let tp = body.split("\"traceparent\":[\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_else(|| panic!("{body}"));
    assert_eq!(tp.len(), 55, "{tp}");
    assert!(tp.starts_with("00-") && tp.ends_with("-01"), "{tp}");
    let given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let body = Conn::open(proxy.addr("inbound")).get("/headers", &format!("traceparent: {given}\r\n")).text();
    assert_eq!(body.matches("traceparent").count(), 1, "{body}");
    assert!(body.contains(given), "propagated untouched: {body}");
});

/// The access log's lines, once `n` have been written (at most 5 s).
fn access_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text.lines().map(str::to_owned).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} access log lines not written: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_num(line: &str, key: &str) -> u64 {
    ringside_integration::json_field(line, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

both_runtimes!(fn access_log_counts_body_bytes_for_http1_and_h2(rt) {
    // README: one JSON line per request with its bytes. The bodies here are known: 1000 bytes
    // down, and a 500-byte request body up.
    let origin = Origin::start("app");
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("access.log");
    let opts = Options {
        extra_args: vec!["--access-log".into(), log_path.display().to_string()],
        ..Options::default()
    };
    let cfg = config(&origin).replace("path_prefix: /hello", "path_prefix: /");
    let proxy = Ringside::start_with(rt, &cfg, &opts);
    let mut c = Conn::open(proxy.addr("inbound"));
    assert_eq!(c.get("/bytes/1000", "").body.len(), 1000);
    c.send(format!("POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n{}", "x".repeat(500)).as_bytes());
    assert_eq!(c.read_response(false).expect("sink").status, 200);
    let (ok, out) = ringside_integration::h2_client(proxy.addr("inbound"), &["-path", "/bytes/1000"]);
    assert!(ok, "{out}");
    let (ok, out) = ringside_integration::h2_client(proxy.addr("inbound"), &["-method", "POST", "-path", "/sink", "-body-size", "500"]);
    assert!(ok, "{out}");
    let lines = access_lines(&log_path, 4);
    let by_proto: Vec<(&str, &String)> = ["http1 GET", "http1 POST", "h2 GET", "h2 POST"].into_iter().zip(&lines).collect();
    for (what, line) in &by_proto {
        if what.ends_with("GET") {
            assert!(log_num(line, "bytes_out") >= 1000, "{what}: the 1000-byte body is counted: {line}");
        } else {
            assert!(log_num(line, "bytes_in") >= 500, "{what}: the 500-byte request body is counted: {line}");
        }
    }
});
