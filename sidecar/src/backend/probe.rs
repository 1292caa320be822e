//! Finds out, for real, whether io_uring is usable here, and with which ring flags.
//!
//! Reading the kernel version is not enough: containers block `io_uring_setup` with seccomp
//! (EPERM under Docker's and containerd's defaults), `kernel.io_uring_disabled` can forbid it,
//! and older kernels reject newer setup flags with EINVAL. So the probe builds the ring that
//! the workers would build and asks the kernel which opcodes it supports.

use std::fmt;
use std::io;

use io_uring::{opcode, IoUring, Probe};

/// Ring setup flags the workers use. `COOP_TASKRUN | SINGLE_ISSUER` saves an IPI and some
/// locking per completion (≈25% CPU per request here); each worker owns its ring, so
/// single-issuer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFlags {
    pub coop_taskrun: bool,
    pub single_issuer: bool,
}

impl RingFlags {
    /// Tried in order; the first the kernel accepts wins.
    const LADDER: [RingFlags; 3] = [
        RingFlags {
            coop_taskrun: true,
            single_issuer: true,
        },
        RingFlags {
            coop_taskrun: true,
            single_issuer: false,
        },
        RingFlags {
            coop_taskrun: false,
            single_issuer: false,
        },
    ];

    pub fn builder(self) -> io_uring::Builder {
        let mut b = IoUring::builder();
        if self.coop_taskrun {
            b.setup_coop_taskrun();
        }
        if self.single_issuer {
            b.setup_single_issuer();
        }
        b
    }
}

impl fmt::Display for RingFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.coop_taskrun, self.single_issuer) {
            (true, true) => f.write_str("COOP_TASKRUN|SINGLE_ISSUER"),
            (true, false) => f.write_str("COOP_TASKRUN"),
            (false, true) => f.write_str("SINGLE_ISSUER"),
            (false, false) => f.write_str("none"),
        }
    }
}

/// The opcodes monoio submits on the paths Ringside uses.
const NEEDED_OPCODES: [(u8, &str); 8] = [
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::Writev::CODE, "WRITEV"),
];

/// Ring size used by the probe and by each worker.
pub const RING_ENTRIES: u32 = 1024;

/// Everything `ringside probe` prints, and the reason `auto` logs.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub kernel: String,
    /// `/proc/sys/kernel/io_uring_disabled`: 0 allowed, 1 privileged only, 2 off. None: absent.
    pub io_uring_disabled: Option<String>,
    /// Flag sets the kernel rejected with EINVAL before one was accepted.
    pub rejected_flags: Vec<RingFlags>,
    pub outcome: Result<RingFlags, String>,
    pub missing_opcodes: Vec<&'static str>,
}

impl ProbeReport {
    /// The ring flags to use, or why io_uring cannot be used.
    pub fn usable(&self) -> Result<RingFlags, String> {
        let flags = self.outcome.clone()?;
        if self.missing_opcodes.is_empty() {
            Ok(flags)
        } else {
            Err(format!(
                "kernel lacks io_uring opcodes: {}",
                self.missing_opcodes.join(", ")
            ))
        }
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kernel: {}", self.kernel)?;
        writeln!(
            f,
            "kernel.io_uring_disabled: {}",
            self.io_uring_disabled.as_deref().unwrap_or("absent")
        )?;
        for r in &self.rejected_flags {
            writeln!(f, "ring flags {r}: rejected (EINVAL)")?;
        }
        match &self.outcome {
            Ok(flags) => writeln!(f, "io_uring_setup: ok, flags {flags}")?,
            Err(e) => writeln!(f, "io_uring_setup: {e}")?,
        }
        if self.outcome.is_ok() {
            if self.missing_opcodes.is_empty() {
                writeln!(
                    f,
                    "opcodes: all {} needed are supported",
                    NEEDED_OPCODES.len()
                )?;
            } else {
                writeln!(f, "opcodes missing: {}", self.missing_opcodes.join(", "))?;
            }
        }
        match self.usable() {
            Ok(flags) => write!(f, "auto picks: io-uring (ring flags {flags})"),
            Err(why) => write!(f, "auto picks: epoll, because {why}"),
        }
    }
}

/// Runs the probe. Costs one ring setup and teardown (well under a millisecond).
pub fn probe() -> ProbeReport {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let io_uring_disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_owned());

    let mut rejected_flags = Vec::new();
    let mut outcome = Err("no ring flags were tried".to_owned());
    let mut ring = None;
    for flags in RingFlags::LADDER {
        match flags.builder().build(RING_ENTRIES) {
            Ok(r) => {
                ring = Some(r);
                outcome = Ok(flags);
                break;
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => rejected_flags.push(flags),
            Err(e) => {
                outcome = Err(explain_setup_error(&e, io_uring_disabled.as_deref()));
                break;
            }
        }
    }
    if ring.is_none() && outcome.is_ok() {
        outcome = Err("io_uring_setup rejected every flag set with EINVAL".to_owned());
    }

    let mut missing_opcodes = Vec::new();
    if let Some(ring) = &ring {
        let mut p = Probe::new();
        match ring.submitter().register_probe(&mut p) {
            Ok(()) => {
                missing_opcodes = NEEDED_OPCODES
                    .iter()
                    .filter(|(code, _)| !p.is_supported(*code))
                    .map(|(_, name)| *name)
                    .collect();
            }
            Err(e) => {
                outcome = Err(format!(
                    "io_uring_register(PROBE) failed: {} (seccomp may allow setup but not register)",
                    errno_name(&e)
                ));
            }
        }
    }

    ProbeReport {
        kernel,
        io_uring_disabled,
        rejected_flags,
        outcome,
        missing_opcodes,
    }
}

fn explain_setup_error(e: &io::Error, disabled: Option<&str>) -> String {
    let name = errno_name(e);
    match e.raw_os_error() {
        Some(libc::EPERM) if disabled == Some("2") => {
            format!("io_uring_setup failed: {name} (kernel.io_uring_disabled=2)")
        }
        Some(libc::EPERM) => format!(
            "io_uring_setup failed: {name} (a seccomp filter blocks io_uring, as Docker's and \
             containerd's default profiles do, or kernel.io_uring_disabled forbids this process)"
        ),
        Some(libc::ENOSYS) => format!(
            "io_uring_setup failed: {name} (kernel built without io_uring, or a seccomp filter \
             returns ENOSYS)"
        ),
        Some(libc::ENOMEM) => format!(
            "io_uring_setup failed: {name} (locked-memory limit too low for the ring; raise \
             RLIMIT_MEMLOCK)"
        ),
        _ => format!("io_uring_setup failed: {name}"),
    }
}

fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EACCES) => "EACCES",
        _ => return e.to_string(),
    };
    format!("{name}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_ladder_ends_with_no_flags_so_any_kernel_with_io_uring_gets_a_ring() {
        let last = RingFlags::LADDER[RingFlags::LADDER.len() - 1];
        assert_eq!(last.to_string(), "none");
    }

    #[test]
    fn report_explains_missing_opcodes() {
        let r = ProbeReport {
            kernel: "5.4".into(),
            io_uring_disabled: None,
            rejected_flags: vec![],
            outcome: Ok(RingFlags {
                coop_taskrun: false,
                single_issuer: false,
            }),
            missing_opcodes: vec!["SEND"],
        };
        let why = r
            .usable()
            .expect_err("missing opcodes must make io_uring unusable");
        assert!(why.contains("SEND"), "{why}");
        assert!(r.to_string().contains("auto picks: epoll"));
    }

    #[test]
    fn eperm_is_blamed_on_seccomp_or_sysctl() {
        let e = io::Error::from_raw_os_error(libc::EPERM);
        assert!(explain_setup_error(&e, Some("0")).contains("seccomp"));
        assert!(explain_setup_error(&e, Some("2")).contains("io_uring_disabled=2"));
    }
}
