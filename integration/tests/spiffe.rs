//! Workload identity from a real SPIRE server and agent (`integration/src/spire.rs`), on both
//! runtimes: two Ringside instances under different uids get different SVIDs over the SPIFFE
//! Workload API; the hop app → A (origination, SVID A) → mTLS → B (termination, authz A) →
//! app carries A's SPIFFE ID in `x-forwarded-client-cert`; B's SVID is refused; `/ready`
//! waits for the first SVID; an agent outage keeps the last SVID serving; and a short-lived
//! SVID rotates under load with no failed request while new full handshakes show the new one.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringside_integration::client::Conn;
use ringside_integration::metrics::{sample, scrape, wait_sample};
use ringside_integration::pki::tls_client;
use ringside_integration::spire::{Entry, Spire};
use ringside_integration::{both_runtimes, json_field, Options, Origin, Ringside, Runtime};

const A_ID: &str = "spiffe://td.test/ns/shop/sa/frontend";
const B_ID: &str = "spiffe://td.test/ns/shop/sa/payments";
const TESTER_ID: &str = "spiffe://td.test/ns/test/sa/tester";
/// A runs as this uid and B as the next: the agent's `unix` attestor tells them apart.
const A_UID: u32 = 1001;
const B_UID: u32 = 1002;
const RECEIVED: &str = "X.509-SVID received from the SPIFFE Workload API";

fn entries(ttl_s: u32) -> [Entry<'static>; 3] {
    [
        Entry {
            spiffe_id: A_ID,
            uid: A_UID,
            ttl_s,
            dns: None,
        },
        Entry {
            spiffe_id: B_ID,
            uid: B_UID,
            ttl_s,
            dns: Some("localhost"),
        },
        // The test itself (root), for Go's crypto/tls client; long-lived, it never rotates.
        Entry {
            spiffe_id: TESTER_ID,
            uid: 0,
            ttl_s: 3600,
            dns: None,
        },
    ]
}

fn as_uid(uid: u32) -> Options {
    Options {
        uid: Some(uid),
        ..Options::default()
    }
}

/// Ringside B, as B's uid: terminates mutual TLS with its SVID, admits only A.
fn terminating(rt: Runtime, spire: &Spire, origin: &Origin) -> Ringside {
    Ringside::start_with(
        rt,
        &format!(
            r#"
identity: {{ spiffe_socket: "{}" }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    tls: {{ identity: spiffe }}
    authz: {{ allow: [ "{A_ID}" ] }}
    routes:
      - name: default
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: app }} ]
clusters:
  - name: app
    endpoints: [ {} ]
"#,
            spire.socket_uri(),
            origin.addr
        ),
        &as_uid(B_UID),
    )
}

/// Ringside as `uid`: plaintext for the local app, mTLS with its SVID toward B, checked by
/// B's SPIFFE ID. `pooled: false` makes every request a new handshake.
fn originating(rt: Runtime, spire: &Spire, b: SocketAddr, uid: u32, pooled: bool) -> Ringside {
    let pool = if pooled {
        ""
    } else {
        "    max_idle_per_endpoint: 0\n"
    };
    Ringside::start_with(
        rt,
        &format!(
            r#"
identity: {{ spiffe_socket: "{}" }}
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
    endpoints: [ {b} ]
    tls: {{ identity: spiffe, server_identity: "{B_ID}" }}
{pool}"#,
            spire.socket_uri(),
        ),
        &as_uid(uid),
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

fn ready_status(admin: SocketAddr) -> u16 {
    ringside_integration::client::get(admin, "/ready").status
}

/// `serial=` of every SVID `r` logged, oldest first.
fn serials(r: &Ringside) -> Vec<String> {
    r.log_text()
        .lines()
        .filter(|l| l.contains(RECEIVED))
        .filter_map(|l| {
            let start = l.find("serial=")? + "serial=".len();
            l[start..].split_whitespace().next().map(str::to_owned)
        })
        .collect()
}

/// `serial=` of the last SVID `r` logged.
fn last_serial(r: &Ringside) -> String {
    serials(r)
        .pop()
        .unwrap_or_else(|| panic!("no SVID logged:\n{}", r.log_text()))
}

/// Waits for the `n`th SVID `r` stored (counted by its own metric).
fn wait_svids(r: &Ringside, n: f64, within: Duration) {
    wait_sample(
        r.addr("admin"),
        "ringside_spiffe_updates_total{result=\"ok\"}",
        within,
        |v| v >= n,
    );
}

/// Go crypto/tls, with the tester's SVID, straight to B: the serial of the certificate B
/// presented in a fresh handshake.
fn b_serial_seen(b: &Ringside, svid_dir: &std::path::Path) -> String {
    let p = |f: &str| svid_dir.join(f).display().to_string();
    let url = format!("https://127.0.0.1:{}/", b.addr("inbound").port());
    let (_, lines) = tls_client(
        &url,
        &[
            "-sni",
            "localhost",
            "-ca",
            &p("bundle.0.pem"),
            "-cert",
            &p("svid.0.pem"),
            "-key",
            &p("svid.0.key"),
        ],
    );
    let first = lines.first().cloned().unwrap_or_default();
    // B's authz admits only A: the tester's request gets 403, after a complete handshake.
    assert_eq!(
        json_field(&first, "status").as_deref(),
        Some("403"),
        "{lines:?}"
    );
    json_field(&first, "server_serial").unwrap_or_else(|| panic!("no serial: {lines:?}"))
}

both_runtimes!(
    fn svids_from_spire_carry_the_callers_identity_and_refuse_another(rt) {
        // The agent starts after B: B comes up without an SVID, says so on /ready, and picks
        // one up once the agent serves (reconnecting with backoff meanwhile).
        let mut spire = Spire::server(&entries(3600));
        let origin = Origin::start("payments");
        let b = terminating(rt, &spire, &origin);
        assert!(b.wait_log("waiting for the first X.509-SVID", Duration::from_secs(5)), "{}", b.log_text());
        assert_eq!(ready_status(b.addr("admin")), 503);
        spire.start_agent();
        eprintln!("SPIRE up in {:?} (agent included)", spire.startup);
        wait_svids(&b, 1.0, Duration::from_secs(20));
        assert_eq!(ready_status(b.addr("admin")), 200);
        assert!(b.log_text().contains(&format!("spiffe_id={B_ID}")), "{}", b.log_text());
        let expiry = sample(&scrape(b.addr("admin")), "ringside_tls_certificate_expiry_timestamp_seconds{source=\"spiffe\"}");
        assert!(expiry.is_some_and(|t| t > 1.7e9), "{expiry:?}");

        let a = originating(rt, &spire, b.addr("inbound"), A_UID, true);
        wait_svids(&a, 1.0, Duration::from_secs(20));
        let url = format!("http://{}/headers", a.addr("outbound"));
        for _ in 0..3 {
            let (ok, out) = curl(&[&url]);
            assert!(ok, "{out}\nA:\n{}\nB:\n{}\n{}", a.log_text(), b.log_text(), spire.logs());
            assert!(
                out.contains(&format!("By={B_ID};Hash=")) && out.contains(&format!(";URI={A_ID}")),
                "{out}"
            );
        }
        // Another Ringside under B's uid holds B's SVID: B's authz refuses it, counted.
        let impostor = originating(rt, &spire, b.addr("inbound"), B_UID, true);
        wait_svids(&impostor, 1.0, Duration::from_secs(20));
        let (ok, out) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}/", impostor.addr("outbound"))]);
        assert!(ok && out == "403", "impostor: {out}\n{}", impostor.log_text());
        wait_sample(b.addr("admin"), "ringside_authz_decisions_total{listener=\"inbound\",result=\"denied\"}", Duration::from_secs(5), |v| v >= 1.0);

        // The agent goes away: the stream error is counted and retried, and the last SVIDs
        // keep serving new handshakes (a fresh Go client straight to B).
        let svids = tempfile::tempdir().expect("tempdir");
        spire.fetch_x509(svids.path());
        spire.stop_agent();
        wait_sample(b.addr("admin"), "ringside_spiffe_updates_total{result=\"error\"}", Duration::from_secs(10), |v| v >= 1.0);
        assert_eq!(b_serial_seen(&b, svids.path()), last_serial(&b));
        assert_eq!(ready_status(b.addr("admin")), 200);
    }
);

both_runtimes!(
    fn a_short_lived_svid_rotates_under_load_without_a_failed_request(rt) {
        // 20 s SVIDs: the agent renews them at about half their life.
        let spire = Spire::start(&entries(20));
        let origin = Origin::start("payments");
        let b = terminating(rt, &spire, &origin);
        let a = originating(rt, &spire, b.addr("inbound"), A_UID, false);
        wait_svids(&b, 1.0, Duration::from_secs(20));
        wait_svids(&a, 1.0, Duration::from_secs(20));
        let svids = tempfile::tempdir().expect("tempdir");
        spire.fetch_x509(svids.path());
        // B renews its 20 s SVID every few seconds: what a handshake shows is one B stored.
        let first = b_serial_seen(&b, svids.path());
        assert!(b.wait_log(&format!("serial={first} "), Duration::from_secs(5)), "{first} not in {:?}", serials(&b));

        // Load through A: every request is a new A → B connection (no pooling). A resumes its
        // TLS session with B's tickets where it can, so the identity B sees stays the one A
        // first authenticated with (RFC 8446 §2.2); a rotation on either side must break none.
        let stop = Arc::new(AtomicBool::new(false));
        let outbound = a.addr("outbound");
        let load = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::open(outbound);
                let (mut ok, mut failures) = (0u64, Vec::new());
                let want = format!(";URI={A_ID}");
                while !stop.load(Ordering::Relaxed) {
                    conn.send(b"GET /headers HTTP/1.1\r\nhost: a\r\n\r\n");
                    match conn.read_response(false) {
                        Ok(r) if r.status == 200 && r.text().contains(&want) => ok += 1,
                        Ok(r) => failures.push(format!("{} {}", r.status, r.text())),
                        Err(e) => {
                            failures.push(e.to_string());
                            conn = Conn::open(outbound);
                        }
                    }
                    // Paces the load (about 50 connections a second), not a wait.
                    std::thread::sleep(Duration::from_millis(20));
                }
                (ok, failures)
            })
        };
        let handshakes = "ringside_upstream_tls_handshakes_total{cluster=\"mesh\",result=\"ok\"}";
        let expiry = "ringside_tls_certificate_expiry_timestamp_seconds{source=\"spiffe\"}";
        let a_expiry = sample(&scrape(a.addr("admin")), expiry).expect("A's SVID expiry");
        // Both sides rotate under the load: a second SVID each, well within two lifetimes.
        wait_svids(&b, 2.0, Duration::from_secs(40));
        wait_svids(&a, 2.0, Duration::from_secs(40));
        wait_sample(a.addr("admin"), expiry, Duration::from_secs(5), |v| v > a_expiry);
        // A new full handshake gets one of B's renewed SVIDs, not the one seen before.
        let rotated = b_serial_seen(&b, svids.path());
        assert_ne!(rotated, first);
        assert!(b.wait_log(&format!("serial={rotated} "), Duration::from_secs(5)), "{rotated} not in {:?}", serials(&b));
        // More connections through A after both rotations, then stop the load.
        let before = sample(&scrape(a.addr("admin")), handshakes).unwrap_or(0.0);
        wait_sample(a.addr("admin"), handshakes, Duration::from_secs(10), |v| v >= before + 10.0);
        stop.store(true, Ordering::Relaxed);
        let (ok, failures) = load.join().expect("load thread");
        assert!(failures.is_empty(), "{} failed requests of {}: {:?}", failures.len(), ok + failures.len() as u64, &failures[..failures.len().min(5)]);
        assert!(ok >= 10, "{ok} requests");
        eprintln!("{ok} requests through A across the rotations, none failed");
    }
);

both_runtimes!(
    fn a_changed_spiffe_socket_is_followed_on_reload(rt) {
        // B starts pointed at a socket nobody serves: no SVID, /ready 503, errors counted and
        // retried. A reload that names the agent's socket gets it an SVID without a restart.
        let spire = Spire::start(&entries(3600));
        let origin = Origin::start("payments");
        let wrong = spire.dir.path().join("nobody.sock");
        let config = |socket: &str| {
            format!(
                "identity: {{ spiffe_socket: \"unix://{socket}\" }}\nlisteners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    tls: {{ identity: spiffe }}\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\nclusters:\n  - name: app\n    endpoints: [ {} ]\n",
                origin.addr
            )
        };
        let b = Ringside::start_with(rt, &config(&wrong.display().to_string()), &as_uid(B_UID));
        wait_sample(b.addr("admin"), "ringside_spiffe_updates_total{result=\"error\"}", Duration::from_secs(10), |v| v >= 1.0);
        assert_eq!(ready_status(b.addr("admin")), 503);
        // Kept on the same listener port, so the reload changes only the socket.
        let text = format!(
            "admin: {{ address: {} }}\n{}",
            b.addr("admin"),
            config(&spire.socket.display().to_string()).replace("127.0.0.1:0", &b.addr("inbound").to_string())
        );
        let tmp = b.config_path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &b.config_path).expect("replace config");
        wait_svids(&b, 1.0, Duration::from_secs(20));
        assert_eq!(ready_status(b.addr("admin")), 200);
        assert!(b.log_text().contains(&format!("spiffe_id={B_ID}")), "{}", b.log_text());
    }
);
