//! Retry policies on routes (over the cluster's), `per_try_timeout`, gRPC status retries and
//! attempts in the access log, on both runtimes, with real Go origins and a grpc-go server
//! failing on purpose; everything counted at the origins.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringside_integration::{
    both_runtimes, client, grpc_client, json_field, metrics, GrpcServer, Options, Origin, Ringside,
};

fn start_logged(rt: ringside_integration::Runtime, config: &str) -> (Ringside, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let log = dir.join("access.log");
    let opts = Options {
        extra_args: vec!["--access-log".into(), log.display().to_string()],
        ..Options::default()
    };
    (Ringside::start_with(rt, config, &opts), log)
}

/// The access log's `attempts` for requests to `path`, once `n` of them are logged.
fn attempts(log: &Path, path: &str, n: usize) -> Vec<u32> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<u32> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| json_field(l, "path").as_deref() == Some(path))
            .map(|l| {
                json_field(l, "attempts")
                    .and_then(|a| a.parse().ok())
                    .expect("attempts")
            })
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < end,
            "{} of {n} requests for {path} logged",
            found.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn retries(proxy: &Ringside, cluster: &str, reason: &str) -> f64 {
    let text = metrics::scrape(proxy.addr("admin"));
    metrics::sample(
        &text,
        &format!("ringside_retries_total{{cluster=\"{cluster}\",reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

both_runtimes!(fn a_route_policy_retries_where_the_cluster_has_none_and_the_log_counts_attempts(rt) {
    let good = Origin::start("good");
    let bad = Origin::start_with_flags("bad", &["-fail-rate", "0.5"]);
    let cfg = format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: retried
        match: {{ path_prefix: /retried }}
        backends: [ {{ cluster: app }} ]
        retry: {{ attempts: 3, retry_on: [ 503 ], backoff: 1ms }}
      - name: plain
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: app }} ]
clusters:
  - name: app
    endpoints: [ {}, {} ]
    outlier: {{ consecutive_5xx: 0 }}
"#,
        good.addr, bad.addr
    );
    let (proxy, log) = start_logged(rt, &cfg);
    let n = 200;
    let mut conn = client::Conn::open(proxy.addr("inbound"));
    let retried_ok = (0..n).filter(|_| conn.get("/retried", "").status == 200).count();
    let plain_ok = (0..n).filter(|_| conn.get("/plain", "").status == 200).count();
    let failed_retried = bad.seen("/retried") / 2;
    let failed_plain = bad.seen("/plain") / 2;
    eprintln!("retried route: {retried_ok}/{n} ok ({failed_retried} failed at the origin); plain: {plain_ok}/{n}");
    assert_eq!(retried_ok, n, "the route's policy retried every 503");
    assert!(failed_retried > 10, "the bad endpoint failed some: {failed_retried}");
    assert_eq!(plain_ok as u64, n as u64 - failed_plain, "no policy on the other route: its 503s reach the client");
    assert_eq!(retries(&proxy, "app", "status") as u64, failed_retried);
    // The access log says how many attempts each request took.
    let retried = attempts(&log, "/retried", n);
    let extra: u32 = retried.iter().map(|a| a - 1).sum();
    assert_eq!(u64::from(extra), failed_retried, "attempts beyond the first = retries: {retried:?}");
    assert!(attempts(&log, "/plain", n).iter().all(|&a| a == 1));
});

both_runtimes!(fn per_try_timeout_moves_a_get_on_but_never_a_post(rt) {
    let fast = Origin::start("fast");
    let slow = Origin::start_with_flags("slow", &["-delay", "5s"]);
    let cfg = format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: all
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: app }} ]
        timeout: 10s
        retry: {{ attempts: 2, retry_on: [ gateway-error ], per_try_timeout: 300ms, backoff: 1ms }}
clusters:
  - name: app
    endpoints: [ {}, {} ]
    lb: round_robin
    outlier: {{ consecutive_5xx: 0 }}
"#,
        fast.addr, slow.addr
    );
    let (proxy, log) = start_logged(rt, &cfg);
    let addr = proxy.addr("inbound");
    // POSTs: one that reached the slow endpoint may have been acted on; it gets its 504.
    let mut timed_out = 0;
    for _ in 0..4 {
        let mut c = client::Conn::open(addr);
        c.send(b"POST /post HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\n\r\nx");
        let r = c.read_response(false).expect("a response");
        match r.status {
            200 => {}
            504 => {
                assert_eq!(r.header("x-ringside-error"), Some("upstream per-try timeout"));
                timed_out += 1;
            }
            other => panic!("POST answered {other}"),
        }
    }
    assert!(timed_out >= 1, "round robin sent a POST to the slow endpoint");
    assert_eq!(slow.seen("/post"), timed_out, "no POST was sent twice");
    assert_eq!(fast.seen("/post"), 4 - timed_out);
    // GETs: the slow endpoint's attempt gives up after 300 ms and the fast one answers.
    for _ in 0..6 {
        let t = Instant::now();
        let r = client::get(addr, "/get");
        assert_eq!(r.status, 200);
        assert!(t.elapsed() < Duration::from_secs(4), "a GET took {:?}", t.elapsed());
    }
    let moved = slow.seen("/get");
    assert!(moved >= 1, "round robin sent a GET to the slow endpoint");
    assert_eq!(retries(&proxy, "app", "per-try-timeout") as u64, moved);
    let logged = attempts(&log, "/get", 6);
    assert_eq!(logged.iter().filter(|&&a| a == 2).count() as u64, moved, "{logged:?}");
});

both_runtimes!(fn grpc_unavailable_is_retried_only_where_a_route_names_it(rt) {
    let good = GrpcServer::start("good");
    let bad = GrpcServer::start_with("bad", &["-unavailable-rate", "0.5"]);
    let cfg = format!(
        r#"
listeners:
  - name: retried
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: echo
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: echo }} ]
        retry: {{ attempts: 3, retry_on: [ unavailable ], backoff: 1ms }}
  - name: plain
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: echo
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: echo }} ]
  - name: stats
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: bad
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: bad }} ]
clusters:
  - name: echo
    protocol: http2
    endpoints: [ {}, {} ]
    outlier: {{ consecutive_5xx: 0 }}
  - name: bad
    protocol: http2
    endpoints: [ {} ]
"#,
        good.addr, bad.addr, bad.addr
    );
    let proxy = Ringside::start(rt, &cfg);
    let (ok, out) = grpc_client(proxy.addr("retried"), "load", &["-count", "200", "-concurrency", "4", "-size", "64"]);
    assert!(ok, "every call succeeded through the retried route: {out}");
    let (unary, unavailable) = bad_stats(proxy.addr("stats"));
    eprintln!("bad server: {unary} calls, {unavailable} answered UNAVAILABLE");
    assert!(unavailable > 10, "the bad server failed calls: {unavailable}");
    assert_eq!(retries(&proxy, "echo", "grpc-status") as u64, unavailable, "each UNAVAILABLE retried once");
    // Without a policy the status reaches the client.
    let (ok, out) = grpc_client(proxy.addr("plain"), "load", &["-count", "200", "-concurrency", "4", "-size", "64"]);
    assert!(!ok && out.contains("Unavailable"), "UNAVAILABLE reached the client: {out}");
});

/// The bad gRPC server's Unary calls and UNAVAILABLE answers (its Stats, over HTTP/1.1 through
/// Ringside's `stats` listener).
fn bad_stats(proxy: std::net::SocketAddr) -> (u64, u64) {
    let mut c = client::Conn::open(proxy);
    let r = c
        .send(b"POST /ringside.examples.Echo/Stats HTTP/1.1\r\nHost: g\r\ncontent-type: application/grpc\r\nte: trailers\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0")
        .read_response(false)
        .expect("stats");
    let text = String::from_utf8_lossy(&r.body).to_string();
    let count = |key: &str| -> u64 {
        let at = text.find(key).unwrap_or_else(|| panic!("stats: {text:?}"));
        text[at + key.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("count")
    };
    (count("unary="), count("unavailable="))
}
