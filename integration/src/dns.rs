//! A real DNS server for discovery tests: Debian's dnsmasq, unprivileged-style (no daemon, no
//! upstream servers, no /etc/hosts), on a free loopback port, answering A records from a
//! hosts file the test rewrites. `set` rewrites the file and sends SIGHUP; it returns once
//! dnsmasq logged that it read the file again (an event, not a sleep).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use crate::procs::Proc;

/// A running dnsmasq that serves `*.ringside.test` from a hosts file, TTL 1 s.
#[derive(Debug)]
pub struct Dnsmasq {
    pub addr: SocketAddr,
    hosts: PathBuf,
    reads: Receiver<String>,
    proc: Option<Proc>,
    _dir: tempfile::TempDir,
}

/// Answers' TTL (`--local-ttl`), in seconds.
pub const TTL_SECS: u64 = 1;

impl Dnsmasq {
    /// Starts dnsmasq with `records` (name, IPv4 address) and waits until it read them. A
    /// port another process took between the probe and dnsmasq's bind is tried again.
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(records) {
                Ok(d) => return d,
                Err(line) => last = line,
            }
        }
        panic!("dnsmasq did not start: {last}");
    }

    fn try_start(records: &[(&str, &str)]) -> Result<Dnsmasq, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        // dnsmasq started as root drops to `nobody` and re-reads the file as that user.
        set_mode(dir.path(), 0o755);
        let hosts = dir.path().join("hosts");
        write_hosts(&hosts, records);
        // A free UDP port (dnsmasq binds TCP on the same number; a clash fails its start).
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free udp port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--no-resolv",
                "--no-hosts",
                "--local=/ringside.test/",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--log-facility=-",
                "--cache-size=0",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--local-ttl={TTL_SECS}"))
            .arg(format!("--addn-hosts={}", hosts.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dnsmasq (apt-get install dnsmasq-base)");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, reads) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("RINGSIDE_TEST_LOGS").is_some() {
                    eprintln!("[dnsmasq] {line}");
                }
                if line.contains(" - ") && line.contains("read ") || line.contains("failed") {
                    let _ = tx.send(line);
                }
            }
        });
        let d = Dnsmasq {
            addr,
            hosts,
            reads,
            proc: Some(Proc(child)),
            _dir: dir,
        };
        d.next_read()?;
        Ok(d)
    }

    /// Replaces the records and makes dnsmasq re-read them (SIGHUP).
    pub fn set(&self, records: &[(&str, &str)]) {
        write_hosts(&self.hosts, records);
        let pid = self.proc.as_ref().expect("dnsmasq running").0.id();
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
        if let Err(line) = self.next_read() {
            panic!("dnsmasq: {line}");
        }
    }

    /// Stops the server: lookups now time out.
    pub fn stop(&mut self) {
        self.proc = None;
    }

    /// Waits for dnsmasq to say it read the hosts file; `Err` with its line if it failed.
    fn next_read(&self) -> Result<(), String> {
        let line = self
            .reads
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "no word from dnsmasq within 10 s".to_string())?;
        if line.contains("failed") {
            return Err(line);
        }
        Ok(())
    }
}

fn write_hosts(path: &std::path::Path, records: &[(&str, &str)]) {
    let text: String = records
        .iter()
        .map(|(name, ip)| format!("{ip} {name}\n"))
        .collect();
    // Written aside and renamed: dnsmasq never reads a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write hosts");
    set_mode(&tmp, 0o644);
    std::fs::rename(&tmp, path).expect("rename hosts");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
