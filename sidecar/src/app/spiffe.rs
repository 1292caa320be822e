//! The SPIFFE Workload API client (SPIFFE Workload API spec, `FetchX509SVID`): a stream of
//! X.509-SVIDs and trust bundles from the agent's Unix socket, each update stored in
//! [`control::tls::svid::store`] where every `identity: spiffe` handshake reads it. Runs as a
//! task on the control thread's runtime, never on a data-plane worker.
//!
//! The agent rotates SVIDs well before they expire (SPIRE: at half their lifetime) and pushes
//! each new one on the open stream. A broken stream or an agent that is down is retried with a
//! capped exponential backoff; the last good SVID keeps serving meanwhile, and until the first
//! one arrives `/ready` answers 503 (see `admin::endpoints`).

use std::time::Duration;

use control::tls::svid::{self, Svid};
use futures_util::StreamExt;
use rustls::pki_types::CertificateDer;
use spiffe::{WorkloadApiClient, WorkloadApiError, X509Context};

/// The first retry comes quickly (an agent that is starting beside us); then the gap doubles.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// SPIRE's own SDKs cap their retries around here; a longer gap only delays recovery.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The client task for the socket the config names, restarted when that socket changes.
#[derive(Default)]
pub struct WorkloadApi {
    socket: Option<String>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WorkloadApi {
    /// Starts, restarts or stops the client to match `config.identity.spiffe_socket`. Must be
    /// called on the control runtime. Keeps the stored SVID across a restart: handshakes go
    /// on with it until the new socket sends one.
    pub fn follow(&mut self, config: &control::model::Config) {
        let want = config.identity.as_ref().map(|i| i.spiffe_socket.clone());
        if want == self.socket {
            return;
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.socket = want.clone();
        let Some(socket) = want else {
            tracing::info!("no `identity.spiffe_socket` any more: the Workload API client stops");
            return;
        };
        if svid::store().current().is_none() && svid::wanted(config) {
            tracing::info!(
                socket = %socket,
                "waiting for the first X.509-SVID from the SPIFFE Workload API: `identity: spiffe` \
                 handshakes fail and /ready answers 503 until it arrives"
            );
        }
        self.task = Some(tokio::spawn(run(socket)));
    }
}

impl Drop for WorkloadApi {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Connects, streams, and reconnects forever.
async fn run(socket: String) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let error = match stream(&socket, &mut backoff).await {
            Ok(()) => "the Workload API ended the stream".to_string(),
            Err(e) => e.to_string(),
        };
        metrics::counter!("ringside_spiffe_updates_total", "result" => "error").increment(1);
        tracing::warn!(
            socket = %socket,
            %error,
            retry_in_ms = backoff.as_millis() as u64,
            "SPIFFE Workload API unavailable; the last SVID keeps serving"
        );
        tokio::time::sleep(jitter(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection: every X.509 context the agent sends, until the stream breaks.
async fn stream(socket: &str, backoff: &mut Duration) -> Result<(), WorkloadApiError> {
    let client = WorkloadApiClient::connect_to(socket).await?;
    let mut updates = client.stream_x509_contexts().await?;
    while let Some(update) = updates.next().await {
        let context = update?;
        *backoff = BACKOFF_MIN;
        match svid_of(&context) {
            Ok(svid) => store(svid),
            Err(error) => {
                metrics::counter!("ringside_spiffe_updates_total", "result" => "rejected")
                    .increment(1);
                tracing::error!(%error, "X.509-SVID from the Workload API refused; the previous one keeps serving");
            }
        }
    }
    Ok(())
}

fn store(svid: Svid) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    tracing::info!(
        spiffe_id = %svid.spiffe_id,
        serial = %svid.serial(),
        not_after = svid.not_after,
        valid_for_s = svid.not_after - now,
        "X.509-SVID received from the SPIFFE Workload API"
    );
    metrics::gauge!("ringside_tls_certificate_expiry_timestamp_seconds", "source" => "spiffe")
        .set(svid.not_after as f64);
    metrics::counter!("ringside_spiffe_updates_total", "result" => "ok").increment(1);
    svid::store().set(svid);
}

/// The default SVID (the first, SPIFFE Workload API §5.2) with its own trust domain's
/// authorities. Federated bundles are left out on purpose: one root store for all domains
/// would let a federated CA vouch for IDs in ours.
fn svid_of(context: &X509Context) -> Result<Svid, String> {
    let svid = context
        .default_svid()
        .ok_or_else(|| "the Workload API sent no X.509-SVID".to_string())?;
    let chain = svid
        .cert_chain()
        .iter()
        .map(|c| CertificateDer::from(c.as_bytes().to_vec()))
        .collect();
    let domain = svid.spiffe_id().trust_domain();
    let bundle = context
        .bundle_set()
        .get(domain)
        .ok_or_else(|| format!("no trust bundle for the SVID's trust domain `{domain}`"))?;
    let authorities = bundle
        .authorities()
        .iter()
        .map(|a| CertificateDer::from(a.as_bytes().to_vec()));
    Svid::from_der(chain, svid.private_key().as_bytes().to_vec(), authorities)
}

/// ±20 %: many sidecars on a node restarted with their agent do not reconnect in lockstep.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.8 + fastrand::f64() * 0.4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::string::Ia5String;
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    };
    use spiffe::{TrustDomain, X509Bundle, X509BundleSet, X509Svid};
    use std::sync::Arc;

    /// A CA and an SVID it signed for `id`, as the Workload API sends them (DER).
    fn material(id: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_der = ca.self_signed(&ca_key).expect("ca").der().to_vec();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.subject_alt_names
            .push(SanType::URI(Ia5String::try_from(id).expect("uri")));
        let leaf_der = leaf.signed_by(&key, &issuer).expect("leaf").der().to_vec();
        (leaf_der, key.serialize_der(), ca_der)
    }

    fn context(id: &str, bundle_domain: &str) -> X509Context {
        let (leaf, key, ca) = material(id);
        let svid = X509Svid::parse_from_der(&leaf, &key).expect("svid");
        let domain = TrustDomain::new(bundle_domain).expect("domain");
        let mut bundles = X509BundleSet::new();
        bundles.add_bundle(
            X509Bundle::from_x509_authorities(domain, &[ca.as_slice()]).expect("bundle"),
        );
        X509Context::new([Arc::new(svid)], bundles)
    }

    #[test]
    fn the_default_svid_is_taken_with_its_own_domains_bundle() {
        let svid = svid_of(&context("spiffe://td.test/ns/a/sa/web", "td.test")).expect("svid");
        assert_eq!(svid.spiffe_id, "spiffe://td.test/ns/a/sa/web");
        assert!(!svid.bundle.is_empty());
    }

    #[test]
    fn an_svid_without_a_bundle_for_its_domain_is_refused() {
        // Only another (federated) domain's bundle: nothing may verify our peers with it.
        let e =
            svid_of(&context("spiffe://td.test/ns/a/sa/web", "other.test")).expect_err("refused");
        assert!(e.contains("no trust bundle"), "{e}");
        let e = svid_of(&X509Context::new([], X509BundleSet::new())).expect_err("no SVID");
        assert!(e.contains("no X.509-SVID"), "{e}");
    }

    #[test]
    fn backoff_jitter_stays_within_a_fifth() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(5));
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
    }
}
