//! Issue 11, the retry rule end to end, on both runtimes: a request the upstream may have
//! processed is never replayed unless it is idempotent (RFC 9110 §9.2.2); a request the
//! upstream provably did not process (a stream above GOAWAY's last_stream_id, REFUSED_STREAM:
//! RFC 9113 §6.8, §8.7) is retried whatever its method; an upstream reset becomes the gRPC
//! status the gRPC HTTP/2 protocol spec gives it.

use ringside_integration::exchange::{origin_seen, RawH2};
use ringside_integration::{
    both_runtimes, client, h2_client, http_config, http_config_proto, json_field, Conn, Origin,
    Ringside,
};

fn status(out: &str) -> u16 {
    json_field(out, "status")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out}"))
}

/// One h2client run through `listener` that must complete; returns its JSON line.
fn h2(proxy: &Ringside, listener: &str, args: &[&str]) -> String {
    let (ok, out) = h2_client(proxy.addr(listener), args);
    assert!(ok, "{out}\nringside log:\n{}", proxy.log_text());
    out
}

// Fault 1: `POST /abort-once/..` is read by the origin, counted, and the connection dropped
// without an answer (a Go handler panicking after its side effect); a later call would
// answer 200. The POST arrives on the pooled connection `GET /warm` left behind. Both client
// protocols run; the failure lists each that came back wrong.
both_runtimes!(fn non_idempotent_request_is_never_replayed(rt) {
    let origin = Origin::start("o");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    let mut wrong = Vec::new();
    let mut c = Conn::open(proxy.addr("inbound"));
    assert_eq!(c.get("/warm", "").status, 200);
    let path = "/abort-once/orders/42/cancel";
    c.send(format!("POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n").as_bytes());
    let r = c.read_response(false).map(|r| (r.status, r.text()));
    let calls = origin_seen(origin.addr, path);
    if calls != 1 || !matches!(r, Ok((502, _))) {
        wrong.push(format!("HTTP/1.1 POST: {calls} call(s) at the origin; the client got {r:?}"));
    }

    // The same from an h2 client (HEADERS with END_STREAM) to the HTTP/1 cluster.
    assert_eq!(client::get(proxy.addr("inbound"), "/warm").status, 200);
    let path = "/abort-once/orders/43/cancel";
    let out = h2(&proxy, "inbound", &["-method", "POST", "-path", path, "-body-size", "0"]);
    let calls = origin_seen(origin.addr, path);
    if calls != 1 || status(&out) != 502 {
        wrong.push(format!("h2 POST: {calls} call(s) at the origin; the client got {out}"));
    }
    assert!(
        wrong.is_empty(),
        "want exactly 1 call at the origin and a 502 (RFC 9110 §9.2.2: never replay a \
         non-idempotent request the upstream may have processed):\n{}\nringside log:\n{}",
        wrong.join("\n"),
        proxy.log_text()
    );
});

// Fault 3: an h2c upstream that sends GOAWAY(NO_ERROR, last_stream_id = its 5th stream) on
// every connection and ignores later streams. 60 POSTs, 4 in flight, must all succeed: the
// streams above last_stream_id were never processed and go again on a new connection.
both_runtimes!(fn streams_above_goaway_last_stream_id_are_retried(rt) {
    let server = RawH2::start("ga", Some(5));
    let proxy = Ringside::start(rt, &http_config_proto(&[server.addr], "http2"));
    let (ok, out) = h2_client(
        proxy.addr("inbound"),
        &["-method", "POST", "-body-size", "100", "-count", "60", "-concurrency", "4", "-timeout", "20s"],
    );
    assert!(
        ok && out.contains(r#""statuses":{"200":60}"#),
        "60 POSTs, 4 in flight, to an upstream sending GOAWAY after 5 streams: want 60 × 200 \
         (streams above last_stream_id retried on a new connection, RFC 9113 §6.8), got: \
         {out}\nringside log:\n{}",
        proxy.log_text()
    );
    let out = h2(&proxy, "inbound", &[]);
    let goaways: u32 = json_field(&out, "x-goaways").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(goaways >= 2, "the upstream sent only {goaways} GOAWAY(s) for 61 requests: {out}");
});

/// One gRPC-shaped call (h2client -grpc) through the proxy; returns (HTTP status,
/// grpc-status, the JSON line). h2client has no deadline timer of its own, so what it sees
/// is what Ringside answered.
fn grpc_call(proxy: &Ringside, path: &str, extra: &[&str]) -> (u16, Option<u32>, String) {
    let args = [
        &["-method", "POST", "-grpc", "-body-size", "3", "-path", path],
        extra,
    ]
    .concat();
    let out = h2(proxy, "inbound", &args);
    let grpc_status = json_field(&out, "grpc-status").and_then(|v| v.parse().ok());
    (status(&out), grpc_status, out)
}

// Fault 4: upstream resets, end to end through an h2c cluster. Every case runs; the
// failure lists each one that came back wrong.
both_runtimes!(fn upstream_resets_become_the_right_grpc_status(rt) {
    let server = RawH2::start("rst", None);
    let proxy = Ringside::start(rt, &http_config_proto(&[server.addr], "http2"));
    let mut wrong = Vec::new();

    // The server waits out the call's grpc-timeout (300 ms from when it saw the HEADERS),
    // then resets with CANCEL, as grpc-go does when its own deadline fires first. Ringside's
    // own deadline timer (from the same grpc-timeout) races that reset; either way the
    // answer must be DEADLINE_EXCEEDED, so this holds deterministically on a correct proxy.
    let (http, grpc, out) =
        grpc_call(&proxy, "/rst-after-deadline/CANCEL", &["-header", "grpc-timeout: 300m"]);
    if (http, grpc) != (200, Some(4)) {
        wrong.push(format!("RST_STREAM(CANCEL) after the deadline must be DEADLINE_EXCEEDED (4): {out}"));
    }

    // REFUSED_STREAM: never processed, so retried; the answer shows the one refusal.
    let (http, grpc, out) = grpc_call(&proxy, "/refuse-once/unary", &[]);
    if (http, grpc, json_field(&out, "x-refused").as_deref()) != (200, Some(0), Some("1")) {
        wrong.push(format!("a REFUSED_STREAM must be retried (RFC 9113 §8.7), answer grpc-status 0 with x-refused: 1: {out}"));
    }

    // Reset at once, long before any deadline: CANCEL from a server is CANCELLED (1);
    // REFUSED_STREAM on every attempt is UNAVAILABLE (14) once retrying gives up.
    let codes = [("CANCEL", 1), ("ENHANCE_YOUR_CALM", 8), ("INTERNAL_ERROR", 13), ("REFUSED_STREAM", 14)];
    for (code, want) in codes {
        let (http, grpc, out) = grpc_call(&proxy, &format!("/rst/{code}"), &[]);
        if (http, grpc) != (200, Some(want)) {
            wrong.push(format!("RST_STREAM({code}) must be grpc-status {want}: {out}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "upstream resets through Ringside (gRPC over HTTP/2 spec):\n{}\nringside log:\n{}",
        wrong.join("\n"),
        proxy.log_text()
    );
});
