//! A real Prometheus server (Debian package `prometheus`; `.ci/run` installs it) scraping
//! Ringside's admin `/metrics`, so a test can evaluate PromQL (the dashboard's queries) against
//! what Ringside really exports, labels and types included.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client;
use crate::procs::Proc;

/// A Prometheus process with its own data directory, stopped on drop.
pub struct Prometheus {
    pub addr: SocketAddr,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (admin addresses) every second, and waits until it
    /// answers `/-/ready`. Panics with its output if it does not within 30 s.
    pub fn start(targets: &[SocketAddr]) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: ringside\n    static_configs:\n      - targets: [ {list} ]\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        // The port is picked here and bound by Prometheus a moment later; nothing else on
        // loopback takes ports from the ephemeral range that fast.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus (Debian package prometheus; .ci/run installs it)");
        let p = Prometheus {
            addr,
            _proc: Proc(child),
            _dir: dir,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(addr).is_ok()
                && client::get(addr, "/-/ready").status == 200
            {
                return p;
            }
            assert!(
                Instant::now() < end,
                "prometheus not ready within 30 s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Prometheus's own log (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Evaluates `expr` now (`/api/v1/query`) and returns the API's JSON answer, whatever its
    /// status (a PromQL error is `"status": "error"` with `"error"` saying why).
    pub fn query(&self, expr: &str) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let r = client::get(self.addr, &path);
        serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("prometheus answered {} for {expr}: {e}", r.status))
    }

    /// Polls `expr` until it evaluates to a non-empty vector, at most `within`; returns the
    /// result array, or panics with the last answer.
    #[track_caller]
    pub fn wait_nonempty(&self, expr: &str, within: Duration) -> Vec<serde_json::Value> {
        let end = Instant::now() + within;
        loop {
            let v = self.query(expr);
            assert_eq!(v["status"], "success", "PromQL error for {expr}: {v}");
            if let Some(r) = v["data"]["result"].as_array().filter(|r| !r.is_empty()) {
                return r.clone();
            }
            assert!(
                Instant::now() < end,
                "{expr} stayed empty for {within:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// RFC 3986 §2.1 percent-encoding of everything but the unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
