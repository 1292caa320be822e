//! Hostile HTTP/2 clients on both runtimes, each written frame by frame (`hostile/h2peer.rs`)
//! with a clean h2 client beside it on the same worker: rapid reset (CVE-2023-44487), a
//! CONTINUATION flood, an HPACK bomb, SETTINGS and PING floods, a zero window that never
//! opens, thousands of streams opened and left idle, an oversized HEADERS frame. For each:
//! Ringside cuts the abuser off with the RFC 9113 error code that fits, within a bound; its
//! memory high-water mark stays bounded; the clean client's p99 stays within twice its
//! baseline (plus [`hostile::P99_SLACK`]). The measured figures are in docs/hostile-peers.md.

mod hostile;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use hostile::h2peer::{self, Abuser, CONTINUATION, INITIAL_WINDOW_SIZE};
use hostile::{Bounds, Clean, Cut};
use ringside_integration::h2raw::{
    frame, hpack, CANCEL, DATA, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM, HEADERS, NO_ERROR,
    PING, RST_STREAM, SETTINGS,
};
use ringside_integration::{both_runtimes, Origin, Ringside, Runtime};

/// Short header-read, idle and route timeouts, so that abuse ended by a timeout ends within
/// the test's time: `header_read` also bounds how long a client may take to finish a
/// graceful shutdown (`down/h2.rs`).
fn start(rt: Runtime, origin: &Origin) -> Ringside {
    // `send_stall: 1s`, `body_read: 1s`: a zero window and a trickled body are cut within the
    // test's time.
    Ringside::start(
        rt,
        &format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    timeouts: {{ header_read: 1s, idle: 2s, send_stall: 1s, body_read: 1s }}\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\n        timeout: 2s\nclusters:\n  - name: app\n    endpoints: [ {} ]\n",
            origin.addr
        ),
    )
}

/// Runs one abuse case: `abuse` drives one abusive connection and returns when it was cut,
/// with the GOAWAY code it got; that code must be `want`. Then every round's cut must be
/// counted in `ringside_downstream_cutoffs_total` under `reason`, `per_round` times. Returns
/// the origin, for what it saw.
#[allow(clippy::too_many_arguments)]
fn case(
    name: &'static str,
    rt: Runtime,
    bounds: Bounds,
    want: Option<u32>,
    abuse: impl Fn(&Abuser, &AtomicBool) + Send + Sync + 'static,
    settings: &'static [(u16, u32)],
    reason: &str,
    per_round: usize,
) -> Origin {
    let origin = Origin::start("app");
    let proxy = start(rt, &origin);
    let addr = proxy.addr("inbound");
    let within = bounds.cut_within.unwrap_or(Duration::from_secs(10));
    let m = hostile::run(
        name,
        rt,
        proxy.pid(),
        addr,
        Clean::H2,
        bounds,
        move |stop| {
            let a = Abuser::open(addr, settings);
            abuse(&a, stop);
            let (code, after) = a.wait_closed(within + Duration::from_secs(5));
            assert_eq!(code, want, "{name}: GOAWAY code; seen {:?}", a.seen());
            Cut { after }
        },
    );
    hostile::wait_cutoffs(proxy.addr("admin"), reason, per_round * m.rounds);
    drop(proxy);
    origin
}

/// Writes `chunk` until Ringside cuts the connection (or `limit` passes, and the test fails
/// in [`Abuser::wait_closed`]).
fn flood(a: &Abuser, chunk: &[u8], limit: Duration) {
    let mut w = a.w.try_clone().expect("clone");
    let end = Instant::now() + limit;
    while !a.cut() && Instant::now() < end {
        if w.write_all(chunk).is_err() {
            return;
        }
    }
}

const MIB: u64 = 1024;

both_runtimes!(
    fn rapid_reset_gets_enhance_your_calm(rt) {
        // HEADERS then RST_STREAM(CANCEL) at once, 50 streams a write, new ids forever.
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(2)), p99_slack: hostile::P99_SLACK };
        case("rapid reset", rt, bounds, Some(ENHANCE_YOUR_CALM), |a, _| {
            let mut id = 1u32;
            let mut w = a.w.try_clone().expect("clone");
            let end = Instant::now() + Duration::from_secs(10);
            while !a.cut() && Instant::now() < end {
                let mut out = Vec::new();
                for _ in 0..50 {
                    out.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &h2peer::get("/")));
                    out.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
                    id += 2;
                }
                if w.write_all(&out).is_err() {
                    return;
                }
            }
        }, &[], "h2_enhance_your_calm", 1);
    }
);

both_runtimes!(
    fn continuation_flood_is_cut(rt) {
        // A HEADERS without END_HEADERS, then CONTINUATION frames of 16 KB fields, forever.
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(2)), p99_slack: hostile::P99_SLACK };
        case("CONTINUATION flood", rt, bounds, Some(ENHANCE_YOUR_CALM), |a, _| {
            let mut head = frame(HEADERS, 0, 1, &h2peer::get("/"));
            let fields: Vec<(&str, &str)> = vec![("x-flood", "a-value-of-sixty-bytes-that-is-sent-over-and-over-again-xx"); 200];
            let cont = frame(CONTINUATION, 0, 1, &hpack(&fields));
            head.extend(&cont);
            let mut w = a.w.try_clone().expect("clone");
            if w.write_all(&head).is_ok() {
                flood(a, &cont, Duration::from_secs(10));
            }
        }, &[], "h2_enhance_your_calm", 1);
    }
);

both_runtimes!(
    fn hpack_bomb_is_cut(rt) {
        // One 4000-byte field into the dynamic table, then 1-byte references to it: 16 KB of
        // wire per CONTINUATION decode to 64 MB of header list.
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(2)), p99_slack: hostile::P99_SLACK };
        case("HPACK bomb", rt, bounds, Some(ENHANCE_YOUR_CALM), |a, _| {
            let mut block = h2peer::get("/");
            block.extend([0x40, 6]);
            block.extend(b"x-bomb");
            h2peer::hpack_int(0, 7, 4000, &mut block);
            block.extend(vec![b'b'; 4000]);
            let mut head = frame(HEADERS, 0, 1, &block);
            // Index 62: the newest dynamic-table entry (RFC 7541 §2.3.3).
            let cont = frame(CONTINUATION, 0, 1, &[0xbe; 16_000]);
            head.extend(&cont);
            let mut w = a.w.try_clone().expect("clone");
            if w.write_all(&head).is_ok() {
                flood(a, &cont, Duration::from_secs(10));
            }
        }, &[], "h2_enhance_your_calm", 1);
    }
);

// SETTINGS and PING floods: h2 answers each (one at a time, so a flooder that does not read
// stalls itself), but this one reads, so it would keep the worker answering; past 100 in a
// second Ringside sends GOAWAY(ENHANCE_YOUR_CALM) and closes (`core/h2/flood.rs`).
both_runtimes!(
    fn settings_flood_gets_enhance_your_calm(rt) {
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(2)), p99_slack: hostile::P99_SLACK };
        case("SETTINGS flood", rt, bounds, Some(ENHANCE_YOUR_CALM), |a, _| {
            let one = frame(SETTINGS, 0, 0, &[0, INITIAL_WINDOW_SIZE as u8, 0, 0, 0xff, 0xff]);
            flood(a, &one.repeat(100), Duration::from_secs(10));
        }, &[], "h2_flood", 1);
    }
);

both_runtimes!(
    fn ping_flood_gets_enhance_your_calm(rt) {
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(2)), p99_slack: hostile::P99_SLACK };
        case("PING flood", rt, bounds, Some(ENHANCE_YOUR_CALM), |a, _| {
            let one = frame(PING, 0, 0, &[7; 8]);
            flood(a, &one.repeat(100), Duration::from_secs(10));
        }, &[], "h2_flood", 1);
    }
);

// A client whose stream windows never open: each stream waits for window for `send_stall`
// (1 s here), then is reset (RST_STREAM CANCEL: the client broke no rule, Ringside no longer
// wants the stream), and since nothing moved on the whole connection meanwhile, the
// connection gets GOAWAY (NO_ERROR, graceful) and is closed once its streams are gone.
both_runtimes!(
    fn a_window_that_never_opens_is_cut_at_the_send_stall(rt) {
        // Stream windows of 0, never a WINDOW_UPDATE: 100 streams each asking for 1 MiB.
        let bounds = Bounds { mem_growth_kib: 64 * MIB, cut_within: Some(Duration::from_secs(3)), p99_slack: hostile::P99_SLACK };
        case("zero window", rt, bounds, Some(NO_ERROR), |a, _| {
            let mut out = Vec::new();
            for i in 0..100u32 {
                out.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, &h2peer::get("/bytes/1048576")));
            }
            let mut w = a.w.try_clone().expect("clone");
            w.write_all(&out).expect("write");
            let s = a.wait(Duration::from_secs(10), |s| s.heads >= 100);
            assert_eq!(s.heads, 100, "{s:?}");
            let s = a.wait(Duration::from_secs(10), |s| s.resets.len() >= 100 && s.goaway.is_some());
            assert_eq!(s.resets, vec![CANCEL; 100], "{s:?}");
        }, &[(INITIAL_WINDOW_SIZE, 0)], "send_stall", 100);
    }
);

// 50 request bodies trickled at 20 bytes a second each fall behind the 1 KiB/s minimum once
// their 1 s grace is over: each stream is reset (CANCEL) and its upstream request abandoned
// mid-body; the origin counts no complete /sink body. The connection stays (its other
// streams are not at fault); the abuser leaves once every stream was reset.
both_runtimes!(
    fn slow_request_bodies_are_reset_at_their_minimum_rate(rt) {
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(4)), p99_slack: hostile::P99_SLACK };
        let origin = case("h2 slow body", rt, bounds, None, |a, _| {
            let ids: Vec<u32> = (0..50u32).map(|i| 1 + 2 * i).collect();
            let post = hpack(&[(":method", "POST"), (":scheme", "http"), (":path", "/sink"), (":authority", "test")]);
            let mut w = a.w.try_clone().expect("clone");
            let heads: Vec<u8> = ids.iter().flat_map(|id| frame(HEADERS, END_HEADERS, *id, &post)).collect();
            w.write_all(&heads).expect("write");
            let end = Instant::now() + Duration::from_secs(8);
            while a.seen().resets.len() < ids.len() {
                assert!(Instant::now() < end, "trickled bodies were not cut: {:?}", a.seen());
                let byte: Vec<u8> = ids.iter().flat_map(|id| frame(DATA, 0, *id, b"b")).collect();
                let _ = w.write_all(&byte);
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(a.seen().resets, vec![CANCEL; 50]);
            let _ = a.w.shutdown(std::net::Shutdown::Both);
        }, &[], "slow_body", 50);
        assert_eq!(origin.seen("/completed/sink"), 0, "an upstream took a cut body as complete");
    }
);

both_runtimes!(
    fn thousands_of_idle_streams_are_refused_then_cut(rt) {
        // 4000 streams opened with a body to come that never does.
        let bounds = Bounds { mem_growth_kib: 64 * MIB, cut_within: Some(Duration::from_secs(2)), p99_slack: hostile::P99_SLACK };
        case("idle streams", rt, bounds, Some(ENHANCE_YOUR_CALM), |a, _| {
            let mut w = a.w.try_clone().expect("clone");
            for batch in 0..40u32 {
                let mut out = Vec::new();
                for i in 0..100u32 {
                    let id = 1 + 2 * (batch * 100 + i);
                    out.extend(frame(HEADERS, END_HEADERS, id, &h2peer::get("/sink")));
                }
                if a.cut() || w.write_all(&out).is_err() {
                    return;
                }
            }
        }, &[], "h2_enhance_your_calm", 1);
    }
);

both_runtimes!(
    fn an_oversized_headers_frame_is_a_frame_size_error(rt) {
        // 20 KB of HEADERS payload against the 16 KB SETTINGS_MAX_FRAME_SIZE Ringside sent.
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(2)), p99_slack: hostile::P99_SLACK };
        case("oversized HEADERS", rt, bounds, Some(h2peer::FRAME_SIZE_ERROR), |a, _| {
            let mut block = h2peer::get("/");
            let fields = vec![("x-big", "v".repeat(100)); 190];
            let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
            block.extend(hpack(&fields));
            let mut w = a.w.try_clone().expect("clone");
            let _ = w.write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block));
        }, &[], "h2_protocol_error", 1);
    }
);
