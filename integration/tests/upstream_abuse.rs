//! Hostile upstreams on both runtimes, each beside a clean client whose route goes to a
//! healthy origin on the same worker: an upstream that accepts and never answers, one that
//! answers one byte per second, one SIGSTOPped in the middle of a response. For each: every
//! request sent to it gets an answer or a close the client can see (504 within the route
//! timeout, or a response cut short), Ringside keeps no connection to it open afterwards
//! (nothing dead is pooled), and the clean client's p99 stays within twice its baseline (plus
//! [`hostile::P99_SLACK`]). The measured figures are in docs/hostile-peers.md.

mod hostile;

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hostile::{wait_no_connections, Bounds, Clean, Cut};
use ringside_integration::{both_runtimes, Conn, Origin, Ringside, Runtime};

/// `/` goes to a healthy origin (the clean client's), `/bad/` and `/bytes/` to the hostile
/// one; a 1 s route timeout on all.
fn start(rt: Runtime, app: &Origin, bad: SocketAddr) -> Ringside {
    Ringside::start(
        rt,
        &format!(
            "listeners:\n  - name: inbound\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      - name: bad\n        match: {{ path_prefix: /bad/ }}\n        backends: [ {{ cluster: bad }} ]\n        timeout: 1s\n      - name: big\n        match: {{ path_prefix: /bytes/ }}\n        backends: [ {{ cluster: bad }} ]\n        timeout: 1s\n      - name: d\n        match: {{ path_prefix: / }}\n        backends: [ {{ cluster: app }} ]\n        timeout: 1s\nclusters:\n  - name: app\n    endpoints: [ {} ]\n  - name: bad\n    endpoints: [ {bad} ]\n",
            app.addr
        ),
    )
}

/// 20 requests at once to the hostile route: each must be answered 504 (the route timeout)
/// within `within`. Returns when the last one was.
fn all_time_out(addr: SocketAddr, within: Duration) -> Cut {
    let started = Instant::now();
    let clients: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let r = Conn::open(addr).get(&format!("/bad/{i}"), "");
                (r.status, r.header("x-ringside-error").map(str::to_owned))
            })
        })
        .collect();
    for c in clients {
        let (status, error) = c.join().expect("client");
        assert_eq!(status, 504, "a request to a hostile upstream: {error:?}");
    }
    let after = started.elapsed();
    assert!(after <= within, "timeouts took {after:?}");
    Cut { after }
}

fn case(
    name: &'static str,
    rt: Runtime,
    bad: SocketAddr,
    abuse: impl Fn(SocketAddr) -> Cut + Send + Sync + 'static,
) {
    let app = Origin::start("app");
    let proxy = start(rt, &app, bad);
    let addr = proxy.addr("inbound");
    let bounds = Bounds {
        mem_growth_kib: 32 * 1024,
        cut_within: Some(Duration::from_secs(4)),
        p99_slack: hostile::P99_SLACK,
    };
    hostile::run(
        name,
        rt,
        proxy.pid(),
        addr,
        Clean::Http1,
        bounds,
        move |_| abuse(addr),
    );
    wait_no_connections(bad, Duration::from_secs(3));
}

both_runtimes!(
    fn an_upstream_that_never_answers_times_out_and_is_not_pooled(rt) {
        let bad = Origin::start_with_flags("hang", &["-hang"]);
        case("upstream never answers", rt, bad.addr, |addr| all_time_out(addr, Duration::from_secs(4)));
    }
);

both_runtimes!(
    fn an_upstream_answering_a_byte_a_second_times_out_and_is_not_pooled(rt) {
        let bad = Origin::start_with_flags("trickle", &["-trickle", "1s"]);
        case("upstream 1 byte/s", rt, bad.addr, |addr| all_time_out(addr, Duration::from_secs(4)));
    }
);

both_runtimes!(
    fn an_upstream_stopped_mid_response_is_cut_and_the_client_sees_it(rt) {
        let bad = Origin::start("stopped");
        let pid = bad.pid();
        case("upstream SIGSTOPped", rt, bad.addr, move |addr| {
            // 64 MiB: far more than the socket buffers on the way hold.
            let mut c = Conn::open(addr);
            c.send(b"GET /bytes/67108864 HTTP/1.1\r\nhost: t\r\n\r\n");
            let mut s = c.stream;
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0usize;
            while got < 256 * 1024 {
                let n = s.read(&mut buf).expect("the response began");
                assert!(n > 0, "closed before the response began");
                got += n;
            }
            signal(pid, libc::SIGSTOP);
            let stopped = Instant::now();
            // Drain what is buffered: the body must end short of 64 MiB, with a close.
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) => panic!("the client was left hanging ({e}) after {got} bytes"),
                }
            }
            let after = stopped.elapsed();
            signal(pid, libc::SIGCONT);
            assert!(got < 67_108_864, "the whole body arrived from a stopped upstream");
            Cut { after }
        });
    }
);

/// Sends `sig` (SIGSTOP, SIGCONT) to the origin process `pid`.
fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid");
    // SAFETY: kill(2) on a child process this test started; no memory is involved.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}
