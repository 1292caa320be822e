//! Transparent interception for real: a "pod" network namespace (a client and Ringside) and a
//! "server" namespace (the Go origin), joined by a veth pair. `ringside iptables` installs the
//! nat rules inside the pod, Ringside runs there as uid 2102, and a client that knows nothing
//! about the proxy connects straight to the server's address. Inbound, a client in the server
//! namespace reaches an app in the pod through Ringside's inbound listener. Needs root, `ip`,
//! `iptables` and `curl` (CI has them; `.ci/run` installs iptables): without them these tests
//! fail.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ringside_integration::{both_runtimes, ringside_bin, Options, Origin, Ringside, Runtime};

const PROXY_UID: u32 = 2102;
const POD_IP: &str = "10.77.0.1";
const SERVER_IP: &str = "10.77.0.2";
/// curl binds its source port in this range, below the kernel's ephemeral range
/// (32768-60999) that the proxy's own connections use: the port the server sees tells whether
/// the connection came from the client itself or from Ringside.
const CLIENT_PORTS: (u16, u16) = (20000, 20999);

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (needs root with ip, iptables, curl)"))
}

#[track_caller]
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces and the veth pair between them; deleted on drop, even after a panic.
struct Net {
    pod: String,
    server: String,
}

impl Net {
    fn new(rt: Option<Runtime>) -> Net {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = match rt {
            Some(Runtime::IoUring) => "u",
            Some(Runtime::Epoll) => "e",
            None => "x",
        };
        let id = format!("{}{tag}{n}", std::process::id() % 100_000);
        let net = Net {
            pod: format!("rs-pod-{id}"),
            server: format!("rs-srv-{id}"),
        };
        // Interface names must fit in 15 bytes; they live inside the namespaces only.
        let (a, b) = (format!("rsp{id}"), format!("rss{id}"));
        let ip = |args: &[&str]| ok(Command::new("ip").args(args));
        ip(&["netns", "add", &net.pod]);
        ip(&["netns", "add", &net.server]);
        ip(&[
            "link",
            "add",
            &a,
            "netns",
            &net.pod,
            "type",
            "veth",
            "peer",
            "name",
            &b,
            "netns",
            &net.server,
        ]);
        for (ns, dev, addr) in [(&net.pod, &a, POD_IP), (&net.server, &b, SERVER_IP)] {
            net.exec(
                ns,
                &["ip", "addr", "add", &format!("{addr}/24"), "dev", dev],
            );
            net.exec(ns, &["ip", "link", "set", dev, "up"]);
            net.exec(ns, &["ip", "link", "set", "lo", "up"]);
        }
        // Virtual service addresses (10.96.0.0/16) must be routable for connect() to reach the
        // nat OUTPUT chain at all, as a cluster's service CIDR is in a real pod.
        net.exec(
            &net.pod,
            &["ip", "route", "add", "default", "via", SERVER_IP],
        );
        net
    }

    fn exec(&self, ns: &str, args: &[&str]) -> String {
        ok(Command::new("ip").args(["netns", "exec", ns]).args(args))
    }

    fn iptables(&self, extra: &[&str]) -> String {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.pod])
            .arg(ringside_bin())
            .args(["iptables", "--proxy-uid", &PROXY_UID.to_string()])
            .args(extra);
        ok(&mut c)
    }

    fn nat_rules(&self) -> String {
        self.exec(&self.pod, &["iptables-save", "-t", "nat"])
    }

    /// `curl` from the pod as an ordinary app (root, not the proxy's uid): (exit code, body).
    fn curl(&self, url: &str) -> (i32, String) {
        self.curl_in(&self.pod, url)
    }

    /// `curl` from namespace `ns`, with no proxy settings: (exit code, body).
    fn curl_in(&self, ns: &str, url: &str) -> (i32, String) {
        let ports = format!("{}-{}", CLIENT_PORTS.0, CLIENT_PORTS.1);
        let out = run(Command::new("ip").args([
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "-m",
            "5",
            "--local-port",
            &ports,
            url,
        ]));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Ringside's `/metrics`, fetched inside the pod over loopback (the admin may bind
    /// `0.0.0.0`).
    fn metrics(&self, proxy: &Ringside) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", proxy.addr("admin").port());
        self.exec(&self.pod, &["curl", "-s", "-m", "5", &url])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        for ns in [&self.pod, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The value of `series` (exact labels, in order; summed over the `runtime` label, see
/// `metrics::sample`), 0 if absent.
fn metric(text: &str, series: &str) -> f64 {
    ringside_integration::metrics::sample(text, series).unwrap_or(0.0)
}

/// The sum of every metric line that starts with `prefix` (e.g. all of one listener's series).
fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix(prefix)?
                .rsplit_once(' ')?
                .1
                .parse::<f64>()
                .ok()
        })
        .sum()
}

/// The port of the `remote_addr` the origin's `/headers` reports.
fn remote_addr(body: &str) -> String {
    let start = body
        .find("\"remote_addr\":\"")
        .unwrap_or_else(|| panic!("no remote_addr in {body}"))
        + "\"remote_addr\":\"".len();
    body[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn assert_came_from_proxy(remote: &str) {
    let (ip, port) = remote.rsplit_once(':').expect("ip:port");
    let port: u16 = port.parse().expect("port");
    assert_eq!(ip, POD_IP, "the server sees the pod");
    assert!(
        !(CLIENT_PORTS.0..=CLIENT_PORTS.1).contains(&port),
        "the server saw the client's own port {port}: the connection bypassed Ringside"
    );
}

fn start_proxy(rt: Runtime, net: &Net, config: &str) -> Ringside {
    let opts = Options {
        netns: Some(net.pod.clone()),
        uid: Some(PROXY_UID),
        ..Options::default()
    };
    Ringside::start_with(rt, config, &opts)
}

const OPENED: &str = "ringside_downstream_connections_opened_total{listener=\"outbound\"}";

both_runtimes!(fn redirected_connection_passes_through_to_its_original_destination(rt) {
    let net = Net::new(Some(rt));
    let _server = Origin::start_at("server", &format!("{SERVER_IP}:8080"), Some(&net.server));
    // Before interception the client reaches the server itself.
    let (code, body) = net.curl(&format!("http://{SERVER_IP}:8080/headers"));
    assert_eq!(code, 0, "direct curl failed: {body}");
    let port: u16 = remote_addr(&body).rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0);
    assert!((CLIENT_PORTS.0..=CLIENT_PORTS.1).contains(&port), "direct: {body}");

    net.iptables(&[]);
    let proxy = start_proxy(rt, &net, "listeners:\n  - { name: outbound, address: 0.0.0.0:15001, protocol: tcp, original_dst: true }\nclusters: []\n");
    let status = std::fs::read_to_string(format!("/proc/{}/status", proxy.pid())).expect("status");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or_default();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == PROXY_UID.to_string()),
        "Ringside must run as the proxy uid, else its own connections are redirected: {uid_line}"
    );
    let before = metric(&net.metrics(&proxy), OPENED);
    let (code, body) = net.curl(&format!("http://{SERVER_IP}:8080/headers"));
    assert_eq!(code, 0, "curl through the proxy failed: {body}\n{}", proxy.log_text());
    assert!(body.contains("\"path\":\"/headers\""), "{body}");
    assert_came_from_proxy(&remote_addr(&body));
    let m = net.metrics(&proxy);
    assert_eq!(metric(&m, OPENED), before + 1.0, "{m}");
    assert_eq!(
        metric(&m, "ringside_original_dst_connections_total{listener=\"outbound\",outcome=\"passthrough\"}"),
        1.0,
        "{m}"
    );
    assert!(
        proxy.wait_log(&format!("upstream={SERVER_IP}:8080"), Duration::from_secs(5)),
        "{}",
        proxy.log_text()
    );
});

both_runtimes!(fn destinations_map_a_virtual_address_to_a_cluster(rt) {
    let net = Net::new(Some(rt));
    let _server = Origin::start_at("server", &format!("{SERVER_IP}:8080"), Some(&net.server));
    net.iptables(&[]);
    let config = format!(
        "listeners:
  - name: outbound
    address: 0.0.0.0:15001
    protocol: tcp
    original_dst: true
    destinations: [ {{ address: 10.96.0.10:80, cluster: svc }} ]
clusters:
  - {{ name: svc, endpoints: [ {SERVER_IP}:8080 ] }}
"
    );
    let proxy = start_proxy(rt, &net, &config);
    // Nothing listens on 10.96.0.10: only the mapping can answer.
    let (code, body) = net.curl("http://10.96.0.10/headers");
    assert_eq!(code, 0, "curl to the virtual address failed: {body}\n{}", proxy.log_text());
    assert!(body.contains("\"path\":\"/headers\""), "{body}");
    assert_came_from_proxy(&remote_addr(&body));
    let m = net.metrics(&proxy);
    assert_eq!(
        metric(&m, "ringside_original_dst_connections_total{listener=\"outbound\",outcome=\"cluster\"}"),
        1.0,
        "{m}"
    );
    // An address outside the mapping on the same listener still passes through.
    let (code, body) = net.curl(&format!("http://{SERVER_IP}:8080/headers"));
    assert_eq!(code, 0, "{body}");
    assert_came_from_proxy(&remote_addr(&body));
});

both_runtimes!(fn a_direct_connection_to_the_listener_is_refused_not_looped(rt) {
    let net = Net::new(Some(rt));
    net.iptables(&[]);
    let proxy = start_proxy(rt, &net, "listeners:\n  - { name: outbound, address: 0.0.0.0:15001, protocol: tcp, original_dst: true }\nclusters: []\n");
    // Local destinations are not redirected, so this arrives unredirected: its original
    // destination is the listener itself. Passing it through would connect to ourselves.
    let (code, body) = net.curl(&format!("http://{POD_IP}:15001/"));
    assert_ne!(code, 0, "expected the connection to be closed, got {body}");
    let m = net.metrics(&proxy);
    assert_eq!(
        metric(&m, "ringside_original_dst_connections_total{listener=\"outbound\",outcome=\"refused\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(metric(&m, OPENED), 1.0, "exactly one connection: no loop. {m}");
    assert!(proxy.wait_log("refused a connection that was not redirected", Duration::from_secs(5)));
});

const ADMIN_PORT: u16 = 9901;
const SKIPPED_PORT: u16 = 9090;
const INBOUND_REQUESTS: &str = "ringside_requests_total{listener=\"inbound\",";
const INBOUND_OPENED: &str = "ringside_downstream_connections_opened_total{listener=\"inbound\"}";

/// Polls `/metrics` until `series` (summed) reaches `want` (a request is counted as its
/// response completes, which may be just after curl has it); returns the last text.
fn wait_metric(net: &Net, proxy: &Ringside, series: &str, want: f64) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let m = net.metrics(proxy);
        if metric_sum(&m, series) >= want || std::time::Instant::now() > end {
            return m;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

both_runtimes!(fn inbound_connection_reaches_the_app_through_ringside(rt) {
    let net = Net::new(Some(rt));
    // The app listens on loopback only: from outside the pod, only Ringside can reach it.
    let _app = Origin::start_at("app", "127.0.0.1:8080", Some(&net.pod));
    let _skipped = Origin::start_at("skipped", &format!("0.0.0.0:{SKIPPED_PORT}"), Some(&net.pod));
    let app = format!("http://{POD_IP}:8080");
    let (code, body) = net.curl_in(&net.server, &format!("{app}/"));
    assert_ne!(code, 0, "without interception the app is unreachable from outside: {body}");

    net.iptables(&[
        "--inbound-port", "15006",
        "--admin-port", &ADMIN_PORT.to_string(),
        "--skip-inbound-ports", &SKIPPED_PORT.to_string(),
    ]);
    let config = format!(
        "admin: {{ address: 0.0.0.0:{ADMIN_PORT} }}
listeners:
  - name: inbound
    address: 0.0.0.0:15006
    protocol: http
    routes:
      - {{ name: default, match: {{ path_prefix: / }}, backends: [ {{ cluster: app }} ] }}
clusters:
  - {{ name: app, endpoints: [ 127.0.0.1:8080 ] }}
"
    );
    let proxy = start_proxy(rt, &net, &config);
    let before = net.metrics(&proxy);
    let (requests, opened) = (metric_sum(&before, INBOUND_REQUESTS), metric(&before, INBOUND_OPENED));

    // A client in the server namespace, with no proxy settings, asks the pod IP and app port.
    let (code, body) = net.curl_in(&net.server, &format!("{app}/"));
    assert_eq!(code, 0, "inbound curl failed: {body}\n{}", proxy.log_text());
    assert_eq!(body, "hello from app\n");
    let (code, body) = net.curl_in(&net.server, &format!("{app}/headers"));
    assert_eq!(code, 0, "inbound curl failed: {body}\n{}", proxy.log_text());
    assert!(body.contains(&format!("\"x-forwarded-for\":[\"{SERVER_IP}\"]")), "{body}");
    assert!(remote_addr(&body).starts_with("127.0.0.1:"), "the app sees Ringside: {body}");
    let m = wait_metric(&net, &proxy, INBOUND_REQUESTS, requests + 2.0);
    assert_eq!(metric_sum(&m, INBOUND_REQUESTS), requests + 2.0, "{m}");
    assert_eq!(metric(&m, INBOUND_OPENED), opened + 2.0, "{m}");

    // The admin port is not redirected: Ringside's admin answers, not the app behind it.
    let (code, body) = net.curl_in(&net.server, &format!("http://{POD_IP}:{ADMIN_PORT}/live"));
    assert_eq!((code, body.trim()), (0, "live"), "{}", proxy.log_text());
    // Nor is a --skip-inbound-ports port: the client reaches that app itself.
    let (code, body) =
        net.curl_in(&net.server, &format!("http://{POD_IP}:{SKIPPED_PORT}/headers"));
    assert_eq!(code, 0, "{body}");
    assert!(remote_addr(&body).starts_with(&format!("{SERVER_IP}:")), "{body}");
    assert!(!body.contains("x-forwarded-for"), "{body}");
    let m = net.metrics(&proxy);
    assert_eq!(metric_sum(&m, INBOUND_REQUESTS), requests + 2.0, "{m}");
    assert_eq!(metric(&m, INBOUND_OPENED), opened + 2.0, "{m}");
});

#[test]
fn iptables_is_idempotent_and_removable() {
    let net = Net::new(None);
    let args = [
        "--skip-outbound-ports",
        "443,8443",
        "--skip-outbound-cidrs",
        "169.254.0.0/16",
    ];
    net.iptables(&args);
    net.iptables(&args);
    let rules = net.nat_rules();
    let count = |needle: &str| rules.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("-A OUTPUT -p tcp -j RINGSIDE_OUTBOUND"), 1, "{rules}");
    assert_eq!(
        count("-A PREROUTING -p tcp -j RINGSIDE_INBOUND"),
        1,
        "{rules}"
    );
    assert_eq!(
        count(&format!("--uid-owner {PROXY_UID} -j RETURN")),
        1,
        "{rules}"
    );
    assert_eq!(count("-j REDIRECT --to-ports 15001"), 1, "{rules}");
    assert_eq!(count("-j REDIRECT --to-ports 15006"), 1, "{rules}");
    assert_eq!(count("--dport 9901 -j RETURN"), 1, "{rules}");
    assert_eq!(count("-d 169.254.0.0/16 -j RETURN"), 1, "{rules}");
    net.iptables(&["--remove"]);
    let rules = net.nat_rules();
    assert!(!rules.contains("RINGSIDE"), "{rules}");
}

#[test]
fn dry_run_applies_nothing() {
    let net = Net::new(None);
    let out = net.iptables(&["--dry-run", "--outbound-port", "16001"]);
    assert!(
        out.contains(
            "iptables -w -t nat -A RINGSIDE_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 16001"
        ),
        "{out}"
    );
    assert!(
        !net.nat_rules().contains("RINGSIDE"),
        "dry run changed the table"
    );
}

#[test]
fn a_missing_iptables_is_a_clear_error() {
    let out = run(Command::new(ringside_bin()).args([
        "iptables",
        "--proxy-uid",
        "1",
        "--iptables-cmd",
        "/nonexistent/iptables",
    ]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`/nonexistent/iptables` was not found"),
        "{err}"
    );
}
