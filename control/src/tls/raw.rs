//! Decoding `tls`, `authz` and `identity` from the YAML, loading every certificate and key
//! they name on the way: a file that cannot be used is a problem at the key that names it,
//! reported by `ringside check` like any other, and a reload with one keeps the last good
//! config serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::yaml::Node;

use super::client::{self, ClientParts};
use super::model::{
    Authz, Built, ClusterTls, Identity, IdentitySource, ListenerTls, SniCert, TlsMode,
};
use super::peer::{AllowList, Principal};
use super::pem;
use super::server::{self, ServerParts};
use crate::model::{ListenerProtocol, UpstreamProtocol};
use crate::node::{At, Pos, Sink};

/// The ALPN ids an http listener understands (RFC 7301 registry).
const HTTP_ALPN: &[&str] = &["h2", "http/1.1"];

/// Reads `tls` of a listener and builds its rustls config.
pub(crate) fn listener_tls(
    node: &Node,
    protocol: Option<ListenerProtocol>,
    has_identity: bool,
    sink: &mut Sink,
) -> Option<At<ListenerTls>> {
    let fields = [
        "mode",
        "identity",
        "cert",
        "key",
        "client_ca",
        "alpn",
        "sni",
    ];
    let f = sink.mapping(node, "listener tls", &fields)?;
    let pos = f.pos;
    let mode = match f.get("mode") {
        Some(n) => sink.one_of(n, "tls mode", TlsMode::NAMES)?.value,
        None => TlsMode::Strict,
    };
    let identity = source(f.get("identity"), has_identity, sink)?;
    let cert = f.get("cert").and_then(|n| path(n, "tls cert", sink));
    let key = f.get("key").and_then(|n| path(n, "tls key", sink));
    let client_ca = f
        .get("client_ca")
        .and_then(|n| path(n, "tls client_ca", sink));
    let alpn = match f.get("alpn") {
        Some(n) => {
            let list = strings(n, "alpn", sink)?;
            if protocol == Some(ListenerProtocol::Http) {
                for a in &list {
                    if !HTTP_ALPN.contains(&a.value.as_str()) {
                        sink.report(
                            a.pos,
                            format!("ALPN `{}` is not served by an http listener; use h2 and/or http/1.1", a.value),
                        );
                        return None;
                    }
                }
            }
            list.into_iter().map(|a| a.value).collect()
        }
        None if protocol == Some(ListenerProtocol::Http) => {
            HTTP_ALPN.iter().map(|s| s.to_string()).collect()
        }
        None => Vec::new(),
    };
    let mut parts = ServerParts {
        spiffe: identity == IdentitySource::Spiffe,
        alpn: alpn.iter().map(|a| a.as_bytes().to_vec()).collect(),
        ..ServerParts::default()
    };
    let mut sni = Vec::new();
    if let Some(n) = f.get("sni") {
        for item in sink.list(n, "tls sni")? {
            let (names, c, k, ck) = sni_entry(item, sink)?;
            sni.push(SniCert {
                server_names: names.clone(),
                cert: c,
                key: k,
            });
            parts.sni.push((names, ck));
        }
    }
    match identity {
        IdentitySource::Spiffe => {
            for (what, v) in [("cert", &cert), ("key", &key), ("client_ca", &client_ca)] {
                if let Some(v) = v {
                    sink.report(v.pos, format!("`{what}` cannot be used with `identity: spiffe` (the SVID and the trust bundle are used)"));
                    return None;
                }
            }
            if !sni.is_empty() {
                sink.report(pos, "`sni` cannot be used with `identity: spiffe`");
                return None;
            }
        }
        IdentitySource::Files => {
            match (&cert, &key) {
                (Some(c), Some(k)) => parts.default = Some(pair(c, k, sink)?),
                (Some(c), None) => {
                    sink.report(c.pos, "`cert` needs `key`");
                    return None;
                }
                (None, Some(k)) => {
                    sink.report(k.pos, "`key` needs `cert`");
                    return None;
                }
                (None, None) if sni.is_empty() => {
                    sink.report(
                        pos,
                        "listener tls needs `cert` and `key`, `sni` entries, or `identity: spiffe`",
                    );
                    return None;
                }
                (None, None) => {}
            }
            if let Some(ca) = &client_ca {
                parts.client_roots = Some(at(ca.pos, pem::roots(&ca.value), sink)?);
            }
        }
    }
    let expiry = parts
        .default
        .iter()
        .chain(parts.sni.iter().map(|(_, ck)| ck))
        .filter_map(|ck| ck.cert.first().and_then(|c| pem::not_after(c)))
        .min();
    let own_id = parts
        .default
        .as_ref()
        .and_then(|ck| ck.cert.first())
        .and_then(|der| super::peer::spiffe_id_of(der));
    let built = at(pos, server::build(parts), sink)?;
    Some(At {
        value: ListenerTls {
            mode,
            identity,
            cert: cert.map(|c| c.value),
            key: key.map(|k| k.value),
            client_ca: client_ca.map(|c| c.value),
            alpn,
            sni,
            built: Built(Some(Arc::new(built))),
            own_id,
            expiry,
        },
        pos,
    })
}

fn sni_entry(
    node: &Node,
    sink: &mut Sink,
) -> Option<(
    Vec<String>,
    PathBuf,
    PathBuf,
    Arc<rustls::sign::CertifiedKey>,
)> {
    let f = sink.mapping(node, "sni entry", &["server_names", "cert", "key"])?;
    let n = f.required(sink, "server_names", "sni entry")?;
    let names = strings(n, "server_names", sink)?;
    let n = f.required(sink, "cert", "sni entry")?;
    let cert = path(n, "sni cert", sink)?;
    let n = f.required(sink, "key", "sni entry")?;
    let key = path(n, "sni key", sink)?;
    let ck = pair(&cert, &key, sink)?;
    let mut out = Vec::new();
    for n in names {
        let lower = n.value.to_ascii_lowercase();
        if let Err(e) = server::covers(&ck, &lower) {
            sink.report(n.pos, e);
            return None;
        }
        out.push(lower);
    }
    if out.is_empty() {
        sink.report(f.pos, "`server_names` is empty");
        return None;
    }
    Some((out, cert.value, key.value, ck))
}

/// Reads `tls` of a cluster and builds its rustls config.
pub(crate) fn cluster_tls(
    node: &Node,
    protocol: Option<UpstreamProtocol>,
    has_identity: bool,
    sink: &mut Sink,
) -> Option<At<ClusterTls>> {
    let fields = [
        "identity",
        "ca",
        "cert",
        "key",
        "server_name",
        "server_identity",
        "alpn",
    ];
    let f = sink.mapping(node, "cluster tls", &fields)?;
    let pos = f.pos;
    let identity = source(f.get("identity"), has_identity, sink)?;
    let ca = f.get("ca").and_then(|n| path(n, "tls ca", sink));
    let cert = f.get("cert").and_then(|n| path(n, "tls cert", sink));
    let key = f.get("key").and_then(|n| path(n, "tls key", sink));
    let server_name = match f.get("server_name") {
        Some(n) => {
            let s = sink.string(n, "server_name")?;
            if rustls_pki_types::ServerName::try_from(s.value.as_str()).is_err() {
                sink.report(
                    s.pos,
                    format!("server_name `{}` is not a DNS name or IP address", s.value),
                );
                return None;
            }
            Some(s.value)
        }
        None => None,
    };
    let server_identity = match f.get("server_identity") {
        Some(n) => {
            let s = sink.string(n, "server_identity")?;
            match Principal::parse(&s.value) {
                Ok(Principal::Exact(id)) => Some(id),
                _ => {
                    sink.report(s.pos, format!("server_identity `{}` must be one SPIFFE ID, e.g. spiffe://cluster.local/ns/shop/sa/payments", s.value));
                    return None;
                }
            }
        }
        None => None,
    };
    let alpn: Vec<String> = match f.get("alpn") {
        Some(n) => strings(n, "alpn", sink)?
            .into_iter()
            .map(|a| a.value)
            .collect(),
        None => match protocol {
            Some(UpstreamProtocol::Http2) => vec!["h2".into()],
            _ => vec!["http/1.1".into()],
        },
    };
    let mut parts = ClientParts {
        spiffe: identity == IdentitySource::Spiffe,
        server_identity: server_identity.clone(),
        alpn: alpn.iter().map(|a| a.as_bytes().to_vec()).collect(),
        ..ClientParts::default()
    };
    match identity {
        IdentitySource::Spiffe => {
            for (what, v) in [("ca", &ca), ("cert", &cert), ("key", &key)] {
                if let Some(v) = v {
                    sink.report(v.pos, format!("`{what}` cannot be used with `identity: spiffe` (the SVID and the trust bundle are used)"));
                    return None;
                }
            }
        }
        IdentitySource::Files => {
            let Some(ca) = &ca else {
                sink.report(pos, "cluster tls needs `ca` (the CA bundle that signs the upstream's certificate) or `identity: spiffe`");
                return None;
            };
            parts.roots = Some(at(ca.pos, pem::roots(&ca.value), sink)?);
            match (&cert, &key) {
                (Some(c), Some(k)) => parts.client_key = Some(pair(c, k, sink)?),
                (Some(c), None) => {
                    sink.report(c.pos, "`cert` needs `key`");
                    return None;
                }
                (None, Some(k)) => {
                    sink.report(k.pos, "`key` needs `cert`");
                    return None;
                }
                (None, None) => {}
            }
        }
    }
    let expiry = parts
        .client_key
        .as_ref()
        .and_then(|ck| ck.cert.first().and_then(|c| pem::not_after(c)));
    let built = at(pos, client::build(parts), sink)?;
    Some(At {
        value: ClusterTls {
            identity,
            ca: ca.map(|c| c.value),
            cert: cert.map(|c| c.value),
            key: key.map(|k| k.value),
            server_name,
            server_identity,
            alpn,
            built: Built(Some(Arc::new(built))),
            expiry,
        },
        pos,
    })
}

/// Reads an `authz` mapping (listener or route).
pub(crate) fn authz(node: &Node, sink: &mut Sink) -> Option<At<Authz>> {
    let f = sink.mapping(node, "authz", &["allow"])?;
    let n = f.required(sink, "allow", "authz")?;
    let list = strings(n, "authz allow", sink)?;
    if list.is_empty() {
        sink.report(
            f.pos,
            "`allow` is empty, which would refuse every request; remove `authz` to allow all",
        );
        return None;
    }
    let mut principals = Vec::new();
    let mut ok = true;
    for item in &list {
        match Principal::parse(&item.value) {
            Ok(p) => principals.push(p),
            Err(e) => {
                sink.report(item.pos, e);
                ok = false;
            }
        }
    }
    ok.then(|| At {
        value: Authz {
            allow: list.into_iter().map(|a| a.value).collect(),
            compiled: Built(Some(Arc::new(AllowList(principals)))),
        },
        pos: f.pos,
    })
}

/// Reads the top-level `identity`.
pub(crate) fn identity(node: &Node, sink: &mut Sink) -> Option<At<Identity>> {
    let f = sink.mapping(node, "identity", &["spiffe_socket"])?;
    let n = f.required(sink, "spiffe_socket", "identity")?;
    let s = sink.string(n, "spiffe_socket")?;
    match s.value.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Some(At {
            value: Identity {
                spiffe_socket: s.value,
            },
            pos: f.pos,
        }),
        _ => {
            sink.report(
                s.pos,
                format!(
                    "spiffe_socket `{}` must be `unix:///absolute/path`",
                    s.value
                ),
            );
            None
        }
    }
}

/// A listener's `authz` (or any of its routes') needs verified client certificates.
pub(crate) fn check_authz_needs_mtls(
    tls: Option<&At<ListenerTls>>,
    authz: impl Iterator<Item = Pos>,
    sink: &mut Sink,
) {
    if tls.is_some_and(|t| t.value.mutual()) {
        return;
    }
    for pos in authz {
        sink.report(pos, "`authz` needs mutual TLS on the listener (`tls.client_ca` or `tls.identity: spiffe`): without client certificates nobody has an identity");
    }
}

fn source(node: Option<&Node>, has_identity: bool, sink: &mut Sink) -> Option<IdentitySource> {
    let Some(n) = node else {
        return Some(IdentitySource::Files);
    };
    let s = sink.one_of(n, "tls identity", IdentitySource::NAMES)?;
    if s.value == IdentitySource::Spiffe && !has_identity {
        sink.report(
            s.pos,
            "`identity: spiffe` needs a top-level `identity: { spiffe_socket: unix:///... }`",
        );
        return None;
    }
    Some(s.value)
}

fn path(node: &Node, what: &str, sink: &mut Sink) -> Option<At<PathBuf>> {
    let s = sink.string(node, what)?;
    let p = Path::new(&s.value);
    // Relative paths are relative to the config file, wherever ringside was started.
    let value = if p.is_absolute() {
        p.to_path_buf()
    } else {
        Path::new(sink.file())
            .parent()
            .unwrap_or(Path::new("."))
            .join(p)
    };
    Some(At { value, pos: s.pos })
}

fn strings(node: &Node, what: &str, sink: &mut Sink) -> Option<Vec<At<String>>> {
    let items = sink.list(node, what)?;
    let out: Vec<_> = items.iter().filter_map(|n| sink.string(n, what)).collect();
    (out.len() == items.len()).then_some(out)
}

fn pair(
    cert: &At<PathBuf>,
    key: &At<PathBuf>,
    sink: &mut Sink,
) -> Option<Arc<rustls::sign::CertifiedKey>> {
    let chain = at(cert.pos, pem::chain(&cert.value), sink)?;
    let k = at(key.pos, pem::key(&key.value), sink)?;
    at(
        cert.pos,
        pem::pair(
            chain,
            k,
            &format!("{} and {}", cert.value.display(), key.value.display()),
        ),
        sink,
    )
}

fn at<T>(pos: Pos, r: Result<T, String>, sink: &mut Sink) -> Option<T> {
    r.map_err(|e| sink.report(pos, e)).ok()
}
