//! Every validation rule: exact position and a fragment of the reason.

use control::load_str;

/// All problems as `line:col: reason`, after checking the file label.
fn problems(text: &str) -> Vec<String> {
    let problems = match load_str(text, "cfg.yaml") {
        Ok(_) => panic!("expected problems for:\n{text}"),
        Err(p) => p,
    };
    let rendered = problems.to_string();
    assert_eq!(rendered.lines().count(), problems.len());
    problems
        .iter()
        .map(|p| {
            assert_eq!(p.file, "cfg.yaml");
            assert!(rendered.contains(&p.to_string()));
            format!("{}:{}: {}", p.line, p.col, p.reason)
        })
        .collect()
}

/// Asserts exactly one problem, at `line:col`, whose reason contains `fragment`.
#[track_caller]
fn only(text: &str, line: u32, col: u32, fragment: &str) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
    let prefix = format!("{line}:{col}: ");
    assert!(
        found[0].starts_with(&prefix) && found[0].contains(fragment),
        "expected {prefix}...{fragment}..., got {:?}",
        found[0]
    );
}

/// A valid file with one http and one tcp listener, to mutate in tests.
/// Line numbers below refer to this layout.
const BASE_CLUSTERS: &str = "clusters:
  - { name: app, endpoints: [ 127.0.0.1:8080 ] }
  - { name: db, endpoints: [ 127.0.0.1:5432 ] }
";

fn with_listeners(listeners: &str) -> String {
    format!("listeners:\n{listeners}{BASE_CLUSTERS}")
}

fn http_route(route_lines: &str) -> String {
    with_listeners(&format!(
        "  - name: web
    address: 127.0.0.1:80
    protocol: http
    routes:
{route_lines}"
    ))
}

#[test]
fn base_is_valid() {
    let text = http_route("      - name: r\n        backends: [ { cluster: app } ]\n");
    load_str(&text, "f").unwrap_or_else(|p| panic!("{p}"));
}

#[test]
fn yaml_syntax_error_is_reported_alone() {
    only(
        "listeners: [\nclusters: []\n",
        2,
        1,
        "YAML syntax error: invalid indentation",
    );
    only("a: 1\n  b: 2\n", 2, 4, "mapping values are not allowed");
    only("a: \"abc\n", 1, 4, "quoted scalar");
}

#[test]
fn duplicate_keys_and_unsupported_yaml() {
    only(
        "listeners: []\nclusters: []\nlisteners: []\n",
        3,
        1,
        "duplicate key `listeners` (first at line 1)",
    );
    // yaml-rust2 marks the anchored node, not the `&`.
    only("listeners: &l []\nclusters: *l\n", 1, 15, "anchors");
    only("- 1\n", 1, 1, "top level of the config must be a mapping");
    only(
        "listeners: []\nclusters: []\n---\nother: 1\n",
        3,
        1,
        "only one YAML document",
    );
}

#[test]
fn unknown_fields_point_at_the_key() {
    only(
        "listeners: []\nclusters: []\nlistener: []\n",
        3,
        1,
        "unknown field `listener` in the config; expected one of: admin, listeners, clusters",
    );
    let text = http_route(
        "      - name: r\n        backends: [ { cluster: app, wieght: 2 } ]\n        retries: 3\n",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("7:37: unknown field `wieght` in backend"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("8:9: unknown field `retries` in route"),
        "{found:?}"
    );
    only(
        "admin: { adress: 127.0.0.1:1 }\nlisteners: []\nclusters: []\n",
        1,
        10,
        "unknown field `adress` in admin",
    );
}

#[test]
fn wrong_types() {
    only(
        "listeners: {}\nclusters: []\n",
        1,
        12,
        "expected a list for listeners, found a mapping",
    );
    let text =
        http_route("      - name: r\n        backends: [ { cluster: app, weight: \"5\" } ]\n");
    only(
        &text,
        7,
        45,
        "expected an integer for weight, found a string",
    );
    let text = http_route("      - name: r\n        backends: [ { cluster: app, weight: -5 } ]\n");
    only(
        &text,
        7,
        45,
        "expected a non-negative integer for weight, found `-5`",
    );
    let text = http_route("      - name: [r]\n        backends: [ { cluster: app } ]\n");
    only(
        &text,
        6,
        15,
        "expected a string for route name, found a list",
    );
}

#[test]
fn missing_required_fields_point_at_the_entry() {
    only(
        "listeners: []\n",
        1,
        1,
        "missing field `clusters` in the config",
    );
    let text = with_listeners("  - address: 127.0.0.1:80\n    protocol: tcp\n    cluster: db\n");
    only(&text, 2, 5, "missing field `name` in listener");
    let text = http_route("      - name: r\n");
    only(&text, 6, 9, "missing field `backends` in route");
    let text = http_route("      - name: r\n        backends: [ { weight: 1 } ]\n");
    only(&text, 7, 21, "missing field `cluster` in backend");
    only(
        "listeners: []\nclusters:\n  - name: x\n",
        3,
        5,
        "missing field `endpoints` in cluster",
    );
    only(
        "listeners: []\nclusters:\n  - name:\n    endpoints: [ 127.0.0.1:1 ]\n",
        3,
        5,
        "field `name` in cluster needs a value",
    );
}

#[test]
fn bad_socket_addresses() {
    only(
        "listeners: []\nclusters:\n  - { name: a, endpoints: [ 127.0.0.1:1, local_host:80 ] }\n",
        3,
        42,
        "invalid endpoint `local_host:80`: host `local_host` is not a valid DNS name",
    );
    only(
        "listeners: []\nclusters:\n  - { name: a, endpoints: [ 127.0.0.1:1, web ] }\n",
        3,
        42,
        "invalid endpoint `web`: expected IP:port or host:port",
    );
    let text = with_listeners("  - { name: t, address: 0.0.0.0, protocol: tcp, cluster: db }\n");
    only(
        &text,
        2,
        25,
        "invalid socket address `0.0.0.0` for listener address: expected IP:port",
    );
    only(
        "admin: { address: nope }\nlisteners: []\nclusters: []\n",
        1,
        19,
        "admin address",
    );
}

#[test]
fn duplicate_listener_names_and_addresses() {
    let text = with_listeners(
        "  - { name: t, address: 127.0.0.1:1, protocol: tcp, cluster: db }
  - { name: t, address: 127.0.0.1:1, protocol: tcp, cluster: db }
  - { name: u, address: 0.0.0.0:1, protocol: tcp, cluster: db }
",
    );
    let found = problems(&text);
    assert_eq!(
        found,
        [
            "3:13: duplicate listener name `t` (first defined at line 2)",
            "3:25: duplicate listener address `127.0.0.1:1` (first used at line 2)",
            "4:25: listener address `0.0.0.0:1` overlaps `127.0.0.1:1` (line 2) on the same port",
        ]
    );
}

#[test]
fn duplicate_cluster_names() {
    only(
        "listeners: []\nclusters:\n  - { name: a, endpoints: [ 127.0.0.1:1 ] }\n  - { name: a, endpoints: [ 127.0.0.1:2 ] }\n",
        4,
        13,
        "duplicate cluster name `a` (first defined at line 3)",
    );
}

#[test]
fn duplicate_route_names_within_a_listener() {
    let text = http_route(
        "      - { name: r, backends: [ { cluster: app } ] }\n      - { name: r, backends: [ { cluster: app } ] }\n",
    );
    only(
        &text,
        7,
        17,
        "duplicate route name `r` (first defined at line 6)",
    );
    // The same route name in two listeners is fine.
    let text = with_listeners(
        "  - { name: a, address: 127.0.0.1:1, protocol: http, routes: [ { name: r, backends: [ { cluster: app } ] } ] }
  - { name: b, address: 127.0.0.1:2, protocol: http, routes: [ { name: r, backends: [ { cluster: app } ] } ] }
",
    );
    load_str(&text, "f").unwrap_or_else(|p| panic!("{p}"));
}

#[test]
fn unknown_backend_cluster_lists_defined_ones() {
    let text = http_route("      - name: r\n        backends: [ { cluster: ap } ]\n");
    only(&text, 7, 32, "unknown cluster `ap` (defined: app, db)");
}

#[test]
fn tcp_listener_rules() {
    let text =
        with_listeners("  - { name: t, address: 127.0.0.1:1, protocol: tcp, cluster: dbb }\n");
    only(&text, 2, 62, "unknown cluster `dbb` (defined: app, db)");
    let text = with_listeners("  - { name: t, address: 127.0.0.1:1, protocol: tcp }\n");
    only(&text, 2, 5, "tcp listener `t` needs `cluster`");
    let text = with_listeners(
        "  - name: t\n    address: 127.0.0.1:1\n    protocol: tcp\n    cluster: db\n    routes: [ { name: r, backends: [ { cluster: app } ] } ]\n",
    );
    only(&text, 6, 13, "tcp listener `t` cannot have routes");
    let text = with_listeners(
        "  - name: t\n    address: 127.0.0.1:1\n    protocol: tcp\n    cluster: db\n    timeouts: { header_read: 1s, idle: 10s }\n    limits: { max_headers: 5 }\n",
    );
    let found = problems(&text);
    assert_eq!(
        found,
        [
            "6:30: header_read applies only to http listeners",
            "7:28: limits.max_headers applies only to http listeners",
        ]
    );
    // Connections are limited on every listener; requests only where there are requests.
    let text = with_listeners(
        "  - name: t\n    address: 127.0.0.1:1\n    protocol: tcp\n    cluster: db\n    limits: { max_connections: 5, max_requests: 0 }\n",
    );
    assert_eq!(
        problems(&text),
        [
            "6:49: max_requests must be greater than zero",
            "6:49: limits.max_requests applies only to http listeners",
        ]
    );
    let text = with_listeners(
        "  - name: t\n    address: 127.0.0.1:1\n    protocol: tcp\n    cluster: db\n    limits: { max_connections: 5 }\n",
    );
    assert!(
        load_str(&text, "cfg.yaml").is_ok(),
        "max_connections is fine on tcp"
    );
}

#[test]
fn send_stall_and_body_pace_are_checked() {
    // On a tcp listener neither applies; zero or garbage is refused where written.
    let text = with_listeners(
        "  - name: t\n    address: 127.0.0.1:1\n    protocol: tcp\n    cluster: db\n    timeouts: { send_stall: 1s, body_read: 2s }\n    limits: { min_body_rate: 10 }\n",
    );
    assert_eq!(
        problems(&text),
        [
            "6:29: send_stall applies only to http listeners",
            "6:44: body_read applies only to http listeners",
            "7:30: limits.min_body_rate applies only to http listeners",
        ]
    );
    let http = |timeouts: &str, limits: &str| {
        with_listeners(&format!(
            "  - name: h\n    address: 127.0.0.1:1\n    protocol: http\n    timeouts: {{ {timeouts} }}\n    limits: {{ {limits} }}\n    routes: [ {{ name: r, backends: [ {{ cluster: app }} ] }} ]\n"
        ))
    };
    let text = http("send_stall: 0s, body_read: soon", "min_body_rate: 0");
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].contains("send_stall timeout must be greater than zero"),
        "{found:?}"
    );
    assert!(found[1].contains("body_read timeout:"), "{found:?}");
    assert!(
        found[2].contains("min_body_rate must be greater than zero"),
        "{found:?}"
    );
    assert!(load_str(
        &http("send_stall: 5s, body_read: 10s", "min_body_rate: 100"),
        "f"
    )
    .is_ok());
}

#[test]
fn http_listener_rules() {
    let text = with_listeners("  - { name: h, address: 127.0.0.1:1, protocol: http }\n");
    only(&text, 2, 5, "http listener `h` needs `routes`");
    let text =
        with_listeners("  - { name: h, address: 127.0.0.1:1, protocol: http, routes: [] }\n");
    only(&text, 2, 62, "http listener `h` needs at least one route");
    let text = with_listeners(
        "  - { name: h, address: 127.0.0.1:1, protocol: http, cluster: db, routes: [ { name: r, backends: [ { cluster: app } ] } ] }\n",
    );
    only(&text, 2, 63, "http listener `h` cannot have `cluster`");
}

#[test]
fn backends_empty_or_weightless() {
    let text = http_route("      - name: r\n        backends: []\n");
    only(&text, 7, 19, "route `r` needs at least one backend");
    let text = http_route(
        "      - name: r\n        backends: [ { cluster: app, weight: 0 }, { cluster: db, weight: 0 } ]\n",
    );
    only(&text, 7, 19, "total backend weight of 0");
    let text =
        http_route("      - name: r\n        backends: [ { cluster: app, weight: 10001 } ]\n");
    only(&text, 7, 45, "weight 10001 is over the maximum of 10000");
    let text =
        http_route("      - name: r\n        backends: [ { cluster: app, weight: 10000 } ]\n");
    load_str(&text, "f").unwrap_or_else(|p| panic!("{p}"));
}

#[test]
fn cluster_without_endpoints() {
    only(
        "listeners: []\nclusters:\n  - { name: a, endpoints: [] }\n",
        3,
        27,
        "cluster `a` has no endpoints",
    );
}

#[test]
fn durations_need_units_and_must_be_positive() {
    let text = http_route(
        "      - name: r\n        backends: [ { cluster: app } ]\n        timeout: 15\n",
    );
    only(&text, 8, 18, "durations need a unit, e.g. 15s");
    let text = http_route(
        "      - name: r\n        backends: [ { cluster: app } ]\n        timeout: 5x\n",
    );
    only(&text, 8, 18, "unknown duration unit `x`");
    let text = http_route(
        "      - name: r\n        backends: [ { cluster: app } ]\n        timeout: 0s\n",
    );
    only(&text, 8, 18, "route timeout must be greater than zero");
    only(
        "listeners: []\nclusters:\n  - { name: a, endpoints: [ 127.0.0.1:1 ], connect_timeout: 0ms }\n",
        3,
        61,
        "connect_timeout must be greater than zero",
    );
    let text = with_listeners(
        "  - name: t\n    address: 127.0.0.1:1\n    protocol: tcp\n    cluster: db\n    timeouts: { idle: 0s }\n",
    );
    only(&text, 6, 23, "idle timeout must be greater than zero");
}

#[test]
fn match_paths() {
    let text = http_route(
        "      - name: r\n        match: { path_prefix: api }\n        backends: [ { cluster: app } ]\n",
    );
    only(&text, 7, 31, "path `api` must start with `/`");
    let text = http_route(
        "      - name: r\n        match: { path_prefix: /a, path: /b }\n        backends: [ { cluster: app } ]\n",
    );
    only(
        &text,
        7,
        41,
        "use either `path` (exact) or `path_prefix`, not both",
    );
}

#[test]
fn match_method_host_and_headers() {
    let text = http_route(
        "      - name: r\n        match: { method: get }\n        backends: [ { cluster: app } ]\n",
    );
    only(&text, 7, 26, "method `get` must be an uppercase HTTP token");
    let text = http_route(
        "      - name: r\n        match: { host: \"example.com:8080\" }\n        backends: [ { cluster: app } ]\n",
    );
    only(&text, 7, 24, "must not include a port");
    let text = http_route(
        "      - name: r\n        match: { headers: { \"bad name\": x, X-A: \"1\", x-a: \"2\" } }\n        backends: [ { cluster: app } ]\n",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("7:29: invalid header name `bad name`"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with(
            "7:54: duplicate header `x-a` (header names are case-insensitive; first at line 7)"
        ),
        "{found:?}"
    );
}

#[test]
fn limits_must_be_positive() {
    let text = with_listeners(
        "  - name: h\n    address: 127.0.0.1:1\n    protocol: http\n    limits: { max_header_bytes: 0, max_headers: 0 }\n    routes: [ { name: r, backends: [ { cluster: app } ] } ]\n",
    );
    let found = problems(&text);
    assert_eq!(
        found,
        [
            "5:33: max_header_bytes must be greater than zero",
            "5:49: max_headers must be greater than zero",
        ]
    );
}

#[test]
fn unknown_enum_values_list_the_allowed_ones() {
    let text =
        with_listeners("  - { name: t, address: 127.0.0.1:1, protocol: udp, cluster: db }\n");
    only(
        &text,
        2,
        48,
        "unknown listener protocol `udp`; allowed: http, tcp",
    );
    let found = problems(
        "listeners: []\nclusters:\n  - { name: a, endpoints: [ 127.0.0.1:1 ], protocol: h3, lb: random }\n",
    );
    assert_eq!(
        found,
        [
            "3:54: unknown cluster protocol `h3`; allowed: http1, http2",
            "3:62: unknown lb policy `random`; allowed: round_robin, least_request, ewma",
        ]
    );
}

#[test]
fn many_problems_are_reported_together_in_file_order() {
    let text = "\
listeners:
  - name: web
    address: 127.0.0.1:80
    protocol: http
    routes:
      - name: r
        match: { path: nope }
        backends: [ { cluster: missing, weight: 3 } ]
        timeout: 10
  - name: web
    address: 127.0.0.1:81
    protocol: tcp
clusters:
  - name: app
    endpoints: [ 127.0.0.1 ]
    lb: fastest
  - name: app
    endpoints: []
    colour: blue
";
    let found = problems(text);
    assert_eq!(
        found
            .iter()
            .map(|p| &p[..p.find(": ").unwrap()])
            .collect::<Vec<_>>(),
        ["7:24", "8:32", "9:18", "10:5", "10:11", "15:18", "16:9", "17:11", "18:16", "19:5"],
        "{found:#?}"
    );
    assert!(found[1].contains("unknown cluster `missing` (defined: app, app)"));
    assert!(found[3].contains("tcp listener `web` needs `cluster`"));
    assert!(found[4].contains("duplicate listener name `web`"));
}

#[test]
fn unreadable_routes_or_cluster_do_not_cascade() {
    let text =
        with_listeners("  - { name: h, address: 127.0.0.1:1, protocol: http, routes: oops }\n");
    only(&text, 2, 62, "expected a list for routes, found a string");
    let text =
        with_listeners("  - { name: t, address: 127.0.0.1:1, protocol: tcp, cluster: [db] }\n");
    only(
        &text,
        2,
        62,
        "expected a string for listener cluster, found a list",
    );
}

#[test]
fn empty_file_lists_both_required_sections() {
    let found = problems("# nothing yet\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("missing field `listeners` in the config"));
    assert!(found[1].contains("missing field `clusters` in the config"));
}

#[test]
fn unreadable_cluster_names_do_not_cascade() {
    // The second cluster's name is a list; a backend might refer to it, so
    // "unknown cluster" would be noise on top of the real problem.
    let text = "\
listeners:
  - { name: h, address: 127.0.0.1:1, protocol: http, routes: [ { name: r, backends: [ { cluster: b } ] } ] }
clusters:
  - { name: a, endpoints: [ 127.0.0.1:2 ] }
  - { name: [b], endpoints: [ 127.0.0.1:3 ] }
";
    only(text, 5, 13, "expected a string for cluster name");
}

#[test]
fn listeners_on_port_zero_do_not_clash() {
    let text = "listeners:\n  - { name: a, address: 127.0.0.1:0, protocol: tcp, cluster: c }\n  - { name: b, address: 127.0.0.1:0, protocol: tcp, cluster: c }\nclusters:\n  - { name: c, endpoints: [ 127.0.0.1:1 ] }\n";
    assert!(
        control::load_str(text, "t.yaml").is_ok(),
        "port 0 means any free port"
    );
}

#[test]
fn original_dst_rules() {
    // Without a cluster an intercepting listener is valid: unmatched connections pass through.
    let ok = with_listeners(
        "  - name: out
    address: 127.0.0.1:15001
    protocol: tcp
    original_dst: true
    destinations:
      - { address: 10.96.0.10:5432, cluster: db }
",
    );
    load_str(&ok, "f").unwrap_or_else(|p| panic!("{p}"));
    // `destinations` without `original_dst: true`.
    only(
        &with_listeners(
            "  - name: out
    address: 127.0.0.1:15001
    protocol: tcp
    cluster: db
    destinations: [ { address: 10.96.0.10:5432, cluster: db } ]
",
        ),
        6,
        19,
        "not `original_dst: true`",
    );
    // A tcp listener still needs a cluster unless it intercepts.
    only(
        &with_listeners(
            "  - { name: t, address: 127.0.0.1:1, protocol: tcp, original_dst: false }\n",
        ),
        2,
        5,
        "needs `cluster` (or `original_dst: true`)",
    );
    // Not a boolean.
    only(
        &with_listeners(
            "  - { name: t, address: 127.0.0.1:1, protocol: tcp, original_dst: yes }\n",
        ),
        2,
        67,
        "expected `true` or `false` for original_dst",
    );
    // Unknown cluster, duplicate and never-matching destinations, missing fields.
    let text = with_listeners(
        "  - name: out
    address: 127.0.0.1:15001
    protocol: tcp
    original_dst: true
    destinations:
      - { address: 10.96.0.10:5432, cluster: nope }
      - { address: 10.96.0.10:5432, cluster: db }
      - { address: 0.0.0.0:80, cluster: db }
      - { address: 10.0.0.1:0, cluster: db }
      - { cluster: db }
",
    );
    let found = problems(&text);
    let expect = [
        "7:46: unknown cluster `nope`",
        "8:20: duplicate destination `10.96.0.10:5432` (first at line 7)",
        "9:20: destination `0.0.0.0:80` never matches",
        "10:20: destination `10.0.0.1:0` never matches",
        "11:9: missing field `address` in destination",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (f, e) in found.iter().zip(expect) {
        assert!(f.starts_with(e), "expected {e}..., got {f}");
    }
    // Only tcp listeners intercept.
    let text = http_route("      - name: r\n        backends: [ { cluster: app } ]\n").replace(
        "    protocol: http\n",
        "    protocol: http\n    original_dst: true\n    destinations: []\n",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("5:19: original_dst applies only to tcp listeners"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("6:19: destinations apply only to tcp listeners"),
        "{found:?}"
    );
}
