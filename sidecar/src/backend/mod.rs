//! The two I/O runtimes and the choice between them. Each backend is a mirror image of the
//! other (`runtime.rs`: a worker thread; `io.rs`: streams behind the core's seam); neither
//! imports the other.

pub mod epoll;
pub mod probe;
pub mod select;
pub mod sock;
pub mod uring;
pub mod worker;

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

pub use select::{select, RuntimeChoice, SelectError, Selected, Selection};
pub use worker::{BoundListener, WorkerCmd, WorkerSetup};

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
        // Test hook: a fixed send buffer for every accepted connection (they inherit the
        // listener's), so that a test's slow reader backs up into Ringside's writes after a
        // few KiB, as on a real network path, instead of after MiBs of loopback autotuning.
        #[cfg(feature = "test-hooks")]
        if let Some(n) = std::env::var("RINGSIDE_TEST_SO_SNDBUF")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            s.set_send_buffer_size(n)?;
        }
        s.bind(&addr.into())?;
        s.listen(4096)?;
        let l: std::net::TcpListener = s.into();
        addr = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

/// Fails if some other socket already listens on `addr`. `SO_REUSEPORT` would otherwise let a
/// second Ringside (or anything else of the same user) share the port silently, and the kernel
/// would split connections between two configs. A probe socket without `SO_REUSEPORT` cannot
/// bind next to a listener; `SO_REUSEADDR` keeps connections in TIME_WAIT from counting.
///
/// # Errors
/// `AddrInUse` with a message that says so, or whatever `bind` returned.
pub fn check_unused(addr: SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into()).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => std::io::Error::new(
            e.kind(),
            "another process already listens there (SO_REUSEPORT would share the port with it)",
        ),
        _ => e,
    })
}

/// Runs one worker thread's event loop. It returns only if the runtime cannot be built; the
/// process exits from the control thread.
pub fn run_worker(selected: Selected, setup: WorkerSetup) -> std::io::Result<()> {
    match selected {
        Selected::IoUring(flags) => uring::runtime::run(setup, flags),
        Selected::Epoll => epoll::runtime::run(setup),
    }
}
