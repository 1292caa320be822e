//! Route rate limits on both runtimes: a route at 100 requests/s with a burst of 10, loaded by
//! wrk through two workers, admits 100/s (±5 %) counted at the origin; the rest get 429 with
//! Retry-After, over HTTP/1.1 and HTTP/2 alike.

use std::process::Command;
use std::time::Duration;

use ringside_integration::metrics::wait_sample;
use ringside_integration::{both_runtimes, h2_client, json_field, Options, Origin, Ringside};

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

both_runtimes!(
    fn a_route_rate_limit_admits_its_rate_across_workers(rt) {
        let origin = Origin::start("app");
        let config = format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      - name: limited\n        match: {{ path_prefix: /rl }}\n        backends: [ {{ cluster: app }} ]\n        rate_limit: {{ requests_per_second: 100, burst: 10 }}\n      - name: other\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\nclusters:\n  - name: app\n    endpoints: [ {} ]\n",
            origin.addr
        );
        let proxy = Ringside::start_with(rt, &config, &Options { workers: 2, ..Options::default() });
        let base = format!("http://{}", proxy.addr("inbound"));
        // Over the limit: 429 with Retry-After, on HTTP/1.1 and h2c; other routes unaffected.
        // 30 requests back to back on one connection: the burst of 10 and a few more pass.
        let url = format!("{base}/rl/burst");
        let mut args = vec!["-D", "-", "-o", "/dev/null"];
        args.extend(std::iter::repeat_n(url.as_str(), 30));
        let heads = curl(&args).to_ascii_lowercase();
        let refused = heads.matches("http/1.1 429").count();
        assert!(refused >= 10, "{refused} of 30 refused:\n{heads}");
        assert!(heads.contains("retry-after: 1\r\n"), "{heads}");
        // The same over h2c (Go's client, 30 requests on one connection).
        let (ok, out) = h2_client(proxy.addr("inbound"), &["-path", "/rl/burst", "-count", "30"]);
        assert!(ok, "{out}");
        let refused: u64 = json_field(&out, "429").and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!(refused >= 10, "h2: {out}");
        assert!(curl(&["-i", &format!("{base}/other")]).starts_with("HTTP/1.1 200"));
        // Five seconds of load well above the rate, spread over both workers.
        std::thread::sleep(Duration::from_secs(1));
        let out = Command::new("wrk")
            .args(["-t2", "-c8", "-d5s", &format!("{base}/rl/load")])
            .output()
            .expect("wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        let seen: f64 = curl(&[&format!("http://{}/seen?path=/rl/load", origin.addr)]).trim().parse().expect("seen");
        // burst + 5 s × 100/s; wrk's run lasts its -d give or take a few milliseconds.
        let want = 10.0 + 5.0 * 100.0;
        assert!((seen - want).abs() <= want * 0.05, "origin saw {seen} requests, want {want} ± 5 %\n{text}");
        wait_sample(proxy.addr("admin"), "ringside_rate_limited_total{listener=\"inbound\",route=\"limited\"}", Duration::from_secs(5), |v| v > 100.0);
    }
);
