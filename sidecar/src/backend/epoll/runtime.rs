//! One epoll worker: its own current-thread tokio runtime, listener sockets and connections.

use std::collections::HashMap;
use std::rc::Rc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::LocalSet;

use super::io::{Epoll, EpollStream};
use crate::backend::worker::{BoundListener, WorkerCmd, WorkerSetup};
use crate::core::worker::{Worker, TICK};
use crate::core::{serve, shed};

pub fn run(setup: WorkerSetup) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Connections hold `Rc`s to worker state: they run as local tasks, never crossing threads.
    let local = LocalSet::new();
    local.block_on(&rt, async move {
        let worker = Rc::new(Worker::<Epoll>::new(
            setup.id,
            setup.config,
            setup.lifecycle,
            setup.opts,
        ));
        tokio::task::spawn_local(housekeeping(worker.clone()));
        // Dropping a sender stops its accept loop (tokio's accept is cancel-safe).
        let mut listening: HashMap<String, oneshot::Sender<()>> = HashMap::new();
        let mut cmds = setup.cmds;
        while let Some(cmd) = cmds.recv().await {
            match cmd {
                WorkerCmd::Listen(l) => match start(&worker, l) {
                    Ok((name, stop)) => {
                        listening.insert(name, stop);
                    }
                    Err(e) => {
                        tracing::error!(worker = worker.id, error = %e, "cannot start listener")
                    }
                },
                WorkerCmd::Unlisten(name) => {
                    listening.remove(&name);
                    let w = worker.clone();
                    tokio::task::spawn_local(async move { w.drain_listener(&name).await });
                }
                WorkerCmd::StopAccepting => listening.clear(),
                WorkerCmd::ListConnections { limit, reply } => {
                    let _ = reply.send(worker.connections(limit));
                }
                WorkerCmd::Figures {
                    reset_max_lag,
                    reply,
                } => {
                    let m = tokio::runtime::Handle::current().metrics();
                    let runtime = serde_json::json!({
                        "tokio_alive_tasks": m.num_alive_tasks(),
                        "tokio_global_queue_depth": m.global_queue_depth(),
                    });
                    let _ = reply.send(worker.figures(runtime, reset_max_lag));
                }
            }
        }
        // The process is exiting: stop accepting; the control thread ends the process.
        drop(listening);
        std::future::pending::<()>().await;
        Ok(())
    })
}

fn start(
    worker: &Rc<Worker<Epoll>>,
    l: BoundListener,
) -> std::io::Result<(String, oneshot::Sender<()>)> {
    l.socket.set_nonblocking(true)?;
    let listener = TcpListener::from_std(l.socket)?;
    let (stop, stopped) = oneshot::channel();
    let name: Rc<str> = Rc::from(l.name.as_str());
    tokio::task::spawn_local(accept_loop(worker.clone(), listener, name, stopped));
    Ok((l.name, stop))
}

async fn accept_loop(
    worker: Rc<Worker<Epoll>>,
    listener: TcpListener,
    name: Rc<str>,
    mut stopped: oneshot::Receiver<()>,
) {
    let load = worker.opts.loads.get(&name);
    let mut backoff = shed::AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut stopped => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.succeeded(&name, worker.id);
                // Over the listener's max_connections, this connection waits (unserved) for
                // room and the worker accepts no other meanwhile: at most one connection per
                // worker over the limit.
                let slot = match load.try_connection(worker.max_connections(&name)) {
                    Some(s) => s,
                    None => tokio::select! {
                        s = shed::room::<Epoll>(&load, || worker.max_connections(&name), site(&worker, &name)) => s,
                        _ = &mut stopped => break,
                    },
                };
                let _ = stream.set_nodelay(true);
                let conn = serve::connection(
                    worker.clone(),
                    EpollStream(stream),
                    peer,
                    name.clone(),
                    slot,
                );
                tokio::task::spawn_local(serve::guarded(conn, worker.id, peer));
            }
            Err(e) => {
                // Out of fds or memory: pause with backoff rather than spin.
                let wait = backoff.failed(&e, &name, worker.id);
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = &mut stopped => break,
                    }
                }
            }
        }
    }
    tracing::debug!(worker = worker.id, listener = %name, "stopped accepting");
}

/// Where an accept loop of this worker runs, for load shedding's logs and metrics.
fn site<'a>(worker: &Worker<Epoll>, listener: &'a str) -> shed::Site<'a> {
    shed::Site {
        worker: worker.id,
        listener,
        metrics: !worker.opts.no_metrics,
    }
}

async fn housekeeping(worker: Rc<Worker<Epoll>>) {
    for n in 0u64.. {
        let asked = std::time::Instant::now();
        tokio::time::sleep(TICK).await;
        worker.tick(n, asked.elapsed().saturating_sub(TICK));
    }
}
