//! Hostile HTTP/1.1 clients on both runtimes, each beside a clean keep-alive client on the
//! same worker: slowloris (a head trickled), a slow body, 100,000 pipelined requests never
//! read, a slow reader of a large response, 10,000 connections opened and left silent. For
//! each: Ringside's memory high-water mark stays bounded, the abuser's connections end within
//! a bound (a timeout's: `header_read`, `body_read` with `min_body_rate`, `send_stall`), the
//! cut is counted in `ringside_downstream_cutoffs_total`, an upstream never receives a cut
//! body as complete nor keeps a half-sent response's connection, and the clean client's p99
//! stays within twice its baseline (plus [`hostile::P99_SLACK`]). Apart from those: the slow
//! reader seen from the client (its cut is a reset), and a slow but steady reader (never cut).
//! The measured figures are in docs/hostile-peers.md.

mod hostile;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hostile::h1peer::{
    all_closed, all_ended, all_released, ended, open_many, peer_closed, ringside_sockets,
    small_window_client, unread,
};
use hostile::{wait_cutoffs, wait_no_connections, Bounds, Clean, Cut};
use ringside_integration::{both_runtimes, Options, Origin, Ringside, Runtime};

/// Ringside and its two upstreams: `app` serves the clean client (`/`), `held` the abusers'
/// bodies and large responses (`/sink`, `/bytes/`), so that what the abusers leave behind at
/// an upstream is seen apart from the clean client's pooled connections.
struct Setup {
    proxy: Ringside,
    held: Origin,
    _app: Origin,
}

/// A 1 s header-read deadline, body grace and send stall, 2 s idle and route timeouts: the
/// limits the abusers meet (`min_body_rate` is its default, 1 KiB/s).
fn start(rt: Runtime) -> Setup {
    start_with(rt, &Options::default())
}

fn start_with(rt: Runtime, opts: &Options) -> Setup {
    let app = Origin::start("app");
    let held = Origin::start("held");
    let proxy = Ringside::start_with(
        rt,
        &format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    timeouts: {{ header_read: 1s, idle: 2s, body_read: 1s, send_stall: 1s }}\n    routes:\n      - name: sink\n        match: {{ path_prefix: /sink }}\n        backends: [ {{ cluster: held }} ]\n        timeout: 2s\n      - name: big\n        match: {{ path_prefix: /bytes/ }}\n        backends: [ {{ cluster: held }} ]\n        timeout: 2s\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\n        timeout: 2s\nclusters:\n  - name: app\n    endpoints: [ {} ]\n  - name: held\n    endpoints: [ {} ]\n",
            app.addr, held.addr
        ),
        opts,
    );
    Setup {
        proxy,
        held,
        _app: app,
    }
}

/// Runs one case (see `hostile::run`); returns the setup, for checks at the upstream and in
/// the metrics, and how many abusive rounds ran.
fn case(
    name: &'static str,
    rt: Runtime,
    bounds: Bounds,
    abuse: impl Fn(SocketAddr, &AtomicBool) -> Cut + Send + Sync + 'static,
) -> (Setup, usize) {
    let setup = start(rt);
    let addr = setup.proxy.addr("inbound");
    let m = hostile::run(
        name,
        rt,
        setup.proxy.pid(),
        addr,
        Clean::Http1,
        bounds,
        move |stop| abuse(addr, stop),
    );
    (setup, m.rounds)
}

/// Writes `first` on every connection, then one byte of `trickle` (cycled) on each every
/// 50 ms until every connection [`ended`]; fails if one is still open after `within`.
fn trickle(conns: &mut [TcpStream], first: &[u8], trickle: &[u8], within: Duration) -> Cut {
    let started = Instant::now();
    for c in conns.iter_mut() {
        let _ = c.write_all(first);
    }
    let mut done = vec![false; conns.len()];
    let mut i = 0;
    while done.iter().any(|d| !d) {
        let open = done.iter().filter(|d| !**d).count();
        assert!(
            started.elapsed() < within,
            "{open} of {} trickling connections still open after {within:?}",
            conns.len()
        );
        for (c, d) in conns.iter_mut().zip(done.iter_mut()) {
            if !*d && (ended(c) || c.write_all(&[trickle[i % trickle.len()]]).is_err()) {
                *d = true;
            }
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    Cut {
        after: started.elapsed(),
    }
}

const MIB: u64 = 1024;

both_runtimes!(
    fn slowloris_heads_are_cut_at_the_header_deadline(rt) {
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(3)), p99_slack: hostile::P99_SLACK };
        let (s, rounds) = case("slowloris", rt, bounds, |addr, _| {
            let mut conns = open_many(addr, 200);
            assert_eq!(conns.len(), 200);
            trickle(&mut conns, b"GET / HTTP/1.1\r\n", b"x-slow: loris\r\n", Duration::from_secs(8))
        });
        wait_cutoffs(s.proxy.addr("admin"), "header_read", 200 * rounds);
    }
);

// A body trickled at 20 bytes a second (on each of 200 connections) falls behind the 1 KiB/s
// minimum once its 1 s grace is over: 408, connection closed, the upstream request abandoned
// mid-body (the origin counts no complete /sink body, and keeps no connection from it).
both_runtimes!(
    fn slow_bodies_are_cut_at_their_minimum_rate(rt) {
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(4)), p99_slack: hostile::P99_SLACK };
        let (s, rounds) = case("slow body", rt, bounds, |addr, _| {
            let mut conns = open_many(addr, 200);
            assert_eq!(conns.len(), 200);
            let head = b"POST /sink HTTP/1.1\r\nhost: t\r\ncontent-length: 100000\r\n\r\n";
            let cut = trickle(&mut conns, head, b"b", Duration::from_secs(8));
            for c in &mut conns {
                let mut answer = [0u8; 12];
                let _ = std::io::Read::read(c, &mut answer);
                assert!(answer.starts_with(b"HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&answer));
            }
            cut
        });
        wait_cutoffs(s.proxy.addr("admin"), "slow_body", 200 * rounds);
        wait_no_connections(s.held.addr, Duration::from_secs(3));
        assert_eq!(s.held.seen("/completed/sink"), 0, "an upstream took a cut body as complete");
        assert!(s.held.seen("/truncated/sink") > 0, "the upstream never saw the requests");
    }
);

// 100,000 requests (2.8 MB) written without reading one response. Requests are handled one
// at a time, the next head read only once the last response is written, so the unread
// responses fill the socket buffers; the write that cannot go on for `send_stall` (1 s) ends
// the connection.
both_runtimes!(
    fn a_pipeliner_that_never_reads_is_cut_at_the_send_stall(rt) {
        // The cut comes once the socket buffers are full of unread responses (thousands of
        // requests proxied first: 3.5-4.5 s on a debug build under load), then `send_stall`.
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(10)), p99_slack: hostile::P99_SLACK };
        let (s, _) = case("pipelining 100k", rt, bounds, |addr, _| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_write_timeout(Some(Duration::from_millis(200))).expect("timeout");
            let reqs = b"GET / HTTP/1.1\r\nhost: t\r\n\r\n".repeat(100_000);
            let started = Instant::now();
            let mut sent = 0;
            // Writes as far as the buffers take (a write that times out is Ringside holding
            // back: it reads no more until its answers are read) until Ringside cuts it.
            while sent < reqs.len() && !hostile::h1peer::peer_closed(&s) {
                match s.write(&reqs[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
                assert!(started.elapsed() < Duration::from_secs(15), "the pipeliner was not cut");
            }
            let after = all_closed(std::slice::from_ref(&s), started, Duration::from_secs(15))
                .expect("the pipeliner was not cut");
            Cut { after }
        });
        wait_cutoffs(s.proxy.addr("admin"), "send_stall", 1);
    }
);

// A client that reads nothing of a 100 MiB response: backpressure all the way until the socket
// buffers are full, then the write that cannot go on for `send_stall` (1 s) ends the
// connection, and with it the upstream's (never pooled: its response was half-sent).
both_runtimes!(
    fn a_slow_reader_of_a_large_response_is_cut_at_the_send_stall(rt) {
        // Until the socket buffers fill, 20 large responses are served as fast as the worker
        // can copy them (several MiB each, on a debug build): a burst of work the clean client
        // waits behind (p99 measured up to 93 ms, io_uring, under load), then nothing. The
        // allowance says so rather than hide it.
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: Some(Duration::from_secs(5)), p99_slack: Duration::from_millis(150) };
        let (s, rounds) = case("slow reader", rt, bounds, |addr, _| {
            let mut conns = open_many(addr, 20);
            let started = Instant::now();
            for c in conns.iter_mut() {
                c.write_all(b"GET /bytes/104857600 HTTP/1.1\r\nhost: t\r\n\r\n").expect("write");
            }
            // Measured at Ringside's end, which lets go of the connection at the cut (the
            // client's view of it, a reset, is `a_slow_reader_is_reset_at_the_send_stall`).
            let after = all_released(&conns, addr, started, Duration::from_secs(10))
                .expect("slow readers were not cut");
            Cut { after }
        });
        wait_cutoffs(s.proxy.addr("admin"), "send_stall", 20 * rounds);
        wait_no_connections(s.held.addr, Duration::from_secs(3));
    }
);

/// Connections each round, within the test process's and Ringside's 20,000 descriptors each.
const SILENT: usize = 10_000;

/// The two runtimes' silent-connection tests run one at a time: both at once in this process
/// would need 20,000 descriptors.
static SILENT_ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

both_runtimes!(
    fn ten_thousand_silent_connections_are_closed_at_the_header_deadline(rt) {
        let _one = SILENT_ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        // Accepting 10,000 connections in a burst on the clean client's one worker delays it
        // (p99 measured up to ~125 ms on a loaded 2-core machine): the allowance says so
        // rather than hide it; bounding accept bursts is the listener's load shedding.
        let bounds = Bounds { mem_growth_kib: 96 * MIB, cut_within: Some(Duration::from_secs(8)), p99_slack: Duration::from_millis(300) };
        let _ = case("10k silent", rt, bounds, |addr, _| {
            let started = Instant::now();
            let conns = open_many(addr, SILENT);
            assert_eq!(conns.len(), SILENT, "could not open {SILENT} connections");
            let after = all_ended(&conns, started, Duration::from_secs(15))
                .unwrap_or_else(|| panic!("silent connections were not closed"));
            Cut { after }
        });
    }
);

// The slow reader again, one connection, seen from the client: the cut is a reset (SO_LINGER
// 0), not a FIN queued behind the bytes it never reads. The client sees ECONNRESET once
// Ringside's writes made no progress for `send_stall`, and Ringside's socket is gone at once,
// its send buffer (MiBs on loopback) freed: a FIN would leave it in FIN-WAIT-1 holding that
// buffer for as long as the client keeps its window shut, and the client would see nothing.
both_runtimes!(
    fn a_slow_reader_is_reset_at_the_send_stall(rt) {
        let s = start(rt);
        let addr = s.proxy.addr("inbound");
        let mut c = TcpStream::connect(addr).expect("connect");
        let started = Instant::now();
        c.write_all(b"GET /bytes/104857600 HTTP/1.1\r\nhost: t\r\n\r\n").expect("write");
        // The response arrives until the client's buffer is full (Ringside's fills behind it).
        let (mut seen, mut last_arrival) = (0, Instant::now());
        let mut stalled: Option<Vec<String>> = None;
        while !peer_closed(&c) {
            assert!(started.elapsed() < Duration::from_secs(15), "the slow reader was not reset");
            let n = unread(&c);
            if n != seen {
                (seen, last_arrival) = (n, Instant::now());
            } else if stalled.is_none() && last_arrival.elapsed() > Duration::from_millis(300) {
                // Stalled: what Ringside's end holds (its send queue) before the cut.
                stalled = Some(ringside_sockets(&c, addr));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let reset_after = started.elapsed();
        // What the client's application sees: the bytes already received, then the reset.
        let mut buf = vec![0u8; 1 << 20];
        let end = loop {
            match c.read(&mut buf) {
                Ok(0) => break None,
                Ok(_) => {}
                Err(e) => break Some(e),
            }
        };
        let err = end.expect("the connection ended with a FIN, not a reset");
        assert_eq!(err.raw_os_error(), Some(libc::ECONNRESET), "{err}");
        // A reset frees Ringside's socket in the same close: nothing left in any state.
        let gone_by = Instant::now() + Duration::from_secs(2);
        let left = loop {
            let left = ringside_sockets(&c, addr);
            if left.is_empty() || Instant::now() > gone_by {
                break left;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(left.is_empty(), "Ringside still holds the connection: {left:?}");
        eprintln!(
            "RESET {rt:?}: request to reset {reset_after:?}, client unread {seen} B, Ringside's end stalled: {stalled:?}"
        );
        wait_cutoffs(s.proxy.addr("admin"), "send_stall", 1);
        wait_no_connections(s.held.addr, Duration::from_secs(3));
    }
);

/// The steady reader's pace: at most [`STEADY_STEP`] bytes every [`STEADY_PACE`] (20 KiB/s;
/// ~19 KiB/s measured), well below the 32 KiB a single body write may carry per `send_stall`
/// (1 s), well above what Ringside's send buffer must drain before the kernel takes more (a
/// third of it, under 3 KiB: some every ~150 ms).
const STEADY_STEP: usize = 2 * 1024;
const STEADY_PACE: Duration = Duration::from_millis(100);
const STEADY_BODY: usize = 128 * 1024;

/// Ringside's send buffer for the steady reader (`SO_SNDBUF`, which Linux doubles): 8 KiB,
/// so that a 32 KiB body write waits on the reader (on loopback autotuning grows it to
/// hundreds of KiB, and the kernel takes more only once a third of it drained, so writes
/// would wait seconds at this pace whatever bounds them).
const STEADY_SNDBUF: &str = "4096";

// A client that reads slowly but steadily through a small window is not cut: `send_stall` is
// the longest time in which the kernel takes no byte, not a bound on each write. With small
// socket buffers at both ends (the client's window, Ringside's send buffer through a test
// hook), each 32 KiB body write waits on its reading for well over a second (a bound on the
// whole write, as before, cut it after 27-29 KB), while the kernel takes bytes every ~150 ms.
both_runtimes!(
    fn a_slow_but_steady_reader_is_not_cut(rt) {
        let opts = Options {
            env: vec![("RINGSIDE_TEST_SO_SNDBUF".into(), STEADY_SNDBUF.into())],
            ..Options::default()
        };
        let s = start_with(rt, &opts);
        let addr = s.proxy.addr("inbound");
        let mut c = small_window_client(addr);
        let started = Instant::now();
        c.write_all(format!("GET /bytes/{STEADY_BODY} HTTP/1.1\r\nhost: t\r\n\r\n").as_bytes())
            .expect("write");
        let mut got = Vec::with_capacity(STEADY_BODY + 1024);
        let mut chunk = vec![0u8; STEADY_STEP];
        let mut mid: Option<Vec<String>> = None;
        let (head_len, body_len) = loop {
            assert!(started.elapsed() < Duration::from_secs(60), "the steady reader never finished");
            match c.read(&mut chunk) {
                Ok(0) => panic!("Ringside closed after {} bytes", got.len()),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("Ringside cut the steady reader after {} bytes: {e}", got.len()),
            }
            if mid.is_none() && got.len() > STEADY_BODY / 2 {
                // What backs up at Ringside's end half-way: its writes wait on this client.
                mid = Some(ringside_sockets(&c, addr));
            }
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                assert!(head.starts_with("http/1.1 200"), "{head}");
                assert!(head.contains(&format!("content-length: {STEADY_BODY}")), "{head}");
                if got.len() - (end + 4) >= STEADY_BODY {
                    break (end + 4, got.len() - (end + 4));
                }
            }
            std::thread::sleep(STEADY_PACE);
        };
        assert_eq!(body_len, STEADY_BODY, "bytes past the body");
        let wrong = got[head_len..].iter().enumerate().position(|(i, b)| *b != b'a' + (i % 26) as u8);
        assert_eq!(wrong, None, "the body differs from the origin's");
        eprintln!("STEADY {rt:?}: {STEADY_BODY} B in {:?}, Ringside's end half-way: {mid:?}", started.elapsed());
        let text = ringside_integration::metrics::scrape(s.proxy.addr("admin"));
        let cut = ringside_integration::metrics::sample(
            &text,
            "ringside_downstream_cutoffs_total{listener=\"inbound\",reason=\"send_stall\"}",
        );
        assert_eq!(cut.unwrap_or(0.0), 0.0, "a send stall was counted");
    }
);
