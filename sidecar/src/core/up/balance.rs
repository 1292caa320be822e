//! Endpoint choice within a cluster: per-worker state, no locks, no atomics.
//!
//! `least_request` is power-of-two-choices over in-flight counts (as Envoy does): two random
//! endpoints, the less loaded wins. Counts are per worker, which is what a thread-per-core
//! proxy can know without sharing; with N workers each sees 1/N of the load, so the choice
//! stays good in aggregate.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use std::sync::Arc;

use control::model::LbPolicy;
use control::resilience::Outlier;
use control::snapshot::ClusterSpec;

use super::outlier::{self, Health};
use crate::discovery::{Live, Resolved};

/// Per-cluster state on one worker. Rebuilt when the cluster's endpoints change.
#[derive(Debug)]
pub struct ClusterState {
    endpoints: Vec<SocketAddr>,
    lb: LbPolicy,
    next: Cell<usize>,
    in_flight: Vec<Cell<u32>>,
    /// Latency estimates for `lb: ewma` (empty otherwise).
    rtt: Vec<super::ewma::Ewma>,
    /// The DNS answer `endpoints` came from (`None`: the config's literals).
    source: Option<Arc<Resolved>>,
    /// Each endpoint's health, shared with every worker.
    health: Vec<Arc<Health>>,
    outlier: Outlier,
    name: String,
    /// The cluster's retry budget, shared with every worker (used only by requests with a
    /// retry policy).
    budget: (Arc<super::budget::Budget>, control::retry::RetryBudget),
    /// The cluster's circuit breaker, shared with every worker.
    breaker: Arc<super::breaker::Breaker>,
    limits: control::resilience::ClusterLimits,
}

impl ClusterState {
    fn new(spec: &ClusterSpec, source: Option<Arc<Resolved>>, live: &Live) -> Self {
        let endpoints = match &source {
            Some(r) => r.addrs.clone(),
            None => spec.endpoints.clone(),
        };
        live.health.prune();
        Self {
            next: Cell::new(fastrand::usize(..endpoints.len().max(1))),
            in_flight: endpoints.iter().map(|_| Cell::new(0)).collect(),
            rtt: match spec.lb {
                LbPolicy::Ewma => {
                    let now = std::time::Instant::now();
                    endpoints
                        .iter()
                        .map(|_| super::ewma::Ewma::new(now))
                        .collect()
                }
                _ => Vec::new(),
            },
            health: endpoints
                .iter()
                .map(|a| live.health.health(&spec.name, *a))
                .collect(),
            endpoints,
            lb: spec.lb,
            source,
            outlier: spec.outlier.clone(),
            name: spec.name.clone(),
            budget: (live.budget(&spec.name), spec.retry_budget.clone()),
            breaker: live.breaker(&spec.name),
            limits: spec.limits.clone(),
        }
    }

    /// A request or retry slot under the cluster's `limits`; `None` (counted in
    /// `ringside_overflow_total`) when the limit is reached.
    pub fn admit(&self, kind: super::breaker::Kind) -> Option<super::breaker::Slot> {
        use super::breaker::Kind;
        let (limit, label) = match kind {
            Kind::Connection => (self.limits.max_connections, "max_connections"),
            Kind::Request => (self.limits.max_requests, "max_requests"),
            Kind::Retry => (self.limits.max_retries, "max_retries"),
        };
        let slot = self.breaker.admit(kind, limit);
        if slot.is_none() {
            metrics::counter!("ringside_overflow_total", "cluster" => self.name.clone(), "limit" => label)
                .increment(1);
        }
        slot
    }

    /// Counts a new request against the retry budget (called for requests with a retry
    /// policy only, the route's or the cluster's).
    pub fn budget_request(&self) {
        self.budget.0.request();
    }

    /// Takes a policy retry from the budget; `false` (counted in
    /// `ringside_retry_budget_exhausted_total`) when it is spent.
    pub fn budget_retry(&self) -> bool {
        let (b, spec) = &self.budget;
        let ok = b.try_retry(spec);
        if !ok {
            metrics::counter!("ringside_retry_budget_exhausted_total", "cluster" => self.name.clone())
                .increment(1);
        }
        ok
    }

    /// Records an outcome of endpoint `i`: `ok` is a response below 500. A failure may eject
    /// it (counted in `ringside_outlier_ejections_total`).
    pub fn report(&self, i: usize, ok: bool) {
        let Some(h) = self.health.get(i) else {
            return;
        };
        if ok {
            h.succeeded(&self.outlier);
            return;
        }
        let max = self.outlier.max_ejection_percent;
        if let Some(length) = h.failed(&self.outlier, || outlier::may_eject(&self.health, max)) {
            tracing::warn!(cluster = %self.name, endpoint = %self.endpoints[i], ejected_for = ?length, "outlier: endpoint ejected after consecutive failures");
            metrics::counter!("ringside_outlier_ejections_total", "cluster" => self.name.clone())
                .increment(1);
        }
    }

    /// Index of the endpoint for a new request. Retries walk on from it with [`Self::after`].
    pub fn pick(&self) -> usize {
        let n = self.endpoints.len();
        if n == 1 {
            return 0;
        }
        let i = match self.lb {
            LbPolicy::RoundRobin => self.next.get() % n,
            LbPolicy::LeastRequest => {
                let a = fastrand::usize(..n);
                let b = fastrand::usize(..n);
                if self.in_flight[b].get() < self.in_flight[a].get() {
                    b
                } else {
                    a
                }
            }
            LbPolicy::Ewma => {
                // Two distinct endpoints; the lower latency × load wins.
                let a = fastrand::usize(..n);
                let b = (a + 1 + fastrand::usize(..n - 1)) % n;
                let now = std::time::Instant::now();
                let load =
                    |i: usize| self.rtt[i].cost(now) * f64::from(self.in_flight[i].get() + 1);
                if load(b) < load(a) {
                    b
                } else {
                    a
                }
            }
        };
        self.next.set(i + 1);
        self.skip_ejected(i)
    }

    /// [`Self::pick`], but not `avoid` (the endpoint a retry's previous attempt failed on)
    /// when another endpoint is there (as Envoy's `previous_hosts` retry predicate does).
    pub fn pick_avoiding(&self, avoid: Option<SocketAddr>) -> usize {
        let i = self.pick();
        let n = self.endpoints.len();
        match avoid {
            Some(a) if n > 1 && self.endpoints[i] == a => {
                let j = (i + 1) % n;
                // The next one that is neither ejected nor `a`, if any.
                (0..n - 1)
                    .map(|k| (j + k) % n)
                    .find(|&c| self.endpoints[c] != a && !self.health[c].is_ejected())
                    .unwrap_or(j)
            }
            _ => i,
        }
    }

    /// `i`, or the next endpoint after it that is not ejected; `i` itself when all are (a
    /// cluster that ejected everything still serves: the percentage cap makes that rare).
    fn skip_ejected(&self, i: usize) -> usize {
        let n = self.endpoints.len();
        (0..n)
            .map(|k| (i + k) % n)
            .find(|&j| !self.health[j].is_ejected())
            .unwrap_or(i)
    }

    /// The endpoint `k` places after `first`: retries try every endpoint once.
    pub fn after(&self, first: usize, k: usize) -> usize {
        (first + k) % self.endpoints.len()
    }

    pub fn endpoint(&self, i: usize) -> SocketAddr {
        self.endpoints[i]
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Counts a request against endpoint `i` until the guard drops.
    pub fn start(self: &Rc<Self>, i: usize) -> InFlight {
        self.in_flight[i].set(self.in_flight[i].get() + 1);
        InFlight {
            state: self.clone(),
            i,
        }
    }
}

impl InFlight {
    /// Records the outcome of the request on this endpoint (see [`ClusterState::report`]).
    pub fn report(&self, ok: bool) {
        self.state.report(self.i, ok);
    }

    /// The endpoint this guard counts against, to report an outcome later.
    pub fn target(&self) -> Target {
        Target {
            state: self.state.clone(),
            i: self.i,
        }
    }
}

/// One endpoint of one worker's cluster state: where an outcome is reported.
#[derive(Debug, Clone)]
pub struct Target {
    state: Rc<ClusterState>,
    i: usize,
}

impl Target {
    pub fn addr(&self) -> SocketAddr {
        self.state.endpoints[self.i]
    }

    /// See [`ClusterState::report`].
    pub fn report(&self, ok: bool) {
        self.state.report(self.i, ok);
    }

    /// The endpoint answered (its response head) `rtt` after the attempt began: feeds the
    /// `ewma` balancer's estimate (nothing for other policies).
    pub fn observe(&self, rtt: std::time::Duration) {
        if let Some(e) = self.state.rtt.get(self.i) {
            e.observe(rtt, std::time::Instant::now());
        }
    }

    /// The cluster's balancing state this endpoint belongs to.
    pub fn cluster(&self) -> &ClusterState {
        &self.state
    }
}

/// Decrements the in-flight count on drop, whatever path the request took.
#[derive(Debug)]
pub struct InFlight {
    state: Rc<ClusterState>,
    i: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let c = &self.state.in_flight[self.i];
        c.set(c.get().saturating_sub(1));
    }
}

/// All clusters' state on one worker, keyed by cluster name so it survives config reloads
/// that leave a cluster's endpoints alone, and DNS answers that did not change.
#[derive(Debug, Default)]
pub struct Balancers {
    clusters: RefCell<HashMap<String, Rc<ClusterState>>>,
    live: Arc<Live>,
}

impl Balancers {
    /// Balancers that take the endpoints of clusters with DNS names from `live`.
    pub fn new(live: Arc<Live>) -> Self {
        Self {
            clusters: RefCell::default(),
            live,
        }
    }

    /// The shared DNS table these balancers read.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The cluster's state for a new request: its live endpoints (the literals, plus what its
    /// names resolve to). A request keeps the state it got, so a DNS change or a reload never
    /// changes the endpoints under an exchange in progress.
    pub fn get(&self, spec: &ClusterSpec) -> Rc<ClusterState> {
        let source = if spec.names.is_empty() {
            None
        } else {
            self.live.for_spec(spec)
        };
        let mut map = self.clusters.borrow_mut();
        if let Some(s) = map.get(&spec.name) {
            let same = match (&source, &s.source) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => s.endpoints == spec.endpoints,
                _ => false,
            };
            let budget_same = s.budget.1 == spec.retry_budget;
            if same
                && s.lb == spec.lb
                && s.outlier == spec.outlier
                && s.limits == spec.limits
                && budget_same
            {
                return s.clone();
            }
        }
        let s = Rc::new(ClusterState::new(spec, source, &self.live));
        map.insert(spec.name.clone(), s.clone());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(n: usize, lb: LbPolicy) -> ClusterSpec {
        ClusterSpec {
            name: "c".into(),
            endpoints: (0..n)
                .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16)))
                .collect(),
            names: vec![],
            protocol: control::model::UpstreamProtocol::Http1,
            lb,
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            max_idle_per_endpoint: 8,
            tls: None,
            outlier: Default::default(),
            retry: None,
            retry_budget: Default::default(),
            limits: Default::default(),
        }
    }

    #[test]
    fn round_robin_visits_every_endpoint_evenly() {
        let b = Balancers::default();
        let s = b.get(&spec(3, LbPolicy::RoundRobin));
        let mut hits = [0; 3];
        for _ in 0..300 {
            hits[s.pick()] += 1;
        }
        assert_eq!(hits, [100, 100, 100]);
    }

    #[test]
    fn least_request_avoids_the_busy_endpoint() {
        let b = Balancers::default();
        let s = b.get(&spec(2, LbPolicy::LeastRequest));
        let _busy: Vec<_> = (0..5).map(|_| s.start(0)).collect();
        let picks_of_busy = (0..1000).filter(|_| s.pick() == 0).count();
        // Only a draw of (0, 0) picks the busy one: about a quarter of the time.
        assert!(
            picks_of_busy < 350,
            "busy endpoint picked {picks_of_busy}/1000"
        );
    }

    #[test]
    fn ewma_prefers_the_faster_endpoint() {
        let b = Balancers::default();
        let s = b.get(&spec(2, LbPolicy::Ewma));
        let now = std::time::Instant::now();
        s.rtt[0].observe(std::time::Duration::from_millis(50), now);
        s.rtt[1].observe(std::time::Duration::from_millis(1), now);
        s.rtt[1].observe(std::time::Duration::from_millis(1), now);
        let picks_of_slow = (0..1000).filter(|_| s.pick() == 0).count();
        assert!(
            picks_of_slow < 50,
            "slow endpoint picked {picks_of_slow}/1000"
        );
    }

    #[test]
    fn a_retry_avoids_the_endpoint_that_failed() {
        let b = Balancers::default();
        let s = b.get(&spec(3, LbPolicy::RoundRobin));
        let failed = s.endpoint(0);
        for _ in 0..30 {
            assert_ne!(s.endpoint(s.pick_avoiding(Some(failed))), failed);
        }
        let one = b.get(&ClusterSpec {
            name: "one".into(),
            ..spec(1, LbPolicy::RoundRobin)
        });
        assert_eq!(
            one.pick_avoiding(Some(one.endpoint(0))),
            0,
            "no other endpoint"
        );
    }

    #[test]
    fn in_flight_guard_releases_on_drop() {
        let b = Balancers::default();
        let s = b.get(&spec(1, LbPolicy::LeastRequest));
        drop(s.start(0));
        assert_eq!(s.in_flight[0].get(), 0);
    }

    #[test]
    fn retries_move_to_other_endpoints() {
        let b = Balancers::default();
        let s = b.get(&spec(3, LbPolicy::RoundRobin));
        let first = s.pick();
        let tried: Vec<_> = (0..3).map(|k| s.after(first, k)).collect();
        let mut sorted = tried.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 3, "{tried:?}");
    }

    #[test]
    fn state_is_rebuilt_when_endpoints_change() {
        let b = Balancers::default();
        let a = b.get(&spec(2, LbPolicy::RoundRobin));
        let same = b.get(&spec(2, LbPolicy::RoundRobin));
        assert!(Rc::ptr_eq(&a, &same));
        let changed = b.get(&spec(3, LbPolicy::RoundRobin));
        assert_eq!(changed.len(), 3);
    }
}
