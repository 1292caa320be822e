//! Certificate rotation on both runtimes: certificate files replaced the way kubelet updates
//! a mounted Secret, every second, while wrk runs over TLS (kept-alive connections and a new
//! handshake per request): no request fails, new handshakes show the new certificate, and a
//! broken pair is refused while the last good one keeps serving.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringside_integration::kubelet;
use ringside_integration::metrics::wait_sample;
use ringside_integration::pki::{tls_client, Leaf, LeafSpec, Pki};
use ringside_integration::{both_runtimes, json_field, Origin, Ringside};

fn server_leaf(pki: &Pki) -> Leaf {
    pki.ca.leaf(&LeafSpec {
        dns: &["localhost"],
        ips: &["127.0.0.1"],
        ..LeafSpec::default()
    })
}

/// The serial a new handshake sees.
fn serial(url: &str, ca: &str) -> Option<String> {
    let (ok, lines) = tls_client(url, &["-ca", ca, "-new-conn"]);
    ok.then(|| lines.first().and_then(|l| json_field(l, "server_serial")))
        .flatten()
}

fn wait_serial(url: &str, ca: &str, want: &str, within: Duration) {
    let end = Instant::now() + within;
    loop {
        if serial(url, ca).as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < end,
            "new handshakes never showed serial {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// wrk's summary: (requests, failures: non-2xx + socket errors).
fn wrk_failures(out: &str) -> (u64, u64) {
    let num = |prefix: &str| -> u64 {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .map(|n| n.parse::<u64>().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    let requests = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (
        requests,
        num("Socket errors:") + num("Non-2xx or 3xx responses:"),
    )
}

both_runtimes!(
    fn certificates_rotate_under_load_without_a_failed_request(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let secret = tempfile::tempdir().expect("secret dir");
        let first = server_leaf(&pki);
        kubelet::create_files(secret.path(), &[("tls.crt", &first.cert_pem), ("tls.key", &first.key_pem)]);
        let dir = secret.path().display().to_string();
        let config = format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    tls: {{ cert: {dir}/tls.crt, key: {dir}/tls.key }}\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\nclusters:\n  - name: app\n    endpoints: [ {} ]\n",
            origin.addr
        );
        let proxy = Ringside::start(rt, &config);
        let port = proxy.addr("inbound").port();
        let url = format!("https://localhost:{port}/");
        let ca = pki.ca_path.display().to_string();
        assert_eq!(serial(&url, &ca), Some(first.serial.clone()));
        let target = format!("https://127.0.0.1:{port}/");
        let wrk = |extra: &[&str]| {
            Command::new("wrk")
                .args(["-t1", "-c4", "-d6s", "--timeout", "5s"])
                .args(extra)
                .arg(&target)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run wrk")
        };
        let kept = wrk(&[]);
        let churn = wrk(&["-H", "Connection: close"]);
        // Three rotations, a second apart; each new pair must reach new handshakes.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_secs(1));
            let next = server_leaf(&pki);
            kubelet::update_files(secret.path(), &[("tls.crt", &next.cert_pem), ("tls.key", &next.key_pem)]);
            wait_serial(&url, &ca, &next.serial, Duration::from_secs(10));
        }
        // A certificate with the wrong key: refused, the last good pair keeps serving.
        let good = serial(&url, &ca).expect("serial");
        let (a, b) = (server_leaf(&pki), server_leaf(&pki));
        kubelet::update_files(secret.path(), &[("tls.crt", &a.cert_pem), ("tls.key", &b.key_pem)]);
        wait_sample(proxy.addr("admin"), "ringside_config_reloads_total{result=\"rejected\"}", Duration::from_secs(10), |v| v >= 1.0);
        assert_eq!(serial(&url, &ca), Some(good), "a broken pair replaced the good one");
        for (what, child) in [("keep-alive", kept), ("new connection per request", churn)] {
            let out = child.wait_with_output().expect("wrk");
            let text = String::from_utf8_lossy(&out.stdout);
            let (requests, failures) = wrk_failures(&text);
            assert!(requests > 100, "wrk ({what}) made too few requests: {text}");
            assert_eq!(failures, 0, "wrk ({what}) saw failures across rotations: {text}\n{}", proxy.log_text());
        }
        assert!(proxy.log_text().contains("does not match"), "the rejected pair was not logged");
    }
);
