//! grpc-go over TLS through Ringside, on both runtimes: a TLS client (ALPN h2) to a plaintext
//! gRPC server, and a mutual-TLS client to a gRPC server that itself requires TLS (Ringside
//! originating with its own certificate), for unary and streaming calls.

use ringside_integration::pki::{p, Pki};
use ringside_integration::{both_runtimes, grpc_client, GrpcServer, Ringside};

const SERVER_ID: &str = "spiffe://td.test/ns/shop/sa/server";
const CLIENT_ID: &str = "spiffe://td.test/ns/shop/sa/frontend";

fn config(upstream: &str, listener_tls: &str, cluster_tls: &str) -> String {
    format!(
        "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    tls: {{ {listener_tls} }}\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: grpc }} ]\nclusters:\n  - name: grpc\n    endpoints: [ {upstream} ]\n    protocol: http2\n{cluster_tls}"
    )
}

both_runtimes!(
    fn grpc_go_calls_over_tls_and_mutual_tls(rt) {
        let pki = Pki::new();
        let (_, sc, sk) = pki.server("server", SERVER_ID);
        let (_, cc, ck) = pki.client("frontend", CLIENT_ID);
        let ca = p(&pki.ca_path);
        let (sc, sk, cc, ck) = (p(&sc), p(&sk), p(&cc), p(&ck));
        // TLS to Ringside, plaintext h2c to the server.
        let plain = GrpcServer::start("plain");
        let proxy = Ringside::start(rt, &config(&plain.addr.to_string(), &format!("cert: {sc}, key: {sk}"), ""));
        let tls_args = ["-tls-ca", ca.as_str(), "-tls-server-name", "localhost"];
        for mode in ["unary", "server-stream", "bidi", "deadline"] {
            let (ok, out) = grpc_client(proxy.addr("inbound"), mode, &tls_args);
            assert!(ok, "TLS {mode}: {out}\n{}", proxy.log_text());
        }
        // Mutual TLS to Ringside, and Ringside to a server that requires mutual TLS too.
        let secure = GrpcServer::start_with("secure", &["-tls-cert", &sc, "-tls-key", &sk, "-tls-client-ca", &ca]);
        let cluster_tls = format!("    tls: {{ ca: {ca}, cert: {cc}, key: {ck}, server_name: localhost }}\n");
        let proxy = Ringside::start(
            rt,
            &config(&secure.addr.to_string(), &format!("cert: {sc}, key: {sk}, client_ca: {ca}"), &cluster_tls),
        );
        let mtls_args = ["-tls-ca", ca.as_str(), "-tls-server-name", "localhost", "-tls-cert", cc.as_str(), "-tls-key", ck.as_str()];
        for mode in ["unary", "client-stream", "bidi", "cancel"] {
            let (ok, out) = grpc_client(proxy.addr("inbound"), mode, &mtls_args);
            assert!(ok, "mTLS {mode}: {out}\n{}", proxy.log_text());
        }
        // Without a client certificate the call fails (UNAVAILABLE from the handshake).
        let (ok, out) = grpc_client(proxy.addr("inbound"), "unary", &tls_args);
        assert!(!ok, "a call without a client certificate succeeded: {out}");
    }
);
