//! Reading Ringside's `/metrics` and `/runtime` from a test, and waiting on a value: the
//! events tests wait for instead of sleeping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::client;

/// The Prometheus text from the admin listener at `admin`.
pub fn scrape(admin: SocketAddr) -> String {
    client::get(admin, "/metrics").text()
}

/// The value of the sample whose name and labels are exactly `series` (as printed, e.g.
/// `ringside_downstream_connections_active{listener="inbound"}`).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `/metrics` until `series` satisfies `pred`, at most `within`; returns the value, or
/// panics with the last scrape.
#[track_caller]
pub fn wait_sample(
    admin: SocketAddr,
    series: &str,
    within: Duration,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let end = Instant::now() + within;
    loop {
        let text = scrape(admin);
        if let Some(v) = sample(&text, series).filter(|v| pred(*v)) {
            return v;
        }
        assert!(
            Instant::now() < end,
            "{series} did not reach the expected value within {within:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sum of `"key": N` over a JSON text (e.g. one per worker in `/runtime`).
pub fn sum_json(json: &str, key: &str) -> u64 {
    let needle = format!("\"{key}\":");
    json.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = json[i + needle.len()..].trim_start();
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse::<u64>().ok()
        })
        .sum()
}

/// Panics unless `promtool check metrics` accepts `text` (Debian package `prometheus`).
#[track_caller]
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
