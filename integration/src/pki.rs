//! Test certificates, made fresh for each test with rcgen: a CA, server and client
//! certificates with DNS, IP and SPIFFE URI SANs, and deliberately broken ones (expired, not
//! yet valid, from another CA), written as PEM files the way cert-manager writes them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType, SerialNumber,
};

/// A calendar date: (year, month, day).
pub type Ymd = (i32, u8, u8);

/// A certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// What a leaf certificate says about its holder.
#[derive(Debug, Clone, Default)]
pub struct LeafSpec<'a> {
    pub dns: &'a [&'a str],
    pub ips: &'a [&'a str],
    /// A `spiffe://` URI SAN.
    pub spiffe: Option<&'a str>,
    /// Valid from/to; default: from the start of last year to the end of next year.
    pub validity: Option<(Ymd, Ymd)>,
}

/// A leaf certificate and its key, PEM, with its serial number in decimal (as Go prints it).
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).expect("CA cert").pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// Issues a leaf certificate.
    pub fn leaf(&self, spec: &LeafSpec<'_>) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = spec.dns.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        for ip in spec.ips {
            let ip: IpAddr = ip.parse().expect("ip SAN");
            params.subject_alt_names.push(SanType::IpAddress(ip));
        }
        if let Some(id) = spec.spiffe {
            let uri = Ia5String::try_from(id).expect("spiffe id");
            params.subject_alt_names.push(SanType::URI(uri));
        }
        params.distinguished_name.push(
            DnType::CommonName,
            spec.dns.first().copied().unwrap_or("workload"),
        );
        let serial = fastrand_serial();
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        if let Some(((y1, m1, d1), (y2, m2, d2))) = spec.validity {
            params.not_before = rcgen::date_time_ymd(y1, m1, d1);
            params.not_after = rcgen::date_time_ymd(y2, m2, d2);
        } else {
            let now = time_now_ymd();
            params.not_before = rcgen::date_time_ymd(now.0 - 1, 1, 1);
            params.not_after = rcgen::date_time_ymd(now.0 + 1, 12, 31);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: serial.to_string(),
        }
    }

    /// Writes the CA certificate to `dir/NAME`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, &self.pem).expect("write CA");
        p
    }
}

impl Leaf {
    /// Writes `dir/NAME.crt` and `dir/NAME.key`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, &self.cert_pem).expect("write cert");
        std::fs::write(&k, &self.key_pem).expect("write key");
        (c, k)
    }
}

/// A positive 63-bit serial, unique enough to tell certificates apart in a test.
fn fastrand_serial() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    ((t << 16) ^ NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) & (u64::MAX >> 2) | 1
}

/// This year (UTC), from the system clock.
fn time_now_ymd() -> (i32, u8, u8) {
    use std::time::{SystemTime, UNIX_EPOCH};
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Good to a day or so, which is all a validity window of years needs.
    let year = 1970 + (secs / 31_556_952) as i32;
    (year, 1, 1)
}

/// Runs the Go `tlsclient` (crypto/tls + net/http) against `url`; returns whether every
/// request succeeded and its JSON lines (fields: ok, status, proto, tls_version, alpn,
/// server_serial, server_uri, resumed, body, error).
pub fn tls_client(url: &str, args: &[&str]) -> (bool, Vec<String>) {
    let out = std::process::Command::new(crate::procs::go_bin("tlsclient"))
        .arg("-url")
        .arg(url)
        .args(args)
        .output()
        .expect("run tlsclient");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if !stderr.trim().is_empty() {
        lines.push(format!("{{\"stderr\":{:?}}}", stderr.trim()));
    }
    (out.status.success(), lines)
}

/// A test's PKI on disk: a CA, a server certificate for `localhost`/127.0.0.1 with a SPIFFE
/// ID, and helpers to write more.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    pub ca_path: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("pki dir");
        // A name of its own: a CA with another's name would be found as the issuer and fail
        // on the signature (bad certificate) rather than as an unknown CA.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ca = Ca::new(&format!("ringside test CA {} {n}", std::process::id()));
        let ca_path = ca.write(dir.path(), "ca.crt");
        Pki { dir, ca, ca_path }
    }

    /// Issues and writes `NAME.crt`/`NAME.key` for `spec`; returns the leaf and the paths.
    pub fn issue(&self, name: &str, spec: &LeafSpec<'_>) -> (Leaf, PathBuf, PathBuf) {
        let leaf = self.ca.leaf(spec);
        let (c, k) = leaf.write(self.dir.path(), name);
        (leaf, c, k)
    }

    /// A server certificate for `localhost` and 127.0.0.1 with SPIFFE ID `id`.
    pub fn server(&self, name: &str, id: &str) -> (Leaf, PathBuf, PathBuf) {
        self.issue(
            name,
            &LeafSpec {
                dns: &["localhost"],
                ips: &["127.0.0.1"],
                spiffe: Some(id),
                ..LeafSpec::default()
            },
        )
    }

    /// A client certificate with SPIFFE ID `id` only.
    pub fn client(&self, name: &str, id: &str) -> (Leaf, PathBuf, PathBuf) {
        self.issue(
            name,
            &LeafSpec {
                spiffe: Some(id),
                ..LeafSpec::default()
            },
        )
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// A path as text for a config or a command line.
pub fn p(path: &Path) -> String {
    path.display().to_string()
}
