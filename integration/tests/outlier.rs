//! Outlier ejection (passive health) with real Go origins, one of them failing on purpose
//! (`-fail-rate`), on both runtimes: consecutive failures eject an endpoint for every worker,
//! `max_ejection_percent` bounds how many, and `/clusters` and the metrics show it.

use std::time::Duration;

use ringside_integration::{both_runtimes, client, metrics, Options, Origin, Ringside};

fn config(origins: &[&Origin], outlier: &str) -> String {
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
    outlier: {outlier}
"#,
        eps.join(", ")
    )
}

fn clusters(proxy: &Ringside) -> String {
    client::get(proxy.addr("admin"), "/clusters").text()
}

both_runtimes!(fn consecutive_failures_eject_an_endpoint_for_every_worker(rt) {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let bad = Origin::start_with_flags("bad", &["-fail-rate", "1"]);
    let opts = Options { workers: 2, ..Options::default() };
    let proxy = Ringside::start_with(rt, &config(&[&a, &b, &bad], "{ consecutive_5xx: 3, base_ejection: 60s }"), &opts);
    // One request at a time: the bad endpoint fails exactly 3 times in a row, whichever
    // worker each request lands on, and is then ejected for all of them.
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses.push(client::get(proxy.addr("inbound"), "/x").status);
    }
    let failed = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(failed, 3, "{statuses:?}");
    assert_eq!(bad.seen("/x"), 3, "nothing reached the ejected endpoint after its third failure");
    assert_eq!(a.seen("/x") + b.seen("/x"), 57);
    let text = clusters(&proxy);
    let bad_addr = bad.addr.to_string();
    let entry = text.split("\"address\"").find(|e| e.contains(&bad_addr)).expect("the bad endpoint in /clusters");
    assert!(entry.contains("\"state\": \"ejected\""), "{text}");
    metrics::wait_sample(proxy.addr("admin"), r#"ringside_outlier_ejections_total{cluster="app"}"#, Duration::from_secs(5), |v| v == 1.0);
});

both_runtimes!(fn max_ejection_percent_keeps_the_cluster_serving(rt) {
    let a = Origin::start("a");
    let bad1 = Origin::start_with_flags("bad1", &["-fail-rate", "1"]);
    let bad2 = Origin::start_with_flags("bad2", &["-fail-rate", "1"]);
    let proxy = Ringside::start(rt, &config(&[&a, &bad1, &bad2], "{ consecutive_5xx: 2, max_ejection_percent: 34 }"));
    for _ in 0..60 {
        client::get(proxy.addr("inbound"), "/x");
    }
    // 34 % of 3 allows one ejection: the second bad endpoint keeps its traffic.
    let text = clusters(&proxy);
    assert_eq!(text.matches("\"state\": \"ejected\"").count(), 1, "{text}");
    assert_eq!(bad1.seen("/x").min(bad2.seen("/x")), 2, "the ejected one got 2 requests");
    assert!(bad1.seen("/x").max(bad2.seen("/x")) > 10, "the other kept getting traffic");
});

both_runtimes!(fn ejection_is_off_with_zero(rt) {
    let a = Origin::start("a");
    let bad = Origin::start_with_flags("bad", &["-fail-rate", "1"]);
    let proxy = Ringside::start(rt, &config(&[&a, &bad], "{ consecutive_5xx: 0 }"));
    for _ in 0..20 {
        client::get(proxy.addr("inbound"), "/x");
    }
    assert_eq!(bad.seen("/x"), 10, "round robin, never ejected");
    assert!(!clusters(&proxy).contains("ejected\""));
});
