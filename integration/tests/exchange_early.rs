//! Issue 11, responses that do not wait for the request, on both runtimes and all four
//! client/upstream protocol pairs: an early final response (RFC 9110 §15.5.14, RFC 9112
//! §9.5: forwarded as soon as it arrives, sending stops) and 1xx informational responses
//! (RFC 9110 §15.2: a proxy forwards them, to h2 clients too).

use std::time::Duration;

use ringside_integration::exchange::{h1_and_h2_clusters_config, read_heads, slow_http1_post};
use ringside_integration::{both_runtimes, h2_client, json_field, Conn, Origin, Ringside};

/// 8 MiB at 64 KiB per 40 ms: the whole upload takes over 5 s; the origin's 1 MiB cap is
/// hit after about 0.65 s (measured directly against the origin, both protocols).
const TOTAL: usize = 8 << 20;
const CHUNK: usize = 64 << 10;
const EVERY: Duration = Duration::from_millis(40);
/// The upload cannot finish in less than 128 × 40 ms = 5.12 s whatever the load, so a 413 seen
/// by an h2 client before this bound came before the upload ended. (HTTP/1.1 clients report
/// whether their upload finished, which is asserted directly: on a loaded machine the paced
/// client itself may take far longer than 5 s to reach the origin's 1 MiB cap.)
const BOUND: Duration = Duration::from_millis(5000);

// Fault 2: `POST /limit/1048576` caps the body with http.MaxBytesReader and answers 413
// (Go then stops reading: HTTP/1 closes, h2 resets with NO_ERROR); `/reject-then-drain`
// answers 413 at once and keeps draining the body (HTTP/1.1 clients only, see below). Every
// pair and path runs; the failure lists each one that came back wrong.
both_runtimes!(fn early_413_is_forwarded_at_once(rt) {
    let origin = Origin::start_h2c("o");
    let proxy = Ringside::start(rt, &h1_and_h2_clusters_config(&[origin.addr]));
    let mut wrong = Vec::new();
    let cases = [("to_h1", "/limit/1048576"), ("to_h2", "/limit/1048576"), ("to_h1", "/reject-then-drain"), ("to_h2", "/reject-then-drain")];
    for (listener, path) in cases {
        let up = slow_http1_post(proxy.addr(listener), path, TOTAL, CHUNK, EVERY);
        let got = up.response.as_ref().map(|r| (r.status, r.text()));
        if !matches!(got, Ok((413, _))) || up.upload_finished {
            wrong.push(format!(
                "HTTP/1.1 client, {path} via {listener}: got {got:?} after {:?} (upload finished: {})",
                up.elapsed, up.upload_finished
            ));
        }

        if path != "/limit/1048576" {
            // Go's h2 client never finishes against /reject-then-drain even straight to the
            // origin (the response's END_STREAM waits for the drain, its upload stalls).
            continue;
        }
        let (ok, out) = h2_client(
            proxy.addr(listener),
            &["-method", "POST", "-path", path, "-body-size", &TOTAL.to_string(),
              "-body-chunk", &CHUNK.to_string(), "-body-every", "40ms", "-timeout", "20s"],
        );
        let status = json_field(&out, "status");
        let ms: u128 = json_field(&out, "elapsed_ms").and_then(|v| v.parse().ok()).unwrap_or(u128::MAX);
        if !(ok && status.as_deref() == Some("413") && ms < BOUND.as_millis()) {
            wrong.push(format!("h2 client, {path} via {listener}: got {out}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "an early 413 must be forwarded at once, within {BOUND:?}, before the (>5 s) upload \
         ends (RFC 9110 §15.5.14, RFC 9112 §9.5; to_h1: HTTP/1 cluster, to_h2: h2c):\n{}\n\
         ringside log:\n{}",
        wrong.join("\n"),
        proxy.log_text()
    );
});

/// The informational part of an h2client -show-1xx answer.
fn informational(out: &str) -> &str {
    let Some(start) = out.find(r#""informational":"#) else {
        return "(none)";
    };
    let rest = &out[start..];
    &rest[..rest.find(']').map_or(rest.len(), |i| i + 1)]
}

// Fault 6: /early-hints sends 102, then 103 with a Link header, then 200 "hinted". Every
// pair runs; the failure lists each one that came back wrong.
both_runtimes!(fn informational_responses_reach_every_client(rt) {
    let origin = Origin::start_h2c("o");
    let proxy = Ringside::start(rt, &h1_and_h2_clusters_config(&[origin.addr]));
    let mut wrong = Vec::new();
    for listener in ["to_h1", "to_h2"] {
        let (ok, out) = h2_client(proxy.addr(listener), &["-path", "/early-hints", "-show-1xx"]);
        let info = informational(&out);
        // The final status, not the first `status` key (the 1xx list comes first).
        let top = out.replace(info, "");
        if !(ok
            && json_field(&top, "status").as_deref() == Some("200")
            && info.contains(r#""status":102"#)
            && info.contains(r#""status":103"#)
            && info.contains("rel=preload; as=style"))
        {
            wrong.push(format!("h2 client via {listener}: 1xx {info} in {out}"));
        }

        let mut c = Conn::open(proxy.addr(listener));
        c.send(b"GET /early-hints HTTP/1.1\r\nhost: test\r\n\r\n");
        c.stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let heads = read_heads(&mut c.stream).map(|(h, _)| h);
        let statuses: Option<Vec<&str>> = heads
            .as_ref()
            .ok()
            .map(|hs| hs.iter().map(|h| h.get(9..12).unwrap_or(h)).collect());
        let link = heads.as_ref().is_ok_and(|hs| {
            hs.get(1).is_some_and(|h| {
                h.to_ascii_lowercase().contains("link: </style.css>; rel=preload; as=style")
            })
        });
        if !(statuses == Some(vec!["102", "103", "200"]) && link) {
            wrong.push(format!("HTTP/1.1 client via {listener}: heads {heads:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "want 102 and 103 (with its Link) before the 200, for every client (RFC 9110 §15.2; \
         to_h1: HTTP/1 cluster, to_h2: h2c):\n{}\nringside log:\n{}",
        wrong.join("\n"),
        proxy.log_text()
    );
});
