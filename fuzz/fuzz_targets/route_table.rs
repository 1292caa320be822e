//! The route table's index (`control::RouteTable::find`) against its definition, the linear
//! scan over routes in config order (`find_by_scan`, exposed by control's `fuzzing` feature).
//!
//! The input chooses routes (hosts exact, `*.` wildcard or IPv6; exact paths or prefixes;
//! methods; header conditions), which are loaded the way `ringside check` loads a config,
//! then requests, hosts and paths built from an alphabet of separators, case pairs and
//! multi-byte characters. Invariant: for every request, index and scan pick the same route.
#![no_main]

use control::{ListenerKind, RequestView};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const HOST_CHARS: &[char] = &['a', 'A', 'b', '-', '.', '_', '1', 'é'];
const REQ_HOST_CHARS: &[char] = &[
    'a', 'A', 'b', 'B', '.', ':', '*', '[', ']', '1', '8', 'é', 'É', '-', '_',
];
const PATH_CHARS: &[char] = &['/', 'a', 'A', 'b', '%', '2', 'F', '.', 'é', '?'];
const METHODS: &[&str] = &["GET", "POST", "PUT", "get"];
const HEADER_NAMES: &[&str] = &["x-a", "X-A", "x-b"];
const HEADER_VALUES: &[&str] = &["1", "2", ""];

#[derive(Debug)]
struct Req {
    method: &'static str,
    host: Option<String>,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
}

impl RequestView for Req {
    fn method(&self) -> &str {
        self.method
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
            .map(|(_, v)| v.as_bytes())
    }
}

fn pick<T: Copy>(u: &mut Unstructured<'_>, from: &[T]) -> Result<T> {
    Ok(*u.choose(from)?)
}

fn text(u: &mut Unstructured<'_>, chars: &[char], max: u8) -> Result<String> {
    (0..u.int_in_range(0..=max)?)
        .map(|_| pick(u, chars))
        .collect()
}

fn rule_host(u: &mut Unstructured<'_>) -> Result<Option<String>> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 | 1 => None,
        2 | 3 => Some(text(u, HOST_CHARS, 6)?),
        4 => Some(format!("*.{}", text(u, HOST_CHARS, 6)?)),
        _ => Some("[::1]".into()),
    })
}

fn route(u: &mut Unstructured<'_>, i: usize) -> Result<Value> {
    let mut m = serde_json::Map::new();
    if let Some(h) = rule_host(u)? {
        m.insert("host".into(), h.into());
    }
    match u.int_in_range(0..=2u8)? {
        0 => {
            m.insert(
                "path".into(),
                format!("/{}", text(u, PATH_CHARS, 5)?).into(),
            );
        }
        1 => {
            m.insert(
                "path_prefix".into(),
                format!("/{}", text(u, PATH_CHARS, 5)?).into(),
            );
        }
        _ => {}
    }
    if u.ratio(1, 4)? {
        m.insert("method".into(), pick(u, &METHODS[..3])?.into());
    }
    if u.ratio(1, 4)? {
        let mut h = serde_json::Map::new();
        h.insert(
            pick(u, HEADER_NAMES)?.into(),
            pick(u, HEADER_VALUES)?.into(),
        );
        m.insert("headers".into(), h.into());
    }
    Ok(json!({
        "name": format!("r{i}"),
        "match": m,
        "backends": [{ "cluster": "c", "weight": 1 }],
    }))
}

fn request(u: &mut Unstructured<'_>, rule_hosts: &[String]) -> Result<Req> {
    let host = match u.int_in_range(0..=4u8)? {
        0 => None,
        1 | 2 if !rule_hosts.is_empty() => {
            // A route's host, its wildcard filled in, its case flipped, maybe a port.
            let h = u.choose(rule_hosts)?;
            let filled = h.replace('*', &text(u, HOST_CHARS, 3)?);
            let mut flipped = String::new();
            for c in filled.chars() {
                flipped.push(if u.arbitrary()? {
                    c.to_ascii_uppercase()
                } else {
                    c
                });
            }
            let suffix = pick(u, &["", ":8080", ".", ".:443", ":x"])?;
            Some(flipped + suffix)
        }
        _ => Some(text(u, REQ_HOST_CHARS, 10)?),
    };
    let mut headers = Vec::new();
    for _ in 0..u.int_in_range(0..=2u8)? {
        headers.push((pick(u, HEADER_NAMES)?, pick(u, HEADER_VALUES)?));
    }
    Ok(Req {
        method: pick(u, METHODS)?,
        host,
        path: text(u, PATH_CHARS, 8)?,
        headers,
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let n = u.int_in_range(1..=24usize)?;
    let routes: Vec<Value> = (0..n).map(|i| route(u, i)).collect::<Result<_>>()?;
    let rule_hosts: Vec<String> = routes
        .iter()
        .filter_map(|r| r["match"]["host"].as_str().map(str::to_owned))
        .collect();
    let config = json!({
        "listeners": [{
            "name": "l", "address": "127.0.0.1:1", "protocol": "http", "routes": routes,
        }],
        "clusters": [{ "name": "c", "endpoints": ["127.0.0.1:2"] }],
    });
    // JSON is YAML: the config loads as `ringside check` would load it.
    let text = config.to_string();
    let snapshot = match control::load_str(&text, "fuzz.yaml") {
        Ok(s) => s,
        Err(problems) => {
            // Every generated route is valid but for hosts like `a..b` or `.a` (refused).
            assert!(
                problems.iter().all(|p| p.reason.contains("host")),
                "{problems:?}\n{text}"
            );
            return Ok(());
        }
    };
    let Some(ListenerKind::Http { routes: table }) = snapshot.listener("l").map(|l| &l.kind) else {
        panic!("no http listener");
    };
    for _ in 0..u.int_in_range(1..=16u8)? {
        let req = request(u, &rule_hosts)?;
        let got = table.find(&req).map(|r| &r.name);
        let want = table.find_by_scan(&req).map(|r| &r.name);
        assert_eq!(got, want, "request {req:?}\nconfig {text}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
