//! Origination: a rustls `ClientConfig` per TLS cluster.
//!
//! The upstream is checked by host name (`server_name`, RFC 6125) or, with `server_identity`,
//! by its SPIFFE ID, the way a mesh checks a workload: the chain must lead to a trusted
//! anchor and the URI SAN must be the expected ID (SPIFFE X.509-SVID §5).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{pem, svid};

/// What a cluster's TLS is made of, loaded and checked.
#[derive(Debug, Default)]
pub struct ClientParts {
    /// Trust anchors for the upstream's certificate (files source).
    pub roots: Option<RootCertStore>,
    /// Our certificate, for upstreams that require mutual TLS (files source).
    pub client_key: Option<Arc<CertifiedKey>>,
    /// The upstream's expected SPIFFE ID; `None` checks `server_name` (files) or accepts any
    /// SPIFFE ID the trust bundle vouches for (spiffe).
    pub server_identity: Option<String>,
    pub spiffe: bool,
    pub alpn: Vec<Vec<u8>>,
}

/// Builds the cluster's config.
///
/// # Errors
/// A CA bundle rustls cannot use.
pub fn build(parts: ClientParts) -> Result<ClientConfig, String> {
    let provider = pem::provider();
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let anchors = match (parts.spiffe, parts.roots) {
        (true, _) => Anchors::Spiffe,
        (false, Some(roots)) => Anchors::Files(Arc::new(roots)),
        (false, None) => return Err("`ca` is needed to verify the upstream".into()),
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (&anchors, parts.server_identity) {
        (Anchors::Files(roots), None) => {
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
                .build()
                .map_err(|e| format!("ca: {e}"))?
        }
        (_, expected) => Arc::new(IdentityVerifier {
            anchors,
            expected,
            algs: provider.signature_verification_algorithms,
        }),
    };
    let wants = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = if parts.spiffe {
        wants.with_client_cert_resolver(Arc::new(ClientCert(None)))
    } else if let Some(ck) = parts.client_key {
        wants.with_client_cert_resolver(Arc::new(ClientCert(Some(ck))))
    } else {
        wants.with_no_client_auth()
    };
    config.alpn_protocols = parts.alpn;
    Ok(config)
}

#[derive(Debug)]
enum Anchors {
    Files(Arc<RootCertStore>),
    /// The current SPIFFE trust bundle, read at each handshake.
    Spiffe,
}

#[derive(Debug)]
struct IdentityVerifier {
    anchors: Anchors,
    expected: Option<String>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for IdentityVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        let roots = match &self.anchors {
            Anchors::Files(r) => r.clone(),
            Anchors::Spiffe => svid::store()
                .current()
                .map(|s| s.bundle.clone())
                .ok_or_else(|| rustls::Error::General("no SPIFFE trust bundle yet".into()))?,
        };
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        let id = super::peer::spiffe_id_of(end_entity);
        match (&self.expected, id) {
            (Some(want), Some(got)) if *want == got => Ok(ServerCertVerified::assertion()),
            (Some(_), _) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            )),
            (None, _) => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Our client certificate: fixed (files) or the current SVID (`None`).
#[derive(Debug)]
struct ClientCert(Option<Arc<CertifiedKey>>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        match &self.0 {
            Some(ck) => Some(ck.clone()),
            None => svid::store().current().map(|s| s.key.clone()),
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}
