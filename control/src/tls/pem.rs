//! Certificate and key files as cert-manager, csi-driver-spiffe and spiffe-helper write them:
//! PEM, leaf first then intermediates, one private key (PKCS#8, PKCS#1 or SEC1).
//!
//! Every error is a sentence for the person who wrote the config; the caller adds the
//! `file:line:col` of the key that named the file.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The crypto provider every TLS config uses (ring: no C toolchain beyond `cc`).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (leaf first).
///
/// # Errors
/// The file cannot be read, holds no certificate, or holds one that is not X.509.
pub fn chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no `BEGIN CERTIFICATE` block found",
            path.display()
        ));
    }
    for c in &certs {
        X509Certificate::from_der(c)
            .map_err(|e| format!("{}: a certificate cannot be parsed: {e}", path.display()))?;
    }
    Ok(certs)
}

/// Reads one PEM private key.
///
/// # Errors
/// The file cannot be read or holds no private key.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let text = read(path)?;
    PrivateKeyDer::from_pem_slice(&text)
        .map_err(|e| format!("{}: no PEM private key found: {e}", path.display()))
}

/// Reads a CA bundle into a root store.
///
/// # Errors
/// As [`chain`], or a certificate that is not usable as a trust anchor.
pub fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for cert in chain(path)? {
        store
            .add(cert)
            .map_err(|e| format!("{}: not usable as a CA: {e}", path.display()))?;
    }
    Ok(store)
}

/// A certificate chain with its key, checked to belong together and to be valid now.
///
/// # Errors
/// Unreadable files, a key of an unsupported type, a key that does not match the leaf
/// certificate, or a leaf outside its validity period.
pub fn certified_key(cert: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain = chain(cert)?;
    let key = key(key_path)?;
    pair(
        chain,
        key,
        &format!("{} and {}", cert.display(), key_path.display()),
    )
}

/// As [`certified_key`], from material already in memory (`what` names it in errors).
///
/// # Errors
/// As [`certified_key`].
pub fn pair(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    what: &str,
) -> Result<Arc<CertifiedKey>, String> {
    let leaf = chain
        .first()
        .cloned()
        .ok_or_else(|| format!("{what}: empty certificate chain"))?;
    let ck = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| format!("{what}: {}", describe(&e)))?;
    check_validity(&leaf, UnixTime::now()).map_err(|e| format!("{what}: {e}"))?;
    Ok(Arc::new(ck))
}

/// When the certificate stops being valid, in seconds since the Unix epoch.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, c) = X509Certificate::from_der(cert).ok()?;
    Some(c.validity().not_after.timestamp())
}

/// Refuses a certificate that is expired or not yet valid at `now`.
///
/// # Errors
/// A sentence saying which bound was crossed and when.
pub fn check_validity(cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), String> {
    let (_, c) =
        X509Certificate::from_der(cert).map_err(|e| format!("cannot parse certificate: {e}"))?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let v = c.validity();
    if now < v.not_before.timestamp() {
        return Err(format!("certificate is not valid before {}", v.not_before));
    }
    if now > v.not_after.timestamp() {
        return Err(format!("certificate expired at {}", v.not_after));
    }
    Ok(())
}

fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => {
            "the private key does not match the certificate".to_string()
        }
        other => other.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
