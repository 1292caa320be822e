//! `ringside compare` against a real instance in `--runtime split`, and the CPU profile
//! across both kinds of worker.

use std::process::Command;
use std::time::Duration;

use ringside_integration::split::*;
use ringside_integration::{client, http_config, metrics, ringside_bin, Origin, Runtime};

fn compare(admin: &str) -> std::process::Output {
    Command::new(ringside_bin())
        .args(["compare", "--admin", admin])
        .output()
        .expect("ringside compare")
}

/// The cells of the table row starting with `label`.
fn row(table: &str, label: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} row:\n{table}"));
    line[label.len()..]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn compare_renders_from_a_running_instance() {
    if !ringside_integration::require(Runtime::IoUring, "split::compare") {
        return;
    }
    let origin = Origin::start("app");
    let proxy = start(&http_config(&[origin.addr]));
    let admin = proxy.addr("admin").to_string();
    let out = compare(&admin);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for h in [
        "io_uring window",
        "epoll window",
        "io_uring since start",
        "epoll since start",
    ] {
        assert!(table.contains(h), "{table}");
    }
    assert!(table.contains("verdict: not enough traffic yet"), "{table}");
    assert_eq!(row(&table, "requests "), ["0", "0", "0", "0"], "{table}");

    let sent = until_both_served(&proxy, "/", |r| assert_eq!(r.status, 200));
    metrics::wait_sample(
        proxy.addr("admin"),
        TOTAL_200,
        Duration::from_secs(5),
        |v| v == sent as f64,
    );
    let out = compare(&admin);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let requests: Vec<u64> = row(&table, "requests ")
        .iter()
        .map(|c| {
            c.parse()
                .unwrap_or_else(|_| panic!("not a number: {c}\n{table}"))
        })
        .collect();
    assert!(requests.iter().all(|n| *n > 0), "{table}");
    assert_eq!(
        requests[2] + requests[3],
        sent,
        "since start counts every request: {table}"
    );
    for label in ["p50 ms", "p99 ms", "CPU µs/request"] {
        for cell in row(&table, label) {
            let v: f64 = cell
                .parse()
                .unwrap_or_else(|_| panic!("{label}: {cell}\n{table}"));
            assert!(v > 0.0, "{label}: {table}");
        }
    }
    assert!(
        table.contains("verdict: not enough traffic yet"),
        "{sent} requests: {table}"
    );
}

#[test]
fn compare_says_plainly_when_the_admin_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let out = compare(&port.to_string());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "ringside compare: cannot reach the admin API at {port}"
        )),
        "{err}"
    );
}

#[test]
fn the_cpu_profile_samples_both_kinds_of_worker() {
    if !ringside_integration::require(Runtime::IoUring, "split::pprof") {
        return;
    }
    let origin = Origin::start("app");
    let proxy = start(&http_config(&[origin.addr]));
    let inbound = proxy.addr("inbound");
    // Short connections for as long as the profile runs, so both workers are busy.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_load = stop.clone();
    let load = std::thread::spawn(move || {
        let mut n = 0;
        while !stop_load.load(std::sync::atomic::Ordering::Relaxed) {
            assert_eq!(client::get(inbound, "/").status, 200);
            n += 1;
        }
        n
    });
    let url = format!(
        "http://{}/debug/pprof/profile?seconds=2",
        proxy.addr("admin")
    );
    let out = Command::new("go")
        .args(["tool", "pprof", "-tags", &url])
        .output()
        .expect("go tool pprof");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pprof failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(load.join().expect("load") > 10);
    // pprof-rs labels each sample with its thread's name: worker 0 runs io_uring, 1 epoll.
    for worker in ["ringside-w0", "ringside-w1"] {
        assert!(text.contains(worker), "no samples from {worker}: {text}");
    }
}
