//! Differential test (issue 21, part 5): one corpus of requests, each sent once over HTTP/1.1
//! and once over h2c through Ringside, to an HTTP/1.1 cluster and to an h2c cluster (the Go
//! origin, which records what it received at `/headers`: method, target, host, fields, body
//! digest, trailers). Per cluster, both protocols must deliver equivalent requests and get
//! equivalent responses, or both must be refused with the same status. Both runtimes.
//!
//! "Equivalent" leaves out what differs by design: the protocol itself (`proto`, the
//! client's port), and the fields each protocol frames differently (`content-length` on a
//! body of unknown length, `transfer-encoding`, `te`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ringside_integration::exchange::h1_and_h2_clusters_config;
use ringside_integration::{both_runtimes, Conn, Origin, Ringside};

/// A request body and how it is framed.
#[derive(Clone, Copy)]
enum Body {
    None,
    /// HTTP/1.1: Content-Length; h2: DATA with content-length.
    Fixed(usize),
    /// HTTP/1.1: chunked (with the trailers); h2: DATA without content-length, then trailers.
    Chunked(usize),
}

struct Case {
    name: &'static str,
    method: &'static str,
    target: String,
    authority: &'static str,
    fields: Vec<(String, String)>,
    body: Body,
    trailers: Vec<(String, String)>,
}

fn case(name: &'static str, method: &'static str, target: &str) -> Case {
    Case {
        name,
        method,
        target: target.to_owned(),
        authority: "a.example",
        fields: Vec::new(),
        body: Body::None,
        trailers: Vec::new(),
    }
}

fn fields(n: usize, value_len: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("x-f{i:03}"), "v".repeat(value_len)))
        .collect()
}

/// The corpus: every item of issue 21 (validation, limits, bodiless framing, error labels),
/// plus the usual shapes of methods, targets, authorities, bodies and trailers.
fn corpus() -> Vec<Case> {
    let mut all = vec![
        case("GET", "GET", "/headers"),
        case("GET with query", "GET", "/headers?a=1&b=%20x"),
        case("HEAD", "HEAD", "/headers"),
        case("OPTIONS", "OPTIONS", "/headers"),
        case("OPTIONS *", "OPTIONS", "*"),
        case("DELETE", "DELETE", "/headers"),
        case("odd target: dot segments", "GET", "/a/../headers"),
        case("odd target: encoded slash", "GET", "/a%2Fb"),
        case("odd target: bad percent", "GET", "/a%zz"),
        case("CONNECT", "CONNECT", "a.example:443"),
        case("HEAD of a sized body", "HEAD", "/bytes/100"),
        case("204", "GET", "/status/204"),
        case("304", "GET", "/status/304"),
        case(
            "204 with a stray Content-Length",
            "GET",
            "/stray-length/204",
        ),
        case("304 with Content-Length", "GET", "/stray-length/304"),
        case("404 upstream", "GET", "/status/404"),
        case("response trailers", "GET", "/trailers"),
        case("chunked response", "GET", "/chunked/3000"),
    ];
    let mut c = case("POST fixed body", "POST", "/headers");
    c.body = Body::Fixed(3000);
    all.push(c);
    let mut c = case("PUT empty fixed body", "PUT", "/headers");
    c.body = Body::Fixed(0);
    all.push(c);
    let mut c = case("PATCH chunked body", "PATCH", "/headers");
    c.body = Body::Chunked(5000);
    all.push(c);
    let mut c = case("POST chunked body with trailers", "POST", "/headers");
    c.body = Body::Chunked(100);
    c.trailers = vec![("x-sum".into(), "abc".into())];
    all.push(c);
    let mut c = case("authority with port", "GET", "/headers");
    c.authority = "a.example:8080";
    all.push(c);
    let mut c = case("authority with userinfo", "GET", "/headers");
    c.authority = "user:pw@a.example";
    all.push(c);
    let mut c = case("authority with a second @", "GET", "/headers");
    c.authority = "a.example@evil.example";
    all.push(c);
    let mut c = case("99 fields (limit 100 with host)", "GET", "/headers");
    c.fields = fields(98, 8);
    all.push(c);
    let mut c = case("150 fields", "GET", "/headers");
    c.fields = fields(150, 8);
    all.push(c);
    let mut c = case("field bytes near max_header_bytes", "GET", "/headers");
    c.fields = fields(20, 2900);
    all.push(c);
    let mut c = case("field bytes over max_header_bytes", "GET", "/headers");
    c.fields = fields(30, 4000);
    all.push(c);
    let mut c = case("cookies, ~6 KB", "GET", "/headers");
    let jar: Vec<String> = (0..60)
        .map(|i| format!("c{i:02}={}", "v".repeat(96)))
        .collect();
    c.fields = vec![("cookie".into(), jar.join("; "))];
    all.push(c);
    // Issue 21's case: one field over HTTP/1.1, 600 crumbs over h2 (as browsers and Go send
    // them, RFC 9113 §8.2.3), within the 64 KiB limit on both.
    let mut c = case("600 cookies, ~63 KB", "GET", "/headers");
    let jar: Vec<String> = (0..600)
        .map(|i| format!("c{i:03}={}", "v".repeat(96)))
        .collect();
    c.fields = vec![("cookie".into(), jar.join("; "))];
    all.push(c);
    let mut c = case("hop-by-hop fields", "GET", "/headers");
    c.fields = vec![
        ("x-keep".into(), "1".into()),
        ("accept".into(), "*/*".into()),
    ];
    all.push(c);
    all
}

/// What must hold on both protocols, whatever they agree on: (case, field, value or absent).
/// RFC 9110 §8.6: a 204 never carries Content-Length; HEAD and 304 keep the length they
/// would have had (§9.3.2, §15.4.5).
const ABSOLUTE: &[(&str, &str, Option<&str>)] = &[
    ("204", "content-length", None),
    ("204 with a stray Content-Length", "content-length", None),
    ("304 with Content-Length", "content-length", Some("7")),
    ("HEAD of a sized body", "content-length", Some("100")),
    ("CONNECT", "x-ringside-error", Some("method not supported")),
    (
        "authority with userinfo",
        "x-ringside-error",
        Some("invalid authority"),
    ),
    (
        "150 fields",
        "x-ringside-error",
        Some("too many request header fields"),
    ),
];

/// What a client got back, and (for `/headers`) what the upstream received.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: u16,
    /// Response fields that must agree (lowercased; framing and per-protocol fields left out).
    fields: BTreeMap<String, String>,
    body: Vec<u8>,
    trailers: BTreeMap<String, String>,
}

/// Response fields the two protocols frame differently, or that vary per request.
const UNCOMPARED: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "date",
    "x-origin-proto",
    "content-length",
];

fn outcome(
    status: u16,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    chunked_or_unknown: bool,
) -> Outcome {
    let mut f = BTreeMap::new();
    let mut declared = None;
    for (n, v) in fields {
        if n == "content-length" {
            declared = Some(v.clone());
        }
        if !UNCOMPARED.contains(&n.as_str()) {
            f.entry(n)
                .and_modify(|e: &mut String| {
                    e.push_str(", ");
                    e.push_str(&v)
                })
                .or_insert(v);
        }
    }
    // A declared length is compared, except where one protocol may lack it by framing.
    if let Some(n) = declared {
        if !chunked_or_unknown {
            f.insert("content-length".into(), n);
        }
    }
    let body = recorded(&body).unwrap_or(body);
    Outcome {
        status,
        fields: f,
        body,
        trailers: trailers.into_iter().collect(),
    }
}

/// The origin's record of the request (`/headers`), less what differs by protocol.
fn recorded(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.starts_with("{\"method\"") {
        return None;
    }
    let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
    let o = v.as_object_mut()?;
    o.remove("remote_addr");
    o.remove("proto");
    if let Some(h) = o.get_mut("headers").and_then(|h| h.as_object_mut()) {
        for k in [
            "content-length",
            "transfer-encoding",
            "te",
            "x-forwarded-for",
        ] {
            h.remove(k);
        }
    }
    serde_json::to_vec(&v).ok()
}

fn body_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Sends `c` over HTTP/1.1 (raw bytes).
fn over_h1(addr: SocketAddr, c: &Case) -> Outcome {
    let mut req = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\n",
        c.method, c.target, c.authority
    );
    for (n, v) in &c.fields {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    let mut raw = Vec::new();
    match c.body {
        Body::None => {}
        Body::Fixed(n) => req.push_str(&format!("content-length: {n}\r\n")),
        Body::Chunked(_) => req.push_str("transfer-encoding: chunked\r\n"),
    }
    req.push_str("\r\n");
    raw.extend_from_slice(req.as_bytes());
    match c.body {
        Body::None => {}
        Body::Fixed(n) => raw.extend(body_bytes(n)),
        Body::Chunked(n) => {
            let b = body_bytes(n);
            for part in b.chunks(1000) {
                raw.extend(format!("{:x}\r\n", part.len()).as_bytes());
                raw.extend(part);
                raw.extend(b"\r\n");
            }
            raw.extend(b"0\r\n");
            for (k, v) in &c.trailers {
                raw.extend(format!("{k}: {v}\r\n").as_bytes());
            }
            raw.extend(b"\r\n");
        }
    }
    let mut conn = Conn::open(addr);
    conn.send(&raw);
    let r = conn
        .read_response(c.method == "HEAD")
        .expect("HTTP/1.1 response");
    let unknown = r.header("transfer-encoding").is_some();
    outcome(r.status, r.headers, r.body, r.trailers, unknown)
}

/// Sends `c` over h2c (prior knowledge), with the `h2` crate: it sends what Go's client
/// refuses to (userinfo in `:authority`, CONNECT, `:path *`).
fn over_h2(addr: SocketAddr, c: &Case) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut client, conn) = h2::client::Builder::new()
            .max_header_list_size(1 << 20)
            .handshake::<_, Bytes>(tcp)
            .await
            .expect("h2 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let uri = if c.method == "CONNECT" {
            http::Uri::builder().authority(c.target.as_str()).build()
        } else {
            http::Uri::builder()
                .scheme("http")
                .authority(c.authority)
                .path_and_query(c.target.as_str())
                .build()
        }
        .expect("uri");
        let mut req = http::Request::builder().method(c.method).uri(uri);
        for (n, v) in &c.fields {
            // HTTP/2 carries no connection-specific fields (RFC 9113 §8.2.2): the h2 client
            // of a browser or Go drops them, as this one does.
            if ["connection", "upgrade", "keep-alive"].contains(&n.as_str()) {
                continue;
            }
            if n == "cookie" {
                for crumb in v.split("; ") {
                    req = req.header("cookie", crumb);
                }
                continue;
            }
            req = req.header(n.as_str(), v.as_str());
        }
        if let Body::Fixed(n) = c.body {
            req = req.header("content-length", n.to_string());
        }
        let req = req.body(()).expect("request");
        let end = matches!(c.body, Body::None);
        let (resp, mut send) = client.send_request(req, end).expect("send request");
        match c.body {
            Body::None => {}
            Body::Fixed(n) => send.send_data(body_bytes(n).into(), true).expect("data"),
            Body::Chunked(n) => {
                let b = body_bytes(n);
                for part in b.chunks(1000) {
                    send.send_data(Bytes::copy_from_slice(part), false)
                        .expect("data");
                }
                if c.trailers.is_empty() {
                    send.send_data(Bytes::new(), true).expect("end");
                } else {
                    let mut t = http::HeaderMap::new();
                    for (k, v) in &c.trailers {
                        t.insert(
                            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                            v.parse().expect("value"),
                        );
                    }
                    send.send_trailers(t).expect("trailers");
                }
            }
        }
        let resp = tokio::time::timeout(Duration::from_secs(10), resp)
            .await
            .expect("h2 response in time")
            .expect("h2 response");
        let (parts, mut body) = resp.into_parts();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.expect("body");
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.expect("trailers").unwrap_or_default();
        let f = |m: &http::HeaderMap| -> Vec<(String, String)> {
            m.iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        };
        let unknown = !parts.headers.contains_key("content-length");
        outcome(
            parts.status.as_u16(),
            f(&parts.headers),
            bytes,
            f(&trailers),
            unknown,
        )
    })
}

both_runtimes!(fn the_corpus_means_the_same_on_both_protocols(rt) {
    let origin = Origin::start_h2c("o");
    let proxy = Ringside::start(rt, &h1_and_h2_clusters_config(&[origin.addr]));
    let corpus = corpus();
    let mut differences = Vec::new();
    for listener in ["to_h1", "to_h2"] {
        let addr = proxy.addr(listener);
        for c in &corpus {
            let (h1, h2) = (over_h1(addr, c), over_h2(addr, c));
            if h1 != h2 {
                differences.push(format!("{listener}, {}:\n  HTTP/1.1 {h1:?}\n  h2       {h2:?}", c.name));
            }
            for (name, field, want) in ABSOLUTE.iter().filter(|a| a.0 == c.name) {
                for (proto, o) in [("HTTP/1.1", &h1), ("h2", &h2)] {
                    if o.fields.get(*field).map(String::as_str) != *want {
                        differences.push(format!("{listener}, {name} over {proto}: {field} {:?}, want {want:?}", o.fields.get(*field)));
                    }
                }
            }
        }
    }
    // HTTP/2 has no Upgrade (RFC 9113 §8.6), so an HTTP/1.1 upgrade has no h2 twin: it is
    // forwarded to an HTTP/1.1 cluster and refused, naming the cause, toward an h2 one.
    let upgrade = "GET /headers HTTP/1.1\r\nhost: a.example\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n";
    let to_h1 = Conn::open(proxy.addr("to_h1")).send(upgrade.as_bytes()).read_response(false).expect("upgrade to h1");
    if to_h1.status != 200 || !to_h1.text().contains("\"upgrade\":[\"websocket\"]") {
        differences.push(format!("upgrade to an HTTP/1.1 cluster: {} {}", to_h1.status, to_h1.text()));
    }
    let to_h2 = Conn::open(proxy.addr("to_h2")).send(upgrade.as_bytes()).read_response(false).expect("upgrade to h2");
    if to_h2.status != 501 || to_h2.header("x-ringside-error") != Some("upgrade not supported to an HTTP/2 cluster") {
        differences.push(format!("upgrade to an h2 cluster: {} {:?}", to_h2.status, to_h2.headers));
    }
    eprintln!("corpus: {} requests x 2 protocols x 2 clusters", corpus.len());
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
});
