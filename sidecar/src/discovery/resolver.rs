//! The resolver thread: one tokio current-thread runtime running `hickory-resolver`, never a
//! data-plane worker. It follows the config (names added or removed by a reload), resolves
//! each name again when its answer's TTL runs out (clamped to [`MIN_TTL`, `MAX_TTL`]), and
//! publishes a cluster's new live set only when the addresses changed.
//!
//! A failed or empty answer keeps the last good addresses (a DNS outage must not empty a
//! cluster), is counted in `ringside_dns_resolutions_total{result="error"|"empty"}`, and is
//! retried with a doubling delay from [`MIN_TTL`] up to [`MAX_RETRY`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use control::endpoint::DnsName;
use control::snapshot::Snapshot;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

use super::live::{Live, NameState, Resolved};
use crate::core::lifecycle::Lifecycle;
use crate::core::worker::SharedConfig;

/// The shortest re-resolution interval, whatever the TTL (a TTL of 0 would otherwise spin).
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest: a name whose TTL is a day still follows a change within five minutes.
pub const MAX_TTL: Duration = Duration::from_secs(300);
/// The longest wait between retries of a failing name.
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// How often the thread looks for a reload that changed the names.
const CONFIG_POLL: Duration = Duration::from_millis(200);
/// How long one lookup may take, all servers and attempts included.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Where names are resolved.
#[derive(Debug, Clone, Default)]
pub struct Servers {
    /// `--dns-server`: these servers (UDP, then TCP) instead of resolv.conf's `nameserver`s;
    /// the search list and `ndots` still come from `/etc/resolv.conf` when it is readable.
    pub explicit: Vec<SocketAddr>,
}

/// Starts the resolver thread. Returns once the first round of lookups ended or `wait`
/// passed, whichever is first, so startup never waits on DNS for longer than `wait`.
///
/// # Errors
/// The thread or its runtime could not start.
pub fn spawn(
    config: SharedConfig,
    lifecycle: Arc<Lifecycle>,
    live: Arc<Live>,
    servers: Servers,
    wait: Duration,
) -> anyhow::Result<()> {
    super::describe();
    let (first_tx, first_rx) = std_mpsc::channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the DNS resolver's runtime")?;
    std::thread::Builder::new()
        .name("ringside-dns".into())
        .spawn(move || {
            let resolver = build_resolver(&servers);
            let mut state = State::default();
            rt.block_on(state.run(resolver, config, lifecycle, live, first_tx));
        })
        .context("spawning the DNS resolver thread")?;
    if first_rx.recv_timeout(wait).is_err() {
        tracing::warn!(
            waited = ?wait,
            "DNS: the first lookups did not all end in time; starting with what is known"
        );
    }
    Ok(())
}

fn build_resolver(servers: &Servers) -> TokioResolver {
    let (system, mut opts) = match hickory_resolver::system_conf::read_system_conf() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "DNS: cannot read /etc/resolv.conf; no search list");
            (
                ResolverConfig::from_parts(None, vec![], NameServerConfigGroup::new()),
                ResolverOpts::default(),
            )
        }
    };
    let config = if servers.explicit.is_empty() {
        system
    } else {
        let mut group = NameServerConfigGroup::new();
        for s in &servers.explicit {
            group.merge(NameServerConfigGroup::from_ips_clear(
                &[s.ip()],
                s.port(),
                true,
            ));
        }
        ResolverConfig::from_parts(system.domain().cloned(), system.search().to_vec(), group)
    };
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.timeout = opts.timeout.min(Duration::from_secs(1));
    opts.attempts = opts.attempts.min(2);
    // The resolver re-asks when a TTL runs out; a cache would only hand the same answer back.
    opts.cache_size = 0;
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        .with_options(opts)
        .build()
}

/// One name's answers over time.
#[derive(Debug)]
struct Name {
    state: NameState,
    due: Instant,
}

/// What the thread tracks: per cluster, its names and literals as configured.
#[derive(Debug, Default)]
struct State {
    clusters: HashMap<String, Cluster>,
}

#[derive(Debug)]
struct Cluster {
    names: Vec<DnsName>,
    literals: Vec<SocketAddr>,
    resolved: Vec<Name>,
    published: Option<Arc<Resolved>>,
}

impl State {
    async fn run(
        &mut self,
        resolver: TokioResolver,
        config: SharedConfig,
        lifecycle: Arc<Lifecycle>,
        live: Arc<Live>,
        first: std_mpsc::Sender<()>,
    ) {
        let mut seen = None;
        let mut first = Some(first);
        loop {
            let generation = lifecycle.generation();
            if seen != Some(generation) {
                seen = Some(generation);
                self.follow(&config.load());
            }
            self.resolve_due(&resolver).await;
            self.publish(&live);
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            let next = self
                .clusters
                .values()
                .flat_map(|c| c.resolved.iter().map(|n| n.due))
                .min()
                .map_or(CONFIG_POLL, |due| {
                    due.saturating_duration_since(Instant::now())
                        .min(CONFIG_POLL)
                });
            tokio::time::sleep(next).await;
        }
    }

    /// Takes on the clusters and names of `snap`: a new or changed cluster is resolved now,
    /// an unchanged one keeps its state, a removed one is forgotten.
    fn follow(&mut self, snap: &Snapshot) {
        let mut keep = HashSet::new();
        for c in snap.clusters.iter().filter(|c| !c.names.is_empty()) {
            keep.insert(c.name.clone());
            let same = self
                .clusters
                .get(&c.name)
                .is_some_and(|old| old.names == c.names && old.literals == c.endpoints);
            if same {
                continue;
            }
            let now = Instant::now();
            let resolved = c
                .names
                .iter()
                .map(|n| Name {
                    state: NameState {
                        name: n.to_string(),
                        addresses: vec![],
                        failures: 0,
                        last_error: None,
                        resolved_at_unix: 0.0,
                    },
                    due: now,
                })
                .collect();
            self.clusters.insert(
                c.name.clone(),
                Cluster {
                    names: c.names.clone(),
                    literals: c.endpoints.clone(),
                    resolved,
                    published: None,
                },
            );
        }
        self.clusters.retain(|name, _| keep.contains(name));
    }

    /// Looks up every name whose time came, all at once.
    async fn resolve_due(&mut self, resolver: &TokioResolver) {
        let now = Instant::now();
        let mut lookups = Vec::new();
        for (cluster, c) in self.clusters.iter_mut() {
            for (n, name) in c.names.iter().zip(c.resolved.iter_mut()) {
                if name.due <= now {
                    lookups.push(lookup(resolver, cluster, n, name));
                }
            }
        }
        futures_util::future::join_all(lookups).await;
    }

    /// Publishes the table if any cluster's addresses changed.
    fn publish(&mut self, live: &Live) {
        let mut changed = live.all().len() != self.clusters.len();
        for (name, c) in self.clusters.iter_mut() {
            let mut addrs = c.literals.clone();
            for n in &c.resolved {
                for a in &n.state.addresses {
                    if !addrs.contains(a) {
                        addrs.push(*a);
                    }
                }
            }
            let next = Resolved {
                names: c.names.clone(),
                literals: c.literals.clone(),
                addrs,
                per_name: c.resolved.iter().map(|n| n.state.clone()).collect(),
            };
            if c.published.as_deref() != Some(&next) {
                if c.published.as_ref().map(|p| &p.addrs) != Some(&next.addrs) {
                    tracing::info!(cluster = %name, endpoints = ?next.addrs, "DNS: live endpoints");
                }
                metrics::gauge!("ringside_cluster_endpoints", "cluster" => name.clone())
                    .set(next.addrs.len() as f64);
                c.published = Some(Arc::new(next));
                changed = true;
            }
        }
        if changed {
            live.publish(
                self.clusters
                    .iter()
                    .filter_map(|(k, c)| Some((k.clone(), c.published.clone()?)))
                    .collect(),
            );
        }
    }
}

/// One lookup of `n`, recorded in `name`.
async fn lookup(resolver: &TokioResolver, cluster: &str, n: &DnsName, name: &mut Name) {
    let answer = tokio::time::timeout(LOOKUP_TIMEOUT, resolver.lookup_ip(n.host.as_str())).await;
    let now = Instant::now();
    let (result, error) = match answer {
        Ok(Ok(found)) => {
            let addrs: Vec<SocketAddr> =
                found.iter().map(|ip| SocketAddr::new(ip, n.port)).collect();
            if addrs.is_empty() {
                ("empty", Some("no A or AAAA records".to_string()))
            } else {
                let ttl = found
                    .valid_until()
                    .saturating_duration_since(now)
                    .clamp(MIN_TTL, MAX_TTL);
                let result = if addrs == name.state.addresses {
                    "ok"
                } else {
                    "changed"
                };
                name.state.addresses = addrs;
                name.state.failures = 0;
                name.state.last_error = None;
                name.state.resolved_at_unix = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                name.due = now + ttl;
                (result, None)
            }
        }
        Ok(Err(e)) if e.is_no_records_found() => ("empty", Some(e.to_string())),
        Ok(Err(e)) => ("error", Some(e.to_string())),
        Err(_) => (
            "error",
            Some(format!("no answer within {LOOKUP_TIMEOUT:?}")),
        ),
    };
    metrics::counter!("ringside_dns_resolutions_total", "cluster" => cluster.to_owned(), "result" => result)
        .increment(1);
    if let Some(e) = error {
        name.state.failures = name.state.failures.saturating_add(1);
        let retry = MIN_TTL
            .saturating_mul(1 << name.state.failures.min(6).saturating_sub(1))
            .min(MAX_RETRY);
        tracing::warn!(cluster, name = %n, error = %e, kept = ?name.state.addresses, retry_in = ?retry, "DNS: lookup failed; keeping the last good addresses");
        name.state.last_error = Some(e);
        name.due = now + retry;
    }
}
