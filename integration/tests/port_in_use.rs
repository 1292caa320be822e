//! A port another process listens on is refused, not silently shared: `SO_REUSEPORT` would let a
//! second Ringside bind next to the first and the kernel would split connections between two
//! configs. Both runtimes.

use std::process::Command;
use std::time::Duration;

use ringside_integration::{both_runtimes, http_config, ringside_bin, Origin, Ringside};

both_runtimes!(fn a_second_instance_on_a_taken_port_fails_to_start(rt) {
    let origin = Origin::start("o");
    let first = Ringside::start(rt, &http_config(&[origin.addr]));
    let taken = first.addr("inbound");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("second.yaml");
    let yaml = http_config(&[origin.addr]).replace("127.0.0.1:0", &taken.to_string());
    std::fs::write(&cfg, format!("admin: {{ address: 127.0.0.1:0 }}\n{yaml}")).expect("write");
    let mut child = Command::new(ringside_bin())
        .args(["run", "-c"])
        .arg(&cfg)
        .args(["--runtime", rt.flag(), "--workers", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // It must exit by itself, at once: wait on the exit event, bounded.
    let mut stderr = child.stderr.take().expect("stderr");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let Ok(status) = rx.recv_timeout(Duration::from_secs(20)) else {
        // The child still runs: end it so the test leaves nothing behind.
        let _ = Command::new("kill").arg(pid.to_string()).status();
        panic!("a second instance on {taken} kept running: it shares the port");
    };
    let status = status.expect("wait");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).expect("read");
    assert!(!status.success(), "exit {status}: {err}");
    assert!(err.contains("another process already listens"), "{err}");
    // The first instance still serves.
    assert_eq!(ringside_integration::client::get(taken, "/").status, 200);
});
