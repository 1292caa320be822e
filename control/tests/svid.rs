//! Which configs need an X.509-SVID from the SPIFFE Workload API before they can serve.

#[test]
fn only_configs_with_identity_spiffe_want_an_svid() {
    let plain = control::load_str(
        "listeners: []\nclusters: []\nidentity: { spiffe_socket: unix:///run/a.sock }\n",
        "t.yaml",
    )
    .expect("config");
    assert!(!control::tls::svid::wanted(&plain.config));
    let spiffe = control::load_str(
        "identity: { spiffe_socket: unix:///run/a.sock }\nlisteners: []\nclusters:\n  - name: c\n    endpoints: [ 127.0.0.1:1 ]\n    tls: { identity: spiffe }\n",
        "t.yaml",
    )
    .expect("config");
    assert!(control::tls::svid::wanted(&spiffe.config));
}
