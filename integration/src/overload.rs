//! Offering more than a limit allows: closed-loop HTTP/1.1 clients whose every answer is kept
//! with its status, its `x-ringside-error` and how long it took (circuit breaking and load
//! shedding tests).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::client;

/// One answer: status, `x-ringside-error` (if any), time from send to complete response.
pub type Answer = (u16, Option<String>, Duration);

/// Times `n` GETs for `path` sent one after the other on one connection: the unloaded figure.
pub fn sequential(addr: SocketAddr, path: &str, n: usize) -> Vec<Duration> {
    let mut conn = client::Conn::open(addr);
    let mut took: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(conn.get(path, "").status, 200);
            t.elapsed()
        })
        .collect();
    took.sort();
    took
}

/// `clients` keep-alive connections, each sending `each` GETs for `path` back to back; every
/// answer, in no particular order.
pub fn closed_loop(addr: SocketAddr, path: &str, clients: usize, each: usize) -> Vec<Answer> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(move || {
                    let mut conn = client::Conn::open(addr);
                    (0..each)
                        .map(|_| {
                            let t = Instant::now();
                            let r = conn.get(path, "");
                            let label = r.header("x-ringside-error").map(str::to_owned);
                            (r.status, label, t.elapsed())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    })
}

/// Splits answers into the sorted durations of the 200s and of the 503s labelled `label`;
/// panics if any answer is neither.
pub fn admitted_and_refused(answers: &[Answer], label: &str) -> (Vec<Duration>, Vec<Duration>) {
    let mut admitted: Vec<Duration> = answers.iter().filter(|a| a.0 == 200).map(|a| a.2).collect();
    let mut refused: Vec<Duration> = answers
        .iter()
        .filter(|a| a.0 == 503 && a.1.as_deref() == Some(label))
        .map(|a| a.2)
        .collect();
    assert_eq!(
        admitted.len() + refused.len(),
        answers.len(),
        "only 200s and `{label}` 503s: {answers:?}"
    );
    admitted.sort();
    refused.sort();
    (admitted, refused)
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}
