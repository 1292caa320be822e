//! Retries by a cluster's policy, on both runtimes, with real Go origins failing on purpose
//! (`-fail-rate`), everything counted at the origins: 5xx retried on another endpoint, never a
//! POST, nothing without a policy, and never beyond the cluster's retry budget.

use std::time::Instant;

use ringside_integration::{
    both_runtimes, client, h2_client, json_field, metrics, Origin, Ringside,
};

fn config(origins: &[&Origin], extra: &str) -> String {
    let eps: Vec<String> = origins.iter().map(|o| o.addr.to_string()).collect();
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: default
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: app }} ]
clusters:
  - name: app
    endpoints: [ {} ]
{extra}"#,
        eps.join(", ")
    )
}

/// Sends `n` GETs for `path` on one keep-alive connection; returns how many got 200.
fn gets(proxy: &Ringside, path: &str, n: usize) -> usize {
    let mut conn = client::Conn::open(proxy.addr("inbound"));
    (0..n).filter(|_| conn.get(path, "").status == 200).count()
}

fn retries(proxy: &Ringside, reason: &str) -> f64 {
    let text = metrics::scrape(proxy.addr("admin"));
    metrics::sample(
        &text,
        &format!("ringside_retries_total{{cluster=\"app\",reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

both_runtimes!(fn a_policy_retries_5xx_on_another_endpoint(rt) {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let bad = Origin::start_with_flags("bad", &["-fail-rate", "0.5"]);
    let cfg = config(&[&a, &b, &bad], "    retry: { attempts: 3, retry_on: [ 5xx ], backoff: 1ms }\n");
    let proxy = Ringside::start(rt, &cfg);
    let n = 1200;
    let ok = gets(&proxy, "/x", n);
    let served_by_bad = bad.seen("/x");
    let failed_at_bad = served_by_bad / 2;
    eprintln!("{ok}/{n} succeeded; the bad endpoint got {served_by_bad}, failed {failed_at_bad}");
    assert!(ok as f64 >= n as f64 * 0.999, "{ok}/{n} succeeded");
    assert!(failed_at_bad > 50, "the bad endpoint failed requests: {served_by_bad}");
    // Every 503 was retried once, and every retry is one more request at the origins.
    assert_eq!(retries(&proxy, "status") as u64, failed_at_bad);
    assert_eq!(a.seen("/x") + b.seen("/x") + served_by_bad, n as u64 + failed_at_bad);
});

both_runtimes!(fn without_a_policy_5xx_reach_the_client_and_nothing_is_replayed(rt) {
    let a = Origin::start("a");
    let bad = Origin::start_with_flags("bad", &["-fail-rate", "0.5"]);
    let proxy = Ringside::start(rt, &config(&[&a, &bad], ""));
    let n = 400;
    let ok = gets(&proxy, "/x", n);
    let failed_at_bad = bad.seen("/x") / 2;
    assert_eq!((n - ok) as u64, failed_at_bad, "every 503 reached the client");
    assert_eq!(a.seen("/x") + bad.seen("/x"), n as u64, "no request was sent twice");
    assert_eq!(retries(&proxy, "status"), 0.0);
});

both_runtimes!(fn a_post_is_never_retried(rt) {
    let a = Origin::start("a");
    let bad = Origin::start_with_flags("bad", &["-fail-rate", "1"]);
    let cfg = config(&[&a, &bad], "    retry: { attempts: 3, retry_on: [ 5xx, reset ] }\n    outlier: { consecutive_5xx: 0 }\n");
    let proxy = Ringside::start(rt, &cfg);
    let mut conn = client::Conn::open(proxy.addr("inbound"));
    let mut statuses = Vec::new();
    for body in ["", "payload"] {
        // Round robin over two endpoints: of each pair, one POST lands on the bad one.
        for _ in 0..2 {
            let req = format!("POST /p HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            conn.send(req.as_bytes());
            statuses.push(conn.read_response(false).expect("response").status);
        }
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 503, 503], "the bad endpoint's 503s reached the client");
    assert_eq!((a.seen("/p"), bad.seen("/p")), (2, 2), "each POST reached one endpoint once");
    assert_eq!(retries(&proxy, "status"), 0.0);
});

both_runtimes!(fn retries_stay_within_the_budget(rt) {
    let bad1 = Origin::start_with_flags("bad1", &["-fail-rate", "1"]);
    let bad2 = Origin::start_with_flags("bad2", &["-fail-rate", "1"]);
    let cfg = config(
        &[&bad1, &bad2],
        "    retry: { attempts: 3, retry_on: [ 5xx ], backoff: 1ms }\n    retry_budget: { ratio: 0.2, min_per_second: 1 }\n    outlier: { consecutive_5xx: 0 }\n",
    );
    let proxy = Ringside::start(rt, &cfg);
    let n = 200u64;
    let started = Instant::now();
    let ok = gets(&proxy, "/x", n as usize);
    let took = started.elapsed().as_secs_f64();
    assert_eq!(ok, 0);
    let at_upstreams = bad1.seen("/x") + bad2.seen("/x");
    let retried = at_upstreams - n;
    // 0.2 × requests + 1/s × 10 s in any 10 s window; a slow run spans more windows.
    let windows = (took / 10.0).floor() + 1.0;
    let bound = 0.2 * n as f64 + 10.0 * windows;
    eprintln!("{n} requests in {took:.1}s: {retried} retries (bound {bound}; without a budget {})", 2 * n);
    assert!(retried as f64 <= bound, "{retried} retries over the budget of {bound}");
    assert!(retried >= 30, "the budget allowed retries: {retried}");
    assert_eq!(retries(&proxy, "status") as u64, retried, "counted as the upstreams saw them");
    let text = metrics::scrape(proxy.addr("admin"));
    let exhausted = metrics::sample(&text, r#"ringside_retry_budget_exhausted_total{cluster="app"}"#).unwrap_or(0.0);
    assert!(exhausted > 0.0, "{text}");
    metrics::promtool_check(&text);
});

both_runtimes!(fn h2_to_h2_retries_5xx_by_policy_and_never_a_post(rt) {
    let a = Origin::start_h2c("a");
    let b = Origin::start_h2c("b");
    let bad = Origin::start_with_flags("bad", &["-h2c", "-fail-rate", "0.5"]);
    let cfg = config(&[&a, &b, &bad], "    protocol: http2\n    retry: { attempts: 3, retry_on: [ 5xx ], backoff: 1ms }\n");
    let proxy = Ringside::start(rt, &cfg);
    let n = 300u64;
    let count = n.to_string();
    let (ok, out) = h2_client(proxy.addr("inbound"), &["-path", "/x", "-count", &count, "-concurrency", "4"]);
    assert!(ok, "{out}");
    let status = |s: &str| json_field(&out, s).map_or(0, |v| v.parse::<u64>().expect("count"));
    let failed_at_bad = bad.seen("/x") / 2;
    let retried = retries(&proxy, "status") as u64;
    assert!(failed_at_bad > 20 && retried > 20, "{out}");
    // Every 503 was either retried or, its attempts spent, answered; nothing else happened.
    assert_eq!(status("503"), failed_at_bad - retried, "{out}");
    assert_eq!(status("200") + status("503"), n, "{out}");
    assert!(status("200") as f64 >= n as f64 * 0.999, "{out}");
    assert_eq!(a.seen("/x") + b.seen("/x") + bad.seen("/x"), n + retried);
    // A POST is answered with the 503 it got.
    let (ok, out) = h2_client(proxy.addr("inbound"), &["-method", "POST", "-path", "/p", "-count", "30"]);
    assert!(ok, "{out}");
    assert_eq!(a.seen("/p") + b.seen("/p") + bad.seen("/p"), 30, "no POST sent twice: {out}");
    assert_eq!(json_field(&out, "503").map_or(0, |v| v.parse::<u64>().expect("count")), bad.seen("/p") / 2, "{out}");
});
