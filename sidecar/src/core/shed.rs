//! Load shedding per listener (`limits.max_connections`, `limits.max_requests`) and what the
//! accept loops do when the process runs out of file descriptors.
//!
//! Connections: at `max_connections` a listener stops accepting (as HAProxy's `maxconn` and
//! nginx's `worker_connections` do): new clients wait in the kernel's listen backlog. Each
//! worker has its own accept queue (`SO_REUSEPORT`), so the limit is checked after an
//! accept: a worker over it holds that one connection unserved until room frees up and
//! accepts nothing else meanwhile, so the process holds at most `max_connections` plus one
//! per worker. Requests: over `max_requests`
//! one is refused at once, 503 with `Retry-After` on HTTP/1.1 and REFUSED_STREAM on HTTP/2
//! (RFC 9113 §8.7: the client knows it was not processed and may retry it elsewhere).
//!
//! Counts are shared by every worker (one pair of atomics per listener name, surviving
//! reloads). Requests are only counted on a listener with a limit, so a listener without one
//! shares nothing between workers on the request path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::rt::Rt;

/// How often a listener paused at `max_connections` looks again for room.
pub const PAUSE_POLL: Duration = Duration::from_millis(10);
/// The first wait after an accept failed for want of descriptors or memory; it doubles with
/// each failure in a row up to [`MAX_BACKOFF`] (as Go's `net/http` server does).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait between accepts while descriptors are exhausted: how late, at worst,
/// accepting resumes once they free up.
pub const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// One listener's load across all workers.
#[derive(Debug, Default)]
pub struct Load {
    connections: AtomicU32,
    requests: AtomicU32,
}

impl Load {
    /// Takes a connection slot if fewer than `limit` connections are open (always without
    /// a limit: connections are counted on every listener).
    pub fn try_connection(self: &Arc<Self>, limit: Option<u32>) -> Option<ConnSlot> {
        let before = self.connections.fetch_add(1, Ordering::AcqRel);
        if limit.is_some_and(|l| before >= l) {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnSlot(self.clone()))
    }

    /// Admits a request under `limit`: `Ok(None)` without a limit (nothing counted),
    /// `Ok(Some(slot))` within it.
    ///
    /// # Errors
    /// `Err(Overloaded)` when `limit` requests are already in flight on the listener.
    pub fn admit_request(&self, limit: Option<u32>) -> Result<Option<RequestSlot<'_>>, Overloaded> {
        let Some(limit) = limit else {
            return Ok(None);
        };
        let before = self.requests.fetch_add(1, Ordering::AcqRel);
        if before >= limit {
            self.requests.fetch_sub(1, Ordering::AcqRel);
            return Err(Overloaded);
        }
        Ok(Some(RequestSlot(self)))
    }

    /// Connections open (and accepts about to complete) on the listener, all workers.
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }
}

/// A request refused by the listener's `max_requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// One open connection (or one accept about to complete) under its listener's count.
#[derive(Debug)]
pub struct ConnSlot(Arc<Load>);

impl ConnSlot {
    /// The listener's load, for admitting the connection's requests.
    pub fn load(&self) -> &Load {
        &self.0
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One request in flight under its listener's `max_requests`.
#[derive(Debug)]
pub struct RequestSlot<'a>(&'a Load);

impl Drop for RequestSlot<'_> {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every listener's [`Load`] by name, shared by the workers. Looked up once per accept loop,
/// never per connection or request.
#[derive(Debug, Default)]
pub struct Loads(Mutex<HashMap<String, Arc<Load>>>);

impl Loads {
    /// The load of `listener`, created on first use.
    pub fn get(&self, listener: &str) -> Arc<Load> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(listener.to_owned()).or_default().clone()
    }
}

/// Where an accept loop runs: its worker, its listener, and whether metrics are recorded.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    pub worker: usize,
    pub listener: &'a str,
    pub metrics: bool,
}

/// Waits until the listener has room for one more connection under its `max_connections`
/// (`limit`, read from the live config each time, so a reload that raises or removes it
/// takes effect) and takes it. A pause is counted once in
/// `ringside_accept_paused_total{reason="max_connections"}`.
pub async fn room<R: Rt>(
    load: &Arc<Load>,
    limit: impl Fn() -> Option<u32>,
    at: Site<'_>,
) -> ConnSlot {
    let (worker, listener) = (at.worker, at.listener);
    let mut paused = false;
    loop {
        if let Some(slot) = load.try_connection(limit()) {
            if paused {
                tracing::info!(worker, listener, "accepting again: below max_connections");
            }
            return slot;
        }
        if !paused {
            paused = true;
            tracing::info!(
                worker,
                listener,
                "max_connections reached: accepting paused"
            );
            if at.metrics {
                metrics::counter!("ringside_accept_paused_total", "listener" => listener.to_owned(), "reason" => "max_connections")
                    .increment(1);
            }
        }
        R::sleep(PAUSE_POLL).await;
    }
}

/// Why an accept failed, as the accept loop acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptFailure {
    /// EMFILE or ENFILE: out of file descriptors. Accepting pauses, with backoff.
    FdLimit,
    /// ENOBUFS or ENOMEM. Accepting pauses, with backoff.
    Memory,
    /// The client gave up before the accept completed (ECONNABORTED and the like): try the
    /// next one at once.
    Aborted,
}

impl AcceptFailure {
    /// Classifies an accept error (accept(2) ERRORS).
    pub fn of(e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => Self::FdLimit,
            Some(libc::ENOBUFS | libc::ENOMEM) => Self::Memory,
            Some(_) => Self::Aborted,
            // Not from the kernel: treat as a resource problem rather than spin on it.
            None => Self::Memory,
        }
    }

    /// The `reason` label of `ringside_accept_errors_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::FdLimit => "fd_limit",
            Self::Memory => "memory",
            Self::Aborted => "aborted",
        }
    }
}

/// An accept loop's state across failed accepts: how long to wait before the next, and
/// whether the pause has been logged (once per episode, not once per failure).
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    current: Duration,
}

impl AcceptBackoff {
    /// Records a failed accept on `listener`: counted in `ringside_accept_errors_total`, and
    /// returns how long to wait before accepting again (zero when the next accept may follow
    /// at once).
    pub fn failed(&mut self, e: &std::io::Error, listener: &str, worker: usize) -> Duration {
        let why = AcceptFailure::of(e);
        metrics::counter!("ringside_accept_errors_total", "listener" => listener.to_owned(), "reason" => why.label())
            .increment(1);
        if why == AcceptFailure::Aborted {
            tracing::debug!(worker, listener, error = %e, "accept failed; continuing");
            return Duration::ZERO;
        }
        if self.current.is_zero() {
            tracing::warn!(worker, listener, error = %e, reason = why.label(), "accept failed: accepting paused until resources free up");
            self.current = FIRST_BACKOFF;
        } else {
            self.current = (self.current * 2).min(MAX_BACKOFF);
        }
        self.current
    }

    /// Records a successful accept: ends a pause (logged).
    pub fn succeeded(&mut self, listener: &str, worker: usize) {
        if !self.current.is_zero() {
            self.current = Duration::ZERO;
            tracing::info!(worker, listener, "accepting again");
        }
    }
}

/// Counts a request refused by `listener`'s `max_requests` (unless `--no-metrics`).
pub fn count_shed(metrics: bool, listener: &str) {
    if metrics {
        metrics::counter!("ringside_shed_total", "listener" => listener.to_owned(), "limit" => "max_requests")
            .increment(1);
    }
}

/// Registers the help text of the shedding metrics.
pub fn describe() {
    crate::core::cutoff::describe();
    metrics::describe_counter!(
        "ringside_shed_total",
        "Requests refused by a listener's max_requests (503 on HTTP/1.1, REFUSED_STREAM on HTTP/2)"
    );
    metrics::describe_counter!(
        "ringside_accept_paused_total",
        "Times a listener stopped accepting because it reached max_connections"
    );
    metrics::describe_counter!(
        "ringside_accept_errors_total",
        "Failed accepts, by listener and reason (fd_limit, memory: accepting paused with backoff; aborted)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_and_limited() {
        let load = Arc::new(Load::default());
        let a = load.try_connection(Some(2)).expect("room");
        let b = load.try_connection(Some(2)).expect("room");
        assert!(load.try_connection(Some(2)).is_none());
        assert_eq!(load.connections(), 2, "a refused try leaves no trace");
        drop(a);
        let c = load.try_connection(Some(2)).expect("room again");
        let unlimited = load.try_connection(None).expect("no limit");
        assert_eq!(load.connections(), 3);
        drop((b, c, unlimited));
        assert_eq!(load.connections(), 0);
    }

    #[test]
    fn requests_are_counted_only_under_a_limit() {
        let load = Load::default();
        assert!(matches!(load.admit_request(None), Ok(None)));
        let one = load.admit_request(Some(1)).expect("room");
        assert!(one.is_some());
        assert_eq!(load.admit_request(Some(1)).err(), Some(Overloaded));
        drop(one);
        assert!(load.admit_request(Some(1)).is_ok());
    }

    #[test]
    fn descriptor_exhaustion_backs_off_and_aborts_do_not() {
        let mut b = AcceptBackoff::default();
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        let aborted = std::io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(b.failed(&aborted, "l", 0), Duration::ZERO);
        assert_eq!(b.failed(&emfile, "l", 0), FIRST_BACKOFF);
        assert_eq!(b.failed(&emfile, "l", 0), FIRST_BACKOFF * 2);
        for _ in 0..20 {
            b.failed(&emfile, "l", 0);
        }
        assert_eq!(b.failed(&emfile, "l", 0), MAX_BACKOFF);
        b.succeeded("l", 0);
        assert_eq!(b.failed(&emfile, "l", 0), FIRST_BACKOFF, "a new episode");
    }
}
