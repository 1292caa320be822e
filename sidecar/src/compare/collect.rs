//! Asking the workers for their figures over their command channels, for `/runtime` and for
//! the comparison's periodic collection (both on the control thread).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::{History, Moment, INTERVAL};
use crate::backend::WorkerCmd;
use crate::core::worker::Figures;

/// How long a worker may take to answer before it counts as not answering.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Each worker's figures in worker order, `None` for a worker that did not answer within a
/// second (its event loop is stuck, or it is gone). The workers are asked all at once, so
/// the readings are of (nearly) the same moment.
pub async fn ask(
    workers: &[UnboundedSender<WorkerCmd>],
    reset_max_lag: bool,
) -> Vec<Option<Figures>> {
    let pending: Vec<_> = workers
        .iter()
        .map(|w| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let sent = w
                .send(WorkerCmd::Figures {
                    reset_max_lag,
                    reply: tx,
                })
                .is_ok();
            (sent, rx)
        })
        .collect();
    let mut out = Vec::with_capacity(pending.len());
    let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
    for (sent, rx) in pending {
        let answer = tokio::time::timeout_at(deadline, rx).await;
        out.push(match answer {
            Ok(Ok(f)) if sent => Some(f),
            _ => None,
        });
    }
    out
}

/// The moment these figures describe, merged per runtime.
pub fn moment(at: Instant, runtimes: &[&'static str], figures: &[Option<Figures>]) -> Moment {
    Moment::merge(at, runtimes, figures.iter().flatten().map(|f| &f.reading))
}

/// Collects a moment every [`INTERVAL`] into `history`, for as long as the control thread
/// runs. A moment some worker did not answer for is skipped: a partial sum would look like
/// a drop in traffic and then a burst.
pub async fn run(workers: Vec<UnboundedSender<WorkerCmd>>, history: Arc<Mutex<History>>) {
    let runtimes = match history.lock() {
        Ok(h) => h.runtimes().to_vec(),
        Err(_) => return,
    };
    let mut every = tokio::time::interval(INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let figures = ask(&workers, false).await;
        if figures.iter().any(Option::is_none) {
            tracing::debug!("runtime comparison: a worker did not answer; moment skipped");
            continue;
        }
        let m = moment(Instant::now(), &runtimes, &figures);
        if let Ok(mut h) = history.lock() {
            h.push(m);
        }
    }
}
