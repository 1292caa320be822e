//! TLS origination on both runtimes: a sidecar-to-sidecar mutual TLS hop (app → Ringside A →
//! mTLS with A's identity → Ringside B → app) over HTTP/1.1 and HTTP/2 clusters, an upstream
//! checked by SPIFFE ID instead of host name, and a Go TLS origin checked by host name.

use std::process::Command;
use std::time::Duration;

use ringside_integration::metrics::wait_sample;
use ringside_integration::pki::{p, Pki};
use ringside_integration::{both_runtimes, Origin, Ringside, Runtime};

const A_ID: &str = "spiffe://td.test/ns/shop/sa/frontend";
const B_ID: &str = "spiffe://td.test/ns/shop/sa/payments";
const BATCH_ID: &str = "spiffe://td.test/ns/shop/sa/batch";

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Ringside B: terminates mutual TLS, admits only A's identity, forwards to `origin`.
fn terminating(rt: Runtime, pki: &Pki, origin: &Origin) -> Ringside {
    let (_, c, k) = pki.server("b", B_ID);
    Ringside::start(
        rt,
        &format!(
            r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    tls: {{ cert: {}, key: {}, client_ca: {} }}
    authz: {{ allow: [ "{A_ID}" ] }}
    routes:
      - name: default
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: app }} ]
clusters:
  - name: app
    endpoints: [ {} ]
"#,
            p(&c),
            p(&k),
            p(&pki.ca_path),
            origin.addr
        ),
    )
}

/// Ringside A: plaintext for the local app, TLS with `id`'s certificate toward `upstream`.
fn originating(
    rt: Runtime,
    pki: &Pki,
    upstream: &str,
    id: &str,
    cluster_tls: &str,
    protocol: &str,
) -> Ringside {
    let name = id.rsplit('/').next().unwrap_or("client");
    let (_, c, k) = pki.client(name, id);
    Ringside::start(
        rt,
        &format!(
            r#"
listeners:
  - name: outbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: default
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: mesh }} ]
clusters:
  - name: mesh
    endpoints: [ {upstream} ]
    protocol: {protocol}
    tls: {{ ca: {}, cert: {}, key: {}, {cluster_tls} }}
"#,
            p(&pki.ca_path),
            p(&c),
            p(&k),
        ),
    )
}

both_runtimes!(
    fn a_sidecar_to_sidecar_hop_carries_the_callers_identity(rt) {
        let pki = Pki::new();
        let origin = Origin::start("payments");
        let b = terminating(rt, &pki, &origin);
        let b_addr = b.addr("inbound").to_string();
        for protocol in ["http1", "http2"] {
            let a = originating(rt, &pki, &b_addr, A_ID, &format!("server_identity: \"{B_ID}\""), protocol);
            let url = format!("http://{}/headers", a.addr("outbound"));
            for _ in 0..3 {
                let (ok, out) = curl(&[&url]);
                assert!(ok, "{out}\nA:\n{}\nB:\n{}", a.log_text(), b.log_text());
                assert!(out.contains(&format!("By={B_ID};Hash=")) && out.contains(&format!(";URI={A_ID}")), "{protocol}: {out}");
                // The app's own client spoke plaintext to A: x-forwarded-proto stays as A set it.
                assert!(out.contains("\"x-forwarded-proto\":[\"http\"]"), "{out}");
            }
            let ok_series = "ringside_upstream_tls_handshakes_total{cluster=\"mesh\",result=\"ok\"}";
            // Pooled: three requests, one handshake.
            wait_sample(a.addr("admin"), ok_series, Duration::from_secs(5), |v| v == 1.0);
        }
        // Another workload's certificate from the same CA is refused by B's authz: 403.
        let batch = originating(rt, &pki, &b_addr, BATCH_ID, &format!("server_identity: \"{B_ID}\""), "http1");
        let (ok, out) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}/", batch.addr("outbound"))]);
        assert!(ok && out == "403", "batch: {out}");
        wait_sample(b.addr("admin"), "ringside_authz_decisions_total{listener=\"inbound\",result=\"denied\"}", Duration::from_secs(5), |v| v >= 1.0);
    }
);

both_runtimes!(
    fn an_upstream_with_the_wrong_identity_is_refused_before_any_request_byte(rt) {
        let pki = Pki::new();
        let origin = Origin::start("payments");
        let b = terminating(rt, &pki, &origin);
        let b_addr = b.addr("inbound").to_string();
        // A expects another workload behind that address: the handshake fails, 502, and B's
        // app never sees the request.
        let a = originating(rt, &pki, &b_addr, A_ID, "server_identity: \"spiffe://td.test/ns/shop/sa/ledger\"", "http1");
        let (ok, out) = curl(&["-i", &format!("http://{}/secret", a.addr("outbound"))]);
        assert!(ok && out.starts_with("HTTP/1.1 502"), "{out}");
        assert!(out.to_ascii_lowercase().contains("x-ringside-error: upstream tls handshake failed"), "{out}");
        wait_sample(a.addr("admin"), "ringside_upstream_tls_handshakes_total{cluster=\"mesh\",result=\"bad_identity\"}", Duration::from_secs(5), |v| v >= 1.0);
        let (_, seen) = curl(&[&format!("http://{}/seen?path=/secret", origin.addr)]);
        assert_eq!(seen.trim(), "0", "the request reached the app");
    }
);

both_runtimes!(
    fn a_go_tls_origin_is_verified_by_host_name_over_h1_and_h2(rt) {
        let pki = Pki::new();
        let (_, c, k) = pki.server("origin", "spiffe://td.test/ns/shop/sa/origin");
        let (cert, key) = (p(&c), p(&k));
        let origin = Origin::start_with_flags("tls-origin", &["-tls-cert", &cert, "-tls-key", &key]);
        let upstream = origin.addr.to_string();
        for (protocol, proto) in [("http1", "HTTP/1.1"), ("http2", "HTTP/2.0")] {
            // No client certificate needed by this origin: files without `cert` work too.
            let a = Ringside::start(
                rt,
                &format!(
                    "listeners:\n  - name: outbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: o }} ]\nclusters:\n  - name: o\n    endpoints: [ {upstream} ]\n    protocol: {protocol}\n    tls: {{ ca: {}, server_name: localhost }}\n",
                    p(&pki.ca_path)
                ),
            );
            let (ok, out) = curl(&["-i", &format!("http://{}/headers", a.addr("outbound"))]);
            assert!(ok && out.starts_with("HTTP/1.1 200"), "{protocol}: {out}\n{}", a.log_text());
            assert!(out.contains(&format!("\"proto\":\"{proto}\"")), "{protocol}: {out}");
        }
        // Checked against a name the certificate does not have: refused.
        let a = Ringside::start(
            rt,
            &format!(
                "listeners:\n  - name: outbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: o }} ]\nclusters:\n  - name: o\n    endpoints: [ {upstream} ]\n    tls: {{ ca: {}, server_name: other.example }}\n",
                p(&pki.ca_path)
            ),
        );
        let (ok, out) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}/", a.addr("outbound"))]);
        assert!(ok && out == "502", "{out}");
        wait_sample(a.addr("admin"), "ringside_upstream_tls_handshakes_total{cluster=\"o\",result=\"bad_identity\"}", Duration::from_secs(5), |v| v >= 1.0);
    }
);
