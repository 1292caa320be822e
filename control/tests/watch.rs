//! The watcher against real files, updated the ways Kubernetes and people update them.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use control::watch::{watch, Outcome, Trigger, WatchHandle, WatchOptions};

const A: &str = "listeners:\n  - { name: a, address: 127.0.0.1:1, protocol: tcp, cluster: c }\nclusters:\n  - { name: c, endpoints: [ 127.0.0.1:2 ] }\n";
const B: &str = "listeners:\n  - { name: b, address: 127.0.0.1:1, protocol: tcp, cluster: c }\nclusters:\n  - { name: c, endpoints: [ 127.0.0.1:3 ] }\n";
const BAD: &str = "listeners:\n  - { name: [oops\n";

/// A directory laid out exactly like a mounted ConfigMap, updated exactly like kubelet does.
struct ConfigMapDir {
    dir: tempfile::TempDir,
    n: u32,
}

impl ConfigMapDir {
    fn new(content: &str) -> Self {
        let mut me = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            n: 0,
        };
        let first = me.write_version(content);
        std::os::unix::fs::symlink(&first, me.dir.path().join("..data")).expect("..data");
        std::os::unix::fs::symlink("..data/ringside.yaml", me.path()).expect("visible symlink");
        me
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("ringside.yaml")
    }

    fn write_version(&mut self, content: &str) -> String {
        self.n += 1;
        let name = format!("..2026_11_24_19_00_{:02}.{:09}", self.n % 60, self.n);
        let d = self.dir.path().join(&name);
        std::fs::create_dir(&d).expect("version dir");
        std::fs::write(d.join("ringside.yaml"), content).expect("write");
        name
    }

    /// kubelet's atomic writer: new dir, `..data_tmp` symlink, rename over `..data`, delete old.
    fn update(&mut self, content: &str) -> Instant {
        let old = std::fs::read_link(self.dir.path().join("..data")).expect("read ..data");
        let new = self.write_version(content);
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).expect("..data_tmp");
        std::fs::rename(&tmp, self.dir.path().join("..data")).expect("rename");
        let renamed = Instant::now();
        std::fs::remove_dir_all(self.dir.path().join(old)).expect("remove old");
        renamed
    }
}

fn start(
    path: &Path,
    initial: &str,
    opts: WatchOptions,
) -> (WatchHandle, Receiver<(Outcome, Instant)>) {
    let (tx, rx) = channel();
    let sha = control::load_str(initial, "x")
        .map(|s| s.sha256)
        .unwrap_or_default();
    let h = watch(path, &sha, Vec::new(), opts, move |o| {
        let _ = tx.send((o, Instant::now()));
    })
    .expect("watch");
    (h, rx)
}

fn fast() -> WatchOptions {
    WatchOptions {
        debounce: Duration::from_millis(30),
        coalesce: Duration::from_millis(30),
        poll_interval: Duration::from_secs(60),
        use_notify: true,
    }
}

fn next(rx: &Receiver<(Outcome, Instant)>) -> (Outcome, Instant) {
    rx.recv_timeout(Duration::from_secs(3))
        .expect("an outcome within 3 s")
}

fn applied_listener(o: &Outcome) -> String {
    match o {
        Outcome::Applied { snapshot, .. } => snapshot.listeners[0].name.clone(),
        other => panic!("expected Applied, got {other:?}"),
    }
}

#[test]
fn kubelet_swap_is_applied_within_a_second() {
    let mut cm = ConfigMapDir::new(A);
    let (_h, rx) = start(&cm.path(), A, fast());
    let renamed = cm.update(B);
    let (o, at) = next(&rx);
    assert_eq!(applied_listener(&o), "b");
    assert!(at.duration_since(renamed) < Duration::from_secs(1));
    match o {
        Outcome::Applied { snapshot, trigger } => {
            assert_eq!(trigger, Trigger::FileEvent);
            assert_eq!(
                snapshot.sha256,
                control::load_str(B, "x").expect("b").sha256
            );
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_hundred_swaps_arrive_in_order() {
    let mut cm = ConfigMapDir::new(A);
    let (_h, rx) = start(&cm.path(), A, fast());
    let mut latencies = Vec::new();
    let mut last_sha = String::new();
    for i in 0..100 {
        let (content, want) = if i % 2 == 0 { (B, "b") } else { (A, "a") };
        let renamed = cm.update(content);
        let (o, at) = next(&rx);
        assert_eq!(applied_listener(&o), want, "swap {i}");
        if let Outcome::Applied { snapshot, .. } = o {
            last_sha = snapshot.sha256.clone();
        }
        latencies.push(at.duration_since(renamed));
    }
    // Swap 99 wrote A.
    assert_eq!(last_sha, control::load_str(A, "x").expect("a").sha256);
    latencies.sort();
    eprintln!(
        "rename → applied: median {:?}, max {:?}",
        latencies[50], latencies[99]
    );
    assert!(rx.try_recv().is_err(), "no duplicate reports");
}

#[test]
fn invalid_content_is_rejected_then_a_good_one_applies() {
    let mut cm = ConfigMapDir::new(A);
    let (_h, rx) = start(&cm.path(), A, fast());
    cm.update(BAD);
    match next(&rx).0 {
        Outcome::Rejected { problems, .. } => {
            let text = problems.to_string();
            let file = format!("{}:", cm.path().display());
            assert!(text.contains(&file), "names the file: {text}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    cm.update(B);
    assert_eq!(applied_listener(&next(&rx).0), "b");
}

#[test]
fn identical_content_is_not_reported() {
    let mut cm = ConfigMapDir::new(A);
    let (_h, rx) = start(&cm.path(), A, fast());
    cm.update(A);
    assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
    // A report of the identical content that was merely late would come before this one.
    cm.update(B);
    assert_eq!(applied_listener(&next(&rx).0), "b");
}

#[test]
fn in_place_write_is_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ringside.yaml");
    std::fs::write(&path, A).expect("write");
    let (_h, rx) = start(&path, A, fast());
    // Truncate + write: a read between the two would see an empty file, which the debounce
    // avoids; a later event re-reads in any case.
    std::fs::write(&path, B).expect("in place");
    assert_eq!(applied_listener(&next(&rx).0), "b");
}

#[test]
fn editor_rename_save_is_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ringside.yaml");
    std::fs::write(&path, A).expect("write");
    let (_h, rx) = start(&path, A, fast());
    let tmp = dir.path().join("ringside.yaml.tmp");
    std::fs::write(&tmp, B).expect("tmp");
    std::fs::rename(&tmp, &path).expect("rename-save");
    assert_eq!(applied_listener(&next(&rx).0), "b");
}

/// A rename completes a change, so it is read at once: the quiet period is for events that may
/// be followed by more (here it is far longer than the test waits).
#[test]
fn a_rename_is_applied_without_waiting_for_quiet() {
    let mut cm = ConfigMapDir::new(A);
    let opts = WatchOptions {
        debounce: Duration::from_secs(30),
        ..fast()
    };
    let (_h, rx) = start(&cm.path(), A, opts);
    cm.update(B);
    assert_eq!(applied_listener(&next(&rx).0), "b");
    cm.update(A);
    assert_eq!(applied_listener(&next(&rx).0), "a");
}

/// A burst of updates is applied as its first and its last: the reads that find new content
/// are at least `coalesce` apart, and the later one takes whatever is there by then.
#[test]
fn a_burst_of_updates_is_coalesced() {
    let mut cm = ConfigMapDir::new(A);
    let opts = WatchOptions {
        coalesce: Duration::from_secs(2),
        ..fast()
    };
    let (_h, rx) = start(&cm.path(), A, opts);
    for i in 0..6 {
        cm.update(if i % 2 == 0 { B } else { A });
    }
    cm.update(B);
    let mut reports = vec![next(&rx)];
    while let Ok(r) = rx.recv_timeout(Duration::from_millis(2500)) {
        reports.push(r);
    }
    let names: Vec<String> = reports.iter().map(|(o, _)| applied_listener(o)).collect();
    assert!(names.len() <= 2, "7 updates were applied as {names:?}");
    assert_eq!(names.last().map(String::as_str), Some("b"), "{names:?}");
    if let [(_, first), (_, second)] = reports.as_slice() {
        assert!(second.duration_since(*first) >= Duration::from_millis(1900));
    }
}

#[test]
fn delete_then_recreate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ringside.yaml");
    std::fs::write(&path, A).expect("write");
    let (_h, rx) = start(&path, A, fast());
    std::fs::remove_file(&path).expect("delete");
    assert!(matches!(next(&rx).0, Outcome::Unreadable { .. }));
    std::fs::write(&path, B).expect("recreate");
    assert_eq!(applied_listener(&next(&rx).0), "b");
}

#[test]
fn force_reload_reports_even_unchanged_content() {
    let cm = ConfigMapDir::new(A);
    let (h, rx) = start(&cm.path(), A, fast());
    h.force_reload();
    match next(&rx).0 {
        Outcome::Applied { trigger, .. } => assert_eq!(trigger, Trigger::Forced),
        other => panic!("{other:?}"),
    }
}

#[test]
fn polling_catches_changes_without_events() {
    let mut cm = ConfigMapDir::new(A);
    let opts = WatchOptions {
        poll_interval: Duration::from_millis(150),
        use_notify: false,
        ..fast()
    };
    let (_h, rx) = start(&cm.path(), A, opts);
    cm.update(B);
    match next(&rx).0 {
        Outcome::Applied { trigger, snapshot } => {
            assert_eq!(trigger, Trigger::Poll);
            assert_eq!(snapshot.listeners[0].name, "b");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_config_is_reported_once_not_on_every_poll() {
    let mut cm = ConfigMapDir::new(A);
    let opts = WatchOptions {
        poll_interval: Duration::from_millis(50),
        use_notify: false,
        ..fast()
    };
    let (_h, rx) = start(&cm.path(), A, opts);
    cm.update(BAD);
    assert!(matches!(next(&rx).0, Outcome::Rejected { .. }));
    // About eight polls of the same bad bytes.
    assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
    cm.update(B);
    assert_eq!(applied_listener(&next(&rx).0), "b");
}

#[test]
fn non_utf8_is_rejected_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ringside.yaml");
    std::fs::write(&path, A).expect("write");
    let (_h, rx) = start(&path, A, fast());
    std::fs::write(&path, b"listeners:\n  - \xff\n").expect("write");
    match next(&rx).0 {
        Outcome::Rejected { problems, .. } => {
            let text = problems.to_string();
            assert!(text.contains(":2:5:"), "{text}");
            assert!(text.contains("UTF-8"), "{text}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[test]
fn a_huge_poll_interval_means_never() {
    let mut cm = ConfigMapDir::new(A);
    let opts = WatchOptions {
        poll_interval: Duration::MAX,
        ..fast()
    };
    let (_h, rx) = start(&cm.path(), A, opts);
    cm.update(B);
    assert_eq!(applied_listener(&next(&rx).0), "b");
}

#[test]
fn dropping_the_handle_stops_reports() {
    let mut cm = ConfigMapDir::new(A);
    let (h, rx) = start(&cm.path(), A, fast());
    let dropping = Instant::now();
    drop(h);
    // The thread is mid-wait on a 60 s poll: drop must not wait for it.
    assert!(dropping.elapsed() < Duration::from_millis(500));
    cm.update(B);
    // The watcher thread has ended (drop joined it), so its sender is gone: the channel says
    // so at once, and no report can arrive late.
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(3)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
    ));
}
