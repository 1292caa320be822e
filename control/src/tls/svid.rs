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
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::pem;
use super::IdentitySource;
use crate::model::Config;

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

    /// Builds an SVID from what the Workload API sends (SPIFFE Workload API §5.2,
    /// `X509SVIDResponse`): the chain, leaf first, DER; the key, PKCS#8 DER; and the trust
    /// domain's X.509 authorities, DER.
    ///
    /// # Errors
    /// A sentence: a key that does not match the leaf, a leaf outside its validity period, no
    /// SPIFFE ID, or an authority that is not usable as a trust anchor.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        pkcs8_key: Vec<u8>,
        authorities: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Svid, String> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_key));
        let key = pem::pair(chain, key, "the X.509-SVID")?;
        let mut bundle = RootCertStore::empty();
        for a in authorities {
            bundle
                .add(a)
                .map_err(|e| format!("trust bundle: an authority is not usable as a CA: {e}"))?;
        }
        if bundle.is_empty() {
            return Err("trust bundle: no authority for the SVID's trust domain".into());
        }
        Svid::new(key, bundle)
    }

    /// The leaf certificate's serial number, in decimal (as Go and OpenSSL print it).
    pub fn serial(&self) -> String {
        use x509_parser::prelude::{FromDer, X509Certificate};
        self.key
            .cert
            .first()
            .and_then(|c| X509Certificate::from_der(c).ok())
            .map(|(_, c)| c.serial.to_str_radix(10))
            .unwrap_or_default()
    }
}

/// Whether any listener or cluster of `config` takes its certificate from the Workload API:
/// then the process is not ready to serve them until the first SVID has arrived.
pub fn wanted(config: &Config) -> bool {
    let listeners = config
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref().map(|t| t.identity));
    let clusters = config
        .clusters
        .iter()
        .filter_map(|c| c.tls.as_ref().map(|t| t.identity));
    listeners
        .chain(clusters)
        .any(|s| s == IdentitySource::Spiffe)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::string::Ia5String;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};

    fn ca() -> (Issuer<'static, KeyPair>, CertificateDer<'static>) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).expect("ca").der().clone();
        (Issuer::new(params, key), der)
    }

    fn leaf(issuer: &Issuer<'_, KeyPair>, uri: Option<&str>) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        if let Some(u) = uri {
            let u = Ia5String::try_from(u).expect("uri");
            params.subject_alt_names.push(SanType::URI(u));
        }
        let cert = params.signed_by(&key, issuer).expect("leaf");
        (cert.der().clone(), key)
    }

    #[test]
    fn an_svid_from_the_workload_api_is_checked_and_its_identity_read() {
        let (issuer, ca_der) = ca();
        let (cert, key) = leaf(&issuer, Some("spiffe://td.test/ns/a/sa/web"));
        let svid = Svid::from_der(vec![cert.clone()], key.serialize_der(), [ca_der.clone()])
            .expect("valid SVID");
        assert_eq!(svid.spiffe_id, "spiffe://td.test/ns/a/sa/web");
        assert!(svid.not_after > 0);
        assert!(svid.serial().chars().all(|c| c.is_ascii_digit()));
        assert!(!svid.serial().is_empty());

        // Another key than the certificate's: refused, so the store keeps the old pair.
        let other = KeyPair::generate().expect("key");
        let e = Svid::from_der(vec![cert.clone()], other.serialize_der(), [ca_der.clone()])
            .expect_err("mismatched key");
        assert!(e.contains("does not match"), "{e}");
        // No trust anchors: nothing could be verified.
        let e = Svid::from_der(vec![cert], key.serialize_der(), []).expect_err("empty bundle");
        assert!(e.contains("trust bundle"), "{e}");
        // No SPIFFE ID: not an X.509-SVID.
        let (plain, key) = leaf(&issuer, None);
        let e = Svid::from_der(vec![plain], key.serialize_der(), [ca_der]).expect_err("no ID");
        assert!(e.contains("spiffe://"), "{e}");
    }

    #[test]
    fn the_store_hands_out_the_latest_svid() {
        let store = SvidStore::default();
        assert!(store.current().is_none());
        let (issuer, ca_der) = ca();
        for n in ["one", "two"] {
            let (cert, key) = leaf(&issuer, Some(&format!("spiffe://td.test/{n}")));
            let svid =
                Svid::from_der(vec![cert], key.serialize_der(), [ca_der.clone()]).expect("svid");
            store.set(svid);
        }
        assert_eq!(
            store.current().map(|s| s.spiffe_id.clone()).as_deref(),
            Some("spiffe://td.test/two")
        );
        assert_eq!(store.updates(), 2);
    }
}
