//! Hostile TLS clients on both runtimes: a garbage ClientHello, a ClientHello trickled byte by
//! byte (bounded by the header-read deadline), a flood of half-open handshakes, TLS 1.2
//! renegotiation; each gets a clear, counted end, and a clean client beside them is served.
//! Also TLS on a tcp listener, where `authz` refusals close the connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringside_integration::metrics::wait_sample;
use ringside_integration::pki::{p, tls_client, Pki};
use ringside_integration::{both_runtimes, json_field, Origin, Ringside};

const SERVER_ID: &str = "spiffe://td.test/ns/shop/sa/server";
const CLIENT_ID: &str = "spiffe://td.test/ns/shop/sa/frontend";

/// The first bytes of a real TLS 1.2/1.3 ClientHello record (header and handshake header).
const HELLO_START: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xf4, 0x01, 0x00, 0x00, 0xf0, 0x03, 0x03,
];

fn start(rt: ringside_integration::Runtime, pki: &Pki, origin: &Origin) -> Ringside {
    let (_, c, k) = pki.server("server", SERVER_ID);
    Ringside::start(
        rt,
        &format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    timeouts: {{ header_read: 1s }}\n    tls: {{ cert: {}, key: {} }}\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\nclusters:\n  - name: app\n    endpoints: [ {} ]\n",
            p(&c),
            p(&k),
            origin.addr
        ),
    )
}

fn clean_request_works(proxy: &Ringside, pki: &Pki) {
    let url = format!("https://localhost:{}/", proxy.addr("inbound").port());
    let (ok, lines) = tls_client(&url, &["-ca", &p(&pki.ca_path)]);
    assert!(
        ok,
        "a clean client was not served: {lines:?}\n{}",
        proxy.log_text()
    );
}

/// Reads until EOF or error; returns how long that took.
fn closed_after(s: &mut TcpStream, within: Duration) -> Duration {
    let t = Instant::now();
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return t.elapsed(),
            Ok(_) => {}
        }
    }
}

both_runtimes!(
    fn hostile_handshakes_end_cleanly_and_others_are_served(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let proxy = start(rt, &pki, &origin);
        let addr = proxy.addr("inbound");
        let admin = proxy.addr("admin");
        // Garbage after a plausible record header: refused at once.
        let mut g = TcpStream::connect(addr).expect("connect");
        g.write_all(HELLO_START).expect("write");
        g.write_all(&[0xff; 240]).expect("write");
        let took = closed_after(&mut g, Duration::from_secs(5));
        assert!(took < Duration::from_secs(1), "garbage ClientHello held for {took:?}");
        wait_sample(admin, "ringside_tls_handshakes_total{listener=\"inbound\",result=\"malformed\"}", Duration::from_secs(5), |v| v >= 1.0);
        // A ClientHello trickled a byte every 200 ms: cut at the 1 s header-read deadline.
        let mut t = TcpStream::connect(addr).expect("connect");
        let started = Instant::now();
        for b in HELLO_START {
            if t.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            if started.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        let took = started.elapsed() + closed_after(&mut t, Duration::from_secs(5));
        assert!(took < Duration::from_secs(4), "trickled ClientHello held for {took:?}");
        wait_sample(admin, "ringside_tls_handshakes_total{listener=\"inbound\",result=\"timeout\"}", Duration::from_secs(5), |v| v >= 1.0);
        // 300 half-open handshakes at once: a clean client is still served meanwhile.
        let flood: Vec<TcpStream> = (0..300)
            .filter_map(|_| {
                let mut s = TcpStream::connect(addr).ok()?;
                s.write_all(&HELLO_START[..6]).ok()?;
                Some(s)
            })
            .collect();
        assert!(flood.len() >= 250, "could not open the flood");
        clean_request_works(&proxy, &pki);
        drop(flood);
        // TLS 1.2 renegotiation: rustls refuses it; the server stays healthy.
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-tls1_2", "-servername", "localhost"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl");
        if let Some(stdin) = child.stdin.as_mut() {
            let _ = stdin.write_all(b"R\n");
        }
        std::thread::sleep(Duration::from_millis(300));
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("RENEGOTIATING"), "openssl did not try: {text}");
        clean_request_works(&proxy, &pki);
    }
);

both_runtimes!(
    fn a_tcp_listener_terminates_tls_and_closes_unauthorised_peers(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let (_, c, k) = pki.server("server", SERVER_ID);
        let (_, fc, fk) = pki.client("frontend", CLIENT_ID);
        let (_, bc, bk) = pki.client("batch", "spiffe://td.test/ns/shop/sa/batch");
        let proxy = Ringside::start(
            rt,
            &format!(
                "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: tcp\n    cluster: app\n    tls: {{ cert: {}, key: {}, client_ca: {} }}\n    authz: {{ allow: [ \"{CLIENT_ID}\" ] }}\nclusters:\n  - name: app\n    endpoints: [ {} ]\n",
                p(&c),
                p(&k),
                p(&pki.ca_path),
                origin.addr
            ),
        );
        let url = format!("https://localhost:{}/headers", proxy.addr("inbound").port());
        let ca = p(&pki.ca_path);
        // The tunnel carries plaintext HTTP to the app: no ALPN on a tcp listener.
        let (ok, lines) = tls_client(&url, &["-ca", &ca, "-cert", &p(&fc), "-key", &p(&fk), "-alpn", ""]);
        assert!(ok, "{lines:?}\n{}", proxy.log_text());
        assert_eq!(json_field(&lines[0], "tls_version").as_deref(), Some("TLS 1.3"), "{lines:?}");
        let (ok, lines) = tls_client(&url, &["-ca", &ca, "-cert", &p(&bc), "-key", &p(&bk), "-alpn", ""]);
        assert!(!ok, "an unauthorised peer got through: {lines:?}");
        wait_sample(proxy.addr("admin"), "ringside_authz_decisions_total{listener=\"inbound\",result=\"denied\"}", Duration::from_secs(5), |v| v == 1.0);
    }
);

/// Every TCP connection from or to `port` that the kernel still has, but the listener and
/// those that ended cleanly (TIME-WAIT, which a reset never leaves).
fn connections_on(port: u16) -> Vec<String> {
    let out = Command::new("ss")
        .args(["-tanH", &format!("( sport = :{port} or dport = :{port} )")])
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("LISTEN") && !l.starts_with("TIME-WAIT"))
        .map(str::to_owned)
        .collect()
}

// A TLS client that reads nothing of a large response is cut at `send_stall` as a plaintext
// one is, with a reset: no close_notify (its flush would wait for ever on a client that reads
// nothing, holding the connection and its TLS buffers), and nothing left at either end: the
// client's socket is closed by the reset, where a FIN would still wait behind MiBs unread.
both_runtimes!(
    fn a_tls_slow_reader_is_reset_at_the_send_stall(rt) {
        let pki = Pki::new();
        let origin = Origin::start("app");
        let (_, c, k) = pki.server("server", SERVER_ID);
        let proxy = Ringside::start(
            rt,
            &format!(
                "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    timeouts: {{ header_read: 1s, send_stall: 1s }}\n    tls: {{ cert: {}, key: {} }}\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\nclusters:\n  - name: app\n    endpoints: [ {} ]\n",
                p(&c),
                p(&k),
                origin.addr
            ),
        );
        let addr = proxy.addr("inbound");
        // A client that reads is served a large response whole, in many steps.
        let url = format!("https://localhost:{}/bytes/1048576", addr.port());
        let (ok, lines) = tls_client(&url, &["-ca", &p(&pki.ca_path), "-alpn", "http/1.1"]);
        let line = lines.first().map(String::as_str).unwrap_or_default();
        assert!(ok, "{lines:?}");
        assert_eq!(json_field(line, "proto").as_deref(), Some("HTTP/1.1"));
        assert_eq!(json_field(line, "body").map(|b| b.len()), Some(1_048_576));
        // openssl writes what it reads to a pipe nobody reads: once that is full, it takes
        // nothing more from the connection.
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost", "-quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl");
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(b"GET /bytes/104857600 HTTP/1.1\r\nhost: t\r\n\r\n")
            .expect("write the request");
        let series = "ringside_downstream_cutoffs_total{listener=\"inbound\",reason=\"send_stall\"}";
        wait_sample(proxy.addr("admin"), series, Duration::from_secs(15), |v| v >= 1.0);
        let gone_by = Instant::now() + Duration::from_secs(3);
        let left = loop {
            let left = connections_on(addr.port());
            if left.is_empty() || Instant::now() > gone_by {
                break left;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(left.is_empty(), "the stalled TLS connection is still there: {left:?}");
    }
);
