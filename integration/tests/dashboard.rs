//! The chart's Grafana dashboard (`charts/ringside/dashboards/ringside.json`) against a live
//! Ringside in split mode (io_uring and epoll workers side by side) and a real Prometheus
//! scraping it: every metric the dashboard names is in a real `/metrics` scrape, and every
//! query, run by Prometheus itself, is valid PromQL that returns data once the traffic each
//! panel shows (retries, ejections, circuit breaking, shedding, rate limits, timeouts, TLS
//! handshakes, a reload) has happened. The runtime panels must show both runtimes.

use std::collections::BTreeSet;
use std::time::Duration;

use ringside_integration::pki::{p, tls_client, Pki};
use ringside_integration::procs::workspace_root;
use ringside_integration::prometheus::Prometheus;
use ringside_integration::{client, metrics, Options, Origin, Ringside, Runtime};

fn dashboard() -> serde_json::Value {
    let path = workspace_root().join("charts/ringside/dashboards/ringside.json");
    let text = std::fs::read_to_string(&path).expect("read the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every `expr` in the dashboard (panel targets and annotations), in order.
fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The `ringside_*` names a text mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("ringside_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// Grafana's variables as a query inspector would expand them for "All".
fn expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$namespace", ".*")
        .replace("$pod", ".*")
}

fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// The peers' addresses, in the config's terms.
struct Peers {
    good: String,
    flaky: String,
    failing: String,
    slow: String,
    closed: String,
}

fn config(peers: &Peers, tls: &str, extra_route: &str) -> String {
    let Peers {
        good,
        flaky,
        failing,
        slow,
        closed,
    } = peers;
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:{extra_route}
      - name: app
        match: {{ path_prefix: /app }}
        backends: [ {{ cluster: good }} ]
      - name: eject
        match: {{ path_prefix: /eject }}
        backends: [ {{ cluster: ejecting }} ]
        retry: {{ attempts: 3, retry_on: [ connect-failure ] }}
      - name: flaky
        match: {{ path_prefix: /flaky }}
        backends: [ {{ cluster: flaky }} ]
        retry: {{ attempts: 2, retry_on: [ 5xx ] }}
      - name: fail
        match: {{ path_prefix: /fail }}
        backends: [ {{ cluster: failing }} ]
      - name: slow
        match: {{ path_prefix: /slow }}
        timeout: 1s
        backends: [ {{ cluster: slow }} ]
      - name: limited
        match: {{ path_prefix: /rl }}
        rate_limit: {{ requests_per_second: 1, burst: 1 }}
        backends: [ {{ cluster: good }} ]
  - name: shedding
    address: 127.0.0.1:0
    protocol: http
    limits: {{ max_requests: 1 }}
    routes:
      - name: shed-slow
        match: {{ path_prefix: / }}
        timeout: 1s
        backends: [ {{ cluster: slow-unlimited }} ]
  - name: secure
    address: 127.0.0.1:0
    protocol: http
    tls: {{ {tls} }}
    routes:
      - name: secure-app
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: good }} ]
clusters:
  - name: good
    endpoints: [ {good} ]
  - name: ejecting
    endpoints: [ {closed}, {good} ]
    outlier: {{ consecutive_5xx: 1 }}
  - name: flaky
    endpoints: [ {flaky} ]
  - name: failing
    endpoints: [ {failing} ]
    retry: {{ attempts: 2, retry_on: [ 5xx ] }}
    retry_budget: {{ ratio: 0, min_per_second: 0 }}
  - name: slow
    endpoints: [ {slow} ]
    limits: {{ max_requests: 1 }}
  - name: slow-unlimited
    endpoints: [ {slow} ]
"#
    )
}

/// Sends one request to `path` on `addr` from a thread, and waits until the slow origin has
/// it, so the next request finds the slot taken.
fn hold_one(
    addr: std::net::SocketAddr,
    path: &'static str,
    slow: &Origin,
) -> std::thread::JoinHandle<u16> {
    let before = slow.seen(path);
    let h = std::thread::spawn(move || client::get(addr, path).status);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while slow.seen(path) == before {
        assert!(
            std::time::Instant::now() < end,
            "the slow origin never got {path}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    h
}

#[test]
fn every_dashboard_query_returns_data_from_a_live_split_instance() {
    let board = dashboard();
    let mut queries = Vec::new();
    exprs(&board, &mut queries);
    assert!(queries.len() >= 20, "only {} queries found", queries.len());

    let good = Origin::start("good");
    let flaky = Origin::start_with_flags("flaky", &["-fail-rate", "0.5"]);
    let failing = Origin::start_with_flags("failing", &["-fail-rate", "1"]);
    let slow = Origin::start_with_flags("slow", &["-delay", "5s"]);
    let closed = closed_port();
    let pki = Pki::new();
    let (_, cert, key) = pki.server("server", "spiffe://td.test/ns/shop/sa/ringside");
    let tls = format!("cert: {}, key: {}", p(&cert), p(&key));
    let peers = Peers {
        good: good.addr.to_string(),
        flaky: flaky.addr.to_string(),
        failing: failing.addr.to_string(),
        slow: slow.addr.to_string(),
        closed: closed.to_string(),
    };
    let cfg = |extra: &str| config(&peers, &tls, extra);
    let opts = Options {
        workers: 2,
        runtime_flag: Some("split"),
        kubelet_layout: true,
        ..Options::default()
    };
    let proxy = Ringside::start_with(Runtime::Epoll, &cfg(""), &opts);
    let admin = proxy.addr("admin");
    let prom = Prometheus::start(&[admin]);
    prom.wait_nonempty(r#"up{job="ringside"} == 1"#, Duration::from_secs(30));

    // Traffic for every panel, while Prometheus scrapes every second.
    let inbound = proxy.addr("inbound");
    for _ in 0..200 {
        assert_eq!(client::get(inbound, "/app/x").status, 200);
    }
    for _ in 0..5 {
        assert_eq!(
            client::get(inbound, "/eject").status,
            200,
            "{}",
            proxy.log_text()
        );
    }
    for _ in 0..10 {
        assert_eq!(client::get(inbound, "/flaky").status, 200, "retried on 503");
    }
    for _ in 0..5 {
        assert_eq!(client::get(inbound, "/fail").status, 503);
    }
    let held = hold_one(inbound, "/slow", &slow);
    let r = client::get(inbound, "/slow");
    assert_eq!(
        (r.status, r.header("x-ringside-error")),
        (503, Some("overflow"))
    );
    assert_eq!(held.join().expect("client"), 504);
    let held = hold_one(proxy.addr("shedding"), "/shed", &slow);
    let r = client::get(proxy.addr("shedding"), "/shed");
    assert_eq!(
        (r.status, r.header("x-ringside-error")),
        (503, Some("overloaded"))
    );
    assert_eq!(held.join().expect("client"), 504);
    let limited = (0..5)
        .filter(|_| client::get(inbound, "/rl").status == 429)
        .count();
    assert!(limited > 0, "the route rate limit never refused");
    let url = format!("https://localhost:{}/", proxy.addr("secure").port());
    let (ok, lines) = tls_client(
        &url,
        &["-ca", &p(&pki.ca_path), "-count", "10", "-new-conn"],
    );
    assert!(ok, "{lines:?}");
    let extra = "\n      - name: added\n        match: { path: /added }\n        backends: [ { cluster: good } ]";
    proxy.kubelet_update(&cfg(extra));
    metrics::wait_sample(
        admin,
        r#"ringside_config_reloads_total{result="applied"}"#,
        Duration::from_secs(10),
        |v| v >= 1.0,
    );

    // Every metric the dashboard names (queries and variables) is in a real scrape.
    let scrape = metrics::scrape(admin);
    let exported = metric_names(&scrape);
    let mut named = BTreeSet::new();
    named.extend(metric_names(&board.to_string()));
    for m in &named {
        assert!(
            exported.contains(m),
            "the dashboard queries {m}, which /metrics does not export:\n{scrape}"
        );
    }

    // Prometheus runs every query: valid PromQL, and data once the traffic is scraped.
    for q in &queries {
        prom.wait_nonempty(&expand(q), Duration::from_secs(30));
    }
    // The comparison panels show each runtime separately.
    let requests = queries
        .iter()
        .find(|q| q.starts_with("sum by (runtime) (rate(ringside_requests_total"))
        .expect("a requests-by-runtime panel");
    let by_runtime = prom.wait_nonempty(&expand(requests), Duration::from_secs(1));
    let runtimes: BTreeSet<_> = by_runtime
        .iter()
        .filter_map(|s| s["metric"]["runtime"].as_str())
        .collect();
    assert_eq!(
        runtimes,
        BTreeSet::from(["epoll", "io_uring"]),
        "requests by runtime: {by_runtime:?}\n{}",
        prom.log()
    );
}
