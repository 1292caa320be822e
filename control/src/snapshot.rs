//! The immutable, compiled form of a config that the data plane reads.

use crate::model::{
    self, Config, LbPolicy, ListenerProtocol, UpstreamProtocol, DEFAULT_BODY_READ,
    DEFAULT_HEADER_READ, DEFAULT_SEND_STALL,
};
use crate::route::{Interner, RouteSpec};
use crate::route_table::RouteTable;
use crate::tls::AllowList;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::cluster_id::ClusterId;
pub use crate::route::RequestView;

/// A loaded config, built once and then shared read-only.
#[derive(Debug)]
pub struct Snapshot {
    /// The config as parsed, with defaults filled.
    pub config: Config,
    /// Lowercase hex SHA-256 of the raw file bytes.
    pub sha256: String,
    /// In config order.
    pub listeners: Vec<ListenerSpec>,
    /// Index = `ClusterId.0`, in config order.
    pub clusters: Vec<ClusterSpec>,
}

/// The pace a request body must keep (Apache mod_reqtimeout's `body=GRACE,MinRate=RATE`):
/// its deadline is `grace` after its head, pushed 1 s later for every `min_rate` bytes
/// received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    pub grace: Duration,
    /// Bytes per second, at least 1.
    pub min_rate: u32,
}

impl BodyPace {
    /// The body's deadline once `received` bytes of it arrived, for a body whose head was
    /// read at `start`.
    pub fn deadline(&self, start: std::time::Instant, received: u64) -> std::time::Instant {
        let credit = Duration::from_secs_f64(received as f64 / f64::from(self.min_rate.max(1)));
        start + self.grace + credit.min(Duration::from_secs(100 * 365 * 86_400))
    }
}

#[derive(Debug)]
pub struct ListenerSpec {
    pub name: String,
    pub address: SocketAddr,
    pub kind: ListenerKind,
    /// HTTP only; TCP listeners carry the HTTP default, unused.
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// HTTP only (`timeouts.send_stall`): how long a response may wait on a client that
    /// takes none of it before the connection (HTTP/1.1) or stream (HTTP/2) is cut.
    pub send_stall: Duration,
    /// HTTP only (`timeouts.body_read`, `limits.min_body_rate`): the request body's pace.
    pub body_pace: BodyPace,
    /// HTTP only; TCP listeners carry the HTTP default, unused.
    pub max_header_bytes: usize,
    /// HTTP only; TCP listeners carry the HTTP default, unused.
    pub max_headers: usize,
    /// Connections open across all workers before accepting pauses; `None`: no limit.
    pub max_connections: Option<u32>,
    /// HTTP only: requests in flight across all workers before new ones are refused (503,
    /// REFUSED_STREAM); `None`: no limit.
    pub max_requests: Option<u32>,
    /// HTTP only; TCP listeners carry the HTTP default, unused.
    pub path_normalization: crate::model::PathNormalization,
    /// TLS termination; `None`: plaintext only.
    pub tls: Option<ListenerTlsSpec>,
    /// Peers allowed on every request (http) or connection (tcp); `None`: anyone.
    pub authz: Option<Arc<AllowList>>,
}

/// What the data plane needs of a listener's TLS.
#[derive(Debug, Clone)]
pub struct ListenerTlsSpec {
    pub mode: crate::tls::TlsMode,
    pub config: Arc<rustls::ServerConfig>,
    /// Clients must present a certificate (a verified identity for every TLS connection).
    pub mutual: bool,
    /// Our own SPIFFE ID for XFCC's `By=` (files source); the SVID's is used with SPIFFE.
    pub own_id: Option<String>,
    pub spiffe: bool,
}

/// What the data plane needs of a cluster's TLS.
#[derive(Debug, Clone)]
pub struct ClusterTlsSpec {
    pub config: Arc<rustls::ClientConfig>,
    /// SNI and name to check: `server_name`, else the cluster's DNS name when all its
    /// endpoints are written with the same one, else the endpoint's IP.
    pub server_name: Option<rustls_pki_types::ServerName<'static>>,
}

#[derive(Debug)]
pub enum ListenerKind {
    Http {
        routes: RouteTable,
    },
    Tcp {
        /// Where connections go; with `original_dst`, only those whose original destination
        /// is not in `destinations`. `None` only with `original_dst` (then: pass through).
        cluster: Option<ClusterId>,
        /// Set for a listener that receives iptables-redirected connections.
        original_dst: Option<OriginalDst>,
    },
}

/// Routing by original destination (`SO_ORIGINAL_DST`).
#[derive(Debug, Default)]
pub struct OriginalDst {
    /// Exact original `IP:port` → cluster.
    pub destinations: HashMap<SocketAddr, ClusterId>,
}

/// Where one intercepted connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpTarget {
    Cluster(ClusterId),
    /// Connect to this address itself: the connection's original destination.
    Passthrough(SocketAddr),
}

impl ListenerKind {
    /// Where a TCP connection whose original destination is `original` goes: a
    /// `destinations` entry, else the listener's cluster, else the original destination
    /// itself. `None` for HTTP listeners, or an intercepting listener without a cluster
    /// when no original destination is known.
    pub fn tcp_target(&self, original: Option<SocketAddr>) -> Option<TcpTarget> {
        let ListenerKind::Tcp {
            cluster,
            original_dst,
        } = self
        else {
            return None;
        };
        if let (Some(od), Some(addr)) = (original_dst, original) {
            if let Some(id) = od.destinations.get(&addr) {
                return Some(TcpTarget::Cluster(*id));
            }
        }
        match (cluster, original_dst, original) {
            (Some(id), _, _) => Some(TcpTarget::Cluster(*id)),
            (None, Some(_), Some(addr)) => Some(TcpTarget::Passthrough(addr)),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct ClusterSpec {
    pub name: String,
    /// The `IP:port` literals among `endpoints`, in config order.
    pub endpoints: Vec<SocketAddr>,
    /// The DNS `host:port` names among `endpoints`, in config order: the data plane resolves
    /// them (the live set is the literals plus every address the names resolve to).
    pub names: Vec<crate::endpoint::DnsName>,
    pub protocol: UpstreamProtocol,
    pub lb: LbPolicy,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle_per_endpoint: usize,
    /// TLS origination; `None`: plaintext.
    pub tls: Option<ClusterTlsSpec>,
    // Resilience (control/src/resilience.rs).
    pub outlier: crate::resilience::Outlier,
    pub retry: Option<crate::retry::RetryPolicy>,
    pub retry_budget: crate::retry::RetryBudget,
    pub limits: crate::resilience::ClusterLimits,
}

impl Snapshot {
    /// Compiles a validated config. An `Err` means validation let through
    /// something compilation cannot use, i.e. a bug in this crate.
    pub(crate) fn compile(config: Config, sha256: String) -> Result<Snapshot, String> {
        let clusters: Vec<ClusterSpec> = config
            .clusters
            .iter()
            .map(|c| ClusterSpec {
                name: c.name.clone(),
                endpoints: c.endpoints.iter().filter_map(literal).collect(),
                names: c.endpoints.iter().filter_map(dns_name).collect(),
                protocol: c.protocol,
                lb: c.lb,
                connect_timeout: c.connect_timeout,
                idle_timeout: c.idle_timeout,
                max_idle_per_endpoint: c.max_idle_per_endpoint,
                tls: c.tls.as_ref().and_then(|t| {
                    Some(ClusterTlsSpec {
                        config: t.built.0.clone()?,
                        server_name: t
                            .server_name
                            .clone()
                            .or_else(|| sole_dns_host(&c.endpoints))
                            .and_then(|n| rustls_pki_types::ServerName::try_from(n).ok()),
                    })
                }),
                // Resilience (control/src/resilience.rs).
                outlier: c.outlier.clone(),
                retry: c.retry.clone(),
                retry_budget: c.retry_budget.clone(),
                limits: c.limits.clone(),
            })
            .collect();
        let ids: HashMap<&str, ClusterId> = config
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), ClusterId(i)))
            .collect();
        let resolve = |name: &str| ids.get(name).copied();
        let mut strings = Interner::default();
        let listeners = config
            .listeners
            .iter()
            .map(|l| compile_listener(l, &resolve, &mut strings))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Snapshot {
            config,
            sha256,
            listeners,
            clusters,
        })
    }

    pub fn listener(&self, name: &str) -> Option<&ListenerSpec> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// Ids only come from this snapshot, so they are always in range.
    pub fn cluster(&self, id: ClusterId) -> &ClusterSpec {
        &self.clusters[id.0]
    }

    /// Looks a cluster up by name.
    pub fn cluster_id(&self, name: &str) -> Option<ClusterId> {
        self.clusters
            .iter()
            .position(|c| c.name == name)
            .map(ClusterId)
    }

    /// The certificate, key and CA files this config loaded, in config order: the watcher
    /// follows them so that a rotated certificate reloads the config.
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for l in &self.config.listeners {
            if let Some(t) = &l.tls {
                out.extend(t.cert.iter().chain(&t.key).chain(&t.client_ca).cloned());
                for s in &t.sni {
                    out.push(s.cert.clone());
                    out.push(s.key.clone());
                }
            }
        }
        for c in &self.config.clusters {
            if let Some(t) = &c.tls {
                out.extend(t.ca.iter().chain(&t.cert).chain(&t.key).cloned());
            }
        }
        out
    }

    /// One line for logs, e.g. `2 listeners, 3 clusters, 2 routes, sha256 1a2b3c4d`.
    pub fn summary(&self) -> String {
        let routes: usize = self
            .listeners
            .iter()
            .map(|l| match &l.kind {
                ListenerKind::Http { routes } => routes.len(),
                ListenerKind::Tcp { .. } => 0,
            })
            .sum();
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("1 {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        format!(
            "{}, {}, {}, sha256 {}",
            plural(self.listeners.len(), "listener"),
            plural(self.clusters.len(), "cluster"),
            plural(routes, "route"),
            self.sha256.get(..8).unwrap_or(&self.sha256)
        )
    }
}

fn literal(e: &crate::endpoint::Endpoint) -> Option<SocketAddr> {
    match e {
        crate::endpoint::Endpoint::Addr(a) => Some(*a),
        crate::endpoint::Endpoint::Name(_) => None,
    }
}

fn dns_name(e: &crate::endpoint::Endpoint) -> Option<crate::endpoint::DnsName> {
    match e {
        crate::endpoint::Endpoint::Name(n) => Some(n.clone()),
        crate::endpoint::Endpoint::Addr(_) => None,
    }
}

fn compile_listener(
    l: &model::Listener,
    resolve: &impl Fn(&str) -> Option<ClusterId>,
    strings: &mut Interner,
) -> Result<ListenerSpec, String> {
    let kind = match l.protocol {
        ListenerProtocol::Http => ListenerKind::Http {
            routes: RouteTable::new(
                l.routes
                    .iter()
                    .map(|r| RouteSpec::compile(r, resolve, strings))
                    .collect::<Result<_, _>>()?,
            ),
        },
        ListenerProtocol::Tcp => {
            let lookup = |name: &str| {
                resolve(name)
                    .ok_or_else(|| format!("tcp listener `{}`: unknown cluster `{name}`", l.name))
            };
            let cluster = match l.cluster.as_deref() {
                Some(name) => Some(lookup(name)?),
                None if l.original_dst => None,
                None => return Err(format!("tcp listener `{}` has no cluster", l.name)),
            };
            let original_dst = if l.original_dst {
                let destinations = l
                    .destinations
                    .iter()
                    .map(|d| Ok((d.address, lookup(&d.cluster)?)))
                    .collect::<Result<_, String>>()?;
                Some(OriginalDst { destinations })
            } else {
                None
            };
            ListenerKind::Tcp {
                cluster,
                original_dst,
            }
        }
    };
    let limits = l.limits.clone().unwrap_or_default();
    Ok(ListenerSpec {
        name: l.name.clone(),
        address: l.address,
        kind,
        header_read_timeout: l.timeouts.header_read.unwrap_or(DEFAULT_HEADER_READ),
        idle_timeout: l.timeouts.idle,
        send_stall: l.timeouts.send_stall.unwrap_or(DEFAULT_SEND_STALL),
        body_pace: BodyPace {
            grace: l.timeouts.body_read.unwrap_or(DEFAULT_BODY_READ),
            min_rate: limits.min_body_rate.max(1),
        },
        max_header_bytes: limits.max_header_bytes,
        max_headers: limits.max_headers,
        max_connections: limits.max_connections,
        max_requests: limits.max_requests,
        path_normalization: l.path_normalization.unwrap_or_default(),
        tls: match &l.tls {
            Some(t) => Some(ListenerTlsSpec {
                mode: t.mode,
                config: t
                    .built
                    .0
                    .clone()
                    .ok_or_else(|| format!("listener `{}`: tls was not loaded", l.name))?,
                mutual: t.mutual(),
                own_id: t.own_id.clone(),
                spiffe: t.identity == crate::tls::IdentitySource::Spiffe,
            }),
            None => None,
        },
        authz: l.authz.as_ref().and_then(|a| a.compiled.0.clone()),
    })
}

/// The one host name every endpoint of a cluster is written with (without a trailing `.`),
/// for the TLS name to send and check; `None` with an IP endpoint or several names.
fn sole_dns_host(endpoints: &[crate::endpoint::Endpoint]) -> Option<String> {
    if endpoints.iter().any(|e| literal(e).is_some()) {
        return None;
    }
    let mut hosts = endpoints
        .iter()
        .filter_map(dns_name)
        .map(|n| n.host.trim_end_matches('.').to_owned());
    let first = hosts.next()?;
    hosts.all(|h| h == first).then_some(first)
}
