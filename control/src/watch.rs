//! Follows a config file the way Kubernetes delivers it, and reports each new version.
//!
//! A ConfigMap mounted as a directory is updated by kubelet's atomic writer: the files live in
//! a timestamped directory `..2026_…`, a symlink `..data` points at it, and the visible
//! `ringside.yaml` is a symlink through `..data`. An update writes a new timestamped
//! directory, points `..data_tmp` at it, renames `..data_tmp` over `..data` and deletes the
//! old directory. A watch on the file itself sees one delete and then silence. So: watch the
//! *directory* (non-recursively), re-read through the stable path, skip content whose hash has
//! not changed, and re-read on a slow timer in case an event was missed.
//!
//! When to re-read: an event that completes a change (a name renamed into place, as kubelet's
//! `..data` swap and every atomic writer do, or a writer closing a file) is read at once; any
//! other event (a create, a truncation, a write still in progress) waits for a quiet period
//! first. Bursts are coalesced: after new content was read, the next read waits until
//! [`WatchOptions::coalesce`] has passed, and takes whatever is there by then. Pure reads
//! (opening and closing a file without writing, as the watcher itself does) are no change.
//!
//! Certificate and key files the config names (`tls.cert`, `client_ca`, ...) are followed the
//! same way: their directories are watched too (a Secret or a csi-driver-spiffe volume is
//! swapped like a ConfigMap), and the hash that decides "changed" covers their bytes, so a
//! rotated certificate reloads the config and reaches the next handshakes.
//!
//! The watcher runs on its own thread and never logs: it reports [`Outcome`]s to a callback
//! and the caller decides what to log and apply.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::problem::{Problem, Problems};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Quiet time after the last event that does not complete a change (a create, a write)
    /// before re-reading: the file may be half-written until then.
    pub debounce: Duration,
    /// Least time between two reads that find new content: a burst of updates is applied
    /// as its first and then its last, not each in turn.
    pub coalesce: Duration,
    /// Re-read this often regardless of events (inotify queues can overflow; some volume
    /// types send none).
    pub poll_interval: Duration,
    /// Use filesystem events. Off: polling only (tests, filesystems without inotify).
    pub use_notify: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(100),
            coalesce: Duration::from_millis(100),
            poll_interval: Duration::from_secs(30),
            use_notify: true,
        }
    }
}

/// How long after reporting new content the watcher reads the file once more, and then
/// [`SETTLE_AGAIN`] after that. These reads find nothing new as a rule; what they are for is
/// the allocation: the new config was built on this thread, and the allocator (mimalloc)
/// takes back the memory of a thread's freed blocks (the parse's, and the previous config's
/// once the data plane drops it) only when that thread allocates again, and returns the freed
/// pages to the system at a later allocation still. Without them the watcher idles until the
/// 30 s poll and the process keeps tens of MB it no longer uses (48 → 88 MB after four reloads
/// of 5,000 routes).
const SETTLE: Duration = Duration::from_secs(1);
const SETTLE_AGAIN: Duration = Duration::from_millis(200);

/// What made the watcher read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    FileEvent,
    Poll,
    /// [`WatchHandle::force_reload`] (SIGHUP): applied even when the content is unchanged.
    Forced,
}

#[derive(Debug)]
pub enum Outcome {
    /// New, valid content.
    Applied {
        snapshot: Arc<Snapshot>,
        trigger: Trigger,
    },
    /// New content that does not validate: the caller keeps its current config.
    Rejected {
        problems: Problems,
        trigger: Trigger,
    },
    /// The file could not be read (e.g. mid-swap); a later event or poll retries.
    Unreadable { error: String, trigger: Trigger },
}

enum Msg {
    Event(Change),
    Force,
    Stop,
}

/// What a directory event says about the files in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// A change is complete: a name was renamed into place, or a writer closed its file.
    Complete,
    /// Something changed and more may follow (a create, a truncation, a write, a delete).
    Partial,
}

/// `None` for events that change nothing (a file opened or closed after reading).
fn classify(event: &notify::Result<notify::Event>) -> Option<Change> {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
    let Ok(event) = event else {
        // An error (e.g. a queue overflow) may hide any change: re-read after the quiet time.
        return Some(Change::Partial);
    };
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Change::Complete),
        EventKind::Access(_) => None,
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            Some(Change::Complete)
        }
        _ => Some(Change::Partial),
    }
}

/// Stops the watcher thread when dropped.
#[derive(Debug)]
pub struct WatchHandle {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// Re-reads now and reports the result even if the content is unchanged.
    pub fn force_reload(&self) {
        let _ = self.tx.send(Msg::Force);
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            // A callback that drops the handle would join its own thread, which panics; the
            // loop still ends on `Stop` once the callback returns.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// `now + d`, or about a century away when `d` is huge (`Duration::MAX` = "never"):
/// `Instant + Duration` panics on overflow.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Starts watching `path`. `initial_sha256` is the hash of the content already applied and
/// `files` the certificate files it loaded ([`Snapshot::files`]), so the first event does not
/// re-apply it.
pub fn watch(
    path: &Path,
    initial_sha256: &str,
    files: Vec<PathBuf>,
    opts: WatchOptions,
    on_outcome: impl FnMut(Outcome) + Send + 'static,
) -> std::io::Result<WatchHandle> {
    let (tx, rx) = channel();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let watcher = if opts.use_notify {
        let events = tx.clone();
        let mut w = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Which entry changed does not matter: any change in the directory means re-read.
            if let Some(change) = classify(&event) {
                let _ = events.send(Msg::Event(change));
            }
        })
        .map_err(std::io::Error::other)?;
        notify::Watcher::watch(&mut w, &dir, notify::RecursiveMode::NonRecursive)
            .map_err(std::io::Error::other)?;
        Some(w)
    } else {
        None
    };
    let mut state = State {
        path: path.to_path_buf(),
        last_sha: String::new(),
        last_error: None,
        on_outcome: Box::new(on_outcome),
        files: Vec::new(),
        watcher,
        watched: [dir].into_iter().collect(),
    };
    state.follow(files);
    state.last_sha = state.fingerprint(initial_sha256);
    let thread = std::thread::Builder::new()
        .name("ringside-watch".into())
        .spawn(move || {
            // A completed change waiting to be read (since when), and the end of the quiet
            // period the other events asked for.
            let mut complete: Option<Instant> = None;
            let mut quiet: Option<Instant> = None;
            // Two more reads a while after new content was reported (see [`SETTLE`]).
            let mut settle: Option<Instant> = None;
            let mut settles_left = 0u8;
            // When a read last found new content, for coalescing.
            let mut last_change: Option<Instant> = None;
            let mut next_poll = after(opts.poll_interval);
            loop {
                // A completed change does not wait for later events to calm down; a burst
                // waits for the coalescing interval in any case.
                let earliest = last_change.and_then(|t| t.checked_add(opts.coalesce));
                let due = [complete, quiet, settle].into_iter().flatten().min();
                let due = due.map(|d| earliest.map_or(d, |e| d.max(e)));
                let now = Instant::now();
                if due.is_some_and(|d| d <= now) {
                    (complete, quiet, settle) = (None, None, None);
                    if state.check(Trigger::FileEvent) {
                        last_change = Some(now);
                        settle = now.checked_add(SETTLE);
                        settles_left = 2;
                    } else if settles_left > 0 {
                        settles_left -= 1;
                        if settles_left > 0 {
                            settle = now.checked_add(SETTLE_AGAIN);
                        }
                    }
                    continue;
                }
                if next_poll <= now {
                    next_poll = after(opts.poll_interval);
                    state.check(Trigger::Poll);
                    continue;
                }
                let wake = due.map_or(next_poll, |d| d.min(next_poll));
                match rx.recv_timeout(wake.saturating_duration_since(now)) {
                    Ok(Msg::Event(Change::Partial)) => quiet = Some(after(opts.debounce)),
                    Ok(Msg::Event(Change::Complete)) => {
                        complete = complete.or_else(|| Some(Instant::now()));
                    }
                    Ok(Msg::Force) => {
                        state.check(Trigger::Forced);
                    }
                    Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
        })?;
    Ok(WatchHandle {
        tx,
        thread: Some(thread),
    })
}

struct State {
    path: PathBuf,
    /// Hash of the last content reported (applied or rejected): the same bytes are not
    /// reported twice, so a bad config is not re-logged on every poll.
    last_sha: String,
    last_error: Option<String>,
    on_outcome: Box<dyn FnMut(Outcome) + Send>,
    /// Certificate files the current config loaded.
    files: Vec<PathBuf>,
    /// Owned here so events stop when the thread ends.
    watcher: Option<notify::RecommendedWatcher>,
    watched: std::collections::HashSet<PathBuf>,
}

impl State {
    /// Reads the file and reports it when its content changed (or `trigger` is forced).
    /// Returns whether something was reported about new content.
    fn check(&mut self, trigger: Trigger) -> bool {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) => {
                let error = format!("{}: cannot read: {e}", self.path.display());
                if trigger == Trigger::Forced || self.last_error.as_ref() != Some(&error) {
                    self.last_error = Some(error.clone());
                    (self.on_outcome)(Outcome::Unreadable { error, trigger });
                }
                return false;
            }
        };
        self.last_error = None;
        let sha = self.fingerprint(&hex::encode(Sha256::digest(&bytes)));
        if sha == self.last_sha && trigger != Trigger::Forced {
            return false;
        }
        self.last_sha = sha;
        let file = self.path.display().to_string();
        let outcome = match std::str::from_utf8(&bytes) {
            Ok(text) => match crate::load_str(text, &file) {
                Ok(snapshot) => {
                    let files = snapshot.files();
                    if files != self.files {
                        self.follow(files);
                        self.last_sha = self.fingerprint(&snapshot.sha256);
                    }
                    Outcome::Applied {
                        snapshot: Arc::new(snapshot),
                        trigger,
                    }
                }
                Err(problems) => Outcome::Rejected { problems, trigger },
            },
            // Reported from the bytes already hashed: a second read could see newer content.
            Err(e) => {
                let (line, col) = crate::line_col(&bytes[..e.valid_up_to()]);
                Outcome::Rejected {
                    problems: Problems::one(Problem::new(
                        &file,
                        line,
                        col,
                        "the file is not valid UTF-8",
                    )),
                    trigger,
                }
            }
        };
        (self.on_outcome)(outcome);
        true
    }

    /// The config's hash combined with the bytes of every certificate file it loaded (a
    /// missing file hashes as missing: it will be reported by the load).
    fn fingerprint(&self, config_sha: &str) -> String {
        if self.files.is_empty() {
            return config_sha.to_owned();
        }
        let mut h = Sha256::new();
        h.update(config_sha.as_bytes());
        for f in &self.files {
            h.update(f.as_os_str().as_encoded_bytes());
            match std::fs::read(f) {
                Ok(b) => h.update(Sha256::digest(&b)),
                Err(_) => h.update(b"missing"),
            }
        }
        hex::encode(h.finalize())
    }

    /// Follows `files`: their directories are watched from now on (never unwatched: a
    /// directory a config stopped naming costs one inotify watch until the process ends).
    fn follow(&mut self, files: Vec<PathBuf>) {
        if let Some(w) = &mut self.watcher {
            for f in &files {
                let Some(dir) = f.parent() else { continue };
                if self.watched.insert(dir.to_path_buf()) {
                    // A directory that does not exist yet is left to the slow poll.
                    let _ = notify::Watcher::watch(w, dir, notify::RecursiveMode::NonRecursive);
                }
            }
        }
        self.files = files;
    }
}
