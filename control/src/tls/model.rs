//! The TLS, identity and authorisation parts of the config model (DESIGN.md §4: extend, do not
//! rename). Paths are as written; the loaded material rides along, unserialised, in [`Built`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::peer::AllowList;

/// `listeners[].tls.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS only: a plaintext client is closed after its first bytes.
    #[default]
    Strict,
    /// TLS and plaintext on the same port, told apart by the first byte (Istio's PERMISSIVE):
    /// lets a namespace move to mTLS without downtime.
    Permissive,
}

impl TlsMode {
    pub const NAMES: &'static [(&'static str, TlsMode)] = &[
        ("strict", TlsMode::Strict),
        ("permissive", TlsMode::Permissive),
    ];
}

/// Where a certificate and its trust anchors come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// `cert`, `key`, `ca`/`client_ca` files, re-read when they change.
    #[default]
    Files,
    /// The SPIFFE Workload API (`identity.spiffe_socket`): X.509-SVID and trust bundle.
    Spiffe,
}

impl IdentitySource {
    pub const NAMES: &'static [(&'static str, IdentitySource)] = &[
        ("files", IdentitySource::Files),
        ("spiffe", IdentitySource::Spiffe),
    ];
}

/// Loaded material (rustls configs) carried next to the paths it came from. Not serialised;
/// compares equal to any other, so two configs that differ only in certificate bytes compare
/// by their text (the snapshot's hash covers the files' bytes).
pub struct Built<T>(pub Option<Arc<T>>);

impl<T> Default for Built<T> {
    fn default() -> Self {
        Built(None)
    }
}

impl<T> Clone for Built<T> {
    fn clone(&self) -> Self {
        Built(self.0.clone())
    }
}

impl<T> fmt::Debug for Built<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "<loaded>"
        } else {
            "<none>"
        })
    }
}

impl<T> PartialEq for Built<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Built<T> {}

/// A certificate served to clients whose SNI names one of `server_names`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniCert {
    /// Exact names or `*.`-wildcards (one label), lowercase.
    pub server_names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `listeners[].tls`: termination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    #[serde(default)]
    pub mode: TlsMode,
    #[serde(default)]
    pub identity: IdentitySource,
    /// The default certificate (no SNI, or an SNI no `sni` entry names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// CA bundle for client certificates: set, and clients must present one it signed
    /// (mutual TLS). With `identity: spiffe` the SPIFFE trust bundle is used instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// ALPN protocols offered, in preference order (RFC 7301). Default: `h2`, `http/1.1` on
    /// http listeners, none on tcp listeners.
    #[serde(default)]
    pub alpn: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni: Vec<SniCert>,
    #[serde(skip)]
    pub built: Built<rustls::ServerConfig>,
    /// Our own SPIFFE ID (the default certificate's), for XFCC's `By=`.
    #[serde(skip)]
    pub own_id: Option<String>,
    /// The earliest notAfter of the certificates served, seconds since the Unix epoch.
    #[serde(skip)]
    pub expiry: Option<i64>,
}

impl ListenerTls {
    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.client_ca.is_some() || self.identity == IdentitySource::Spiffe
    }
}

/// `clusters[].tls`: origination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    #[serde(default)]
    pub identity: IdentitySource,
    /// CA bundle that signs the upstream's certificate (files source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate, for upstreams that require mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// SNI sent, and the name checked in the upstream's certificate unless
    /// `server_identity` is set. Default: the endpoint's IP address (checked as an IP SAN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// The SPIFFE ID the upstream must present, checked instead of a host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_identity: Option<String>,
    /// ALPN protocols offered. Default: `h2` for `protocol: http2` clusters, else `http/1.1`.
    #[serde(default)]
    pub alpn: Vec<String>,
    #[serde(skip)]
    pub built: Built<rustls::ClientConfig>,
    /// The client certificate's notAfter, seconds since the Unix epoch.
    #[serde(skip)]
    pub expiry: Option<i64>,
}

/// `listeners[].authz` and `routes[].authz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authz {
    /// Exact SPIFFE IDs, trust domains (`spiffe://td`), path prefixes
    /// (`spiffe://td/ns/shop/*`), DNS names, or `*` (any verified client certificate).
    pub allow: Vec<String>,
    #[serde(skip)]
    pub compiled: Built<AllowList>,
}

/// Top-level `identity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The SPIFFE Workload API endpoint, `unix:///path/to/agent.sock`.
    pub spiffe_socket: String,
}
