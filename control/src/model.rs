//! The config file's schema as plain serde types, with every default filled in.
//!
//! `load_file`/`load_str` decode YAML with their own span-aware decoder (so
//! they can report every problem with a position), then build these types.
//! The serde derives mirror the same schema so the admin API can dump the
//! active config as JSON and that dump can be read back.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Whole config file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub admin: Admin,
    pub listeners: Vec<Listener>,
    pub clusters: Vec<Cluster>,
    /// Where `identity: spiffe` certificates come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::tls::Identity>,
}

/// Admin API endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    #[serde(default = "default_admin_address")]
    pub address: SocketAddr,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: default_admin_address(),
        }
    }
}

/// Default admin address: loopback only, since the admin API is unauthenticated.
pub fn default_admin_address() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9901)
}

/// What a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerProtocol {
    Http,
    Tcp,
}

impl ListenerProtocol {
    pub const NAMES: &'static [(&'static str, ListenerProtocol)] = &[
        ("http", ListenerProtocol::Http),
        ("tcp", ListenerProtocol::Tcp),
    ];
}

/// A listening socket. HTTP listeners have `routes`; TCP listeners forward
/// every connection to one `cluster`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ListenerRepr")]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub protocol: ListenerProtocol,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// TCP only: route each connection by the destination it had before an iptables
    /// `REDIRECT` sent it here (`SO_ORIGINAL_DST`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub original_dst: bool,
    /// With `original_dst`: original destinations that go to a cluster instead of straight
    /// through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Destination>,
    pub timeouts: Timeouts,
    /// `None` for TCP listeners, which have no request heads to limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// `None` for TCP listeners, which have no request paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_normalization: Option<PathNormalization>,
    /// TLS termination (`None`: plaintext).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::ListenerTls>,
    /// Peers allowed on every route (or connection, for tcp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authz: Option<crate::tls::Authz>,
}

/// An original destination (`IP:port` exactly) and the cluster its connections go to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub address: SocketAddr,
    pub cluster: String,
}

/// Listener timeouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    /// Time allowed to receive a full request head (HTTP only; `None` for TCP).
    #[serde(
        with = "crate::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub header_read: Option<Duration>,
    /// Idle time before a connection is closed.
    #[serde(with = "crate::duration::serde_str")]
    pub idle: Duration,
    /// Longest a response may wait on a client that takes none of it (HTTP only; `None` for
    /// TCP): on HTTP/1.1 a write (one response piece, at most a head and 32 KiB of body) the
    /// kernel does not accept within it closes the connection (nginx's `send_timeout`); on
    /// HTTP/2 a stream granted no send window for this long is reset (Envoy's
    /// `stream_idle_timeout`, flow control included).
    #[serde(
        with = "crate::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub send_stall: Option<Duration>,
    /// Time a request body gets before `limits.min_body_rate` holds it to a pace (HTTP only;
    /// `None` for TCP): the body's deadline is this after its head, pushed 1 s later for
    /// every `min_body_rate` bytes received (Apache mod_reqtimeout's `body=…,MinRate=…`).
    #[serde(
        with = "crate::duration::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub body_read: Option<Duration>,
}

/// Default time to receive a full request head.
pub const DEFAULT_HEADER_READ: Duration = Duration::from_secs(10);
/// Default HTTP keep-alive idle: above Go's 90s client idle so the client,
/// not the proxy, closes idle connections and never races a reused one.
pub const DEFAULT_HTTP_IDLE: Duration = Duration::from_secs(120);
/// Default TCP idle: long-lived protocols (databases) are often quiet for minutes.
pub const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(3600);
/// Default send stall: nginx's `send_timeout`. Long enough for any client that reads at
/// all (a 32 KiB write in 60 s is half a KiB a second), short enough that a client that
/// stopped reading frees its connection, its upstream request and their buffers within a
/// minute instead of never.
pub const DEFAULT_SEND_STALL: Duration = Duration::from_secs(60);
/// Default grace before a request body is held to `min_body_rate`: Apache's `body=20` is
/// for a whole server's clients; 30 s leaves a sidecar's peers (often behind a busy
/// client pool) room for a slow start, and a trickler costs no more than that.
pub const DEFAULT_BODY_READ: Duration = Duration::from_secs(30);
/// Default minimum request body rate in bytes per second, past the `body_read` grace (Apache
/// mod_reqtimeout's `MinRate=500`, rounded up to 1 KiB/s: a body trickled slower than a
/// modem is an attack or a dead client, either way not worth a connection and an upstream
/// request each).
pub const DEFAULT_MIN_BODY_RATE: u32 = 1024;

/// How an HTTP listener normalises request paths before routing; the normalised path is what
/// the upstream receives (RFC 3986 §6.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathNormalization {
    /// Remove dot segments, decode percent-encoded unreserved characters, upper-case the
    /// remaining percent-encodings (RFC 3986 §6.2.2.1–§6.2.2.3).
    pub enabled: bool,
    /// Collapse runs of `/` into one.
    pub merge_slashes: bool,
    /// What to do with `%2F` and `%5C` (encoded `/` and `\`).
    pub escaped_slashes: EscapedSlashes,
}

impl Default for PathNormalization {
    fn default() -> Self {
        PathNormalization {
            enabled: true,
            merge_slashes: false,
            escaped_slashes: EscapedSlashes::Keep,
        }
    }
}

/// What to do with a percent-encoded slash or backslash in a request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    /// Leave it encoded: it is not a path separator for routing or for the upstream.
    Keep,
    /// Answer 400: for upstreams that would decode it and see a different path.
    Reject,
}

impl EscapedSlashes {
    pub const NAMES: &'static [(&'static str, EscapedSlashes)] = &[
        ("keep", EscapedSlashes::Keep),
        ("reject", EscapedSlashes::Reject),
    ];
}

/// A listener's limits: request head limits (HTTP only) and load shedding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Connections open on the listener across all workers; at it, accepting pauses (the
    /// kernel's listen backlog holds new clients) until one closes. `None`: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Requests in flight on the listener across all workers (HTTP only); over it a request
    /// is refused at once: 503 with `Retry-After` on HTTP/1.1, REFUSED_STREAM on HTTP/2.
    /// `None`: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// Least average rate, in bytes per second, a request body must keep past the listener's
    /// `timeouts.body_read` grace (HTTP only); a body slower than that is cut: 408 on
    /// HTTP/1.1, RST_STREAM on HTTP/2, and the upstream request is abandoned, never ended.
    pub min_body_rate: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 65536,
            max_headers: 100,
            max_connections: None,
            max_requests: None,
            min_body_rate: DEFAULT_MIN_BODY_RATE,
        }
    }
}

/// One HTTP route: a match and the weighted backends it sends to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matcher: RouteMatch,
    pub backends: Vec<Backend>,
    #[serde(with = "crate::duration::serde_str", default = "default_route_timeout")]
    pub timeout: Duration,
    /// Peers allowed on this route, on top of the listener's `authz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authz: Option<crate::tls::Authz>,
    /// A local rate limit shared by all workers; over it, 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::rate_limit::RateLimitConfig>,
    /// This route's retry policy; `None`: its cluster's `retry`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<crate::retry::RetryPolicy>,
}

/// Default whole-request timeout of a route.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

fn default_route_timeout() -> Duration {
    DEFAULT_ROUTE_TIMEOUT
}

/// Conditions that must all hold; an empty match matches every request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// A weighted reference to a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    pub cluster: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

/// Weight of a backend that does not say.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Largest allowed weight; keeps sums far from overflow and typos visible.
pub const MAX_WEIGHT: u32 = 10_000;

fn default_weight() -> u32 {
    DEFAULT_WEIGHT
}

/// Protocol spoken to a cluster's endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    #[default]
    Http1,
    Http2,
}

impl UpstreamProtocol {
    pub const NAMES: &'static [(&'static str, UpstreamProtocol)] = &[
        ("http1", UpstreamProtocol::Http1),
        ("http2", UpstreamProtocol::Http2),
    ];
}

/// How a cluster picks an endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    #[default]
    RoundRobin,
    LeastRequest,
    /// Peak EWMA of response latency × (requests in flight + 1), power of two choices
    /// (Linkerd's default balancer).
    Ewma,
}

impl LbPolicy {
    pub const NAMES: &'static [(&'static str, LbPolicy)] = &[
        ("round_robin", LbPolicy::RoundRobin),
        ("least_request", LbPolicy::LeastRequest),
        ("ewma", LbPolicy::Ewma),
    ];
}

/// A named set of upstream endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub name: String,
    /// `IP:port` literals and DNS `host:port` names (see [`crate::endpoint`]).
    pub endpoints: Vec<crate::endpoint::Endpoint>,
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    #[serde(default)]
    pub lb: LbPolicy,
    #[serde(
        with = "crate::duration::serde_str",
        default = "default_connect_timeout"
    )]
    pub connect_timeout: Duration,
    #[serde(with = "crate::duration::serde_str", default = "default_pool_idle")]
    pub idle_timeout: Duration,
    #[serde(default = "default_max_idle")]
    pub max_idle_per_endpoint: usize,
    /// TLS origination (`None`: plaintext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::ClusterTls>,
    // Resilience (control/src/resilience.rs).
    #[serde(default)]
    pub outlier: crate::resilience::Outlier,
    /// Retries beyond the replays of never-processed requests; none unless written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<crate::retry::RetryPolicy>,
    #[serde(default)]
    pub retry_budget: crate::retry::RetryBudget,
    /// Circuit breaking; `limits` in the file.
    #[serde(default, rename = "limits")]
    pub limits: crate::resilience::ClusterLimits,
}

/// Default upstream connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default idle time of a pooled upstream connection: below the 60s that
/// common servers use, so the proxy closes first and never reuses a dying one.
pub const DEFAULT_POOL_IDLE: Duration = Duration::from_secs(30);
/// Default cap on pooled idle connections per endpoint.
pub const DEFAULT_MAX_IDLE_PER_ENDPOINT: usize = 64;

fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}

fn default_pool_idle() -> Duration {
    DEFAULT_POOL_IDLE
}

fn default_max_idle() -> usize {
    DEFAULT_MAX_IDLE_PER_ENDPOINT
}

/// Listener as written: its defaults depend on `protocol`, which a plain
/// derive cannot express, so serde reads this and fills them in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerRepr {
    name: String,
    address: SocketAddr,
    protocol: ListenerProtocol,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    original_dst: bool,
    #[serde(default)]
    destinations: Vec<Destination>,
    #[serde(default)]
    timeouts: TimeoutsRepr,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    path_normalization: Option<PathNormalization>,
    #[serde(default)]
    tls: Option<crate::tls::ListenerTls>,
    #[serde(default)]
    authz: Option<crate::tls::Authz>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutsRepr {
    #[serde(with = "crate::duration::serde_opt", default)]
    header_read: Option<Duration>,
    #[serde(with = "crate::duration::serde_opt", default)]
    idle: Option<Duration>,
    #[serde(with = "crate::duration::serde_opt", default)]
    send_stall: Option<Duration>,
    #[serde(with = "crate::duration::serde_opt", default)]
    body_read: Option<Duration>,
}

/// The listener timeouts as written (each `None` when left out).
#[derive(Debug, Clone, Copy, Default)]
pub struct WrittenTimeouts {
    pub header_read: Option<Duration>,
    pub idle: Option<Duration>,
    pub send_stall: Option<Duration>,
    pub body_read: Option<Duration>,
}

impl Timeouts {
    /// Fills the protocol-dependent defaults.
    pub fn with_defaults(protocol: ListenerProtocol, t: WrittenTimeouts) -> Self {
        match protocol {
            ListenerProtocol::Http => Timeouts {
                header_read: Some(t.header_read.unwrap_or(DEFAULT_HEADER_READ)),
                idle: t.idle.unwrap_or(DEFAULT_HTTP_IDLE),
                send_stall: Some(t.send_stall.unwrap_or(DEFAULT_SEND_STALL)),
                body_read: Some(t.body_read.unwrap_or(DEFAULT_BODY_READ)),
            },
            ListenerProtocol::Tcp => Timeouts {
                header_read: None,
                idle: t.idle.unwrap_or(DEFAULT_TCP_IDLE),
                send_stall: None,
                body_read: None,
            },
        }
    }
}

impl From<ListenerRepr> for Listener {
    fn from(r: ListenerRepr) -> Self {
        let (limits, path_normalization) = match r.protocol {
            ListenerProtocol::Http => (
                Some(r.limits.unwrap_or_default()),
                Some(r.path_normalization.unwrap_or_default()),
            ),
            ListenerProtocol::Tcp => (None, None),
        };
        Listener {
            name: r.name,
            address: r.address,
            protocol: r.protocol,
            routes: r.routes,
            cluster: r.cluster,
            original_dst: r.original_dst,
            destinations: r.destinations,
            timeouts: Timeouts::with_defaults(
                r.protocol,
                WrittenTimeouts {
                    header_read: r.timeouts.header_read,
                    idle: r.timeouts.idle,
                    send_stall: r.timeouts.send_stall,
                    body_read: r.timeouts.body_read,
                },
            ),
            limits,
            path_normalization,
            tls: r.tls,
            authz: r.authz,
        }
    }
}
