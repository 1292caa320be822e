//! TLS termination and origination, workload identity and authorisation by identity.
//!
//! The config side lives here (no I/O beyond reading certificate files): loading and checking
//! certificates, building the rustls configs the data plane uses as they are, reading peer
//! identities, and matching them against `authz` lists.

pub mod client;
pub mod model;
pub mod peer;
pub mod pem;
pub(crate) mod raw;
pub mod server;
pub mod svid;

pub use model::{Authz, ClusterTls, Identity, IdentitySource, ListenerTls, TlsMode};
pub use peer::{AllowList, PeerIdentity, Principal};
