use super::*;
use crate::core::meter::Meter;

/// Two workers' meters (io_uring, epoll) and their CPU so far.
struct Pair {
    u: Meter,
    e: Meter,
    cpu: (Duration, Duration),
}

impl Pair {
    fn new() -> Self {
        Self {
            u: Meter::default(),
            e: Meter::default(),
            cpu: (Duration::ZERO, Duration::ZERO),
        }
    }

    /// `n` requests on each runtime: io_uring's take `u_us` CPU µs and `u_ms` each, epoll's
    /// `e_us` and `e_ms`.
    fn serve(&mut self, n: u32, (u_us, u_ms): (u64, u64), (e_us, e_ms): (u64, u64)) {
        for _ in 0..n {
            self.u.request(200, Duration::from_millis(u_ms));
            self.e.request(200, Duration::from_millis(e_ms));
        }
        self.cpu.0 += Duration::from_micros(u_us) * n;
        self.cpu.1 += Duration::from_micros(e_us) * n;
    }

    fn moment(&self, at: Instant) -> Moment {
        let readings = [
            self.u.read("io_uring", self.cpu.0, 3, 0),
            self.e.read("epoll", self.cpu.1, 2, 1),
        ];
        Moment::merge(at, &["io_uring", "epoll"], readings.iter())
    }
}

fn history(t0: Instant) -> History {
    History::new(t0, vec!["io_uring", "epoll"], "split".into())
}

#[test]
fn the_window_subtracts_the_oldest_kept_moment() {
    let t0 = Instant::now();
    let mut h = history(t0);
    let mut p = Pair::new();
    // 100 slow requests long ago, then 15 intervals of fast ones: the slow ones fall out.
    p.serve(100, (500, 900), (500, 900));
    h.push(p.moment(t0));
    for i in 1..=15u32 {
        p.serve(100, (40, 2), (50, 3));
        h.push(p.moment(t0 + INTERVAL * i));
    }
    let now_at = t0 + INTERVAL * 15 + Duration::from_secs(2);
    let c = h.comparison(&p.moment(now_at));
    // Kept: moments 4..=15; the oldest within 60 s of now (77 s) is moment 4 (at 20 s).
    assert_eq!(c["window_seconds"], 57.0);
    assert_eq!(c["since_start_seconds"], 77.0);
    let w = &c["io_uring"]["window"];
    assert_eq!(w["requests"], 1100, "intervals 5..=15");
    assert_eq!(w["cpu_us_per_request"], 40.0);
    let p99 = w["p99_ms"].as_f64().expect("p99");
    assert!(
        (1.9..=2.1).contains(&p99),
        "the slow requests are outside: {p99}"
    );
    let rps = w["requests_per_second"].as_f64().expect("rps");
    assert!((rps - 1100.0 / 57.0).abs() < 0.01, "{rps}");
    let s = &c["epoll"]["since_start"];
    assert_eq!(s["requests"], 1600);
    let p999 = s["p999_ms"].as_f64().expect("p999");
    assert!(p999 > 800.0, "since start keeps the slow ones: {p999}");
    assert_eq!(s["errors"], 1, "the connection closed with an error");
    assert_eq!(c["epoll"]["window"]["connections"], 2, "a level");
}

#[test]
fn before_the_first_moment_the_window_is_since_start() {
    let t0 = Instant::now();
    let h = history(t0);
    let p = Pair::new();
    let c = h.comparison(&p.moment(t0 + Duration::from_secs(3)));
    assert_eq!(c["window_seconds"], 3.0);
    assert_eq!(c["io_uring"]["window"]["requests"], 0);
    assert!(c["io_uring"]["window"]["p50_ms"].is_null());
    assert!(c["io_uring"]["window"]["cpu_us_per_request"].is_null());
    let v = c["verdict"].as_str().expect("verdict");
    assert!(v.starts_with("not enough traffic yet"), "{v}");
}

#[test]
fn paired_intervals_feed_the_verdict_and_quiet_ones_do_not() {
    let t0 = Instant::now();
    let mut h = history(t0);
    let mut p = Pair::new();
    h.push(p.moment(t0));
    // A quiet interval (under MIN_INTERVAL_REQUESTS) is not paired.
    p.serve(10, (40, 2), (50, 2));
    h.push(p.moment(t0 + INTERVAL));
    assert_eq!(h.evidence.cpu.n(), 0);
    for i in 2..=9u32 {
        // io_uring: 80% of epoll's CPU per request, give or take; the same latency.
        let u_us = if i % 2 == 0 { 39 } else { 41 };
        p.serve(200, (u_us, 2), (50, 2));
        h.push(p.moment(t0 + INTERVAL * i));
    }
    assert_eq!(h.evidence.cpu.n(), 8);
    let c = h.comparison(&p.moment(t0 + INTERVAL * 9));
    let v = c["verdict"].as_str().expect("verdict");
    assert!(
        v.starts_with("io_uring used 20% less CPU per request than epoll and had the same p99"),
        "{v}"
    );
    assert_eq!(c["verdict_basis"]["paired_intervals"], 8);
    let ratio = c["verdict_basis"]["cpu_per_request"]["ratio"]
        .as_f64()
        .expect("ratio");
    assert!((ratio - 0.8).abs() < 0.01, "{ratio}");
}

#[test]
fn one_runtime_has_nothing_to_compare() {
    let t0 = Instant::now();
    let h = History::new(
        t0,
        vec!["epoll"],
        "split: io_uring unusable (EPERM), all 2 workers on epoll".into(),
    );
    let m = Moment::merge(
        t0,
        &["epoll"],
        [Meter::default().read("epoll", Duration::ZERO, 0, 0)].iter(),
    );
    let c = h.comparison(&m);
    assert!(c.get("io_uring").is_none(), "{c}");
    assert_eq!(c["runtimes"], json!(["epoll"]));
    let v = c["verdict"].as_str().expect("verdict");
    assert!(
        v.starts_with("only epoll runs (split: io_uring unusable (EPERM)"),
        "{v}"
    );
    assert!(v.contains("nothing to compare"), "{v}");
}
