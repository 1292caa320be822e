//! The two I/O runtimes and the choice between them. Each backend is a mirror image of the
//! other (`runtime.rs`: a worker thread; `io.rs`: streams behind the core's seam); neither
//! imports the other.

pub mod epoll;
pub mod probe;
pub mod uring;

use std::fmt;
use std::mem::MaybeUninit;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::core::worker::SharedConfig;
use probe::{ProbeReport, RingFlags};

/// What the operator asked for (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// io_uring if it really works here, else epoll.
    Auto,
    /// io_uring or exit with the reason.
    IoUring,
    /// tokio on epoll.
    Epoll,
}

/// What the workers will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    IoUring(RingFlags),
    Epoll,
}

impl Selected {
    pub fn name(self) -> &'static str {
        match self {
            Self::IoUring(_) => "io_uring",
            Self::Epoll => "epoll",
        }
    }
}

/// The decision and the reason for it, for logs, `/runtime` and metrics.
#[derive(Debug, Clone)]
pub struct Selection {
    pub selected: Selected,
    pub reason: String,
    pub probe: Option<ProbeReport>,
}

#[derive(Debug, thiserror::Error)]
#[error("--runtime io-uring was requested but io_uring is not usable here: {0}")]
pub struct IoUringUnavailable(pub String);

/// Applies `--runtime` to what the probe finds. Only `auto` may fall back.
pub fn select(choice: RuntimeChoice) -> Result<Selection, IoUringUnavailable> {
    if choice == RuntimeChoice::Epoll {
        return Ok(Selection {
            selected: Selected::Epoll,
            reason: "--runtime epoll".into(),
            probe: None,
        });
    }
    let report = probe::probe();
    let usable = report.usable();
    match (choice, usable) {
        (_, Ok(flags)) => Ok(Selection {
            selected: Selected::IoUring(flags),
            reason: format!(
                "{}: io_uring works (kernel {}, ring flags {flags})",
                if choice == RuntimeChoice::Auto {
                    "auto"
                } else {
                    "--runtime io-uring"
                },
                report.kernel
            ),
            probe: Some(report),
        }),
        (RuntimeChoice::IoUring, Err(why)) => Err(IoUringUnavailable(why)),
        (_, Err(why)) => Ok(Selection {
            selected: Selected::Epoll,
            reason: format!("auto: fell back to epoll because {why}"),
            probe: Some(report),
        }),
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.selected.name(), self.reason)
    }
}

/// One listener socket handed to one worker.
#[derive(Debug)]
pub struct BoundListener {
    pub name: String,
    pub socket: std::net::TcpListener,
}

/// What the control thread tells a worker. Workers start with an empty set of listeners and
/// receive their initial ones as `Listen` commands too, so startup and reload share one path.
#[derive(Debug)]
pub enum WorkerCmd {
    /// Start accepting on this socket (replaces a listener of the same name).
    Listen(BoundListener),
    /// Stop accepting on this listener; its connections drain on their own.
    Unlisten(String),
    /// Drain: stop accepting on every listener.
    StopAccepting,
    /// This worker's figures (admin `/runtime`).
    Figures {
        reply: tokio::sync::oneshot::Sender<crate::core::worker::Figures>,
    },
    /// List up to `limit` live connections (admin `/connections`).
    ListConnections {
        limit: usize,
        reply: tokio::sync::oneshot::Sender<(Vec<crate::core::conns::ConnView>, usize)>,
    },
}

/// Everything a worker thread starts with.
#[derive(Debug)]
pub struct WorkerSetup {
    pub id: usize,
    pub config: SharedConfig,
    pub lifecycle: std::sync::Arc<crate::core::lifecycle::Lifecycle>,
    pub opts: crate::core::worker::Options,
    pub cmds: tokio::sync::mpsc::UnboundedReceiver<WorkerCmd>,
}

/// Binds one `SO_REUSEPORT` socket per worker on `addr`, so the kernel spreads connections
/// across workers with no shared accept queue. Port 0 is resolved by the first socket and
/// reused by the rest, so tests can bind `:0`.
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_tcp_nodelay(true)?;
        s.bind(&addr.into())?;
        s.listen(4096)?;
        let l: std::net::TcpListener = s.into();
        addr = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

/// Runs one worker thread's event loop. It returns only if the runtime cannot be built; the
/// process exits from the control thread.
pub fn run_worker(selected: Selected, setup: WorkerSetup) -> std::io::Result<()> {
    match selected {
        Selected::IoUring(flags) => uring::runtime::run(setup, flags),
        Selected::Epoll => epoll::runtime::run(setup),
    }
}

/// Non-blocking peek shared by both backends' `is_reusable`.
pub(crate) fn peek_reusable(sock: SockRef<'_>) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    match sock.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
        // Data nobody asked for, or EOF: either way the connection cannot carry a request.
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// The socket's local address, shared by both backends.
pub(crate) fn local_addr(sock: SockRef<'_>) -> Option<SocketAddr> {
    sock.local_addr().ok()?.as_socket()
}

/// `SO_ORIGINAL_DST` (or its IPv6 twin, per the socket's family), shared by both backends.
pub(crate) fn original_dst(sock: SockRef<'_>) -> Option<SocketAddr> {
    let v6 = sock.local_addr().ok()?.is_ipv6();
    let addr = if v6 {
        sock.original_dst_v6()
    } else {
        sock.original_dst_v4()
    };
    addr.ok()?.as_socket()
}
