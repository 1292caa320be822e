//! gRPC through Ringside: the grpc-go client → Ringside (h2c in, `protocol: http2` cluster
//! out) → the grpc-go echo server, on both runtimes. Each client mode checks its own answers
//! (see `examples/internal/grpcecho`); these tests say which checks must pass through the
//! proxy and what the proxy must show for them.

use std::collections::BTreeMap;

use ringside_integration::h2raw::{
    Script, ScriptedH2Upstream, ENHANCE_YOUR_CALM, INTERNAL_ERROR, REFUSED_STREAM,
};
use ringside_integration::{
    both_runtimes, client, grpc_client, http_config_proto, json_field, GrpcServer, Ringside,
};

fn setup(rt: ringside_integration::Runtime) -> (GrpcServer, Ringside) {
    let server = GrpcServer::start("g1");
    let proxy = Ringside::start(rt, &http_config_proto(&[server.addr], "http2"));
    (server, proxy)
}

/// Runs one client check through the proxy and returns its JSON line, or fails the test
/// with what the client saw and the proxy's log.
fn check(proxy: &Ringside, mode: &str, extra: &[&str]) -> String {
    let (ok, out) = grpc_client(proxy.addr("inbound"), mode, extra);
    assert!(
        ok,
        "{mode} through ringside: {out}\nringside log:\n{}",
        proxy.log_text()
    );
    out
}

fn num(json: &str, key: &str) -> u64 {
    json_field(json, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in {json}"))
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

both_runtimes!(fn unary_with_metadata_in_headers_and_trailers(rt) {
    let (server, proxy) = setup(rt);
    // The client sends x-echo-a and binary x-echo-b-bin and checks both come back in the
    // response headers AND the trailers.
    let out = check(&proxy, "unary", &[]);
    assert_eq!(json_field(&out, "served_by").as_deref(), Some(server.name.as_str()), "{out}");
    check(&proxy, "unary", &["-size", "0"]);
    check(&proxy, "unary", &["-size", "100000", "-n", "5"]);
});

both_runtimes!(fn error_status_and_details_survive(rt) {
    let (_s, proxy) = setup(rt);
    // NOT_FOUND with a StringValue detail (grpc-status-details-bin), once after header
    // metadata and once as a Trailers-Only response.
    let out = check(&proxy, "error", &[]);
    assert_eq!(num(&out, "code"), 5, "{out}");
});

both_runtimes!(fn server_streaming(rt) {
    let (_s, proxy) = setup(rt);
    check(&proxy, "server-stream", &["-count", "100", "-size", "1024"]);
    check(&proxy, "server-stream", &["-count", "0"]);
    check(&proxy, "server-stream", &["-count", "20", "-size", "200000"]);
});

both_runtimes!(fn client_streaming(rt) {
    let (_s, proxy) = setup(rt);
    let out = check(&proxy, "client-stream", &["-count", "100", "-size", "1024"]);
    assert_eq!(json_field(&out, "reply").as_deref(), Some("bytes=102400 msgs=100"), "{out}");
    check(&proxy, "client-stream", &["-count", "20", "-size", "200000"]);
});

both_runtimes!(fn bidi_ping_pong(rt) {
    let (_s, proxy) = setup(rt);
    // Each message waits for its echo: a proxy that buffers a direction deadlocks here.
    check(&proxy, "bidi", &["-count", "100", "-size", "1024"]);
    check(&proxy, "bidi", &["-count", "10", "-size", "300000"]);
});

both_runtimes!(fn sixteen_mib_each_way_streams_through(rt) {
    let (_s, proxy) = setup(rt);
    check(&proxy, "unary", &[]); // warm up: connections, buffers
    // Reset the peak (VmHWM) to the current RSS, so the peak read below is this call's.
    std::fs::write(format!("/proc/{}/clear_refs", proxy.pid()), "5").expect("reset VmHWM");
    let before = status_kib(proxy.pid(), "VmRSS:");
    let out = check(&proxy, "big", &["-size", "16777216"]);
    assert_eq!(num(&out, "size"), 16 << 20);
    // docs/http2.md: frames cross under flow control, so memory grows by the windows (a 4 MiB
    // connection window, 1 MiB per stream, 256 KiB send buffer), never by a whole message:
    // measured ≤ 2 MiB here; a proxy holding one 16 MiB message in either direction needs
    // ≥ 16 MiB, so 8 MiB tells them apart.
    let peak = status_kib(proxy.pid(), "VmHWM:");
    eprintln!("16 MiB each way: peak RSS grew {} KiB", peak.saturating_sub(before));
    assert!(
        peak.saturating_sub(before) < 8 * 1024,
        "ringside's peak RSS grew {} KiB during a 16 MiB each-way call (from {before} KiB)",
        peak.saturating_sub(before)
    );
});

/// A signed number from the client's JSON (`grpc_status` is -1 when none came).
fn int(json: &str, key: &str) -> i64 {
    json_field(json, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in {json}"))
}

/// The gRPC status a gRPC client ends up with: the `grpc-status` that came, or for a stream
/// reset instead, the status gRPC maps its code to (PROTOCOL-HTTP2.md, "Errors"): relaying an
/// upstream reset is as good as answering its status, and both are checked the same way.
fn client_status(out: &str) -> i64 {
    let status = int(out, "grpc_status");
    if status >= 0 {
        return status;
    }
    let reset = json_field(out, "reset").unwrap_or_default();
    let code = reset.split("; ").nth(1).unwrap_or("");
    match code {
        "REFUSED_STREAM" => 14,
        "CANCEL" => 1,
        "ENHANCE_YOUR_CALM" => 8,
        "INADEQUATE_SECURITY" => 7,
        "" => panic!("neither a grpc-status nor a reset: {out}"),
        _ => 13,
    }
}

both_runtimes!(fn ringside_enforces_the_grpc_timeout(rt) {
    // Only Ringside can end this call at its deadline: the server drops grpc-timeout and
    // would answer after 5 s, and the raw client sends grpc-timeout without a timer of its own
    // (a grpc-go client's own timer would report DEADLINE_EXCEEDED whatever the proxy did).
    let server = GrpcServer::start_with("g1", &["-ignore-deadline"]);
    let proxy = Ringside::start(rt, &http_config_proto(&[server.addr], "http2"));
    let out = check(&proxy, "raw", &["-timeout", "300ms", "-await-server-cancel"]);
    assert_eq!(int(&out, "grpc_status"), 4, "DEADLINE_EXCEEDED from Ringside: {out}");
    let elapsed = int(&out, "elapsed_ms");
    assert!(elapsed >= 290, "answered before the deadline: {out}");
    assert!(elapsed < 4000, "answered long after the deadline (the server's 5 s?): {out}");
    // And the upstream stream was cancelled, not left running (-await-server-cancel).
    assert!(int(&out, "server_cancelled") > int(&out, "server_cancelled_before"), "{out}");
});

both_runtimes!(fn upstream_cancel_after_the_deadline_is_deadline_exceeded(rt) {
    // The server ends the call first, and in one way only: it sends its response head at once
    // (x-send-header), its handler sleeps blind to the deadline (x-sleep-blind), and grpc-go's
    // transport resets the stream with CANCEL at the deadline. The deadline has passed when
    // that reset reaches Ringside, so the client must get DEADLINE_EXCEEDED (not UNAVAILABLE,
    // not a bare reset).
    let (_s, proxy) = setup(rt);
    let out = check(&proxy, "raw", &["-timeout", "300ms", "-md", "x-send-header: 1", "-md", "x-sleep-blind: 1"]);
    assert_eq!(int(&out, "http_status"), 200, "{out}");
    assert_eq!(client_status(&out), 4, "DEADLINE_EXCEEDED after the server's CANCEL: {out}");
});

/// The status a gRPC client gets when the upstream resets its stream with `code`, before or
/// after the response head (a scripted h2 upstream: no real server chooses its reset codes).
fn status_for_upstream_reset(rt: ringside_integration::Runtime, script: Script) -> String {
    let up = ScriptedH2Upstream::start(script);
    up.release(); // HeadThenReset resets right after its head
    let proxy = Ringside::start(rt, &http_config_proto(&[up.addr], "http2"));
    let out = check(&proxy, "raw", &["-timeout", "10s"]);
    assert!(up.streams() >= 1, "the call reached the upstream: {out}");
    out
}

both_runtimes!(fn upstream_resets_map_to_grpc_statuses(rt) {
    // gRPC over HTTP/2 (PROTOCOL-HTTP2.md, "Errors"): REFUSED_STREAM → UNAVAILABLE (14),
    // ENHANCE_YOUR_CALM → RESOURCE_EXHAUSTED (8), INTERNAL_ERROR → INTERNAL (13), whether the
    // reset comes before the response head or after it.
    let mut wrong = Vec::new();
    for (code, want) in [(REFUSED_STREAM, 14), (ENHANCE_YOUR_CALM, 8), (INTERNAL_ERROR, 13)] {
        for script in [Script::ResetBeforeHead(code), Script::HeadThenReset(code)] {
            let out = status_for_upstream_reset(rt, script);
            if client_status(&out) != want {
                wrong.push(format!("{script:?}: want {want}, got {out}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
});

both_runtimes!(fn client_cancelling_a_server_stream_cancels_the_server(rt) {
    let (_s, proxy) = setup(rt);
    // The client cancels after 3 messages of a stream the server would keep sending for
    // 1000 s; the mode passes once the server's handler has seen its context end.
    let out = check(&proxy, "cancel-stream", &[]);
    assert!(num(&out, "server_cancelled") > num(&out, "server_cancelled_before"), "{out}");
    check(&proxy, "unary", &[]);
});

both_runtimes!(fn cancellation_reaches_the_server(rt) {
    let (_s, proxy) = setup(rt);
    // The client cancels after 200 ms (RST_STREAM CANCEL); the mode passes only once the
    // server's handler has observed its context end (polled through the proxy for 5 s).
    let out = check(&proxy, "cancel", &[]);
    assert!(num(&out, "server_cancelled") > num(&out, "server_cancelled_before"), "{out}");
    // The connection and the server are still fine afterwards.
    check(&proxy, "unary", &[]);
});

both_runtimes!(fn many_concurrent_calls_on_one_connection(rt) {
    let (_s, proxy) = setup(rt);
    let out = check(&proxy, "load", &["-count", "2000", "-concurrency", "100"]);
    assert_eq!(num(&out, "calls"), 2000, "{out}");
});

/// Every sample of `name` whose labels include all of `want`, summed.
fn sum_samples(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let got: BTreeMap<&str, &str> = labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .collect();
            let all = want.iter().all(|(k, v)| got.get(k) == Some(v));
            all.then(|| value.trim().parse::<f64>().ok()).flatten()
        })
        .sum()
}

both_runtimes!(fn metrics_count_grpc_calls_by_grpc_status(rt) {
    let (_s, proxy) = setup(rt);
    for _ in 0..3 {
        check(&proxy, "unary", &[]);
    }
    check(&proxy, "error", &[]); // two calls answered NOT_FOUND (5)
    let m = client::get(proxy.addr("admin"), "/metrics").text();
    let route = [("listener", "inbound"), ("route", "default"), ("cluster", "app")];
    let total = sum_samples(&m, "ringside_requests_total", &route);
    assert_eq!(total, 5.0, "3 unary + 2 failing calls counted:\n{m}");
    // gRPC answers are HTTP 200 whatever their status; the grpc_status label tells them apart.
    let with = |code: &str, grpc: &str| {
        let mut l = route.to_vec();
        l.extend([("code", code), ("grpc_status", grpc)]);
        sum_samples(&m, "ringside_requests_total", &l)
    };
    assert_eq!(with("200", "0"), 3.0, "grpc_status=\"0\" for the OK calls:\n{m}");
    assert_eq!(with("200", "5"), 2.0, "grpc_status=\"5\" for NOT_FOUND:\n{m}");
});

#[test]
fn sums_samples_by_label_subset() {
    let text = "# TYPE ringside_requests_total counter\n\
        ringside_requests_total{listener=\"inbound\",route=\"default\",cluster=\"app\",code=\"200\",grpc_status=\"5\"} 2\n\
        ringside_requests_total{grpc_status=\"0\",code=\"200\",listener=\"inbound\",route=\"default\",cluster=\"app\"} 3\n\
        ringside_requests_total_other{route=\"default\"} 9\n";
    let route = [("route", "default")];
    assert_eq!(sum_samples(text, "ringside_requests_total", &route), 5.0);
    assert_eq!(
        sum_samples(
            text,
            "ringside_requests_total",
            &[("grpc_status", "0"), ("code", "200")]
        ),
        3.0
    );
    assert_eq!(
        sum_samples(text, "ringside_requests_total", &[("grpc_status", "7")]),
        0.0
    );
}
