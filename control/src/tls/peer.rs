//! Who is on the other end of a TLS connection, and whether they may call.
//!
//! A workload's identity is its SPIFFE ID, the `spiffe://` URI SAN of its X.509-SVID (SPIFFE
//! X.509-SVID §2: exactly one). Certificates without one (a browser-facing cert, a
//! cert-manager `Certificate` with DNS names) are known by their DNS SANs instead.

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A verified peer certificate's names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The SPIFFE ID, when the certificate has a `spiffe://` URI SAN.
    pub spiffe_id: Option<String>,
    /// Every DNS SAN, in certificate order.
    pub dns: Vec<String>,
    /// SHA-256 of the leaf certificate's DER, lowercase hex (Envoy's XFCC `Hash`).
    pub hash: String,
}

impl PeerIdentity {
    /// Reads the names of a leaf certificate (already verified by the handshake).
    pub fn from_der(der: &[u8]) -> PeerIdentity {
        let hash = hex::encode(Sha256::digest(der));
        let mut out = PeerIdentity {
            hash,
            ..PeerIdentity::default()
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return out;
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(u)
                        if u.starts_with("spiffe://") && out.spiffe_id.is_none() =>
                    {
                        out.spiffe_id = Some((*u).to_string());
                    }
                    GeneralName::DNSName(d) => out.dns.push((*d).to_string()),
                    _ => {}
                }
            }
        }
        out
    }

    /// The identity shown in logs, `/connections` and metrics-free places: the SPIFFE ID,
    /// else the first DNS SAN, else the certificate hash.
    pub fn display(&self) -> &str {
        self.spiffe_id
            .as_deref()
            .or(self.dns.first().map(String::as_str))
            .unwrap_or(&self.hash)
    }

    /// The `x-forwarded-client-cert` element for this peer, as Envoy writes it
    /// (`By=<our URI>;Hash=<sha256>;URI=<peer SPIFFE ID>;DNS=<name>...`).
    pub fn xfcc(&self, by: Option<&str>) -> String {
        let mut out = String::with_capacity(128);
        if let Some(by) = by {
            out.push_str("By=");
            out.push_str(by);
            out.push(';');
        }
        out.push_str("Hash=");
        out.push_str(&self.hash);
        if let Some(uri) = &self.spiffe_id {
            out.push_str(";URI=");
            out.push_str(uri);
        }
        for d in &self.dns {
            out.push_str(";DNS=");
            out.push_str(d);
        }
        out
    }
}

/// The SPIFFE ID in a certificate, if any (for our own certificate's `By=`).
pub fn spiffe_id_of(der: &[u8]) -> Option<String> {
    PeerIdentity::from_der(der).spiffe_id
}

/// One entry of an `authz.allow` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// Any peer that presented a verified certificate (`"*"`).
    AnyAuthenticated,
    /// Exactly this SPIFFE ID.
    Exact(String),
    /// Every SPIFFE ID under this prefix: a trust domain (`spiffe://td`) or a path
    /// (`spiffe://td/ns/shop/*`). Stored with its trailing `/`.
    Prefix(String),
    /// A certificate with this DNS SAN (no SPIFFE ID needed).
    Dns(String),
}

impl Principal {
    /// Parses an `authz.allow` entry.
    ///
    /// # Errors
    /// A sentence for the config's author: what is wrong and what is accepted.
    pub fn parse(s: &str) -> Result<Principal, String> {
        if s == "*" {
            return Ok(Principal::AnyAuthenticated);
        }
        if let Some(rest) = s.strip_prefix("spiffe://") {
            let (td, path) = rest.split_once('/').unwrap_or((rest, ""));
            let td_ok = !td.is_empty()
                && td
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c));
            if !td_ok {
                return Err(format!(
                    "`{s}`: a SPIFFE trust domain is lowercase letters, digits, `-`, `.` and `_`"
                ));
            }
            if path.is_empty() {
                return Ok(Principal::Prefix(format!("spiffe://{td}/")));
            }
            if let Some(prefix) = path.strip_suffix("/*") {
                return Ok(Principal::Prefix(format!("spiffe://{td}/{prefix}/")));
            }
            if path.contains('*')
                || path
                    .split('/')
                    .any(|seg| seg.is_empty() || seg == "." || seg == "..")
            {
                return Err(format!(
                    "`{s}`: a SPIFFE ID path has non-empty segments and no `*` except a final `/*`"
                ));
            }
            return Ok(Principal::Exact(s.to_string()));
        }
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        {
            return Ok(Principal::Dns(s.to_ascii_lowercase()));
        }
        Err(format!(
            "`{s}`: expected a SPIFFE ID (spiffe://trust.domain/path), a trust domain \
             (spiffe://trust.domain), a path prefix (spiffe://trust.domain/ns/shop/*), a DNS name, or `*`"
        ))
    }

    /// Whether `peer` is this principal.
    pub fn admits(&self, peer: &PeerIdentity) -> bool {
        match self {
            Principal::AnyAuthenticated => true,
            Principal::Exact(id) => peer.spiffe_id.as_deref() == Some(id.as_str()),
            Principal::Prefix(p) => peer
                .spiffe_id
                .as_deref()
                .is_some_and(|id| id.starts_with(p.as_str())),
            Principal::Dns(name) => peer.dns.iter().any(|d| d.eq_ignore_ascii_case(name)),
        }
    }
}

/// An `authz.allow` list, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList(pub Vec<Principal>);

impl AllowList {
    /// A peer without a verified certificate (plaintext, or TLS without a client
    /// certificate) is never admitted: the list names identities.
    pub fn admits(&self, peer: Option<&PeerIdentity>) -> bool {
        peer.is_some_and(|p| self.0.iter().any(|a| a.admits(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spiffe(id: &str) -> PeerIdentity {
        PeerIdentity {
            spiffe_id: Some(id.into()),
            ..PeerIdentity::default()
        }
    }

    #[test]
    fn principals_match_exactly_by_domain_and_by_path_prefix() {
        let p = |s| Principal::parse(s).expect(s);
        let peer = spiffe("spiffe://cluster.local/ns/shop/sa/frontend");
        assert!(p("spiffe://cluster.local/ns/shop/sa/frontend").admits(&peer));
        assert!(!p("spiffe://cluster.local/ns/shop/sa/front").admits(&peer));
        assert!(p("spiffe://cluster.local").admits(&peer));
        assert!(
            !p("spiffe://cluster.loc").admits(&peer),
            "a domain is not a string prefix"
        );
        assert!(p("spiffe://cluster.local/ns/shop/*").admits(&peer));
        assert!(!p("spiffe://cluster.local/ns/sh/*").admits(&peer));
        assert!(p("*").admits(&peer));
        assert!(!p("frontend.shop.svc").admits(&peer));
    }

    #[test]
    fn bad_principals_are_refused_with_a_reason() {
        for bad in [
            "spiffe://Cluster/x",
            "spiffe:///x",
            "spiffe://td/a//b",
            "spiffe://td/a*",
            "a b",
            "",
        ] {
            assert!(Principal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nobody_without_a_certificate_is_admitted() {
        let list = AllowList(vec![Principal::AnyAuthenticated]);
        assert!(!list.admits(None));
        assert!(list.admits(Some(&PeerIdentity::default())));
    }

    #[test]
    fn xfcc_has_envoys_shape() {
        let mut p = spiffe("spiffe://td/a");
        p.hash = "ab".into();
        p.dns = vec!["a.example".into()];
        assert_eq!(
            p.xfcc(Some("spiffe://td/me")),
            "By=spiffe://td/me;Hash=ab;URI=spiffe://td/a;DNS=a.example"
        );
        assert_eq!(p.xfcc(None), "Hash=ab;URI=spiffe://td/a;DNS=a.example");
    }
}
