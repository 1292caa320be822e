//! `--runtime` choice and the io_uring fallback, with io_uring really blocked by seccomp in
//! the child process (Docker's default profile answers EPERM; some answer ENOSYS).

use std::process::Command;

use ringside_integration::{client, http_config, ringside_bin, Options, Origin, Ringside, Runtime};

#[test]
fn probe_explains_its_choice() {
    let out = Command::new(ringside_bin())
        .arg("probe")
        .output()
        .expect("probe");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "kernel:",
        "kernel.io_uring_disabled:",
        "io_uring_setup:",
        "auto picks:",
    ] {
        assert!(
            text.contains(needle),
            "probe output lacks {needle:?}:\n{text}"
        );
    }
}

fn probe_blocked(errno: i32) -> String {
    let mut cmd = Command::new(ringside_bin());
    cmd.arg("probe");
    ringside_integration::seccomp::block_io_uring(&mut cmd, errno);
    let out = cmd.output().expect("probe under seccomp");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn probe_sees_seccomp_eperm_and_picks_epoll() {
    let text = probe_blocked(libc::EPERM);
    assert!(text.contains("io_uring_setup failed: EPERM"), "{text}");
    assert!(text.contains("seccomp"), "{text}");
    assert!(text.contains("auto picks: epoll"), "{text}");
}

#[test]
fn probe_sees_seccomp_enosys_and_picks_epoll() {
    let text = probe_blocked(libc::ENOSYS);
    assert!(text.contains("io_uring_setup failed: ENOSYS"), "{text}");
    assert!(text.contains("auto picks: epoll"), "{text}");
}

#[test]
fn auto_falls_back_to_epoll_under_seccomp_and_serves() {
    let origin = Origin::start("app");
    let opts = Options {
        runtime_flag: Some("auto"),
        block_io_uring: Some(libc::EPERM),
        ..Options::default()
    };
    let proxy = Ringside::start_with(Runtime::Epoll, &http_config(&[origin.addr]), &opts);
    let logs = proxy.log_text();
    assert!(
        logs.contains("auto: fell back to epoll because io_uring_setup failed: EPERM"),
        "{logs}"
    );
    let r = client::get(proxy.addr("inbound"), "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello from app\n");
}

#[test]
fn forced_io_uring_under_seccomp_fails_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, http_config(&["127.0.0.1:9".parse().expect("addr")])).expect("write");
    let mut cmd = Command::new(ringside_bin());
    cmd.args(["run", "--runtime", "io-uring", "-c"]).arg(&cfg);
    ringside_integration::seccomp::block_io_uring(&mut cmd, libc::EPERM);
    let out = cmd.output().expect("run under seccomp");
    assert!(!out.status.success(), "must not fall back silently");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--runtime io-uring was requested but io_uring is not usable here"),
        "{err}"
    );
    assert!(err.contains("EPERM"), "{err}");
}

#[test]
fn auto_picks_io_uring_where_it_works() {
    if !ringside_integration::require(Runtime::IoUring, "auto_picks_io_uring_where_it_works") {
        return;
    }
    let origin = Origin::start("app");
    let opts = Options {
        runtime_flag: Some("auto"),
        ..Options::default()
    };
    let proxy = Ringside::start_with(Runtime::IoUring, &http_config(&[origin.addr]), &opts);
    let logs = proxy.log_text();
    assert!(logs.contains("runtime selected runtime=io_uring"), "{logs}");
    assert!(
        logs.contains("COOP_TASKRUN"),
        "the tuned ring flags should be accepted here: {logs}"
    );
    assert_eq!(client::get(proxy.addr("inbound"), "/").status, 200);
}

#[test]
fn runtime_flag_reads_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, http_config(&["127.0.0.1:9".parse().expect("addr")])).expect("write");
    let mut cmd = Command::new(ringside_bin());
    cmd.args(["run", "-c"])
        .arg(&cfg)
        .env("RINGSIDE_RUNTIME", "io-uring");
    ringside_integration::seccomp::block_io_uring(&mut cmd, libc::EPERM);
    let out = cmd.output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--runtime io-uring was requested"));
}

/// The chart's Localhost seccomp profile (`charts/ringside/seccomp/ringside-io-uring.json`),
/// as the kubelet would install it for the container.
fn chart_profile() -> String {
    let path = ringside_integration::procs::workspace_root()
        .join("charts/ringside/seccomp/ringside-io-uring.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_charts_seccomp_profile_runs_forced_io_uring_and_serves() {
    if !ringside_integration::require(
        Runtime::IoUring,
        "the_charts_seccomp_profile_runs_forced_io_uring_and_serves",
    ) {
        return;
    }
    let origin = Origin::start("app");
    let opts = Options {
        seccomp_profile: Some(chart_profile()),
        // The workers, the admin thread, the config watcher and the access log all start
        // under the profile: every syscall they make must be in it.
        workers: 2,
        extra_args: vec!["--access-log".into(), "stderr".into()],
        ..Options::default()
    };
    let proxy = Ringside::start_with(Runtime::IoUring, &http_config(&[origin.addr]), &opts);
    assert!(
        proxy
            .log_text()
            .contains("runtime selected runtime=io_uring"),
        "{}",
        proxy.log_text()
    );
    for _ in 0..4 {
        assert_eq!(
            client::get(proxy.addr("inbound"), "/").text(),
            "hello from app\n"
        );
    }
    let runtime = client::get(proxy.addr("admin"), "/runtime").text();
    assert!(runtime.contains("\"runtime\": \"io_uring\""), "{runtime}");
}

#[test]
fn the_chart_profile_reader_really_filters() {
    // The control: the same profile without its io_uring entry blocks io_uring (EPERM, the
    // profile's default), so the test above passing means the profile allowed it.
    let without: serde_json::Value = {
        let mut p: serde_json::Value = serde_json::from_str(&chart_profile()).expect("json");
        for entry in p["syscalls"].as_array_mut().expect("syscalls") {
            if let Some(names) = entry["names"].as_array_mut() {
                names.retain(|n| !n.as_str().is_some_and(|n| n.starts_with("io_uring")));
            }
        }
        p
    };
    let mut cmd = Command::new(ringside_bin());
    cmd.arg("probe");
    ringside_integration::seccomp::apply_profile(&mut cmd, &without.to_string());
    let out = cmd.output().expect("probe under the edited profile");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("io_uring_setup failed: EPERM"),
        "{}: {text}{err}",
        out.status
    );
    assert!(text.contains("auto picks: epoll"), "{text}");
}
