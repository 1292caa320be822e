//! `ringside iptables`: installs (or removes) the nat rules that send a pod's TCP traffic
//! through Ringside, for an init container (what linkerd-init and istio-init do). IPv4 only.
//!
//! Inbound TCP to the pod is redirected to `--inbound-port`, outbound TCP from the pod's
//! apps to `--outbound-port`, where a listener with `original_dst: true` recovers each
//! connection's real destination. See docs/interception.md for the rules and their order.

pub mod rules;

use std::io;
use std::process::Command;

pub use rules::{Cidr, Plan, Rule};

#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error(
        "`{0}` was not found: install iptables in this image (Debian/Ubuntu: apt-get install \
         iptables; Alpine: apk add iptables) or pass --iptables-cmd"
    )]
    Missing(String),
    #[error("could not run `{cmd}`: {source}")]
    Spawn { cmd: String, source: io::Error },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
}

/// Runs one `iptables -w -t nat ...` command: `Ok(true)` if it exited 0, `Ok(false)` if it
/// exited non-zero (for checks like `-C`), `Err` if it could not run at all.
pub trait Runner {
    fn run(&mut self, rule: &Rule) -> Result<Exit, IptablesError>;
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Failed { status: String, stderr: String },
}

/// The real thing: spawns the iptables binary. `-w` waits for the xtables lock instead of
/// failing when another init container or kube-proxy holds it.
#[derive(Debug)]
pub struct System {
    pub bin: String,
}

impl System {
    pub fn command_line(&self, rule: &Rule) -> String {
        command_line(&self.bin, rule)
    }
}

/// The exact command line for `rule`, as run and as `--dry-run` prints it.
pub fn command_line(bin: &str, rule: &Rule) -> String {
    format!("{bin} -w -t nat {rule}")
}

impl Runner for System {
    fn run(&mut self, rule: &Rule) -> Result<Exit, IptablesError> {
        let out = Command::new(&self.bin)
            .args(["-w", "-t", "nat"])
            .args(&rule.0)
            .output()
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound => IptablesError::Missing(self.bin.clone()),
                _ => IptablesError::Spawn {
                    cmd: self.command_line(rule),
                    source,
                },
            })?;
        if out.status.success() {
            Ok(Exit::Ok)
        } else {
            Ok(Exit::Failed {
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }
}

/// Runs `rule` and fails unless it succeeds.
fn must(r: &mut dyn Runner, bin: &str, rule: &Rule) -> Result<(), IptablesError> {
    match r.run(rule)? {
        Exit::Ok => Ok(()),
        Exit::Failed { status, stderr } => Err(IptablesError::Failed {
            cmd: command_line(bin, rule),
            status,
            stderr,
        }),
    }
}

/// Runs a check (`-C`, `-L`): whether it succeeded.
fn holds(r: &mut dyn Runner, rule: &Rule) -> Result<bool, IptablesError> {
    Ok(r.run(rule)? == Exit::Ok)
}

fn chain_exists(r: &mut dyn Runner, chain: &str) -> Result<bool, IptablesError> {
    holds(r, &Rule::new(&["-n", "-L", chain]))
}

/// Installs the plan: creates our chains if absent, flushes and refills them, then adds each
/// jump rule unless it is already there. Safe to run again: the result is the same.
pub fn apply(plan: &Plan, r: &mut dyn Runner, bin: &str) -> Result<(), IptablesError> {
    for chain in rules::CHAINS {
        if !chain_exists(r, chain)? {
            must(r, bin, &Rule::new(&["-N", chain]))?;
        }
        must(r, bin, &Rule::new(&["-F", chain]))?;
    }
    for rule in plan.chain_rules() {
        must(r, bin, &rule)?;
    }
    for jump in rules::jump_rules() {
        if !holds(r, &jump.with_action("-C"))? {
            must(r, bin, &jump)?;
        }
    }
    Ok(())
}

/// Undoes [`apply`]: removes the jump rules (every copy), then flushes and deletes our chains.
pub fn remove(r: &mut dyn Runner, bin: &str) -> Result<(), IptablesError> {
    for jump in rules::jump_rules() {
        while holds(r, &jump.with_action("-C"))? {
            must(r, bin, &jump.with_action("-D"))?;
        }
    }
    // Flush all before deleting any: RINGSIDE_INBOUND still refers to RINGSIDE_IN_REDIRECT.
    let mut present = Vec::new();
    for chain in rules::CHAINS {
        if chain_exists(r, chain)? {
            must(r, bin, &Rule::new(&["-F", chain]))?;
            present.push(chain);
        }
    }
    for chain in present {
        must(r, bin, &Rule::new(&["-X", chain]))?;
    }
    Ok(())
}

/// What `--dry-run` prints: every command `apply` runs on a table that has none of our
/// chains yet, with the conditional ones marked.
pub fn dry_run(plan: &Plan, bin: &str) -> String {
    let mut out =
        String::from("# ringside iptables --dry-run: nothing is applied (IPv4 nat table)\n");
    for chain in rules::CHAINS {
        let new = Rule::new(&["-N", chain]);
        out.push_str(&format!(
            "{}  # unless it exists\n",
            command_line(bin, &new)
        ));
        out.push_str(&format!(
            "{}\n",
            command_line(bin, &Rule::new(&["-F", chain]))
        ));
    }
    for rule in plan.chain_rules() {
        out.push_str(&format!("{}\n", command_line(bin, &rule)));
    }
    for jump in rules::jump_rules() {
        out.push_str(&format!(
            "{}  # unless present (checked with -C)\n",
            command_line(bin, &jump)
        ));
    }
    out
}

#[cfg(test)]
mod tests;
