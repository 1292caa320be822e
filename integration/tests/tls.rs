//! TLS termination on both runtimes, against real peers: curl and Go's crypto/tls. ALPN picks
//! HTTP/2 or HTTP/1.1, SNI picks the certificate, mutual TLS refuses clients without a
//! certificate from the right CA (and expired ones, and TLS 1.1), identities are authorised
//! per listener and route, and permissive mode serves TLS and plaintext on one port.

use std::process::Command;
use std::time::Duration;

use ringside_integration::metrics::{scrape, wait_sample};
use ringside_integration::pki::{p, tls_client, LeafSpec, Pki};
use ringside_integration::{both_runtimes, json_field, Options, Origin, Ringside};

const SERVER_ID: &str = "spiffe://td.test/ns/shop/sa/server";
const CLIENT_ID: &str = "spiffe://td.test/ns/shop/sa/frontend";
const OTHER_ID: &str = "spiffe://td.test/ns/shop/sa/batch";

/// One http listener with `tls` (inline YAML mapping body) and optional `authz` lines.
fn config(origin: &Origin, tls: &str, listener_extra: &str, routes: &str) -> String {
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    tls: {{ {tls} }}
{listener_extra}
    routes:
{routes}
      - name: default
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: app }} ]
clusters:
  - name: app
    endpoints: [ {} ]
"#,
        origin.addr
    )
}

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

fn url(proxy: &Ringside, path: &str) -> String {
    format!("https://localhost:{}{path}", proxy.addr("inbound").port())
}

both_runtimes!(
    fn alpn_picks_the_protocol_and_sni_picks_the_certificate(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let (default, c, k) = pki.server("default", SERVER_ID);
        let (other, oc, ok) = pki.issue(
            "other",
            &LeafSpec { dns: &["api.example.test"], ..LeafSpec::default() },
        );
        let tls = format!(
            "cert: {}, key: {}, sni: [ {{ server_names: [ api.example.test ], cert: {}, key: {} }} ]",
            p(&c), p(&k), p(&oc), p(&ok)
        );
        let proxy = Ringside::start(rt, &config(&origin, &tls, "", ""));
        let ca = p(&pki.ca_path);
        // curl offers h2 and http/1.1 and gets h2; forced to HTTP/1.1 it gets that.
        let (ok2, out) = curl(&["--cacert", &ca, "--http2", "-w", "\n%{http_version}", &url(&proxy, "/headers")]);
        assert!(ok2, "{out}\n{}", proxy.log_text());
        assert!(out.ends_with("\n2"), "curl --http2 did not get HTTP/2: {out}");
        assert!(out.contains("\"x-forwarded-proto\":[\"https\"]"), "{out}");
        let (ok1, out) = curl(&["--cacert", &ca, "--http1.1", "-w", "\n%{http_version}", &url(&proxy, "/")]);
        assert!(ok1 && out.ends_with("\n1.1"), "{out}");
        // Go's client: TLS 1.3, ALPN h2, the default certificate without a matching SNI ...
        let (ok, lines) = tls_client(&url(&proxy, "/"), &["-ca", &ca]);
        assert!(ok, "{lines:?}");
        let l = &lines[0];
        assert_eq!(json_field(l, "tls_version").as_deref(), Some("TLS 1.3"), "{l}");
        assert_eq!(json_field(l, "alpn").as_deref(), Some("h2"), "{l}");
        assert_eq!(json_field(l, "server_serial"), Some(default.serial.clone()), "{l}");
        // ... and the SNI entry's certificate for its name, over TLS 1.2 too.
        let port = proxy.addr("inbound").port();
        let api = format!("https://api.example.test:{port}/");
        for max in ["1.2", "1.3"] {
            let resolve = format!("api.example.test:{port}:127.0.0.1");
            let (ok, out) = curl(&["--cacert", &ca, "--resolve", &resolve, "--tls-max", max, "-w", "\n%{ssl_verify_result}", &api]);
            assert!(ok && out.ends_with("\n0"), "SNI api.example.test (TLS {max}): {out}");
        }
        let (ok, lines) = tls_client(&url(&proxy, "/"), &["-ca", &ca, "-sni", "api.example.test", "-max-version", "1.2", "-alpn", "http/1.1"]);
        assert!(ok, "{lines:?}");
        assert_eq!(json_field(&lines[0], "server_serial"), Some(other.serial), "{lines:?}");
        assert_eq!(json_field(&lines[0], "tls_version").as_deref(), Some("TLS 1.2"), "{lines:?}");
        assert_eq!(json_field(&lines[0], "proto").as_deref(), Some("HTTP/1.1"), "{lines:?}");
        // Session resumption: a second handshake from the same client resumes.
        let (ok, lines) = tls_client(&url(&proxy, "/"), &["-ca", &ca, "-count", "2", "-new-conn"]);
        assert!(ok, "{lines:?}");
        assert_eq!(json_field(&lines[1], "resumed").as_deref(), Some("true"), "{lines:?}");
        let admin = proxy.addr("admin");
        let text = scrape(admin);
        assert!(text.contains("ringside_tls_handshakes_total{listener=\"inbound\",result=\"ok\"}"), "{text}");
    }
);

both_runtimes!(
    fn mutual_tls_admits_only_valid_client_certificates(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let (_, c, k) = pki.server("server", SERVER_ID);
        let (_, cc, ck) = pki.client("frontend", CLIENT_ID);
        let (_, ec, ek) = pki.issue(
            "expired",
            &LeafSpec { spiffe: Some(CLIENT_ID), validity: Some(((2020, 1, 1), (2021, 1, 1))), ..LeafSpec::default() },
        );
        let stranger = Pki::new();
        let (_, sc, sk) = stranger.client("stranger", CLIENT_ID);
        let tls = format!("cert: {}, key: {}, client_ca: {}", p(&c), p(&k), p(&pki.ca_path));
        let log_dir = tempfile::tempdir().expect("log dir");
        let log_path = log_dir.path().join("access.log");
        let opts = Options { extra_args: vec!["--access-log".into(), log_path.display().to_string()], ..Options::default() };
        let proxy = Ringside::start_with(rt, &config(&origin, &tls, "", ""), &opts);
        let ca = p(&pki.ca_path);
        let admin = proxy.addr("admin");
        // A client certificate from the CA: the request reaches the app with the identity in
        // x-forwarded-client-cert, and the client's own copy of that header is gone.
        let (ok, lines) = tls_client(
            &url(&proxy, "/headers"),
            &["-ca", &ca, "-cert", &p(&cc), "-key", &p(&ck), "-header", "x-forwarded-client-cert:By=forged;URI=spiffe://td.test/ns/shop/sa/admin"],
        );
        assert!(ok, "{lines:?}\n{}", proxy.log_text());
        let body = &lines[0];
        assert!(body.contains(&format!("By={SERVER_ID};Hash=")), "{body}");
        assert!(body.contains(&format!(";URI={CLIENT_ID}")), "{body}");
        assert!(!body.contains("forged") && !body.contains("sa/admin"), "client XFCC forwarded: {body}");
        // The access log names the client.
        let logged = format!("\"peer_identity\":\"{CLIENT_ID}\"");
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(&log_path).unwrap_or_default().contains(&logged) {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            assert!(std::time::Instant::now() < end, "no access log line with {logged}:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The same over HTTP/1.1 (curl), where headers are rewritten in the HTTP/1 encoder.
        let (ok, out) = curl(&["--cacert", &ca, "--cert", &p(&cc), "--key", &p(&ck), "--http1.1", "-H", "x-forwarded-client-cert: forged", &url(&proxy, "/headers")]);
        assert!(ok && out.contains(&format!(";URI={CLIENT_ID}")) && !out.contains("forged"), "{out}");
        // No certificate, another CA's, an expired one, TLS 1.1 only: refused, each counted.
        let refused = [
            ("no_client_cert", vec!["-ca", &ca]),
            ("expired", vec!["-ca", &ca, "-cert", ec.to_str().unwrap_or(""), "-key", ek.to_str().unwrap_or("")]),
            ("incompatible", vec!["-ca", &ca, "-cert", cc.to_str().unwrap_or(""), "-key", ck.to_str().unwrap_or(""), "-min-version", "1.0", "-max-version", "1.1"]),
        ];
        for (result, args) in &refused {
            let (ok, lines) = tls_client(&url(&proxy, "/"), args);
            assert!(!ok, "{result}: a refused client got through: {lines:?}");
            let series = format!("ringside_tls_handshakes_total{{listener=\"inbound\",result=\"{result}\"}}");
            wait_sample(admin, &series, Duration::from_secs(10), |v| v >= 1.0);
        }
        // Another CA's certificate: Go's client does not even send it (it is not signed by a CA
        // the server asked for); curl does, and it is refused as an unknown CA.
        let (ok, out) = curl(&["--cacert", &ca, "--cert", &p(&sc), "--key", &p(&sk), &url(&proxy, "/")]);
        assert!(!ok, "{out}");
        wait_sample(admin, "ringside_tls_handshakes_total{listener=\"inbound\",result=\"unknown_ca\"}", Duration::from_secs(10), |v| v >= 1.0);
        // curl without a client certificate fails too; with one it still works afterwards.
        let (ok, out) = curl(&["--cacert", &ca, &url(&proxy, "/")]);
        assert!(!ok, "{out}");
        let (ok, out) = curl(&["--cacert", &ca, "--cert", &p(&cc), "--key", &p(&ck), &url(&proxy, "/")]);
        assert!(ok && out.contains("hello from app"), "{out}");
    }
);

both_runtimes!(
    fn authz_admits_listed_identities_and_refuses_others_with_403(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let (_, c, k) = pki.server("server", SERVER_ID);
        let (_, fc, fk) = pki.client("frontend", CLIENT_ID);
        let (_, bc, bk) = pki.client("batch", OTHER_ID);
        let tls = format!("cert: {}, key: {}, client_ca: {}", p(&c), p(&k), p(&pki.ca_path));
        // The listener admits the namespace; /admin only the frontend.
        let listener_authz = "    authz: { allow: [ \"spiffe://td.test/ns/shop/*\" ] }";
        let routes = format!(
            "      - name: admin\n        match: {{ path_prefix: /admin }}\n        backends: [ {{ cluster: app }} ]\n        authz: {{ allow: [ \"{CLIENT_ID}\" ] }}"
        );
        let proxy = Ringside::start(rt, &config(&origin, &tls, listener_authz, &routes));
        let ca = p(&pki.ca_path);
        let admin = proxy.addr("admin");
        let get = |path: &str, cert: &std::path::Path, key: &std::path::Path, proto: &str| {
            let (ok, out) = curl(&["--cacert", &ca, "--cert", &p(cert), "--key", &p(key), proto, "-o", "/dev/null", "-w", "%{http_code}", &url(&proxy, path)]);
            assert!(ok, "{out}");
            out
        };
        for proto in ["--http1.1", "--http2"] {
            assert_eq!(get("/admin/x", &fc, &fk, proto), "200", "frontend on /admin ({proto})");
            assert_eq!(get("/admin/x", &bc, &bk, proto), "403", "batch on /admin ({proto})");
            assert_eq!(get("/other", &bc, &bk, proto), "200", "batch elsewhere ({proto})");
        }
        wait_sample(admin, "ringside_authz_decisions_total{listener=\"inbound\",result=\"denied\"}", Duration::from_secs(5), |v| v == 2.0);
        wait_sample(admin, "ringside_authz_decisions_total{listener=\"inbound\",result=\"allowed\"}", Duration::from_secs(5), |v| v == 4.0);
        // The origin never saw the refused requests.
        let (_, out) = curl(&["--cacert", &ca, "--cert", &p(&fc), "--key", &p(&fk), &url(&proxy, "/seen?path=/admin/x")]);
        assert!(out.trim().ends_with('2'), "origin saw /admin/x: {out}");
    }
);

both_runtimes!(
    fn permissive_mode_serves_tls_and_plaintext_on_one_port(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let (_, c, k) = pki.server("server", SERVER_ID);
        let (_, cc, ck) = pki.client("frontend", CLIENT_ID);
        let tls = format!("mode: permissive, cert: {}, key: {}, client_ca: {}", p(&c), p(&k), p(&pki.ca_path));
        let proxy = Ringside::start(rt, &config(&origin, &tls, "", ""));
        let ca = p(&pki.ca_path);
        let port = proxy.addr("inbound").port();
        let (ok, out) = curl(&["--cacert", &ca, "--cert", &p(&cc), "--key", &p(&ck), &url(&proxy, "/headers")]);
        assert!(ok && out.contains(CLIENT_ID) && out.contains("\"https\""), "TLS: {out}");
        // Plaintext HTTP/1.1 and h2c on the same port; a forged XFCC is dropped there too.
        let plain = format!("http://127.0.0.1:{port}/headers");
        let (ok, out) = curl(&["-H", "x-forwarded-client-cert: URI=spiffe://forged", &plain]);
        assert!(ok && out.contains("\"http\"") && !out.contains("forged"), "plaintext: {out}");
        let (ok, out) = curl(&["--http2-prior-knowledge", "-w", "\n%{http_version}", &plain]);
        assert!(ok && out.ends_with("\n2"), "h2c: {out}");
        let admin = proxy.addr("admin");
        wait_sample(admin, "ringside_tls_listener_connections_total{listener=\"inbound\",transport=\"plaintext\"}", Duration::from_secs(5), |v| v == 2.0);
        wait_sample(admin, "ringside_tls_listener_connections_total{listener=\"inbound\",transport=\"tls\"}", Duration::from_secs(5), |v| v == 1.0);
    }
);

both_runtimes!(
    fn strict_mode_closes_plaintext_clients(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let (_, c, k) = pki.server("server", SERVER_ID);
        let tls = format!("cert: {}, key: {}", p(&c), p(&k));
        let proxy = Ringside::start(rt, &config(&origin, &tls, "", ""));
        let plain = format!("http://127.0.0.1:{}/", proxy.addr("inbound").port());
        let (ok, out) = curl(&[&plain]);
        assert!(!ok, "plaintext got an answer from a strict TLS listener: {out}");
        wait_sample(proxy.addr("admin"), "ringside_tls_handshakes_total{listener=\"inbound\",result=\"plaintext\"}", Duration::from_secs(5), |v| v == 1.0);
    }
);
