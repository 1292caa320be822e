//! Reading Ringside's `/metrics` and `/runtime` from a test, and waiting on a value: the
//! events tests wait for instead of sleeping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::client;

/// The Prometheus text from the admin listener at `admin`.
pub fn scrape(admin: SocketAddr) -> String {
    client::get(admin, "/metrics").text()
}

/// The value of `series` (name and labels as printed, e.g.
/// `ringside_downstream_connections_active{listener="inbound"}`).
///
/// Series that Ringside labels by I/O runtime end with `,runtime="io_uring"` or
/// `,runtime="epoll"` (the last label; in a histogram's lines, before `le`). A `series` that
/// names no `runtime` matches the lines that equal it once that label is removed, and the
/// value is their sum over runtimes: in one-runtime mode the one line, in split mode the
/// process total. A `series` that names `runtime` (or has no such label) matches exactly: see
/// [`sample_exact`].
pub fn sample(text: &str, series: &str) -> Option<f64> {
    if series.contains("runtime=\"") {
        return sample_exact(text, series);
    }
    let mut found = None;
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = l.rsplit_once(' ') else {
            continue;
        };
        if without_runtime(name) == series {
            if let Ok(v) = value.trim().parse::<f64>() {
                found = Some(found.unwrap_or(0.0) + v);
            }
        }
    }
    found
}

/// The value of the one line whose name and labels are exactly `series`, `runtime` label
/// included if it has one (for split-mode tests that look at one runtime).
pub fn sample_exact(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `name{labels}` with its `,runtime="..."` label removed (unchanged if it has none).
fn without_runtime(series: &str) -> std::borrow::Cow<'_, str> {
    const LABEL: &str = ",runtime=\"";
    let Some(at) = series.find(LABEL) else {
        return series.into();
    };
    let rest = &series[at + LABEL.len()..];
    match rest.find('"') {
        Some(end) => format!("{}{}", &series[..at], &rest[end + 1..]).into(),
        None => series.into(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE ringside_requests_total counter\n\
        ringside_requests_total{listener=\"in\",code=\"200\",runtime=\"io_uring\"} 3\n\
        ringside_requests_total{listener=\"in\",code=\"200\",runtime=\"epoll\"} 4\n\
        ringside_requests_total{listener=\"in\",code=\"503\",runtime=\"epoll\"} 1\n\
        ringside_request_duration_seconds_bucket{listener=\"in\",runtime=\"epoll\",le=\"0.1\"} 5\n\
        ringside_runtime_info{runtime=\"epoll\"} 1\n\
        ringside_workers 2\n";

    #[test]
    fn a_series_without_runtime_sums_over_runtimes() {
        let s = |series| sample(TEXT, series);
        assert_eq!(
            s("ringside_requests_total{listener=\"in\",code=\"200\"}"),
            Some(7.0)
        );
        assert_eq!(
            s("ringside_requests_total{listener=\"in\",code=\"503\"}"),
            Some(1.0)
        );
        assert_eq!(
            s("ringside_requests_total{listener=\"in\",code=\"404\"}"),
            None
        );
        assert_eq!(
            s("ringside_request_duration_seconds_bucket{listener=\"in\",le=\"0.1\"}"),
            Some(5.0)
        );
        assert_eq!(s("ringside_workers"), Some(2.0));
        // A prefix is not a match.
        assert_eq!(s("ringside_requests_total{listener=\"in\"}"), None);
    }

    #[test]
    fn a_series_with_runtime_matches_exactly() {
        assert_eq!(
            sample(
                TEXT,
                "ringside_requests_total{listener=\"in\",code=\"200\",runtime=\"epoll\"}"
            ),
            Some(4.0)
        );
        assert_eq!(
            sample(TEXT, "ringside_runtime_info{runtime=\"epoll\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(TEXT, "ringside_runtime_info{runtime=\"io_uring\"}"),
            None
        );
        assert_eq!(
            sample_exact(
                TEXT,
                "ringside_requests_total{listener=\"in\",code=\"200\"}"
            ),
            None,
            "exact means exact"
        );
    }
}
