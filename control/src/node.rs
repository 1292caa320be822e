//! Typed reading of YAML nodes that records a positioned problem instead of
//! stopping, so one pass over the file finds every problem.

use crate::duration;
use crate::problem::Problem;
use crate::yaml::{Mapping, Node, Scalar};
use std::net::SocketAddr;
use std::time::Duration;

pub(crate) use crate::yaml::Pos;

/// A decoded value and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct At<T> {
    pub value: T,
    pub pos: Pos,
}

/// Where a mapping key starts.
pub(crate) fn key_pos(key: &Scalar) -> Pos {
    key.pos()
}

/// Where a node starts, as a person would point at it.
pub(crate) fn pos_of(node: &Node) -> Pos {
    let own = node.own_pos();
    match node {
        // The parser marks a block mapping at its first `:`, not at its first
        // key; the key is what a reader sees as the start of the entry.
        Node::Mapping(map) => map
            .iter()
            .next()
            .map(|(key, _)| key.pos().min(own))
            .unwrap_or(own),
        _ => own,
    }
}

fn describe(node: &Node) -> &'static str {
    match node {
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
        Node::Scalar(s) if is_null_scalar(s) => "nothing",
        Node::Scalar(s)
            if s.may_coerce()
                && matches!(
                    s.as_str(),
                    "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
                ) =>
        {
            "a boolean"
        }
        Node::Scalar(s) if s.may_coerce() && s.as_str().parse::<f64>().is_ok() => "a number",
        Node::Scalar(_) => "a string",
    }
}

fn is_null_scalar(s: &Scalar) -> bool {
    // Only plain scalars can be null; `"null"` in quotes is a string.
    s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
}

pub(crate) fn is_null(node: &Node) -> bool {
    matches!(node, Node::Scalar(s) if is_null_scalar(s))
}

/// Collects problems for one file.
pub(crate) struct Sink<'f> {
    file: &'f str,
    problems: Vec<Problem>,
}

impl<'f> Sink<'f> {
    pub(crate) fn new(file: &'f str) -> Self {
        Sink {
            file,
            problems: Vec::new(),
        }
    }

    pub(crate) fn report(&mut self, pos: Pos, reason: impl Into<String>) {
        self.problems
            .push(Problem::new(self.file, pos.line, pos.col, reason));
    }

    /// The file being read, as given to the loader.
    pub(crate) fn file(&self) -> &str {
        self.file
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    fn wrong_type(&mut self, node: &Node, expected: &str, what: &str) {
        let found = describe(node);
        self.report(
            pos_of(node),
            format!("expected {expected} for {what}, found {found}"),
        );
    }

    /// Opens a mapping and reports every key not in `allowed`.
    pub(crate) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let map = match node {
            Node::Mapping(map) => map,
            _ => {
                self.wrong_type(node, "a mapping", what);
                return None;
            }
        };
        for (key, _) in map.iter() {
            if !allowed.contains(&key.as_str()) {
                self.report(
                    key.pos(),
                    format!(
                        "unknown field `{}` in {what}; expected one of: {}",
                        key.as_str(),
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Fields {
            map,
            pos: pos_of(node),
        })
    }

    pub(crate) fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match node {
            Node::Sequence(seq) => Some(seq.items()),
            _ => {
                self.wrong_type(node, "a list", what);
                None
            }
        }
    }

    /// Any non-null scalar as text: `x-canary: 1` means the string "1".
    pub(crate) fn string(&mut self, node: &Node, what: &str) -> Option<At<String>> {
        match node {
            Node::Scalar(s) if !is_null_scalar(s) => Some(At {
                value: s.as_str().to_string(),
                pos: pos_of(node),
            }),
            _ => {
                self.wrong_type(node, "a string", what);
                None
            }
        }
    }

    /// `true` or `false`, unquoted (a quoted `"true"` is a string, as in JSON).
    pub(crate) fn boolean(&mut self, node: &Node, what: &str) -> Option<At<bool>> {
        match node {
            Node::Scalar(s) if s.may_coerce() && matches!(s.as_str(), "true" | "false") => {
                Some(At {
                    value: s.as_str() == "true",
                    pos: pos_of(node),
                })
            }
            _ => {
                self.wrong_type(node, "`true` or `false`", what);
                None
            }
        }
    }

    /// A non-negative integer; quoted numbers are strings, as in JSON.
    pub(crate) fn uint(&mut self, node: &Node, what: &str) -> Option<At<u64>> {
        match node {
            Node::Scalar(s) if s.may_coerce() && !is_null_scalar(s) => {
                match s.as_str().parse::<u64>() {
                    Ok(value) => Some(At {
                        value,
                        pos: pos_of(node),
                    }),
                    Err(_) => {
                        self.report(
                            pos_of(node),
                            format!(
                                "expected a non-negative integer for {what}, found `{}`",
                                s.as_str()
                            ),
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(node, "an integer", what);
                None
            }
        }
    }

    /// A duration with a unit, greater than zero: a zero timeout would
    /// either fire at once or mean "never", and neither is what anyone wants.
    pub(crate) fn duration(&mut self, node: &Node, what: &str) -> Option<At<Duration>> {
        let text = self.string(node, what)?;
        match duration::parse(&text.value) {
            Ok(d) if d.is_zero() => {
                self.report(text.pos, format!("{what} must be greater than zero"));
                None
            }
            Ok(d) => Some(At {
                value: d,
                pos: text.pos,
            }),
            Err(e) => {
                self.report(text.pos, format!("{what}: {e}"));
                None
            }
        }
    }

    /// A literal `IP:port`; host names are not resolved at load time so a
    /// reload never blocks on or varies with DNS.
    pub(crate) fn socket_addr(&mut self, node: &Node, what: &str) -> Option<At<SocketAddr>> {
        let text = self.string(node, what)?;
        match text.value.parse::<SocketAddr>() {
            Ok(addr) => Some(At {
                value: addr,
                pos: text.pos,
            }),
            Err(_) => {
                self.report(
                    text.pos,
                    format!(
                        "invalid socket address `{}` for {what}: expected IP:port, e.g. 127.0.0.1:8080 or [::1]:8080 (host names are not allowed)",
                        text.value
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn one_of<T: Copy>(
        &mut self,
        node: &Node,
        what: &str,
        names: &[(&str, T)],
    ) -> Option<At<T>> {
        let text = self.string(node, what)?;
        match names.iter().find(|(name, _)| *name == text.value) {
            Some((_, value)) => Some(At {
                value: *value,
                pos: text.pos,
            }),
            None => {
                let allowed: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
                self.report(
                    text.pos,
                    format!(
                        "unknown {what} `{}`; allowed: {}",
                        text.value,
                        allowed.join(", ")
                    ),
                );
                None
            }
        }
    }
}

/// The fields of one mapping node.
pub(crate) struct Fields<'n> {
    map: &'n Mapping,
    pub pos: Pos,
}

impl<'n> Fields<'n> {
    /// The value of `key`; an explicit null counts as absent so that
    /// `timeouts:` with nothing under it means "defaults".
    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.map.get_node(key).filter(|node| !is_null(node))
    }

    /// The value of `key`, reporting its absence.
    pub(crate) fn required(&self, sink: &mut Sink, key: &str, what: &str) -> Option<&'n Node> {
        match self.map.get_node(key) {
            None => {
                sink.report(self.pos, format!("missing field `{key}` in {what}"));
                None
            }
            Some(node) if is_null(node) => {
                sink.report(
                    self.key_pos(key).unwrap_or(self.pos),
                    format!("field `{key}` in {what} needs a value"),
                );
                None
            }
            Some(node) => Some(node),
        }
    }

    pub(crate) fn key_pos(&self, key: &str) -> Option<Pos> {
        self.map
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(k, _)| k.pos())
    }
}
