//! Seccomp for one child process: blocking io_uring the way Docker's and containerd's default
//! profiles do (`io_uring_setup`, `_enter` and `_register` fail with EPERM), or applying a
//! whole Docker-format profile such as the chart's.

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

/// Makes `cmd` start under the seccomp profile in `profile_json`, a Docker/OCI profile (the
/// format the chart ships in `charts/ringside/seccomp/` and the kubelet loads for
/// `seccompProfile: Localhost`), compiled for x86_64 the way libseccomp would: names the
/// architecture lacks are skipped, argument conditions are 64-bit compares.
///
/// Panics on a profile this reader does not handle (an action other than allow/errno, an
/// unknown comparison), so a profile change cannot silently weaken the test.
pub fn apply_profile(cmd: &mut Command, profile_json: &str) {
    let programs = compile_profile(profile_json);
    // SAFETY: as in `block_io_uring`: the programs were compiled before fork; installing them
    // only calls prctl/seccomp.
    unsafe {
        cmd.pre_exec(move || {
            for p in &programs {
                seccompiler::apply_filter(p).map_err(std::io::Error::other)?;
            }
            Ok(())
        });
    }
}

/// The BPF programs for a Docker profile, in install order. seccompiler filters have one
/// match action, so the profile becomes one filter per distinct non-default action: first the
/// allow-list (mismatch: the default errno), then one per other errno value, matching only its
/// syscalls. For stacked filters the kernel returns the most recently installed ERRNO's value,
/// so a syscall the profile answers with its own errno (clone3 → ENOSYS) gets that errno.
pub fn compile_profile(profile_json: &str) -> Vec<BpfProgram> {
    let p: serde_json::Value = serde_json::from_str(profile_json).expect("seccomp profile JSON");
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO", "default action");
    let default_errno = p["defaultErrnoRet"].as_u64().unwrap_or(1);
    // action key ("allow" or an errno) -> rules in seccompiler's JSON form
    let mut by_action: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for entry in p["syscalls"].as_array().expect("syscalls") {
        let action = match entry["action"].as_str() {
            Some("SCMP_ACT_ALLOW") => "allow".to_owned(),
            Some("SCMP_ACT_ERRNO") => entry["errnoRet"]
                .as_u64()
                .unwrap_or(default_errno)
                .to_string(),
            other => panic!("unhandled seccomp action {other:?}"),
        };
        for cond in ["includes", "excludes"] {
            let c = &entry[cond];
            assert!(
                c.is_null() || c.as_object().is_some_and(|o| o.is_empty()),
                "unhandled {cond}: {c}"
            );
        }
        let args: Vec<serde_json::Value> = entry["args"]
            .as_array()
            .map(|a| a.iter().map(condition).collect())
            .unwrap_or_default();
        for name in entry["names"].as_array().expect("names") {
            let name = name.as_str().expect("name");
            if !known_on_x86_64(name) {
                continue;
            }
            let mut rule = serde_json::json!({ "syscall": name });
            if !args.is_empty() {
                rule["args"] = serde_json::Value::Array(args.clone());
            }
            by_action.entry(action.clone()).or_default().push(rule);
        }
    }
    let mut programs = Vec::new();
    let allow = by_action.remove("allow").unwrap_or_default();
    programs.push(compile(
        allow,
        serde_json::json!({ "errno": default_errno }),
        "allow".into(),
    ));
    for (errno, rules) in by_action {
        let errno: u64 = errno.parse().expect("errno");
        programs.push(compile(
            rules,
            "allow".into(),
            serde_json::json!({ "errno": errno }),
        ));
    }
    programs
}

/// A Docker argument condition in seccompiler's JSON form.
fn condition(a: &serde_json::Value) -> serde_json::Value {
    let index = a["index"].as_u64().expect("index");
    let value = a["value"].as_u64().expect("value");
    let (op, val) = match a["op"].as_str().expect("op") {
        "SCMP_CMP_EQ" => (serde_json::json!("eq"), value),
        "SCMP_CMP_NE" => (serde_json::json!("ne"), value),
        "SCMP_CMP_LT" => (serde_json::json!("lt"), value),
        "SCMP_CMP_LE" => (serde_json::json!("le"), value),
        "SCMP_CMP_GT" => (serde_json::json!("gt"), value),
        "SCMP_CMP_GE" => (serde_json::json!("ge"), value),
        // Docker: (arg & value) == valueTwo.
        "SCMP_CMP_MASKED_EQ" => (
            serde_json::json!({ "masked_eq": value }),
            a["valueTwo"].as_u64().unwrap_or(0),
        ),
        other => panic!("unhandled seccomp comparison {other}"),
    };
    serde_json::json!({ "index": index, "type": "qword", "op": op, "val": val })
}

fn compile(
    rules: Vec<serde_json::Value>,
    mismatch: serde_json::Value,
    matched: serde_json::Value,
) -> BpfProgram {
    let doc = serde_json::json!({ "f": { "mismatch_action": mismatch, "match_action": matched, "filter": rules } });
    let mut map = seccompiler::compile_from_json(doc.to_string().as_bytes(), TargetArch::x86_64)
        .expect("compile the seccomp profile");
    map.remove("f").expect("compiled filter")
}

/// Whether seccompiler knows `name` on x86_64 (profiles list every architecture's names).
fn known_on_x86_64(name: &str) -> bool {
    // (seccompiler refuses a filter whose two actions are the same.)
    let doc = serde_json::json!({ "f": { "mismatch_action": "allow", "match_action": { "errno": 1 }, "filter": [ { "syscall": name } ] } });
    seccompiler::compile_from_json(doc.to_string().as_bytes(), TargetArch::x86_64).is_ok()
}

#[cfg(test)]
mod tests {
    /// The chart profile's names the x86_64 table lacks are other architectures' (32-bit and
    /// ARM/RISC-V variants) or newer than seccompiler's table: none that Ringside calls.
    #[test]
    fn only_foreign_or_new_names_are_skipped() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../charts/ringside/seccomp/ringside-io-uring.json"
        );
        let p: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("profile")).expect("json");
        let mut skipped = Vec::new();
        for e in p["syscalls"].as_array().expect("syscalls") {
            for n in e["names"].as_array().expect("names") {
                let n = n.as_str().expect("name");
                if !super::known_on_x86_64(n) {
                    skipped.push(n.to_owned());
                }
            }
        }
        for needed in [
            "read",
            "write",
            "epoll_wait",
            "io_uring_setup",
            "io_uring_enter",
            "clone",
            "clone3",
            "socket",
            "mmap",
            "futex",
        ] {
            assert!(
                !skipped.iter().any(|s| s == needed),
                "{needed} skipped: {skipped:?}"
            );
        }
        assert!(
            skipped.len() < 120,
            "suspiciously many names skipped: {skipped:?}"
        );
    }
}
