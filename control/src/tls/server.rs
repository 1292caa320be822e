//! Termination: a rustls `ServerConfig` per TLS listener.
//!
//! TLS 1.2 and 1.3 only (RFC 8996 deprecates the older versions); session tickets on, so a
//! returning client skips the full handshake; certificates chosen by SNI.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::{pem, svid};

/// What a listener's TLS is made of, loaded and checked.
#[derive(Debug, Default)]
pub struct ServerParts {
    /// Served when no `sni` entry matches (or the client sent no SNI).
    pub default: Option<Arc<CertifiedKey>>,
    /// `(server_names, certificate)`, names lowercase, `*.` wildcards allowed.
    pub sni: Vec<(Vec<String>, Arc<CertifiedKey>)>,
    /// Client CA: set means mutual TLS with these anchors.
    pub client_roots: Option<RootCertStore>,
    /// Certificate and client anchors come from the SPIFFE Workload API.
    pub spiffe: bool,
    pub alpn: Vec<Vec<u8>>,
}

/// Checks that `cert` covers `name` (an `*.` wildcard is checked with a sample label).
///
/// # Errors
/// A sentence naming the name the certificate does not cover.
pub fn covers(cert: &CertifiedKey, name: &str) -> Result<(), String> {
    let sample = match name.strip_prefix("*.") {
        Some(rest) => format!("x.{rest}"),
        None => name.to_string(),
    };
    let server_name =
        ServerName::try_from(sample.as_str()).map_err(|_| format!("`{name}` is not a DNS name"))?;
    let leaf = cert
        .end_entity_cert()
        .map_err(|e| format!("certificate: {e}"))?;
    let parsed = ParsedCertificate::try_from(leaf).map_err(|e| format!("certificate: {e}"))?;
    rustls::client::verify_server_name(&parsed, &server_name)
        .map_err(|_| format!("the certificate is not valid for `{name}`"))
}

/// Builds the listener's config.
///
/// # Errors
/// A client CA bundle rustls cannot use (e.g. empty).
pub fn build(parts: ServerParts) -> Result<ServerConfig, String> {
    let provider = pem::provider();
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let mutual = parts.spiffe || parts.client_roots.is_some();
    let verifier: Arc<dyn ClientCertVerifier> = if parts.spiffe {
        Arc::new(SpiffeClientVerifier)
    } else if let Some(roots) = parts.client_roots {
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("client CA: {e}"))?
    } else {
        WebPkiClientVerifier::no_client_auth()
    };
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    for (names, ck) in parts.sni {
        for n in names {
            match n.strip_prefix("*.") {
                Some(suffix) => wildcard.insert(suffix.to_string(), ck.clone()),
                None => exact.insert(n, ck.clone()),
            };
        }
    }
    let resolver = Certs {
        default: parts.default,
        exact,
        wildcard,
        spiffe: parts.spiffe,
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = parts.alpn;
    if mutual {
        // A resumed session carries the client certificate of its first handshake: after a
        // rotation the identity (and XFCC's Hash) would name a certificate the client no longer
        // holds, possibly expired. Every mutual-TLS connection shows its current certificate.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    } else {
        config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| e.to_string())?;
    }
    Ok(config)
}

/// Picks the certificate: the SVID, else by SNI (exact, then one-label wildcard), else the
/// default. `None` fails the handshake (`unrecognized_name`): counted as a bad SNI.
#[derive(Debug)]
struct Certs {
    default: Option<Arc<CertifiedKey>>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    spiffe: bool,
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if self.spiffe {
            return svid::store().current().map(|s| s.key.clone());
        }
        // rustls hands over the SNI already lowercased and validated as a DNS name.
        if let Some(name) = hello.server_name() {
            if let Some(ck) = self.exact.get(name) {
                return Some(ck.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(ck) = self.wildcard.get(parent) {
                    return Some(ck.clone());
                }
            }
        }
        self.default.clone()
    }
}

/// Requires a client certificate that chains to the current SPIFFE trust bundle; delegates
/// to the verifier built with the bundle, so a bundle rotation applies to the next handshake.
#[derive(Debug)]
struct SpiffeClientVerifier;

impl SpiffeClientVerifier {
    fn inner() -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        svid::store()
            .current()
            .map(|s| s.client_verifier.clone())
            .ok_or_else(|| rustls::Error::General("no SPIFFE trust bundle yet".into()))
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional (RFC 8446 §4.2.4); the bundle changes under us.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Self::inner()?.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Self::inner()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Self::inner()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        pem::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
