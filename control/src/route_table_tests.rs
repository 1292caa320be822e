//! The indexed lookup against its definition, the linear scan, on random route tables and
//! requests (a property test), and on random bytes in hosts and paths (a fuzz test). Seeds
//! are fixed so a failure reproduces; `RINGSIDE_ROUTE_FUZZ_ITERS` runs the fuzz test longer.

use super::RouteTable;
use crate::cluster_id::ClusterId;
use crate::model::{Backend, Route, RouteMatch, DEFAULT_ROUTE_TIMEOUT};
use crate::route::{Interner, RequestView, RouteSpec};
use fastrand::Rng;
use std::collections::BTreeMap;

#[derive(Debug)]
struct Req {
    method: String,
    host: Option<String>,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl RequestView for Req {
    fn method(&self) -> &str {
        &self.method
    }
    fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
    fn path(&self) -> &str {
        &self.path
    }
    fn header(&self, lowercase_name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(lowercase_name))
            .map(|(_, v)| v.as_slice())
    }
}

/// Labels chosen to collide: case variants, non-ASCII (whose case ASCII folding leaves
/// alone), empty labels.
const LABELS: &[&str] = &["a", "A", "b", "svc", "SVC", "é", "É", "x-y", ""];
const SEGMENTS: &[&str] = &[
    "/", "a", "/a", "/A", "/b", "b/", "é", "%2F", "/api", "/api/",
];
const METHODS: &[&str] = &["GET", "POST", "get"];
const HEADER_NAMES: &[&str] = &["x-a", "X-A", "x-b"];
const HEADER_VALUES: &[&str] = &["1", "2", ""];

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(..from.len())]
}

fn host_name(rng: &mut Rng) -> String {
    let labels: Vec<&str> = (0..rng.usize(0..4)).map(|_| pick(rng, LABELS)).collect();
    labels.join(".")
}

/// How hosts appear in configs: exact names, `*.` and bare `*` wildcards, with stray dots
/// and ports that the request side strips (so such rules can only match odd requests).
fn rule_host(rng: &mut Rng) -> String {
    let name = host_name(rng);
    match rng.u8(..10) {
        0..=4 => name,
        5 | 6 => format!("*.{name}"),
        7 => format!("*{name}"),
        8 => format!("{name}."),
        _ => format!("{name}:80"),
    }
}

/// How hosts arrive: with ports, trailing dots, IPv6 literals, garbage ports.
fn request_host(rng: &mut Rng, base: String) -> String {
    match rng.u8(..12) {
        0..=5 => base,
        6 => format!("{base}:8080"),
        7 => format!("{base}."),
        8 => format!("{base}.:443"),
        9 => format!("{base}:x"),
        10 => format!("[::1]:{}", rng.u16(..)),
        _ => format!("{base}:80:80"),
    }
}

fn path(rng: &mut Rng) -> String {
    (0..rng.usize(0..4)).map(|_| pick(rng, SEGMENTS)).collect()
}

fn route(rng: &mut Rng, i: usize, hosts: &[String]) -> Route {
    let mut m = RouteMatch::default();
    if rng.u8(..4) != 0 {
        m.host = Some(hosts[rng.usize(..hosts.len())].clone());
    }
    match rng.u8(..3) {
        0 => m.path = Some(path(rng)),
        1 => m.path_prefix = Some(path(rng)),
        _ => {}
    }
    if rng.u8(..4) == 0 {
        m.method = Some(pick(rng, METHODS).into());
    }
    for _ in 0..rng.usize(0..3).saturating_sub(1) {
        m.headers.insert(
            pick(rng, HEADER_NAMES).into(),
            pick(rng, HEADER_VALUES).into(),
        );
    }
    Route {
        name: format!("r{i}"),
        matcher: m,
        backends: vec![Backend {
            cluster: "c".into(),
            weight: 1,
        }],
        timeout: DEFAULT_ROUTE_TIMEOUT,
        authz: None,
        rate_limit: None,
        retry: None,
    }
}

fn table(routes: &[Route]) -> RouteTable {
    let mut strings = Interner::default();
    let specs: Vec<RouteSpec> = routes
        .iter()
        .map(|r| RouteSpec::compile(r, |_| Some(ClusterId(0)), &mut strings))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    RouteTable::new(specs)
}

/// A request built from one of the routes, so that many requests match something.
fn request(rng: &mut Rng, routes: &[Route]) -> Req {
    let r = &routes[rng.usize(..routes.len())].matcher;
    let host = match (&r.host, rng.u8(..5)) {
        (_, 0) => None,
        (Some(h), 1..=3) => {
            let h = h.replace('*', &host_name(rng));
            let h = flip_case(rng, &h);
            Some(request_host(rng, h))
        }
        _ => {
            let h = host_name(rng);
            Some(request_host(rng, h))
        }
    };
    let base = r.path.clone().or(r.path_prefix.clone()).unwrap_or_default();
    let path = match rng.u8(..4) {
        0 => path(rng),
        1 => base,
        _ => base + &path(rng),
    };
    let method = r
        .method
        .clone()
        .filter(|_| rng.bool())
        .unwrap_or_else(|| pick(rng, METHODS).into());
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for (k, v) in &r.headers {
        if rng.u8(..4) != 0 {
            headers.push((flip_case(rng, k), v.clone().into_bytes()));
        }
    }
    if rng.bool() {
        headers.push((
            pick(rng, HEADER_NAMES).into(),
            pick(rng, HEADER_VALUES).into(),
        ));
    }
    Req {
        method,
        host,
        path,
        headers,
    }
}

fn flip_case(rng: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.bool() {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn same(t: &RouteTable, req: &Req) -> bool {
    let got = t.find(req).map(|r| &r.name);
    let want = t.find_by_scan(req).map(|r| &r.name);
    assert_eq!(got, want, "request {req:?}");
    want.is_some()
}

#[test]
fn index_returns_what_the_scan_returns() {
    let mut rng = Rng::with_seed(0x5eed_0018);
    let (mut requests, mut matched) = (0u32, 0u32);
    for _ in 0..400 {
        // Few hosts and many routes fill groups past the scan limit, so both kinds of
        // group (scanned and path-indexed) are checked.
        let hosts: Vec<String> = (0..rng.usize(1..6)).map(|_| rule_host(&mut rng)).collect();
        let n = if rng.bool() {
            rng.usize(1..12)
        } else {
            rng.usize(12..80)
        };
        let routes: Vec<Route> = (0..n).map(|i| route(&mut rng, i, &hosts)).collect();
        let t = table(&routes);
        for _ in 0..100 {
            requests += 1;
            matched += u32::from(same(&t, &request(&mut rng, &routes)));
        }
    }
    // The generator must exercise matches, not only misses.
    assert!(
        matched > requests / 4 && matched < requests,
        "{matched} of {requests} matched"
    );
}

/// Characters for fuzzed hosts and paths: separators, case pairs, multi-byte characters whose
/// byte boundaries a suffix or prefix could split.
const FUZZ_CHARS: &[char] = &[
    'a', 'A', 'b', '.', ':', '*', '/', '[', ']', '1', 'é', 'É', 'ß', '€', '😀', ' ',
];

fn fuzz_str(rng: &mut Rng, max: usize) -> String {
    (0..rng.usize(0..=max))
        .map(|_| FUZZ_CHARS[rng.usize(..FUZZ_CHARS.len())])
        .collect()
}

#[test]
fn fuzzed_hosts_and_paths_agree_with_the_scan() {
    let iters: usize = std::env::var("RINGSIDE_ROUTE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut rng = Rng::with_seed(0xf022_0018);
    for _ in 0..iters {
        let routes: Vec<Route> = (0..rng.usize(1..40))
            .map(|i| {
                let mut m = RouteMatch {
                    host: Some(fuzz_str(&mut rng, 6)).filter(|_| rng.u8(..4) != 0),
                    headers: BTreeMap::new(),
                    ..RouteMatch::default()
                };
                match rng.u8(..3) {
                    0 => m.path = Some(fuzz_str(&mut rng, 4)),
                    1 => m.path_prefix = Some(fuzz_str(&mut rng, 4)),
                    _ => {}
                }
                Route {
                    name: format!("r{i}"),
                    matcher: m,
                    backends: vec![Backend {
                        cluster: "c".into(),
                        weight: 1,
                    }],
                    timeout: DEFAULT_ROUTE_TIMEOUT,
                    authz: None,
                    rate_limit: None,
                    retry: None,
                }
            })
            .collect();
        let t = table(&routes);
        for _ in 0..200 {
            let req = Req {
                method: "GET".into(),
                host: Some(fuzz_str(&mut rng, 8)).filter(|_| rng.u8(..8) != 0),
                path: fuzz_str(&mut rng, 6),
                headers: Vec::new(),
            };
            same(&t, &req);
        }
    }
}
