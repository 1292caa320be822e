//! The rules `ringside iptables` installs, built as plain data so they can be printed
//! (`--dry-run`), tested, and applied the same way.
//!
//! Everything lives in the `nat` table, in four chains of our own that are flushed and
//! refilled on every run, plus one jump rule each from `PREROUTING` and `OUTPUT` that is
//! added only if absent: running the command twice leaves exactly one set of rules.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

pub const INBOUND: &str = "RINGSIDE_INBOUND";
pub const IN_REDIRECT: &str = "RINGSIDE_IN_REDIRECT";
pub const OUTBOUND: &str = "RINGSIDE_OUTBOUND";
pub const OUT_REDIRECT: &str = "RINGSIDE_OUT_REDIRECT";

/// Our chains, in the order they are created (a chain must exist before a rule jumps to it).
pub const CHAINS: [&str; 4] = [IN_REDIRECT, INBOUND, OUT_REDIRECT, OUTBOUND];

/// What to intercept, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub proxy_uid: u32,
    pub inbound_port: u16,
    pub outbound_port: u16,
    pub admin_port: u16,
    pub skip_inbound_ports: Vec<u16>,
    pub skip_outbound_ports: Vec<u16>,
    pub skip_outbound_cidrs: Vec<Cidr>,
}

/// An IPv4 network, `10.0.0.0/8` or a single address (`/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid IPv4 CIDR `{0}`: expected e.g. 10.0.0.0/8 or 10.1.2.3 (IPv6 is not supported)")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
            None => (s, 32),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The arguments of one `iptables -w -t nat` invocation, after `-t nat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule(pub Vec<String>);

impl Rule {
    pub fn new(args: &[&str]) -> Rule {
        Rule(args.iter().map(|s| (*s).to_owned()).collect())
    }

    /// The same rule with its `-A`/`-D` action replaced (e.g. `-C` to check for it).
    pub fn with_action(&self, action: &str) -> Rule {
        let mut args = self.0.clone();
        if let Some(first) = args.first_mut() {
            *first = action.to_owned();
        }
        Rule(args)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl Plan {
    /// The rules inside our chains, appended after each chain is flushed.
    pub fn chain_rules(&self) -> Vec<Rule> {
        let mut r = Vec::new();
        let inbound = self.inbound_port.to_string();
        let outbound = self.outbound_port.to_string();
        r.push(Rule::new(&[
            "-A",
            IN_REDIRECT,
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-ports",
            &inbound,
        ]));
        // Inbound: everything to the pod except the admin port (probes and scrapes reach
        // Ringside itself) and the ports the operator exempts.
        let mut skip_in = vec![self.admin_port];
        skip_in.extend(&self.skip_inbound_ports);
        for port in dedup(skip_in) {
            r.push(return_port(INBOUND, port));
        }
        r.push(Rule::new(&["-A", INBOUND, "-p", "tcp", "-j", IN_REDIRECT]));
        r.push(Rule::new(&[
            "-A",
            OUT_REDIRECT,
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-ports",
            &outbound,
        ]));
        // Outbound, in order: the proxy's own connections first (redirecting them would send
        // them back to the proxy forever), then loopback (the app talking to itself or to a
        // local sidecar, including the proxy's listeners), then the exemptions.
        let uid = self.proxy_uid.to_string();
        r.push(Rule::new(&[
            "-A",
            OUTBOUND,
            "-m",
            "owner",
            "--uid-owner",
            &uid,
            "-j",
            "RETURN",
        ]));
        r.push(Rule::new(&["-A", OUTBOUND, "-o", "lo", "-j", "RETURN"]));
        r.push(Rule::new(&[
            "-A",
            OUTBOUND,
            "-d",
            "127.0.0.1/32",
            "-j",
            "RETURN",
        ]));
        for port in dedup(self.skip_outbound_ports.clone()) {
            r.push(return_port(OUTBOUND, port));
        }
        for cidr in &self.skip_outbound_cidrs {
            r.push(Rule::new(&[
                "-A",
                OUTBOUND,
                "-d",
                &cidr.to_string(),
                "-j",
                "RETURN",
            ]));
        }
        r.push(Rule::new(&[
            "-A",
            OUTBOUND,
            "-p",
            "tcp",
            "-j",
            OUT_REDIRECT,
        ]));
        r
    }
}

/// The jump rules from the built-in chains into ours; added only if absent.
pub fn jump_rules() -> Vec<Rule> {
    vec![
        Rule::new(&["-A", "PREROUTING", "-p", "tcp", "-j", INBOUND]),
        Rule::new(&["-A", "OUTPUT", "-p", "tcp", "-j", OUTBOUND]),
    ]
}

fn return_port(chain: &str, port: u16) -> Rule {
    Rule::new(&[
        "-A",
        chain,
        "-p",
        "tcp",
        "--dport",
        &port.to_string(),
        "-j",
        "RETURN",
    ])
}

/// Sorted, without repeats: the same input always gives the same rules.
fn dedup(mut ports: Vec<u16>) -> Vec<u16> {
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_or_say_why() {
        assert_eq!(
            "10.0.0.0/8".parse(),
            Ok(Cidr {
                addr: Ipv4Addr::new(10, 0, 0, 0),
                prefix: 8
            })
        );
        assert_eq!(
            "10.1.2.3".parse::<Cidr>().map(|c| c.to_string()),
            Ok("10.1.2.3/32".to_owned())
        );
        for bad in ["10.0.0.0/33", "fd00::/8", "x", "10.0.0.0/", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
