//! Route matching and weighted backend choice on compiled snapshots.

use control::snapshot::{ClusterId, ListenerKind, Snapshot};
use control::{load_str, RequestView, RouteTable};

struct Req {
    method: &'static str,
    host: Option<&'static str>,
    path: &'static str,
    headers: Vec<(&'static str, &'static [u8])>,
}

impl Req {
    fn get(path: &'static str) -> Self {
        Req {
            method: "GET",
            host: None,
            path,
            headers: Vec::new(),
        }
    }
    fn host(mut self, host: &'static str) -> Self {
        self.host = Some(host);
        self
    }
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    fn header(mut self, name: &'static str, value: &'static [u8]) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl RequestView for Req {
    fn method(&self) -> &str {
        self.method
    }
    fn host(&self) -> Option<&str> {
        self.host
    }
    fn path(&self) -> &str {
        self.path
    }
    fn header(&self, lowercase_name: &str) -> Option<&[u8]> {
        assert_eq!(lowercase_name, lowercase_name.to_ascii_lowercase());
        // Stored names keep the request's case; lookups must still work.
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(lowercase_name))
            .map(|(_, v)| *v)
    }
}

fn snapshot(routes: &str) -> Snapshot {
    let text = format!(
        "listeners:
  - name: web
    address: 127.0.0.1:80
    protocol: http
    routes:
{routes}clusters:
  - {{ name: a, endpoints: [ 127.0.0.1:1 ] }}
  - {{ name: b, endpoints: [ 127.0.0.1:2 ] }}
  - {{ name: c, endpoints: [ 127.0.0.1:3 ] }}
"
    );
    load_str(&text, "routes.yaml").unwrap_or_else(|p| panic!("{p}"))
}

fn table(snap: &Snapshot) -> &RouteTable {
    match &snap.listeners[0].kind {
        ListenerKind::Http { routes } => routes,
        ListenerKind::Tcp { .. } => panic!("http listener expected"),
    }
}

fn route_name(snap: &Snapshot, req: &Req) -> Option<String> {
    table(snap).find(req).map(|r| r.name.clone())
}

#[test]
fn prefix_and_exact_path() {
    let snap = snapshot(
        "      - { name: exact, match: { path: /health }, backends: [ { cluster: a } ] }
      - { name: api, match: { path_prefix: /api }, backends: [ { cluster: b } ] }
",
    );
    assert_eq!(
        route_name(&snap, &Req::get("/health")).as_deref(),
        Some("exact")
    );
    assert_eq!(route_name(&snap, &Req::get("/healthz")), None);
    assert_eq!(route_name(&snap, &Req::get("/api")).as_deref(), Some("api"));
    assert_eq!(
        route_name(&snap, &Req::get("/api/v1")).as_deref(),
        Some("api")
    );
    // Segment-agnostic: a plain string prefix.
    assert_eq!(
        route_name(&snap, &Req::get("/apiary")).as_deref(),
        Some("api")
    );
    assert_eq!(route_name(&snap, &Req::get("/other")), None);
}

#[test]
fn host_matching_ignores_case_and_port() {
    let snap = snapshot(
        "      - { name: exact, match: { host: Example.com }, backends: [ { cluster: a } ] }
      - { name: wild, match: { host: \"*.example.com\" }, backends: [ { cluster: b } ] }
",
    );
    let name = |host| route_name(&snap, &Req::get("/").host(host));
    assert_eq!(name("example.com").as_deref(), Some("exact"));
    assert_eq!(name("EXAMPLE.COM:8080").as_deref(), Some("exact"));
    assert_eq!(name("example.com.").as_deref(), Some("exact"));
    assert_eq!(name("api.example.com").as_deref(), Some("wild"));
    assert_eq!(name("a.b.Example.Com:443").as_deref(), Some("wild"));
    assert_eq!(name("notexample.com"), None);
    assert_eq!(name("example.org"), None);
    assert_eq!(route_name(&snap, &Req::get("/")), None, "no host header");
}

#[test]
fn method_and_headers() {
    let snap = snapshot(
        "      - { name: post, match: { method: POST }, backends: [ { cluster: a } ] }
      - { name: canary, match: { headers: { X-Canary: \"1\", x-team: blue } }, backends: [ { cluster: b } ] }
",
    );
    assert_eq!(
        route_name(&snap, &Req::get("/").method("POST")).as_deref(),
        Some("post")
    );
    assert_eq!(route_name(&snap, &Req::get("/").method("post")), None);
    let both = Req::get("/")
        .header("x-canary", b"1")
        .header("X-Team", b"blue");
    assert_eq!(route_name(&snap, &both).as_deref(), Some("canary"));
    let one = Req::get("/").header("x-canary", b"1");
    assert_eq!(route_name(&snap, &one), None, "all headers must match");
    let wrong = Req::get("/")
        .header("x-canary", b"2")
        .header("x-team", b"blue");
    assert_eq!(route_name(&snap, &wrong), None);
    let case = Req::get("/")
        .header("x-canary", b"1")
        .header("x-team", b"Blue");
    assert_eq!(route_name(&snap, &case), None, "values are exact");
}

#[test]
fn first_match_wins_and_empty_match_matches_all() {
    let snap = snapshot(
        "      - { name: api, match: { path_prefix: /api }, backends: [ { cluster: a } ] }
      - { name: api-post, match: { path_prefix: /api, method: POST }, backends: [ { cluster: b } ] }
      - { name: all, backends: [ { cluster: c } ] }
",
    );
    let post = Req::get("/api/x").method("POST");
    assert_eq!(route_name(&snap, &post).as_deref(), Some("api"));
    assert_eq!(
        route_name(&snap, &Req::get("/x").method("DELETE")).as_deref(),
        Some("all")
    );
    let route = table(&snap).find(&Req::get("/x")).unwrap();
    assert_eq!(route.pick_cluster(12345), ClusterId(2));
}

#[test]
fn weighted_pick_is_exactly_proportional() {
    let snap = snapshot(
        "      - { name: split, backends: [ { cluster: a, weight: 90 }, { cluster: b, weight: 10 } ] }
",
    );
    let route = table(&snap).find(&Req::get("/")).unwrap();
    assert_eq!(route.backends(), &[(ClusterId(0), 90), (ClusterId(1), 10)]);
    let n: u64 = 1000;
    let mut counts = [0u64; 2];
    for k in 0..n {
        // Evenly spaced over the whole u32 range: ceil(k * 2^32 / n).
        let random = u32::try_from((k << 32).div_ceil(n)).unwrap();
        counts[route.pick_cluster(random).0] += 1;
    }
    assert_eq!(counts, [900, 100]);
    assert_eq!(route.pick_cluster(0), ClusterId(0));
    assert_eq!(route.pick_cluster(u32::MAX), ClusterId(1));
}

#[test]
fn zero_weight_backends_are_never_picked() {
    let snap = snapshot(
        "      - { name: split, backends: [ { cluster: a, weight: 0 }, { cluster: b }, { cluster: c, weight: 0 }, { cluster: a, weight: 3 } ] }
",
    );
    let route = table(&snap).find(&Req::get("/")).unwrap();
    let mut counts = [0u32; 3];
    for k in 0..=u16::MAX as u32 {
        counts[route.pick_cluster(k << 16).0] += 1;
    }
    assert_eq!(counts, [49152, 16384, 0]);
    assert_eq!(route.pick_cluster(0), ClusterId(1));
    assert_eq!(route.pick_cluster(u32::MAX), ClusterId(0));
}
