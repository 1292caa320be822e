//! TLS to a cluster whose endpoints are a DNS name, with no `server_name`: the name sent (SNI)
//! and checked in the upstream's certificate is that DNS name, on both runtimes, against a
//! real DNS server (dnsmasq) and Go TLS origins with DNS-only certificates.

use ringside_integration::dns::Dnsmasq;
use ringside_integration::pki::{p, LeafSpec, Pki};
use ringside_integration::{both_runtimes, client, Options, Origin, Ringside};

both_runtimes!(fn a_tls_cluster_by_dns_name_checks_that_name(rt) {
    let pki = Pki::new();
    let (_, good_cert, good_key) = pki.issue("good", &LeafSpec { dns: &["app.ringside.test"], ..LeafSpec::default() });
    let (_, bad_cert, bad_key) = pki.issue("bad", &LeafSpec { dns: &["other.ringside.test"], ..LeafSpec::default() });
    let tls = |cert: &std::path::Path, key: &std::path::Path, ip: &str| {
        Origin::start_with_flags(
            ip,
            &["-addr", &format!("{ip}:0"), "-tls-cert", &p(cert), "-tls-key", &p(key)],
        )
    };
    let good = tls(&good_cert, &good_key, "127.0.0.2");
    let bad = tls(&bad_cert, &bad_key, "127.0.0.3");
    let dns = Dnsmasq::start(&[("app.ringside.test", "127.0.0.2"), ("bad.ringside.test", "127.0.0.3")]);
    let ca = p(&pki.ca_path);
    let cfg = format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - {{ name: good, match: {{ path_prefix: /good }}, backends: [ {{ cluster: good }} ] }}
      - {{ name: bad, match: {{ path_prefix: /bad }}, backends: [ {{ cluster: bad }} ] }}
clusters:
  - name: good
    endpoints: [ "app.ringside.test:{}" ]
    tls: {{ ca: {ca} }}
  - name: bad
    endpoints: [ "bad.ringside.test:{}" ]
    tls: {{ ca: {ca} }}
"#,
        good.addr.port(),
        bad.addr.port()
    );
    let opts = Options {
        extra_args: vec!["--dns-server".into(), dns.addr.to_string()],
        ..Options::default()
    };
    let proxy = Ringside::start_with(rt, &cfg, &opts);
    let addr = proxy.addr("inbound");
    let r = client::get(addr, "/good");
    assert_eq!(r.status, 200, "the certificate names app.ringside.test: {:?}\n{}", r.headers, proxy.log_text());
    // The other origin's certificate does not name bad.ringside.test: refused, not trusted
    // for being signed by the right CA.
    let r = client::get(addr, "/bad");
    assert_eq!((r.status, r.header("x-ringside-error")), (502, Some("upstream TLS handshake failed")), "{:?}", r.headers);
});
