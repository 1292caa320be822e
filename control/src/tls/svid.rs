//! The workload's current X.509-SVID and trust bundle, as the SPIFFE Workload API last sent
//! them. One per process: the Workload API client (in the sidecar) stores, every TLS config
//! with `identity: spiffe` loads at each handshake, so a rotation reaches new handshakes at
//! once and never touches established connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use super::pem;

/// One SVID with what verifying peers needs.
#[derive(Debug)]
pub struct Svid {
    pub key: Arc<CertifiedKey>,
    /// Our SPIFFE ID (the SVID's URI SAN).
    pub spiffe_id: String,
    /// Trust anchors of our trust domain (and federated ones).
    pub bundle: Arc<RootCertStore>,
    /// Client-certificate verifier over `bundle`, built once per update.
    pub client_verifier: Arc<dyn ClientCertVerifier>,
    /// The leaf's notAfter, seconds since the Unix epoch.
    pub not_after: i64,
}

impl Svid {
    /// Builds the verifiers for a new SVID and bundle.
    ///
    /// # Errors
    /// An empty bundle, or a key that does not match its certificate.
    pub fn new(key: Arc<CertifiedKey>, bundle: RootCertStore) -> Result<Svid, String> {
        let leaf = key
            .cert
            .first()
            .ok_or_else(|| "the SVID has no certificate".to_string())?;
        let spiffe_id = super::peer::spiffe_id_of(leaf)
            .ok_or_else(|| "the SVID has no spiffe:// URI SAN".to_string())?;
        let not_after = pem::not_after(leaf).unwrap_or(0);
        let bundle = Arc::new(bundle);
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(bundle.clone(), pem::provider())
                .build()
                .map_err(|e| format!("trust bundle: {e}"))?;
        Ok(Svid {
            key,
            spiffe_id,
            bundle,
            client_verifier,
            not_after,
        })
    }
}

/// Where the current SVID lives.
#[derive(Debug, Default)]
pub struct SvidStore {
    current: ArcSwapOption<Svid>,
    updates: AtomicU64,
}

impl SvidStore {
    /// The SVID handshakes use now; `None` until the Workload API has sent one.
    pub fn current(&self) -> Option<Arc<Svid>> {
        self.current.load_full()
    }

    /// Replaces the SVID for every handshake that starts from now on.
    pub fn set(&self, svid: Svid) {
        self.current.store(Some(Arc::new(svid)));
        self.updates.fetch_add(1, Ordering::Relaxed);
    }

    /// How many SVIDs have been stored since start.
    pub fn updates(&self) -> u64 {
        self.updates.load(Ordering::Relaxed)
    }
}

/// The process's SVID store.
pub fn store() -> &'static SvidStore {
    static STORE: OnceLock<SvidStore> = OnceLock::new();
    STORE.get_or_init(SvidStore::default)
}
