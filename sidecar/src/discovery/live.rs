//! The live endpoint sets of clusters with DNS names, shared by the resolver thread (the only
//! writer) and every worker (readers). Workers read through `ArcSwap`: no lock on the hot path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use control::endpoint::DnsName;
use control::snapshot::ClusterSpec;
use serde::Serialize;

/// One cluster's endpoints as last resolved. Immutable: a changed answer publishes a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The names this was resolved from, in config order (a reload that changes them makes
    /// this stale until the resolver catches up).
    pub names: Vec<DnsName>,
    /// The cluster's `IP:port` literals, included in `addrs`.
    pub literals: Vec<SocketAddr>,
    /// Literals first, then each name's addresses in answer order; no duplicates.
    pub addrs: Vec<SocketAddr>,
    /// Per name, for the admin API.
    pub per_name: Vec<NameState>,
}

/// What the resolver knows about one name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameState {
    /// `host:port` as configured.
    pub name: String,
    /// The last good answer (kept through failures and empty answers).
    pub addresses: Vec<SocketAddr>,
    /// Failed or empty answers in a row since the last good one.
    pub failures: u32,
    /// The last failure's text, if the last answer was not good.
    pub last_error: Option<String>,
    /// When the last good answer arrived, in seconds since the Unix epoch (0: never).
    pub resolved_at_unix: f64,
}

impl Resolved {
    /// Whether this was resolved for `spec` as it is now configured.
    pub fn matches(&self, spec: &ClusterSpec) -> bool {
        self.names == spec.names && self.literals == spec.endpoints
    }
}

/// What every worker shares about endpoints: the live sets of clusters with DNS names (only
/// those clusters appear), and each endpoint's health (outlier ejection).
#[derive(Debug, Default)]
pub struct Live {
    sets: ArcSwap<HashMap<String, Arc<Resolved>>>,
    /// Endpoint health shared by all workers (`core::up::outlier`).
    pub health: crate::core::up::outlier::Registry,
    /// Retry budgets by cluster name, shared by all workers (`core::up::budget`); taken when
    /// a worker builds a cluster's balancing state, never per request.
    budgets: std::sync::Mutex<HashMap<String, Arc<crate::core::up::budget::Budget>>>,
    /// Circuit breakers by cluster name, shared by all workers (`core::up::breaker`).
    breakers: std::sync::Mutex<HashMap<String, Arc<crate::core::up::breaker::Breaker>>>,
}

impl Live {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The live set resolved for `spec` as configured now; `None` before the first answer
    /// for its current names (callers then use the literals alone).
    pub fn for_spec(&self, spec: &ClusterSpec) -> Option<Arc<Resolved>> {
        self.sets
            .load()
            .get(&spec.name)
            .filter(|r| r.matches(spec))
            .cloned()
    }

    /// Whether `addr` is in `cluster`'s live set.
    pub fn has(&self, cluster: &str, addr: SocketAddr) -> bool {
        self.sets
            .load()
            .get(cluster)
            .is_some_and(|r| r.addrs.contains(&addr))
    }

    /// The retry budget of `cluster`, created on first use.
    pub fn budget(&self, cluster: &str) -> Arc<crate::core::up::budget::Budget> {
        let mut map = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(cluster.to_owned()).or_default().clone()
    }

    /// The circuit breaker of `cluster`, created on first use.
    pub fn breaker(&self, cluster: &str) -> Arc<crate::core::up::breaker::Breaker> {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(cluster.to_owned()).or_default().clone()
    }

    /// Every cluster's live set (admin API).
    pub fn all(&self) -> Arc<HashMap<String, Arc<Resolved>>> {
        self.sets.load_full()
    }

    /// Replaces the whole table (the resolver's only write). Clusters not in `sets` are gone.
    pub fn publish(&self, sets: HashMap<String, Arc<Resolved>>) {
        self.sets.store(Arc::new(sets));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(names: &[&str]) -> ClusterSpec {
        ClusterSpec {
            name: "c".into(),
            endpoints: vec![],
            names: names
                .iter()
                .map(|n| DnsName {
                    host: (*n).into(),
                    port: 80,
                })
                .collect(),
            protocol: control::model::UpstreamProtocol::Http1,
            lb: control::model::LbPolicy::RoundRobin,
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            max_idle_per_endpoint: 8,
            outlier: Default::default(),
            retry: None,
            retry_budget: Default::default(),
            limits: Default::default(),
            tls: None,
        }
    }

    #[test]
    fn a_set_resolved_for_other_names_is_not_used() {
        let live = Live::default();
        let s = spec(&["a"]);
        let addr: SocketAddr = "127.0.0.2:80".parse().unwrap();
        let r = Resolved {
            names: s.names.clone(),
            literals: vec![],
            addrs: vec![addr],
            per_name: vec![],
        };
        live.publish(HashMap::from([("c".to_string(), Arc::new(r))]));
        assert_eq!(live.for_spec(&s).map(|r| r.addrs.clone()), Some(vec![addr]));
        assert!(live.has("c", addr));
        assert!(live.for_spec(&spec(&["b"])).is_none());
    }
}
