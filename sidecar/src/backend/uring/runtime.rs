//! One io_uring worker: its own ring, its own listener sockets, its connections.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use monoio::net::TcpListener;
use monoio::{IoUringDriver, RuntimeBuilder};

use super::io::{shutdown_listener, Uring, UringStream};
use crate::backend::probe::{RingFlags, RING_ENTRIES};
use crate::backend::worker::{BoundListener, WorkerCmd, WorkerSetup};
use crate::core::worker::{Worker, TICK};
use crate::core::{serve, shed};

pub fn run(setup: WorkerSetup, flags: RingFlags) -> std::io::Result<()> {
    let mut rt = RuntimeBuilder::<IoUringDriver>::new()
        .with_entries(RING_ENTRIES)
        .uring_builder(flags.builder())
        .enable_timer()
        .build()?;
    rt.block_on(async move {
        let worker = Rc::new(Worker::<Uring>::new(
            setup.id,
            setup.config,
            setup.lifecycle,
            setup.opts,
        ));
        monoio::spawn(housekeeping(worker.clone()));
        let mut listening: HashMap<String, Accepting> = HashMap::new();
        let mut cmds = setup.cmds;
        while let Some(cmd) = cmds.recv().await {
            match cmd {
                WorkerCmd::Listen(l) => match start(&worker, l) {
                    Ok((name, a)) => {
                        if let Some(old) = listening.insert(name, a) {
                            old.stop();
                        }
                    }
                    Err(e) => {
                        tracing::error!(worker = worker.id, error = %e, "cannot start listener")
                    }
                },
                WorkerCmd::Unlisten(name) => {
                    if let Some(a) = listening.remove(&name) {
                        a.stop();
                    }
                    let w = worker.clone();
                    monoio::spawn(async move { w.drain_listener(&name).await });
                }
                WorkerCmd::StopAccepting => listening.drain().for_each(|(_, a)| a.stop()),
                WorkerCmd::ListConnections { limit, reply } => {
                    let _ = reply.send(worker.connections(limit));
                }
                WorkerCmd::Figures {
                    reset_max_lag,
                    reply,
                } => {
                    let [submitted, completed, abandoned] = super::ops::op_counts();
                    let runtime = serde_json::json!({
                        "ring_entries": RING_ENTRIES,
                        "ring_flags": flags.to_string(),
                        "ops_submitted": submitted,
                        "ops_completed": completed,
                        "ops_abandoned": abandoned,
                        "ops_in_flight": submitted.saturating_sub(completed + abandoned),
                        "poll_io_connections": super::io::poll_io_connections(),
                    });
                    let _ = reply.send(worker.figures(runtime, reset_max_lag));
                }
            }
        }
        // The process is exiting: stop accepting; the control thread ends the process.
        listening.into_values().for_each(Accepting::stop);
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// A running accept loop and the means to stop it.
struct Accepting {
    listener: Rc<TcpListener>,
    stopped: Rc<Cell<bool>>,
}

impl Accepting {
    /// A pending monoio accept cannot be dropped safely (0.2.4 leaks the fd it completes
    /// with), so instead of cancelling it we shut the socket down: the pending accept then
    /// fails and the loop sees `stopped`.
    fn stop(self) {
        self.stopped.set(true);
        shutdown_listener(&self.listener);
    }
}

fn start(worker: &Rc<Worker<Uring>>, l: BoundListener) -> std::io::Result<(String, Accepting)> {
    // io_uring completes accepts itself; monoio wants blocking sockets under it.
    l.socket.set_nonblocking(false)?;
    let listener = Rc::new(TcpListener::from_std(l.socket)?);
    let stopped = Rc::new(Cell::new(false));
    let name: Rc<str> = Rc::from(l.name.as_str());
    monoio::spawn(accept_loop(
        worker.clone(),
        listener.clone(),
        name,
        stopped.clone(),
    ));
    Ok((l.name, Accepting { listener, stopped }))
}

async fn accept_loop(
    worker: Rc<Worker<Uring>>,
    listener: Rc<TcpListener>,
    name: Rc<str>,
    stopped: Rc<Cell<bool>>,
) {
    let load = worker.opts.loads.get(&name);
    let mut backoff = shed::AcceptBackoff::default();
    while !stopped.get() {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff.succeeded(&name, worker.id);
                // Over the listener's max_connections, this connection waits (unserved) for
                // room and the worker accepts no other meanwhile: at most one connection per
                // worker over the limit. The wait ends on its own (a sleep), so a stop is seen
                // within PAUSE_POLL.
                let slot = match load.try_connection(worker.max_connections(&name)) {
                    Some(s) => s,
                    None => {
                        let room = std::pin::pin!(shed::room::<Uring>(
                            &load,
                            || worker.max_connections(&name),
                            site(&worker, &name),
                        ));
                        let stop = std::pin::pin!(until_stopped(&stopped));
                        match futures_util::future::select(room, stop).await {
                            futures_util::future::Either::Left((s, _)) => s,
                            futures_util::future::Either::Right(_) => break,
                        }
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = serve::connection(
                    worker.clone(),
                    UringStream(stream),
                    peer,
                    name.clone(),
                    slot,
                );
                monoio::spawn(serve::guarded(conn, worker.id, peer));
            }
            Err(_) if stopped.get() => break,
            Err(e) => {
                // Out of fds or memory: pause with backoff rather than spin.
                let wait = backoff.failed(&e, &name, worker.id);
                if !wait.is_zero() {
                    monoio::time::sleep(wait).await;
                }
            }
        }
    }
    tracing::debug!(worker = worker.id, listener = %name, "stopped accepting");
}

/// Completes once `stopped` is set (checked every [`shed::PAUSE_POLL`]).
async fn until_stopped(stopped: &Cell<bool>) {
    while !stopped.get() {
        monoio::time::sleep(shed::PAUSE_POLL).await;
    }
}

/// Where an accept loop of this worker runs, for load shedding's logs and metrics.
fn site<'a>(worker: &Worker<Uring>, listener: &'a str) -> shed::Site<'a> {
    shed::Site {
        worker: worker.id,
        listener,
        metrics: !worker.opts.no_metrics,
    }
}

async fn housekeeping(worker: Rc<Worker<Uring>>) {
    for n in 0u64.. {
        let asked = std::time::Instant::now();
        monoio::time::sleep(TICK).await;
        worker.tick(n, asked.elapsed().saturating_sub(TICK));
    }
}
