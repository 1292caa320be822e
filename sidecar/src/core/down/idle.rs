//! Waiting for a client's next bytes with no buffer held and no timer of its own: the worker's
//! housekeeping tick kicks the connection when its idle deadline passes (within a tick,
//! 250 ms), when a drain begins or when the config changes.

use crate::core::wire::Wire;
use std::time::Instant;

use futures_util::future::{select, Either};

use crate::core::conns::Conn;
use crate::core::rt::{ReadHalf, Rt};
use crate::core::worker::Worker;

/// Waits until `down` is readable. `None`: close now (deadline passed, draining, or the
/// listener was removed). A plain wait on readiness, safe to drop on both runtimes.
pub async fn wait<R: Rt>(
    w: &Worker<R>,
    down: &Wire<R::Stream>,
    deadline: Instant,
    listener: &str,
    conn: &Conn,
) -> Option<std::io::Result<()>> {
    loop {
        let gone = w.lifecycle.is_draining() || w.snapshot().listener(listener).is_none();
        if gone || Instant::now() >= deadline {
            conn.set_idle_until(None);
            return None;
        }
        conn.set_idle_until(Some(deadline));
        let ready = std::pin::pin!(down.readable());
        match select(ready, conn.kicked()).await {
            Either::Left((r, _)) => {
                conn.set_idle_until(None);
                return Some(r);
            }
            Either::Right(((), _)) => continue,
        }
    }
}
