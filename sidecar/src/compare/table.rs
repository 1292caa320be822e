//! `ringside compare --admin ADDR [--watch SECONDS]`: fetches `/runtime` from a running
//! Ringside and prints its comparison as a table. A plain HTTP/1.1 GET over the standard
//! library's `TcpStream`: the admin API answers with `content-length` and closes, which is all
//! a one-shot client needs, so no HTTP client dependency.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// How long to wait for the admin API to connect and to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why the comparison could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot reach the admin API at {addr}: {source} (is Ringside running, and is this its admin address?)")]
    Unreachable {
        addr: String,
        source: std::io::Error,
    },
    #[error("the admin API at {addr} answered {status} to GET /runtime")]
    Status { addr: String, status: String },
    #[error("the admin API at {addr} sent a /runtime that is not the expected JSON: {why}")]
    Malformed { addr: String, why: String },
}

/// `GET /runtime` from the admin API at `addr` (`host:port`), parsed.
///
/// # Errors
/// Unreachable (resolution, connect, I/O or timeout), a non-200 status, or a body that is not
/// JSON with a `comparison` object.
pub fn fetch(addr: &str) -> Result<Value, CompareError> {
    let unreachable = |source| CompareError::Unreachable {
        addr: addr.to_owned(),
        source,
    };
    let malformed = |why: String| CompareError::Malformed {
        addr: addr.to_owned(),
        why,
    };
    let target = addr
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| unreachable(std::io::Error::other("the name resolved to no address")))?;
    let mut s = TcpStream::connect_timeout(&target, TIMEOUT).map_err(unreachable)?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(unreachable)?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(unreachable)?;
    let req = format!("GET /runtime HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(unreachable)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(unreachable)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| malformed("no end of the response head".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(CompareError::Status {
            addr: addr.to_owned(),
            status: status.to_owned(),
        });
    }
    let v: Value = serde_json::from_str(body).map_err(|e| malformed(e.to_string()))?;
    if !v["comparison"].is_object() {
        return Err(malformed("no `comparison` object".into()));
    }
    Ok(v)
}

/// One table row: its label, the figure's key, and its decimals.
const ROWS: [(&str, &str, usize); 9] = [
    ("requests", "requests", 0),
    ("requests/s", "requests_per_second", 1),
    ("p50 ms", "p50_ms", 3),
    ("p99 ms", "p99_ms", 3),
    ("p99.9 ms", "p999_ms", 3),
    ("CPU µs/request", "cpu_us_per_request", 1),
    ("errors", "errors", 0),
    ("connections", "connections", 0),
    ("max loop lag ms", "max_loop_lag_ms", 3),
];

/// The columns: (runtime, period).
const COLUMNS: [(&str, &str); 4] = [
    ("io_uring", "window"),
    ("epoll", "window"),
    ("io_uring", "since_start"),
    ("epoll", "since_start"),
];

/// The table and verdict for a `/runtime` answer. A runtime that does not run shows `-`.
pub fn render(runtime: &Value) -> String {
    let c = &runtime["comparison"];
    let mut out = format!(
        "runtime: {} ({} workers)\n{}\n\n",
        runtime["runtime"].as_str().unwrap_or("?"),
        runtime["workers"],
        runtime["reason"].as_str().unwrap_or(""),
    );
    let header = [
        "io_uring window",
        "epoll window",
        "io_uring since start",
        "epoll since start",
    ];
    out.push_str(&format!("{:<16}", ""));
    for h in header {
        out.push_str(&format!("{h:>22}"));
    }
    out.push('\n');
    for (label, key, decimals) in ROWS {
        out.push_str(&format!("{label:<16}"));
        for (rt, period) in COLUMNS {
            let cell = match &c[rt][period][key] {
                Value::Number(n) => n
                    .as_f64()
                    .map_or_else(|| n.to_string(), |f| format!("{f:.decimals$}")),
                _ => "-".to_owned(),
            };
            out.push_str(&format!("{cell:>22}"));
        }
        out.push('\n');
    }
    let secs = |v: &Value| v.as_f64().map_or("?".to_owned(), |s| format!("{s:.1}"));
    out.push_str(&format!(
        "\nwindow: the last {} s; since start: {} s\nverdict: {}\n",
        secs(&c["window_seconds"]),
        secs(&c["since_start_seconds"]),
        c["verdict"].as_str().unwrap_or("?"),
    ));
    out
}

/// Prints the comparison once, or every `watch` seconds until interrupted (clearing the
/// terminal before each). Returns the first error.
///
/// # Errors
/// See [`fetch`].
pub fn run(addr: &str, watch: Option<u64>) -> Result<(), CompareError> {
    loop {
        let v = fetch(addr)?;
        if watch.is_some() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", render(&v));
        let _ = std::io::stdout().flush();
        match watch {
            Some(secs) => std::thread::sleep(Duration::from_secs(secs.max(1))),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_runtimes_and_dashes_for_a_missing_one() {
        let v = serde_json::json!({
            "runtime": "split", "workers": 2, "reason": "split: io_uring unusable (EPERM)",
            "comparison": {
                "window_seconds": 57.0, "since_start_seconds": 300.5,
                "epoll": {
                    "window": { "requests": 1200, "p99_ms": 1.25, "cpu_us_per_request": 41.06 },
                    "since_start": { "requests": 5000, "p99_ms": null },
                },
                "verdict": "only epoll runs",
            }
        });
        let t = render(&v);
        assert!(t.contains("io_uring window"), "{t}");
        assert!(t.contains("epoll since start"), "{t}");
        let row = |label: &str| {
            t.lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label} row in\n{t}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(row("requests "), "requests - 1200 - 5000");
        assert_eq!(row("p99 ms"), "p99 ms - 1.250 - -");
        assert_eq!(row("CPU µs/request"), "CPU µs/request - 41.1 - -");
        assert!(t.contains("verdict: only epoll runs"), "{t}");
        assert!(t.contains("window: the last 57.0 s"), "{t}");
    }

    #[test]
    fn an_unreachable_admin_is_said_plainly() {
        // A port nothing listens on: bind one, note it, close it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .to_string();
        let e = fetch(&addr).expect_err("nothing listens");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("cannot reach the admin API at {addr}")),
            "{text}"
        );
    }
}
