//! A cluster endpoint as written: an `IP:port` literal, or a DNS `host:port` that the data
//! plane resolves and re-resolves (every A/AAAA record an endpoint). Checked here without
//! resolving: `ringside check` needs no network.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;

/// A DNS name and the port its addresses are reached on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsName {
    /// Lowercase ASCII, as written otherwise (a trailing `.` marks it absolute, so the
    /// resolv.conf search list is not tried).
    pub host: String,
    pub port: u16,
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One entry of a cluster's `endpoints`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Addr(SocketAddr),
    Name(DnsName),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(a) => a.fmt(f),
            Endpoint::Name(n) => n.fmt(f),
        }
    }
}

impl Endpoint {
    /// Parses `IP:port`, `[v6]:port` or `host:port`. The error says what is wrong.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Ok(Endpoint::Addr(a));
        }
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| "expected IP:port or host:port, e.g. 127.0.0.1:8080 or payments.shop.svc.cluster.local:8080".to_string())?;
        let port: u16 = match port.parse() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("port `{port}` is not a number from 1 to 65535")),
        };
        check_host(host)?;
        Ok(Endpoint::Name(DnsName {
            host: host.to_ascii_lowercase(),
            port,
        }))
    }
}

/// RFC 1123 host names: labels of letters, digits and `-` (not first or last), 1..=63
/// bytes each, 253 in all. An IP-looking name (all digits and dots) is refused: it is a
/// mistyped address, not a name.
fn check_host(host: &str) -> Result<(), String> {
    let bare = host.strip_suffix('.').unwrap_or(host);
    if bare.is_empty() || bare.len() > 253 {
        return Err(format!("host `{host}` must be 1 to 253 characters"));
    }
    if bare.contains(':') || host.starts_with('[') {
        return Err(format!("`{host}` is not an IP address or a host name"));
    }
    for label in bare.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(format!(
                "host `{host}` is not a valid DNS name (label `{label}`: letters, digits and `-`, 1 to 63 characters, no `-` at either end)"
            ));
        }
    }
    if bare.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("`{host}` is not a valid IP address"));
    }
    Ok(())
}

/// Reads one `endpoints` entry, reporting a bad one at its position.
pub(crate) fn decode(
    sink: &mut crate::node::Sink<'_>,
    node: &crate::yaml::Node,
) -> Option<crate::node::At<Endpoint>> {
    let text = sink.string(node, "endpoint")?;
    match Endpoint::parse(&text.value) {
        Ok(value) => Some(crate::node::At {
            value,
            pos: text.pos,
        }),
        Err(why) => {
            sink.report(
                text.pos,
                format!("invalid endpoint `{}`: {why}", text.value),
            );
            None
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Endpoint::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_names() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:80"),
            Ok(Endpoint::Addr("127.0.0.1:80".parse().unwrap()))
        );
        assert!(matches!(Endpoint::parse("[::1]:80"), Ok(Endpoint::Addr(_))));
        let n = Endpoint::parse("Payments.shop.svc.cluster.local:8080").unwrap();
        assert_eq!(n.to_string(), "payments.shop.svc.cluster.local:8080");
        assert!(matches!(Endpoint::parse("web:80"), Ok(Endpoint::Name(_))));
        assert!(matches!(Endpoint::parse("web.:80"), Ok(Endpoint::Name(_))));
    }

    #[test]
    fn bad_endpoints_say_why() {
        for bad in [
            "web",
            "web:0",
            "web:99999",
            "-web:80",
            "we_b:80",
            "a..b:80",
            "1.2.3:80",
            "::1:80x",
            ":80",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
        let long = format!("{}:80", "a".repeat(64));
        assert!(Endpoint::parse(&long).unwrap_err().contains("label"));
    }

    #[test]
    fn serde_round_trip() {
        let e = Endpoint::parse("web.default:80").unwrap();
        let j = serde_json::to_string(&e).unwrap();
        assert_eq!(j, "\"web.default:80\"");
        assert_eq!(serde_json::from_str::<Endpoint>(&j).unwrap(), e);
    }
}
