//! Hostile HTTP/1.1 clients on both runtimes, each beside a clean keep-alive client on the
//! same worker: slowloris (a head trickled), a slow body, 100,000 pipelined requests never
//! read, a slow reader of a large response, 10,000 connections opened and left silent. For
//! each: Ringside's memory high-water mark stays bounded, the abuser's connections end within
//! a bound (a timeout's), and the clean client's p99 stays within twice its baseline (plus
//! [`hostile::P99_SLACK`]). The measured figures are in docs/hostile-peers.md.

mod hostile;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hostile::h1peer::{all_ended, ended, open_many};
use hostile::{Bounds, Clean, Cut};
use ringside_integration::{both_runtimes, Origin, Ringside, Runtime};

/// A 1 s header-read deadline, 2 s idle and route timeouts: the limits the abusers meet.
fn start(rt: Runtime, origin: &Origin) -> Ringside {
    Ringside::start(
        rt,
        &format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    timeouts: {{ header_read: 1s, idle: 2s }}\n    routes:\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\n        timeout: 2s\nclusters:\n  - name: app\n    endpoints: [ {} ]\n",
            origin.addr
        ),
    )
}

fn case(
    name: &'static str,
    rt: Runtime,
    bounds: Bounds,
    abuse: impl Fn(SocketAddr, &AtomicBool) -> Cut + Send + Sync + 'static,
) {
    let origin = Origin::start("app");
    let proxy = start(rt, &origin);
    let addr = proxy.addr("inbound");
    hostile::run(
        name,
        rt,
        proxy.pid(),
        addr,
        Clean::Http1,
        bounds,
        move |stop| abuse(addr, stop),
    );
}

/// Holds an abusive connection open until the clean client has finished (`stop`): for the
/// abusers Ringside does not cut.
fn hold(stop: &AtomicBool, started: Instant) -> Cut {
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
    Cut {
        after: started.elapsed(),
    }
}

/// Writes `first` on every connection, then one byte of `trickle` (cycled) on each every
/// 50 ms until every connection [`ended`], or `stop` is set (with `must_end` false), or
/// `within` passed (a failure with `must_end`).
fn trickle(
    conns: &mut [TcpStream],
    first: &[u8],
    trickle: &[u8],
    within: Duration,
    must_end: bool,
    stop: &AtomicBool,
) -> Cut {
    let started = Instant::now();
    for c in conns.iter_mut() {
        let _ = c.write_all(first);
    }
    let mut done = vec![false; conns.len()];
    let mut i = 0;
    while done.iter().any(|d| !d) {
        if !must_end && stop.load(Ordering::SeqCst) {
            break;
        }
        if started.elapsed() >= within {
            let open = done.iter().filter(|d| !**d).count();
            assert!(
                !must_end,
                "{open} of {} trickling connections still open after {within:?}",
                conns.len()
            );
            break;
        }
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
        case("slowloris", rt, bounds, |addr, stop| {
            let mut conns = open_many(addr, 200);
            assert_eq!(conns.len(), 200);
            trickle(&mut conns, b"GET / HTTP/1.1\r\n", b"x-slow: loris\r\n", Duration::from_secs(8), true, stop)
        });
    }
);

// NOT cut: a body that keeps arriving, however slowly (here 20 bytes a second on each of
// 200 connections), holds its connection and its upstream request; the route timeout does
// not run while the request body is still being received. Shown: bounded memory and a clean
// client left alone; the abuser gives up once the clean client is done.
both_runtimes!(
    fn slow_bodies_are_held_in_bounded_memory(rt) {
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: None, p99_slack: hostile::P99_SLACK };
        case("slow body", rt, bounds, |addr, stop| {
            let mut conns = open_many(addr, 200);
            assert_eq!(conns.len(), 200);
            trickle(&mut conns, b"POST /sink HTTP/1.1\r\nhost: t\r\ncontent-length: 100000\r\n\r\n", b"b", Duration::from_secs(60), false, stop)
        });
    }
);

// NOT cut: 100,000 requests (2.8 MB) written without reading one response. Requests are
// handled one at a time, the next head read only once the last response is written, so the
// client's unread responses fill the socket buffers and Ringside simply stops reading: it
// holds the connection (the idle timeout does not apply to a connection blocked writing) in
// bounded memory. The abuser gives up once the clean client is done.
both_runtimes!(
    fn a_pipeliner_that_never_reads_is_held_in_bounded_memory(rt) {
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: None, p99_slack: hostile::P99_SLACK };
        case("pipelining 100k", rt, bounds, |addr, stop| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_write_timeout(Some(Duration::from_millis(200))).expect("timeout");
            let reqs = b"GET / HTTP/1.1\r\nhost: t\r\n\r\n".repeat(100_000);
            let started = Instant::now();
            let mut sent = 0;
            // Writes as far as the buffers take; a write that times out is Ringside holding
            // back (it reads no more until its answers are read).
            while sent < reqs.len() && !stop.load(Ordering::SeqCst) {
                match s.write(&reqs[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(e) => panic!("the pipeliner's connection failed after {sent} bytes: {e}"),
                }
            }
            hold(stop, started)
        });
    }
);

// NOT cut: a client that reads nothing of a 100 MiB response holds its connection and the
// upstream's (backpressure all the way: Ringside reads from the upstream only what it could
// write). Shown: bounded memory and a clean client left alone; the abuser gives up once the
// clean client is done.
both_runtimes!(
    fn a_slow_reader_of_a_large_response_is_held_in_bounded_memory(rt) {
        // Until the socket buffers fill, 20 large responses are served as fast as the worker
        // can copy them (several MiB each, on a debug build): a burst of work the clean client
        // waits behind (p99 measured up to 93 ms, io_uring, under load), then nothing. The
        // allowance says so rather than hide it.
        let bounds = Bounds { mem_growth_kib: 32 * MIB, cut_within: None, p99_slack: Duration::from_millis(150) };
        case("slow reader", rt, bounds, |addr, stop| {
            let mut conns = open_many(addr, 20);
            let started = Instant::now();
            for c in conns.iter_mut() {
                c.write_all(b"GET /bytes/104857600 HTTP/1.1\r\nhost: t\r\n\r\n").expect("write");
            }
            hold(stop, started)
        });
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
        case("10k silent", rt, bounds, |addr, _| {
            let started = Instant::now();
            let conns = open_many(addr, SILENT);
            assert_eq!(conns.len(), SILENT, "could not open {SILENT} connections");
            let after = all_ended(&conns, started, Duration::from_secs(15))
                .unwrap_or_else(|| panic!("silent connections were not closed"));
            Cut { after }
        });
    }
);
