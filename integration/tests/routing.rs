//! Route matching, weighted splits, and the statuses a proxy owes when it cannot forward.

use ringside_integration::{both_runtimes, Conn, Origin, Ringside};

fn config(a: &Origin, b: &Origin, c: &Origin) -> String {
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: by-header
        match: {{ path_prefix: /api, headers: {{ x-canary: "1" }} }}
        backends: [ {{ cluster: b }} ]
      - name: by-method
        match: {{ path_prefix: /api, method: DELETE }}
        backends: [ {{ cluster: c }} ]
      - name: exact
        match: {{ path: /exact }}
        backends: [ {{ cluster: c }} ]
      - name: by-host
        match: {{ host: "*.example.test" }}
        backends: [ {{ cluster: b }} ]
      - name: split
        match: {{ path_prefix: /split }}
        backends: [ {{ cluster: a, weight: 90 }}, {{ cluster: b, weight: 10 }} ]
      - name: slow
        match: {{ path_prefix: /delay }}
        backends: [ {{ cluster: a }} ]
        timeout: 300ms
      - name: dead
        match: {{ path_prefix: /dead }}
        backends: [ {{ cluster: dead }} ]
      - name: api
        match: {{ path_prefix: /api }}
        backends: [ {{ cluster: a }} ]
clusters:
  - {{ name: a, endpoints: [ {a} ] }}
  - {{ name: b, endpoints: [ {b} ] }}
  - {{ name: c, endpoints: [ {c} ], lb: least_request }}
  - {{ name: dead, endpoints: [ 127.0.0.1:9 ], connect_timeout: 200ms }}
"#,
        a = a.addr,
        b = b.addr,
        c = c.addr
    )
}

fn origin_of(c: &mut Conn, req: &str) -> (u16, String) {
    c.send(req.as_bytes());
    let r = c.read_response(false).expect("response");
    (r.status, r.header("x-origin").unwrap_or("-").to_owned())
}

both_runtimes!(fn routes_by_path_host_method_and_headers(rt) {
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let proxy = Ringside::start(rt, &config(&a, &b, &c));
    let mut conn = Conn::open(proxy.addr("inbound"));
    let cases = [
        ("GET /api/x HTTP/1.1\r\nHost: t\r\n\r\n", "a"),
        ("GET /api/x HTTP/1.1\r\nHost: t\r\nX-Canary: 1\r\n\r\n", "b"),
        ("GET /api/x HTTP/1.1\r\nHost: t\r\nx-canary: 2\r\n\r\n", "a"),
        ("DELETE /api/x HTTP/1.1\r\nHost: t\r\n\r\n", "c"),
        ("GET /exact HTTP/1.1\r\nHost: t\r\n\r\n", "c"),
        ("GET /exact/more HTTP/1.1\r\nHost: www.example.test:8080\r\n\r\n", "b"),
        ("GET /api HTTP/1.1\r\nHost: t\r\n\r\n", "a"),
    ];
    for (req, want) in cases {
        let (status, got) = origin_of(&mut conn, req);
        assert_eq!((status, got.as_str()), (200, want), "request {req:?}");
    }
});

both_runtimes!(fn no_matching_route_is_404_and_keeps_the_connection(rt) {
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let proxy = Ringside::start(rt, &config(&a, &b, &c));
    let mut conn = Conn::open(proxy.addr("inbound"));
    let r = conn.get("/nothing-here", "");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-ringside-error"), Some("no route"));
    assert_eq!(conn.get("/api/ok", "").status, 200, "a 404 leaves the connection usable");
});

both_runtimes!(fn dead_endpoint_is_502_and_slow_upstream_is_504(rt) {
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let proxy = Ringside::start(rt, &config(&a, &b, &c));
    let mut conn = Conn::open(proxy.addr("inbound"));
    let r = conn.get("/dead", "");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-ringside-error"), Some("upstream connect failed"));
    let started = std::time::Instant::now();
    let r = conn.get("/delay/3000", "");
    assert_eq!(r.status, 504);
    // At the 300 ms route timeout, not when the origin answers at 3 s: the bound sits between
    // the two, with room for a loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_millis(2900), "504 must come at the route timeout: {:?}", started.elapsed());
    assert_eq!(conn.get("/api/ok", "").status, 200);
});

both_runtimes!(fn weighted_split_holds_within_tolerance(rt) {
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let proxy = Ringside::start(rt, &config(&a, &b, &c));
    let mut conn = Conn::open(proxy.addr("inbound"));
    let mut to_b = 0;
    const N: usize = 2000;
    for _ in 0..N {
        let (status, who) = origin_of(&mut conn, "GET /split HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(status, 200);
        if who == "b" {
            to_b += 1;
        }
    }
    // Binomial(2000, 0.1): mean 200, sd ≈ 13.4; ±4.5 sd keeps flakes below one in 100,000.
    assert!((140..=260).contains(&to_b), "{to_b} of {N} went to the 10% backend");
});
