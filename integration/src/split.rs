//! Helpers for the `--runtime split` tests (`tests/split.rs`, `tests/split_compare.rs`).
//!
//! Which worker a connection lands on is the kernel's choice (a hash of the 4-tuple), so the
//! tests open connections until the metric shows both kinds got some: an event, never a count
//! of connections assumed to be enough.

use std::process::Command;

use serde_json::Value;

use crate::{client, metrics, Options, Ringside, Runtime};

/// The two runtimes, in the order split mode numbers its workers.
pub const RUNTIMES: [&str; 2] = ["io_uring", "epoll"];
/// The requests `http_config`'s one route answered 200, summed over runtimes.
pub const TOTAL_200: &str =
    "ringside_requests_total{listener=\"inbound\",route=\"default\",cluster=\"app\",code=\"200\"}";

/// `--runtime split --workers 2`: worker 0 on io_uring, worker 1 on epoll.
pub fn split_opts() -> Options {
    Options {
        workers: 2,
        runtime_flag: Some("split"),
        ..Options::default()
    }
}

/// Ringside in split mode with [`split_opts`].
pub fn start(config: &str) -> Ringside {
    Ringside::start_with(Runtime::Epoll, config, &split_opts())
}

/// `series` with `runtime="rt"` added as its last label.
pub fn by_runtime(series: &str, rt: &str) -> String {
    match series.strip_suffix('}') {
        Some(s) => format!("{s},runtime=\"{rt}\"}}"),
        None => format!("{series}{{runtime=\"{rt}\"}}"),
    }
}

/// Connections the `inbound` listener accepted on `rt` workers, per `text` (a scrape).
pub fn opened(text: &str, rt: &str) -> f64 {
    let s = by_runtime(
        "ringside_downstream_connections_opened_total{listener=\"inbound\"}",
        rt,
    );
    metrics::sample_exact(text, &s).unwrap_or(0.0)
}

/// Sends GETs for `path`, each on a new connection, until both runtimes have accepted at
/// least one (checked on the metric after each few); at most 2000. Returns how many were
/// sent; each is checked with `check`.
pub fn until_both_served(proxy: &Ringside, path: &str, check: impl Fn(&client::Response)) -> u64 {
    let admin = proxy.addr("admin");
    let before = metrics::scrape(admin);
    let base = RUNTIMES.map(|rt| opened(&before, rt));
    let mut sent = 0;
    loop {
        for _ in 0..5 {
            check(&client::get(proxy.addr("inbound"), path));
            sent += 1;
        }
        let m = metrics::scrape(admin);
        if RUNTIMES.iter().zip(base).all(|(rt, b)| opened(&m, rt) > b) {
            return sent;
        }
        assert!(
            sent < 2000,
            "after {sent} connections one runtime still has none:\n{m}"
        );
    }
}

/// `GET /runtime`, parsed.
pub fn runtime_json(proxy: &Ringside) -> Value {
    let text = client::get(proxy.addr("admin"), "/runtime").text();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("/runtime is not JSON ({e}): {text}"))
}

/// The process's own CPU seconds (utime + stime of /proc/PID/stat), and one clock tick.
pub fn process_cpu(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    let hz: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK");
    (ticks / hz, 1.0 / hz)
}
