//! The set of bound listeners, and how a new config changes it: added listeners bind, removed
//! ones stop accepting, a changed address is a remove plus an add, an unchanged listener is
//! never re-bound (its sockets and queued connections stay untouched).

use std::collections::HashMap;
use std::net::SocketAddr;

use control::snapshot::Snapshot;

use crate::backend::{self, BoundListener, WorkerCmd};

/// What the workers are accepting on, by listener name.
#[derive(Debug, Default)]
pub struct Listeners {
    bound: HashMap<String, SocketAddr>,
}

/// A listener change, ready to send: sockets are already bound.
#[derive(Debug, Default)]
pub struct Plan {
    /// Per added listener: one socket per worker.
    pub add: Vec<(String, SocketAddr, Vec<std::net::TcpListener>)>,
    pub remove: Vec<String>,
}

impl Listeners {
    /// Binds what `next` adds. Fails, binding nothing, if any new socket cannot be bound: a
    /// config that cannot be served in full is rejected and the old one keeps serving.
    pub fn plan(&self, next: &Snapshot, workers: usize) -> anyhow::Result<Plan> {
        let mut plan = Plan::default();
        for l in &next.listeners {
            match self.bound.get(&l.name) {
                Some(addr) if same_address(*addr, l.address) => {}
                Some(_) => {
                    plan.remove.push(l.name.clone());
                    plan.add.push((l.name.clone(), l.address, Vec::new()));
                }
                None => plan.add.push((l.name.clone(), l.address, Vec::new())),
            }
        }
        for name in self.bound.keys() {
            if next.listener(name).is_none() {
                plan.remove.push(name.clone());
            }
        }
        // Our own listeners' addresses are shared on purpose (a listener renamed or moved
        // within one reload); any other holder of a port is refused.
        let ours: Vec<SocketAddr> = self.bound.values().copied().collect();
        for (name, addr, _) in &plan.add {
            if !ours.iter().any(|a| same_address(*a, *addr)) {
                backend::check_unused(*addr)
                    .map_err(|e| anyhow::anyhow!("listener {name}: cannot bind {addr}: {e}"))?;
            }
        }
        for (name, addr, sockets) in &mut plan.add {
            *sockets = backend::bind_reuseport(*addr, workers)
                .map_err(|e| anyhow::anyhow!("listener {name}: cannot bind {addr}: {e}"))?;
            *addr = sockets[0].local_addr()?;
        }
        Ok(plan)
    }

    /// Sends the plan to the workers (removals first, so a moved listener never has two
    /// accept loops) and records the new state.
    pub fn apply(&mut self, plan: Plan, workers: &[tokio::sync::mpsc::UnboundedSender<WorkerCmd>]) {
        for name in plan.remove {
            tracing::info!(listener = %name, "listener removed: stops accepting, connections drain");
            for w in workers {
                let _ = w.send(WorkerCmd::Unlisten(name.clone()));
            }
            self.bound.remove(&name);
        }
        for (name, addr, sockets) in plan.add {
            tracing::info!(listener = %name, address = %addr, "listener bound");
            for (w, socket) in workers.iter().zip(sockets) {
                let _ = w.send(WorkerCmd::Listen(BoundListener {
                    name: name.clone(),
                    socket,
                }));
            }
            self.bound.insert(name, addr);
        }
    }
}

/// A configured `:0` port matches whatever port it was bound to.
fn same_address(bound: SocketAddr, configured: SocketAddr) -> bool {
    bound.ip() == configured.ip() && (configured.port() == 0 || bound.port() == configured.port())
}
