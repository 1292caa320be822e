//! The end-to-end harness: builds and runs the real `ringside` binary and real Go peers on
//! loopback `:0` ports, and runs every data-plane test once per runtime.
//!
//! ```text
//! both_runtimes!(fn proxies_hello(rt) {
//!     let origin = Origin::start("a");
//!     let proxy = Ringside::start(rt, &simple_config(origin.addr));
//!     ...
//! });
//! ```

pub mod client;
pub mod dns;
pub mod exchange;
pub mod h2raw;
pub mod held;
pub mod http10;
pub mod kubelet;
pub mod metrics;
pub mod overload;
pub mod peers;
pub mod pki;
pub mod procs;
pub mod prometheus;
pub mod seccomp;
pub mod spire;
pub mod split;

pub use client::{Closed, Conn, Response};
pub use held::HeldUpstream;
pub use peers::{grpc_client, h2_client, json_field, GrpcServer};
pub use procs::{go_bin, ringside_bin, Options, Origin, Ringside};

use std::net::SocketAddr;
use std::sync::OnceLock;

/// The runtime a test runs Ringside on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    IoUring,
    Epoll,
}

impl Runtime {
    pub fn flag(self) -> &'static str {
        match self {
            Self::IoUring => "io-uring",
            Self::Epoll => "epoll",
        }
    }
}

/// Whether this host can run the io_uring backend, asked of the real binary once.
pub fn io_uring_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let out = std::process::Command::new(ringside_bin())
            .arg("probe")
            .output()
            .expect("run ringside probe");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let ok = text.contains("auto picks: io-uring");
        if !ok {
            eprintln!("{}", loud_banner(&text));
        }
        ok
    })
}

fn loud_banner(probe: &str) -> String {
    format!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! io_uring IS NOT AVAILABLE ON THIS HOST: io_uring tests did NOT run !!!\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n{probe}\n"
    )
}

/// Called at the top of each io_uring test. Without io_uring the test fails, unless the
/// operator explicitly accepted that with `RINGSIDE_ALLOW_NO_IO_URING=1`; then it says so.
pub fn require(rt: Runtime, test: &str) -> bool {
    if rt == Runtime::Epoll || io_uring_available() {
        return true;
    }
    if std::env::var("RINGSIDE_ALLOW_NO_IO_URING").as_deref() == Ok("1") {
        // libtest captures stderr of passing tests, so the line alone is seen by no one: the
        // skip is also recorded for `make test`'s summary (integration/skips.sh).
        eprintln!("!!! SKIPPED {test} on io_uring: io_uring unavailable (RINGSIDE_ALLOW_NO_IO_URING=1) !!!");
        record_skip(test);
        return false;
    }
    panic!(
        "io_uring is unavailable, so {test} cannot run on it. Set RINGSIDE_ALLOW_NO_IO_URING=1 to \
         accept epoll-only coverage on this host."
    );
}

/// Where skipped io_uring tests are listed, one per line, for `make test`'s summary: the file
/// `RINGSIDE_SKIP_FILE` names, else `target/io_uring-skipped.txt`.
pub fn skip_file() -> std::path::PathBuf {
    std::env::var_os("RINGSIDE_SKIP_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| procs::target_dir().join("io_uring-skipped.txt"))
}

fn record_skip(test: &str) {
    use std::io::Write;
    let path = skip_file();
    // One short O_APPEND write per line: parallel test processes do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{test}\n").as_bytes()));
    if let Err(e) = written {
        panic!(
            "cannot record the skip of {test} in {}: {e}",
            path.display()
        );
    }
}

/// Defines a test module with one `#[test]` per runtime.
#[macro_export]
macro_rules! both_runtimes {
    ($(#[$meta:meta])* fn $name:ident($rt:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($rt: $crate::Runtime) $body

            #[test]
            $(#[$meta])*
            fn io_uring() {
                if $crate::require($crate::Runtime::IoUring, concat!(module_path!(), "::io_uring")) {
                    body($crate::Runtime::IoUring);
                }
            }

            #[test]
            $(#[$meta])*
            fn epoll() {
                body($crate::Runtime::Epoll);
            }
        }
    };
}

/// The usual one-listener, one-cluster HTTP config.
pub fn http_config(endpoints: &[SocketAddr]) -> String {
    let eps: Vec<String> = endpoints.iter().map(|a| a.to_string()).collect();
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: default
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: app }} ]
clusters:
  - name: app
    endpoints: [ {} ]
"#,
        eps.join(", ")
    )
}

/// [`http_config`] whose cluster speaks `protocol` (`http1` or `http2`) to its endpoints.
pub fn http_config_proto(endpoints: &[SocketAddr], protocol: &str) -> String {
    format!("{}    protocol: {protocol}\n", http_config(endpoints))
}
