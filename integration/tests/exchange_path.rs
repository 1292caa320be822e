//! Issue 11, fault 8: routes see the normalised path (RFC 3986 §6.2.2: dot segments
//! removed, percent-encoded unreserved characters decoded, percent-encodings upper-cased),
//! and the upstream receives that path; `%2F` stays encoded by default; `merge_slashes` is
//! opt-in. Two origins tell which route won (x-origin) and what arrived (x-origin-uri).

use ringside_integration::{both_runtimes, Conn, Origin, Ringside};

/// The listener setting that turns on slash merging. Tentative name, pending the lead's
/// config model: change it here only.
const MERGE_SLASHES: &str = "path_normalization: { merge_slashes: true }";

/// `/api` → origin `a`, everything else → origin `b`; `listener_extra` goes into the
/// listener (indented as one of its fields).
fn config(a: &Origin, b: &Origin, listener_extra: &str) -> String {
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    {listener_extra}
    routes:
      - name: api
        match: {{ path_prefix: /api }}
        backends: [ {{ cluster: a }} ]
      - name: rest
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: b }} ]
clusters:
  - name: a
    endpoints: [ {} ]
  - name: b
    endpoints: [ {} ]
"#,
        a.addr, b.addr
    )
}

/// Sends each request path and checks (origin that answered, request target it saw); the
/// failure lists every case that came back wrong.
fn check(proxy: &Ringside, cases: &[(&str, &str, &str)]) {
    let mut wrong = Vec::new();
    for (sent, origin, seen) in cases {
        let r = Conn::open(proxy.addr("inbound")).get(sent, "");
        if (r.header("x-origin"), r.header("x-origin-uri")) != (Some(*origin), Some(*seen)) {
            wrong.push(format!(
                "{sent:?}: want origin {origin} to see {seen:?}; got status {} from {:?}, which saw {:?}",
                r.status,
                r.header("x-origin"),
                r.header("x-origin-uri"),
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "routes must match the normalised path, and the upstream receive it (RFC 3986 §6.2.2):\n{}\n\
         ringside log:\n{}",
        wrong.join("\n"),
        proxy.log_text()
    );
}

both_runtimes!(fn routes_match_the_normalised_path(rt) {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let proxy = Ringside::start(rt, &config(&a, &b, ""));
    check(&proxy, &[
        ("/api/users", "a", "/api/users"),
        ("/api/../admin", "b", "/admin"),
        ("/api/./users/../items", "a", "/api/items"),
        ("/%61pi/users", "a", "/api/users"),
        ("/%61pi/users?q=%2F", "a", "/api/users?q=%2F"),
        ("/api/%2Fx", "a", "/api/%2Fx"),
        ("/api/%2fx", "a", "/api/%2Fx"),
        ("//api/users", "b", "//api/users"),
    ]);
});

both_runtimes!(fn merge_slashes_when_enabled(rt) {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let proxy = Ringside::start(rt, &config(&a, &b, MERGE_SLASHES));
    check(&proxy, &[
        ("//api///users", "a", "/api/users"),
        ("/api//users/", "a", "/api/users/"),
    ]);
});
