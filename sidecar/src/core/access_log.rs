//! The access log: one JSON line per request, off by default.
//!
//! Workers never block on it: lines go through a bounded channel to a writer thread, and when
//! the writer falls behind, lines are dropped and counted (`ringside_access_log_dropped_total`)
//! rather than slowing traffic.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use serde::Serialize;

/// Lines buffered between the workers and the writer.
const QUEUE: usize = 16 * 1024;

/// One request, as the access log records it.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub ts_unix: f64,
    pub worker: usize,
    pub listener: &'a str,
    pub peer: SocketAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub host: Option<&'a str>,
    pub route: &'a str,
    pub cluster: &'a str,
    pub endpoint: Option<SocketAddr>,
    /// Upstream attempts made, the first included: above 1 when the request was retried or
    /// replayed; 0 when Ringside answered it itself.
    pub attempts: u32,
    pub status: u16,
    pub duration_ms: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub traceparent: Option<&'a str>,
    /// gRPC calls only: the call's `grpc-status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<&'a str>,
    /// Mutual TLS only: the client certificate's SPIFFE ID (else its first DNS SAN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<&'a str>,
}

/// Seconds since the Unix epoch, for `ts_unix`.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The workers' side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<String>,
    dropped: metrics::Counter,
}

impl AccessLog {
    /// Creates the log and the receiving end for the writer thread.
    pub fn new() -> (Self, Receiver<String>) {
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = metrics::counter!("ringside_access_log_dropped_total");
        (Self { tx, dropped }, rx)
    }

    pub fn record(&self, e: &Entry<'_>) {
        let Ok(line) = serde_json::to_string(e) else {
            return;
        };
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.increment(1)
            }
        }
    }
}

/// Writes lines to `out` until every sender is gone. Runs on its own thread. Writes what is
/// queued, then flushes: batched under load, prompt when quiet.
pub fn write_lines(rx: Receiver<String>, out: impl std::io::Write) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(line) = rx.recv() {
        if writeln!(out, "{line}").is_err() {
            return;
        }
        while let Ok(more) = rx.try_recv() {
            if writeln!(out, "{more}").is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_and_overflow_is_dropped_not_blocking() {
        let (log, rx) = AccessLog::new();
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let e = Entry {
            ts_unix: 1.0,
            worker: 0,
            listener: "in",
            peer,
            method: "GET",
            path: "/a\"b",
            host: Some("h"),
            route: "r",
            cluster: "c",
            endpoint: None,
            attempts: 0,
            status: 200,
            duration_ms: 1.5,
            bytes_in: 1,
            bytes_out: 2,
            traceparent: None,
            grpc_status: None,
            peer_identity: None,
        };
        for _ in 0..QUEUE + 10 {
            log.record(&e);
        }
        drop(log);
        let lines: Vec<String> = rx.iter().collect();
        assert_eq!(
            lines.len(),
            QUEUE,
            "the queue bounds memory; the rest is dropped"
        );
        let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(v["path"], "/a\"b");
        assert_eq!(v["status"], 200);
    }
}
