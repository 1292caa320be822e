use std::collections::BTreeMap;

use super::*;

fn plan() -> Plan {
    Plan {
        proxy_uid: 2102,
        inbound_port: 15006,
        outbound_port: 15001,
        admin_port: 9901,
        skip_inbound_ports: vec![22, 9901],
        skip_outbound_ports: vec![443],
        skip_outbound_cidrs: vec!["169.254.0.0/16".parse().expect("cidr")],
    }
}

#[test]
fn dry_run_prints_the_exact_commands() {
    let expected = "\
# ringside iptables --dry-run: nothing is applied (IPv4 nat table)
iptables -w -t nat -N RINGSIDE_IN_REDIRECT  # unless it exists
iptables -w -t nat -F RINGSIDE_IN_REDIRECT
iptables -w -t nat -N RINGSIDE_INBOUND  # unless it exists
iptables -w -t nat -F RINGSIDE_INBOUND
iptables -w -t nat -N RINGSIDE_OUT_REDIRECT  # unless it exists
iptables -w -t nat -F RINGSIDE_OUT_REDIRECT
iptables -w -t nat -N RINGSIDE_OUTBOUND  # unless it exists
iptables -w -t nat -F RINGSIDE_OUTBOUND
iptables -w -t nat -A RINGSIDE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
iptables -w -t nat -A RINGSIDE_INBOUND -p tcp --dport 22 -j RETURN
iptables -w -t nat -A RINGSIDE_INBOUND -p tcp --dport 9901 -j RETURN
iptables -w -t nat -A RINGSIDE_INBOUND -p tcp -j RINGSIDE_IN_REDIRECT
iptables -w -t nat -A RINGSIDE_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 15001
iptables -w -t nat -A RINGSIDE_OUTBOUND -m owner --uid-owner 2102 -j RETURN
iptables -w -t nat -A RINGSIDE_OUTBOUND -o lo -j RETURN
iptables -w -t nat -A RINGSIDE_OUTBOUND -d 127.0.0.1/32 -j RETURN
iptables -w -t nat -A RINGSIDE_OUTBOUND -p tcp --dport 443 -j RETURN
iptables -w -t nat -A RINGSIDE_OUTBOUND -d 169.254.0.0/16 -j RETURN
iptables -w -t nat -A RINGSIDE_OUTBOUND -p tcp -j RINGSIDE_OUT_REDIRECT
iptables -w -t nat -A PREROUTING -p tcp -j RINGSIDE_INBOUND  # unless present (checked with -C)
iptables -w -t nat -A OUTPUT -p tcp -j RINGSIDE_OUTBOUND  # unless present (checked with -C)
";
    assert_eq!(dry_run(&plan(), "iptables"), expected);
}

/// An in-memory nat table that understands the commands `apply` and `remove` run.
#[derive(Default)]
struct FakeTable {
    chains: BTreeMap<String, Vec<Vec<String>>>,
    log: Vec<String>,
}

impl FakeTable {
    fn new() -> Self {
        let mut t = FakeTable::default();
        for c in ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] {
            t.chains.insert(c.into(), Vec::new());
        }
        t
    }

    fn rule_count(&self) -> usize {
        self.chains.values().map(Vec::len).sum()
    }
}

impl Runner for FakeTable {
    fn run(&mut self, rule: &Rule) -> Result<Exit, IptablesError> {
        self.log.push(rule.to_string());
        let a = &rule.0;
        let fail = || Exit::Failed {
            status: "exit status: 1".into(),
            stderr: format!("fake: {}", a.join(" ")),
        };
        let (action, chain) = match (a[0].as_str(), a.get(1)) {
            ("-n", _) => ("-L", &a[2]),
            (x, Some(c)) => (x, c),
            _ => return Ok(fail()),
        };
        let spec: Vec<String> = a.iter().skip(2).cloned().collect();
        let exists = self.chains.contains_key(chain);
        let ok = match action {
            "-L" => exists,
            "-N" if !exists => {
                self.chains.insert(chain.clone(), Vec::new());
                true
            }
            "-F" if exists => {
                self.chains.insert(chain.clone(), Vec::new());
                true
            }
            "-X" if exists => {
                let used = self
                    .chains
                    .values()
                    .flatten()
                    .any(|r| r.last() == Some(chain));
                !used && self.chains.remove(chain).is_some()
            }
            "-A" if exists => {
                // A jump target must exist, as in the real iptables.
                let target_ok = spec
                    .last()
                    .is_none_or(|t| !t.starts_with("RINGSIDE") || self.chains.contains_key(t));
                if target_ok {
                    self.chains.entry(chain.clone()).or_default().push(spec);
                }
                target_ok
            }
            "-C" => exists && self.chains[chain].contains(&spec),
            "-D" if exists => match self.chains[chain].iter().position(|r| *r == spec) {
                Some(i) => {
                    self.chains.entry(chain.clone()).or_default().remove(i);
                    true
                }
                None => false,
            },
            _ => false,
        };
        Ok(if ok { Exit::Ok } else { fail() })
    }
}

#[test]
fn apply_is_idempotent_and_remove_undoes_it() {
    let mut t = FakeTable::new();
    apply(&plan(), &mut t, "iptables").expect("first apply");
    let once = t.chains.clone();
    let n = t.rule_count();
    assert_eq!(n, plan().chain_rules().len() + 2);
    apply(&plan(), &mut t, "iptables").expect("second apply");
    assert_eq!(
        t.chains, once,
        "a second run must leave exactly one set of rules"
    );
    // A changed plan replaces the chain contents rather than adding to them.
    let mut other = plan();
    other.outbound_port = 16001;
    apply(&other, &mut t, "iptables").expect("re-apply");
    assert_eq!(t.rule_count(), n);
    assert!(t.chains["RINGSIDE_OUT_REDIRECT"][0].contains(&"16001".to_owned()));
    remove(&mut t, "iptables").expect("remove");
    assert_eq!(t.rule_count(), 0);
    assert!(!t.chains.keys().any(|c| c.starts_with("RINGSIDE")));
    remove(&mut t, "iptables").expect("remove twice is fine");
}

#[test]
fn a_failing_command_is_reported_with_its_command_line() {
    struct Refuses;
    impl Runner for Refuses {
        fn run(&mut self, _: &Rule) -> Result<Exit, IptablesError> {
            Ok(Exit::Failed {
                status: "exit status: 4".into(),
                stderr: "Permission denied (you must be root)".into(),
            })
        }
    }
    let e = apply(&plan(), &mut Refuses, "iptables").expect_err("must fail");
    assert_eq!(
        e.to_string(),
        "`iptables -w -t nat -N RINGSIDE_IN_REDIRECT` failed (exit status: 4): Permission denied (you must be root)"
    );
}

#[test]
fn a_missing_binary_says_so() {
    let mut sys = System {
        bin: "/nonexistent/iptables".into(),
    };
    let e = apply(&plan(), &mut sys, "/nonexistent/iptables").expect_err("must fail");
    assert!(matches!(e, IptablesError::Missing(_)), "{e:?}");
    assert!(e.to_string().contains("apt-get install iptables"), "{e}");
}
