//! Loading valid configs: the example, JSON, defaults and the serde dump.

use control::model::*;
use control::snapshot::{ClusterId, ListenerKind};
use control::{load_file, load_str};
use std::time::Duration;

const EXAMPLE: &str = include_str!("example.yaml");

#[test]
fn example_parses_and_compiles() {
    let snap = load_str(EXAMPLE, "ringside.yaml").expect("example is valid");
    assert_eq!(snap.listeners.len(), 2);
    assert_eq!(snap.clusters.len(), 3);
    assert_eq!(snap.sha256.len(), 64);
    assert!(snap
        .sha256
        .chars()
        .all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    assert_eq!(
        snap.summary(),
        format!(
            "2 listeners, 3 clusters, 2 routes, sha256 {}",
            &snap.sha256[..8]
        )
    );

    let inbound = snap.listener("inbound").expect("inbound");
    assert_eq!(inbound.address, "0.0.0.0:4143".parse().unwrap());
    assert_eq!(inbound.header_read_timeout, Duration::from_secs(10));
    assert_eq!(inbound.idle_timeout, Duration::from_secs(120));
    assert_eq!(inbound.max_header_bytes, 65536);
    assert_eq!(inbound.max_headers, 100);
    let ListenerKind::Http { routes } = &inbound.kind else {
        panic!("inbound is http");
    };
    let names: Vec<&str> = routes.routes().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["canary", "default"]);
    assert_eq!(
        routes.routes()[1].backends(),
        &[(ClusterId(0), 90), (ClusterId(1), 10)]
    );
    assert_eq!(routes.routes()[0].timeout, Duration::from_secs(15));

    let pg = snap.listener("postgres").expect("postgres");
    assert!(matches!(
        pg.kind,
        ListenerKind::Tcp {
            cluster: Some(ClusterId(2)),
            original_dst: None,
        }
    ));
    assert_eq!(pg.idle_timeout, Duration::from_secs(3600));
    assert!(snap.listener("nope").is_none());

    let app = snap.cluster(ClusterId(0));
    assert_eq!(app.name, "app");
    assert_eq!(app.connect_timeout, Duration::from_secs(1));
    assert_eq!(app.idle_timeout, Duration::from_secs(30));
    assert_eq!(app.max_idle_per_endpoint, 64);
    assert_eq!(snap.cluster_id("db"), Some(ClusterId(2)));
}

#[test]
fn defaults_are_filled_in_the_model() {
    let snap = load_str(EXAMPLE, "f").unwrap();
    let c = &snap.config;
    assert_eq!(c.admin.address, default_admin_address());
    let inbound = &c.listeners[0];
    assert_eq!(inbound.timeouts.header_read, Some(Duration::from_secs(10)));
    // nginx's send_timeout default; Apache-like body pace with 30 s grace, 1 KiB/s.
    assert_eq!(inbound.timeouts.send_stall, Some(Duration::from_secs(60)));
    assert_eq!(inbound.timeouts.body_read, Some(Duration::from_secs(30)));
    assert_eq!(inbound.limits, Some(Limits::default()));
    assert_eq!(Limits::default().min_body_rate, 1024);
    let pg = &c.listeners[1];
    assert_eq!(pg.timeouts.header_read, None);
    assert_eq!(
        (pg.timeouts.send_stall, pg.timeouts.body_read),
        (None, None)
    );
    assert_eq!(pg.limits, None);
    let v2 = &c.clusters[1];
    assert_eq!(v2.protocol, UpstreamProtocol::Http1);
    assert_eq!(v2.lb, LbPolicy::RoundRobin);
    assert_eq!(c.listeners[0].routes[0].backends[0].weight, 100);
}

#[test]
fn optional_fields_are_read() {
    let text = r#"
admin: { address: "[::1]:9000" }
listeners:
  - name: web
    address: 127.0.0.1:80
    protocol: http
    timeouts: { header_read: 500ms, idle: 2m, send_stall: 5s, body_read: 3s }
    limits: { max_header_bytes: 8192, max_headers: 50, min_body_rate: 100 }
    routes:
      - name: all
        backends: [ { cluster: a } ]
        timeout: 1.5s
  - name: raw
    address: 127.0.0.1:81
    protocol: tcp
    cluster: a
    timeouts: { idle: 1h }
clusters:
  - name: a
    endpoints: [ "[::1]:8080", 10.0.0.1:80 ]
    protocol: http2
    lb: least_request
    connect_timeout: 250ms
    idle_timeout: 10s
    max_idle_per_endpoint: 0
"#;
    let snap = load_str(text, "f").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(snap.config.admin.address, "[::1]:9000".parse().unwrap());
    let web = snap.listener("web").unwrap();
    assert_eq!(web.header_read_timeout, Duration::from_millis(500));
    assert_eq!(web.idle_timeout, Duration::from_secs(120));
    assert_eq!(web.send_stall, Duration::from_secs(5));
    assert_eq!(
        web.body_pace,
        control::snapshot::BodyPace {
            grace: Duration::from_secs(3),
            min_rate: 100
        }
    );
    assert_eq!((web.max_header_bytes, web.max_headers), (8192, 50));
    let ListenerKind::Http { routes } = &web.kind else {
        panic!("http")
    };
    assert_eq!(routes.routes()[0].timeout, Duration::from_millis(1500));
    assert_eq!(routes.routes()[0].backends(), &[(ClusterId(0), 1)]);
    assert_eq!(
        snap.listener("raw").unwrap().idle_timeout,
        Duration::from_secs(3600)
    );
    let a = snap.cluster(ClusterId(0));
    assert_eq!(a.endpoints.len(), 2);
    assert_eq!(a.protocol, UpstreamProtocol::Http2);
    assert_eq!(a.lb, LbPolicy::LeastRequest);
    assert_eq!(a.connect_timeout, Duration::from_millis(250));
    assert_eq!(a.idle_timeout, Duration::from_secs(10));
    assert_eq!(a.max_idle_per_endpoint, 0);
}

#[test]
fn json_equivalent_parses_to_the_same_config() {
    let json = r#"{
  "admin": {"address": "127.0.0.1:9901"},
  "listeners": [
    {"name": "inbound", "address": "0.0.0.0:4143", "protocol": "http",
     "routes": [
       {"name": "canary", "match": {"path_prefix": "/api", "headers": {"x-canary": "1"}},
        "backends": [{"cluster": "app-v2", "weight": 100}]},
       {"name": "default", "match": {"path_prefix": "/"},
        "backends": [{"cluster": "app", "weight": 90}, {"cluster": "app-v2", "weight": 10}],
        "timeout": "15s"}]},
    {"name": "postgres", "address": "127.0.0.1:5433", "protocol": "tcp", "cluster": "db"}],
  "clusters": [
    {"name": "app", "endpoints": ["127.0.0.1:8080"], "protocol": "http1",
     "lb": "round_robin", "connect_timeout": "1s"},
    {"name": "app-v2", "endpoints": ["127.0.0.1:8081"]},
    {"name": "db", "endpoints": ["127.0.0.1:5432"]}]
}"#;
    let from_json = load_str(json, "c.json").unwrap_or_else(|p| panic!("{p}"));
    let from_yaml = load_str(EXAMPLE, "c.yaml").unwrap();
    assert_eq!(from_json.config, from_yaml.config);
    assert_ne!(from_json.sha256, from_yaml.sha256);
}

#[test]
fn json_dump_reloads_to_the_same_config() {
    let snap = load_str(EXAMPLE, "f").unwrap();
    let dump = serde_json::to_string_pretty(&snap.config).unwrap();
    assert!(dump.contains("\"timeout\": \"15s\""), "{dump}");
    assert!(dump.contains("\"idle\": \"1h\""), "{dump}");
    let reloaded = load_str(&dump, "dump.json").unwrap_or_else(|p| panic!("{p}\n{dump}"));
    assert_eq!(reloaded.config, snap.config);
    // The serde derives describe the same schema as the loader.
    let via_serde: Config = serde_json::from_str(&dump).unwrap();
    assert_eq!(via_serde, snap.config);
}

#[test]
fn serde_derives_match_the_loader_on_yaml() {
    let via_serde: Config = marked_yaml::from_yaml(0, EXAMPLE).unwrap();
    assert_eq!(via_serde, load_str(EXAMPLE, "f").unwrap().config);
}

#[test]
fn serde_rejects_unitless_durations() {
    let err = serde_json::from_str::<Route>(r#"{"name":"r","backends":[],"timeout":15}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("durations need a unit"), "{err}");
    let err = serde_json::from_str::<Cluster>(r#"{"name":"c","endpoints":[],"x":1}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn load_file_reads_and_labels_problems() {
    let dir = std::env::temp_dir().join(format!("ringside-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(&good, EXAMPLE).unwrap();
    let snap = load_file(&good).unwrap();
    assert_eq!(snap.sha256, load_str(EXAMPLE, "x").unwrap().sha256);

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "listeners: []\nclusters: []\nextra: 1\n").unwrap();
    let problems = load_file(&bad).unwrap_err();
    assert_eq!(problems.0[0].file, bad.display().to_string());
    assert_eq!((problems.0[0].line, problems.0[0].col), (3, 1));

    let binary = dir.join("binary.yaml");
    std::fs::write(&binary, b"listeners: []\nclusters: [\xff]\n").unwrap();
    let p = &load_file(&binary).unwrap_err().0[0];
    assert_eq!((p.line, p.col), (2, 12));
    assert!(p.reason.contains("UTF-8"));

    let missing = dir.join("missing.yaml");
    let p = &load_file(&missing).unwrap_err().0[0];
    assert_eq!((p.line, p.col), (1, 1));
    assert!(p.reason.starts_with("cannot read: "), "{}", p.reason);
    assert_eq!(
        p.to_string(),
        format!("{}:1:1: {}", missing.display(), p.reason)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn original_dst_routes_by_destination_then_cluster_then_passthrough() {
    use control::snapshot::TcpTarget;
    let text = "listeners:
  - name: out
    address: 127.0.0.1:15001
    protocol: tcp
    original_dst: true
    destinations: [ { address: 10.96.0.10:5432, cluster: db } ]
  - { name: out2, address: 127.0.0.1:15002, protocol: tcp, original_dst: true, cluster: app }
  - { name: plain, address: 127.0.0.1:15003, protocol: tcp, cluster: app }
clusters:
  - { name: app, endpoints: [ 127.0.0.1:8080 ] }
  - { name: db, endpoints: [ 127.0.0.1:5432 ] }
";
    let snap = load_str(text, "f").unwrap_or_else(|p| panic!("{p}"));
    let db: std::net::SocketAddr = "10.96.0.10:5432".parse().unwrap();
    let other: std::net::SocketAddr = "10.1.2.3:80".parse().unwrap();
    let out = &snap.listener("out").unwrap().kind;
    assert_eq!(
        out.tcp_target(Some(db)),
        Some(TcpTarget::Cluster(ClusterId(1)))
    );
    assert_eq!(
        out.tcp_target(Some(other)),
        Some(TcpTarget::Passthrough(other))
    );
    assert_eq!(out.tcp_target(None), None);
    let out2 = &snap.listener("out2").unwrap().kind;
    assert_eq!(
        out2.tcp_target(Some(other)),
        Some(TcpTarget::Cluster(ClusterId(0)))
    );
    let plain = &snap.listener("plain").unwrap().kind;
    assert_eq!(
        plain.tcp_target(Some(db)),
        Some(TcpTarget::Cluster(ClusterId(0)))
    );
    // The admin `/config` dump shows the new fields, and only where they are set.
    let json = serde_json::to_value(&snap.config).unwrap();
    assert_eq!(json["listeners"][0]["original_dst"], true);
    assert_eq!(
        json["listeners"][0]["destinations"][0]["address"],
        "10.96.0.10:5432"
    );
    assert_eq!(json["listeners"][0]["destinations"][0]["cluster"], "db");
    assert!(json["listeners"][2].get("original_dst").is_none());
    let back: control::model::Config = serde_json::from_value(json).unwrap();
    assert_eq!(back, snap.config);
}
