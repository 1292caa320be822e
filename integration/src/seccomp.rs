//! Blocking io_uring for one child process, the way Docker's and containerd's default seccomp
//! profiles do: `io_uring_setup`, `_enter` and `_register` fail with EPERM.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Command;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

const IO_URING_SYSCALLS: [i64; 3] = [
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// Makes `cmd` start under a seccomp filter that answers the io_uring syscalls with `errno`.
pub fn block_io_uring(cmd: &mut Command, errno: i32) {
    let rules = IO_URING_SYSCALLS
        .iter()
        .map(|&nr| (nr, vec![]))
        .collect::<BTreeMap<_, _>>();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        TargetArch::x86_64,
    )
    .expect("seccomp filter");
    // Compiled before fork: the child must not allocate between fork and exec.
    let program: BpfProgram = filter.try_into().expect("compile seccomp filter");
    // SAFETY: the closure runs in the forked child before exec; it only calls prctl/seccomp
    // through `apply_filter`, which does not allocate or take locks.
    unsafe {
        cmd.pre_exec(move || seccompiler::apply_filter(&program).map_err(std::io::Error::other));
    }
}
