//! `ringside check` on TLS configs: every unusable certificate, key or CA file is a problem at
//! the key that names it (file:line:col), and a good one loads.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().expect("dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "check CA");
        std::fs::write(
            dir.path().join("ca.crt"),
            ca.self_signed(&ca_key).expect("ca").pem(),
        )
        .expect("write");
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |name: &str, from: (i32, u8, u8), to: (i32, u8, u8)| {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
            p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
            p.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
            let cert = p.signed_by(&key, &issuer).expect("sign");
            std::fs::write(dir.path().join(format!("{name}.crt")), cert.pem()).expect("write");
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem())
                .expect("write");
        };
        leaf("good", (2020, 1, 1), (2099, 1, 1));
        leaf("other", (2020, 1, 1), (2099, 1, 1));
        leaf("expired", (2020, 1, 1), (2021, 1, 1));
        leaf("future", (2098, 1, 1), (2099, 1, 1));
        std::fs::write(dir.path().join("garbage.crt"), "not a certificate\n").expect("write");
        Files { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn config(tls: &str) -> String {
    format!(
        "listeners:\n  - name: in\n    address: 127.0.0.1:0\n    protocol: http\n    tls: {{ {tls} }}\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\nclusters:\n  - name: app\n    endpoints: [ 127.0.0.1:1 ]\n"
    )
}

/// Loads `text` as `DIR/ringside.yaml` (relative certificate paths are relative to it).
fn check(files: &Files, text: &str) -> Result<(), Vec<String>> {
    let path = files.path().join("ringside.yaml");
    std::fs::write(&path, text).expect("write config");
    control::load_file(&path)
        .map(|_| ())
        .map_err(|p| p.iter().map(|p| p.to_string()).collect())
}

#[test]
fn a_good_certificate_and_key_load() {
    let f = Files::new();
    check(
        &f,
        &config("cert: good.crt, key: good.key, client_ca: ca.crt"),
    )
    .expect("loads");
}

#[test]
fn unusable_certificate_files_are_problems_at_their_keys() {
    let f = Files::new();
    let cases = [
        ("cert: missing.crt, key: good.key", "cannot read", 5, 18),
        (
            "cert: garbage.crt, key: good.key",
            "no `BEGIN CERTIFICATE`",
            5,
            18,
        ),
        ("cert: good.crt, key: other.key", "does not match", 5, 18),
        ("cert: expired.crt, key: expired.key", "expired", 5, 18),
        (
            "cert: future.crt, key: future.key",
            "not valid before",
            5,
            18,
        ),
        ("cert: good.crt, key: missing.key", "cannot read", 5, 33),
        (
            "cert: good.crt, key: good.key, client_ca: garbage.crt",
            "no `BEGIN CERTIFICATE`",
            5,
            54,
        ),
        ("cert: good.crt", "`cert` needs `key`", 5, 18),
    ];
    for (tls, reason, line, col) in cases {
        let problems = check(&f, &config(tls)).expect_err(tls);
        assert_eq!(problems.len(), 1, "{tls}: {problems:?}");
        let want = format!("ringside.yaml:{line}:{col}: ");
        assert!(
            problems[0].contains(&want) && problems[0].contains(reason),
            "{tls}: expected `{want}…{reason}…`, got {problems:?}"
        );
    }
}

#[test]
fn authz_without_client_certificates_is_refused() {
    let f = Files::new();
    let text = config("cert: good.crt, key: good.key").replace(
        "    routes:",
        "    authz: { allow: [ \"spiffe://td/ns/a/sa/b\" ] }\n    routes:",
    );
    let problems = check(&f, &text).expect_err("authz without mTLS");
    assert!(problems[0].contains("needs mutual TLS"), "{problems:?}");
    let bad = config("cert: good.crt, key: good.key, client_ca: ca.crt").replace(
        "    routes:",
        "    authz: { allow: [ \"spiffe://Bad Domain/x\" ] }\n    routes:",
    );
    let problems = check(&f, &bad).expect_err("bad principal");
    assert!(problems[0].contains("trust domain"), "{problems:?}");
}
