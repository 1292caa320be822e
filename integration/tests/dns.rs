//! DNS discovery against a real DNS server (dnsmasq) and real Go origins on 127.0.0.2–5, on
//! both runtimes: every A record is an endpoint, a changed answer moves traffic within the
//! TTL without failing a request, and a dead server keeps the last good set (counted).

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringside_integration::dns::{Dnsmasq, TTL_SECS};
use ringside_integration::{both_runtimes, client, metrics, Options, Origin, Ringside};

const NAME: &str = "svc.ringside.test";
/// How long a change may take to show on a loaded 2-core machine: the TTL, the resolver's
/// lookup, and room for the scheduler.
const FOLLOW_WITHIN: Duration = Duration::from_secs(TTL_SECS + 6);

/// A port free on every one of `ips` (the origins behind one name share it).
fn common_port(ips: &[&str]) -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind(format!("{}:0", ips[0])).expect("bind");
        let port = first.local_addr().expect("addr").port();
        let rest: Vec<_> = ips[1..]
            .iter()
            .map(|ip| TcpListener::bind(format!("{ip}:{port}")))
            .collect();
        if rest.iter().all(Result::is_ok) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}");
}

fn config(port: u16) -> String {
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
    endpoints: [ "{NAME}:{port}" ]
    idle_timeout: 2s
"#
    )
}

struct Setup {
    _origins: Vec<Origin>,
    dns: Dnsmasq,
    proxy: Ringside,
}

fn setup(rt: ringside_integration::Runtime) -> Setup {
    let ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
    let port = common_port(&ips);
    let origins = ["a", "b", "c", "d"]
        .iter()
        .zip(ips)
        .map(|(name, ip)| Origin::start_at(name, &format!("{ip}:{port}"), None))
        .collect();
    let dns = Dnsmasq::start(&[(NAME, ips[0]), (NAME, ips[1]), (NAME, ips[2])]);
    let opts = Options {
        workers: 2,
        extra_args: vec!["--dns-server".into(), dns.addr.to_string()],
        ..Options::default()
    };
    let proxy = Ringside::start_with(rt, &config(port), &opts);
    Setup {
        _origins: origins,
        dns,
        proxy,
    }
}

/// When a response arrived, and its origin or why it failed.
type Answer = (Instant, Result<String, String>);

/// Requests on keep-alive connections until stopped; each answer's origin (or the failure),
/// with when it arrived.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Answer>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, seen) = (stop.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut conn = client::Conn::open(addr);
                    while !stop.load(Ordering::Relaxed) {
                        let out = one(&mut conn);
                        let reconnect = out.is_err();
                        seen.lock().expect("load log").push((Instant::now(), out));
                        if reconnect {
                            conn = client::Conn::open(addr);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            seen,
            threads,
        }
    }

    fn stop(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load thread");
        }
        Arc::try_unwrap(self.seen)
            .expect("load threads ended")
            .into_inner()
            .expect("load log")
    }

    /// Waits until a response from `origin` arrived after `since`; returns when.
    fn wait_origin(&self, origin: &str, since: Instant, within: Duration) -> Instant {
        let end = Instant::now() + within;
        loop {
            let hit = self
                .seen
                .lock()
                .expect("load log")
                .iter()
                .find_map(|(at, r)| (*at > since && r.as_deref() == Ok(origin)).then_some(*at));
            if let Some(at) = hit {
                return at;
            }
            assert!(
                Instant::now() < end,
                "no response from {origin} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn one(conn: &mut client::Conn) -> Result<String, String> {
    conn.stream
        .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let r = conn
        .read_response(false)
        .map_err(|e| format!("read: {e}"))?;
    match (r.status, r.header("x-origin")) {
        (200, Some(o)) => Ok(o.to_owned()),
        (s, o) => Err(format!("status {s} from {o:?}: {}", r.text())),
    }
}

fn endpoints(proxy: &Ringside) -> String {
    client::get(proxy.addr("admin"), "/clusters").text()
}

fn wait_endpoints(proxy: &Ringside, has: &[&str], lacks: &[&str]) {
    let end = Instant::now() + FOLLOW_WITHIN;
    loop {
        let text = endpoints(proxy);
        if has.iter().all(|a| text.contains(a)) && !lacks.iter().any(|a| text.contains(a)) {
            return;
        }
        assert!(
            Instant::now() < end,
            "/clusters did not show {has:?} without {lacks:?} within {FOLLOW_WITHIN:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

both_runtimes!(fn every_a_record_is_an_endpoint_and_changes_move_traffic_without_failures(rt) {
    let s = setup(rt);
    wait_endpoints(&s.proxy, &["127.0.0.2:", "127.0.0.3:", "127.0.0.4:"], &["127.0.0.5:"]);
    let load = Load::start(s.proxy.addr("inbound"), 4);
    let start = Instant::now();
    for o in ["a", "b", "c"] {
        load.wait_origin(o, start, FOLLOW_WITHIN);
    }
    // One removed (c), one added (d) while the load runs.
    s.dns.set(&[(NAME, "127.0.0.2"), (NAME, "127.0.0.3"), (NAME, "127.0.0.5")]);
    let changed = Instant::now();
    let first_d = load.wait_origin("d", changed, FOLLOW_WITHIN);
    wait_endpoints(&s.proxy, &["127.0.0.5:"], &["127.0.0.4:"]);
    let settled = Instant::now();
    // Requests that started after the set changed must not reach c: give them a moment.
    load.wait_origin("d", settled + Duration::from_secs(1), FOLLOW_WITHIN);
    let seen = load.stop();
    let failed: Vec<_> = seen.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} requests failed: {:?}", failed.len(), seen.len(), &failed[..failed.len().min(5)]);
    let late_c = seen
        .iter()
        .filter(|(at, r)| *at > settled + Duration::from_secs(1) && r.as_deref() == Ok("c"))
        .count();
    assert_eq!(late_c, 0, "requests still reached the removed endpoint after the change showed");
    let mut per: HashMap<&str, usize> = HashMap::new();
    for (_, r) in &seen {
        *per.entry(r.as_deref().unwrap_or("?")).or_default() += 1;
    }
    eprintln!(
        "{} requests, 0 failed; per origin {per:?}; d's first response {:?} after the records changed",
        seen.len(),
        first_d - changed
    );
    let text = metrics::scrape(s.proxy.addr("admin"));
    let changes = metrics::sample(&text, r#"ringside_dns_resolutions_total{cluster="app",result="changed"}"#);
    metrics::promtool_check(&text);
    assert!(changes.unwrap_or(0.0) >= 2.0, "the first answer and the change are counted:\n{text}");
});

both_runtimes!(fn a_dead_dns_server_keeps_the_last_good_set_and_is_counted(rt) {
    let mut s = setup(rt);
    wait_endpoints(&s.proxy, &["127.0.0.2:", "127.0.0.3:", "127.0.0.4:"], &[]);
    s.dns.stop();
    let admin = s.proxy.addr("admin");
    metrics::wait_sample(
        admin,
        r#"ringside_dns_resolutions_total{cluster="app",result="error"}"#,
        Duration::from_secs(15),
        |v| v >= 1.0,
    );
    let text = endpoints(&s.proxy);
    for ip in ["127.0.0.2:", "127.0.0.3:", "127.0.0.4:"] {
        assert!(text.contains(ip), "{ip} dropped after a failed lookup:\n{text}");
    }
    assert!(text.contains("\"last_error\""), "{text}");
    let mut origins = std::collections::HashSet::new();
    let mut conn = client::Conn::open(s.proxy.addr("inbound"));
    for _ in 0..30 {
        origins.insert(one(&mut conn).expect("a request during the DNS outage"));
    }
    assert_eq!(origins.len(), 3, "round robin still spans the last good set: {origins:?}");
});

both_runtimes!(fn startup_does_not_wait_forever_for_a_dead_server(rt) {
    // A server that never answers: 127.0.0.1 on a port nothing listens on (UDP: no reply).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let opts = Options {
        extra_args: vec![
            "--dns-server".into(),
            format!("127.0.0.1:{port}"),
            "--dns-startup-wait".into(),
            "1s".into(),
        ],
        ..Options::default()
    };
    let started = Instant::now();
    let proxy = Ringside::start_with(rt, &config(9), &opts);
    assert!(started.elapsed() < Duration::from_secs(10), "startup took {:?}", started.elapsed());
    let r = client::get(proxy.addr("inbound"), "/");
    assert_eq!((r.status, r.header("x-ringside-error")), (502, Some("no endpoint")), "{:?}", r.headers);
    drop(silent);
});

both_runtimes!(fn a_reload_that_changes_the_names_is_followed(rt) {
    let s = setup(rt);
    wait_endpoints(&s.proxy, &["127.0.0.2:", "127.0.0.3:", "127.0.0.4:"], &[]);
    s.dns.set(&[(NAME, "127.0.0.2"), (NAME, "127.0.0.3"), (NAME, "127.0.0.4"), ("other.ringside.test", "127.0.0.5")]);
    // The same cluster, now named by another host name (and keeping the listener's port).
    let text = endpoints(&s.proxy);
    let port = text
        .split("127.0.0.2:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the endpoints' port")
        .to_owned();
    let inbound = s.proxy.addr("inbound").port();
    let cfg = config(port.parse().expect("port"))
        .replace(NAME, "other.ringside.test")
        .replacen("127.0.0.1:0", &format!("127.0.0.1:{inbound}"), 1);
    let admin = s.proxy.addr("admin");
    std::fs::write(&s.proxy.config_path, format!("admin: {{ address: {admin} }}\n{cfg}")).expect("write config");
    wait_endpoints(&s.proxy, &["127.0.0.5:"], &["127.0.0.2:", "127.0.0.3:", "127.0.0.4:"]);
    let mut conn = client::Conn::open(s.proxy.addr("inbound"));
    for _ in 0..5 {
        assert_eq!(one(&mut conn).as_deref(), Ok("d"));
    }
});
