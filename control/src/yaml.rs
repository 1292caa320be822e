//! A positioned YAML tree, built from yaml-rust2's parser events.
//!
//! Every value keeps the line and column where it starts, so each problem in a config can be
//! reported as `file:line:col`. This replaces marked-yaml's tree, which is built from the same
//! parser and the same events, with the same checks in the same order (so the same files are
//! accepted and the same first error is reported), but costs several times less: a node here
//! is a position and its text or children, where marked-yaml's carried two full markers, an
//! insertion-ordered hash map per mapping and a copy of every key. At 10,000 routes building
//! and freeing that tree was most of the time to load a config (issue 18).

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

/// 1-based position in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub(crate) const START: Pos = Pos { line: 1, col: 1 };
}

/// One value of the document.
#[derive(Debug)]
pub(crate) enum Node {
    Scalar(Scalar),
    Mapping(Mapping),
    Sequence(Sequence),
}

/// A scalar as written: its text and whether it was plain (unquoted, not a block scalar).
#[derive(Debug)]
pub(crate) struct Scalar {
    pos: Pos,
    text: String,
    plain: bool,
}

/// A mapping's entries in file order; keys are unique (a duplicate is a load error).
#[derive(Debug)]
pub(crate) struct Mapping {
    pos: Pos,
    entries: Vec<(Scalar, Node)>,
    /// Key → index in `entries`, once there are more than [`SCAN_KEYS`] (empty, which does not
    /// allocate, until then): keeps the duplicate
    /// check linear for a mapping with thousands of keys.
    index: std::collections::HashMap<String, usize>,
}

/// Up to this many keys a mapping is searched by scanning.
const SCAN_KEYS: usize = 16;

/// A list's items in file order.
#[derive(Debug)]
pub(crate) struct Sequence {
    pos: Pos,
    items: Vec<Node>,
}

impl Node {
    /// Where the parser marked this node (a block mapping: at its first `:`).
    pub(crate) fn own_pos(&self) -> Pos {
        match self {
            Node::Scalar(s) => s.pos,
            Node::Mapping(m) => m.pos,
            Node::Sequence(s) => s.pos,
        }
    }

    pub(crate) fn as_mapping(&self) -> Option<&Mapping> {
        match self {
            Node::Mapping(m) => Some(m),
            _ => None,
        }
    }
}

impl Scalar {
    pub(crate) fn pos(&self) -> Pos {
        self.pos
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Plain scalars may be read as numbers, booleans or null; quoted ones are strings.
    pub(crate) fn may_coerce(&self) -> bool {
        self.plain
    }
}

impl Mapping {
    /// Entries in file order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Scalar, &Node)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The value of `key`. A linear search: config mappings have a handful of keys.
    pub(crate) fn get_node(&self, key: &str) -> Option<&Node> {
        self.position(key)
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    fn position(&self, key: &str) -> Option<usize> {
        if self.entries.len() > SCAN_KEYS {
            return self.index.get(key).copied();
        }
        self.entries.iter().position(|(k, _)| k.text == key)
    }

    fn push(&mut self, key: Scalar, value: Node) {
        self.entries.push((key, value));
        if self.entries.len() > SCAN_KEYS {
            if self.index.is_empty() {
                let keys = self.entries.iter().enumerate();
                self.index = keys.map(|(i, (k, _))| (k.text.clone(), i)).collect();
            } else if let Some((k, _)) = self.entries.last() {
                self.index.insert(k.text.clone(), self.entries.len() - 1);
            }
        }
    }
}

impl Sequence {
    /// Items in file order.
    pub(crate) fn items(&self) -> &[Node] {
        &self.items
    }
}

/// Why a text is not a config document. The variants and where they point are marked-yaml's
/// (the wording of each is chosen in `parse.rs`).
#[derive(Debug)]
pub(crate) enum LoadError {
    TopLevelMustBeMapping(Pos),
    UnexpectedAnchor(Pos),
    MappingKeyMustBeScalar(Pos),
    UnexpectedTag(Pos),
    Syntax(Pos, ScanError),
    /// The duplicate key, and the line of the first one.
    DuplicateKey {
        key: String,
        pos: Pos,
        first_line: u32,
    },
}

/// Parses the first document of `text` (the caller rejects a second one).
pub(crate) fn parse(text: &str) -> Result<Node, LoadError> {
    let mut builder = Builder {
        stack: Vec::new(),
        state: State::Initial,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        return Err(LoadError::Syntax(pos(e.marker()), e));
    }
    match builder.state {
        State::Finished(node) => Ok(node),
        State::Error(e) => Err(e),
        // yaml-rust2 ends every successful load with a complete document.
        _ => Err(LoadError::TopLevelMustBeMapping(Pos::START)),
    }
}

fn pos(m: &Marker) -> Pos {
    Pos {
        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
        col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
    }
}

enum State {
    Initial,
    StartStream,
    StartDocument,
    Key(Mapping),
    Value(Mapping, Scalar),
    Items(Sequence),
    Finished(Node),
    Error(LoadError),
}

/// The collections being read, outermost first, and the innermost one (`state`).
struct Builder {
    stack: Vec<State>,
    state: State,
}

impl Builder {
    /// Opens a collection inside the current state, or says why it may not be there.
    fn open(&mut self, collection: State, at: Pos) {
        let state = std::mem::replace(&mut self.state, State::Initial);
        self.state = match state {
            State::StartDocument if matches!(collection, State::Key(_)) => collection,
            State::StartDocument => State::Error(LoadError::TopLevelMustBeMapping(at)),
            State::Key(_) => State::Error(LoadError::MappingKeyMustBeScalar(at)),
            outer @ (State::Value(..) | State::Items(_)) => {
                self.stack.push(outer);
                collection
            }
            other => other,
        };
    }

    /// Puts a finished value into the state around it.
    fn complete(&mut self, outer: State, node: Node) -> State {
        match outer {
            State::Value(mut map, key) => {
                let first = map.position(&key.text).and_then(|i| map.entries.get(i));
                if let Some((first, _)) = first {
                    return State::Error(LoadError::DuplicateKey {
                        first_line: first.pos.line,
                        key: key.text,
                        pos: key.pos,
                    });
                }
                map.push(key, node);
                State::Key(map)
            }
            State::Items(mut seq) => {
                seq.items.push(node);
                State::Items(seq)
            }
            State::Key(map) => match node {
                Node::Scalar(key) => State::Value(map, key),
                other => State::Error(LoadError::MappingKeyMustBeScalar(other.own_pos())),
            },
            State::StartDocument => match node {
                Node::Mapping(_) => State::Finished(node),
                other => State::Error(LoadError::TopLevelMustBeMapping(other.own_pos())),
            },
            other => other,
        }
    }

    /// Closes the innermost collection.
    fn close(&mut self) {
        let node = match std::mem::replace(&mut self.state, State::Initial) {
            State::Key(map) => Node::Mapping(map),
            State::Items(seq) => Node::Sequence(seq),
            other => {
                self.state = other;
                return;
            }
        };
        self.state = match self.stack.pop() {
            Some(outer) => self.complete(outer, node),
            None => State::Finished(node),
        };
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        // After the first problem the rest of the document is not read, as in marked-yaml.
        if matches!(self.state, State::Error(_)) {
            return;
        }
        let at = pos(&mark);
        match ev {
            Event::StreamStart => self.state = State::StartStream,
            Event::DocumentStart => self.state = State::StartDocument,
            Event::MappingStart(_, Some(_)) | Event::SequenceStart(_, Some(_)) => {
                self.state = State::Error(LoadError::UnexpectedTag(at));
            }
            Event::MappingStart(anchor, None) | Event::SequenceStart(anchor, None)
                if anchor != 0 =>
            {
                self.state = State::Error(LoadError::UnexpectedAnchor(at));
            }
            Event::MappingStart(..) => {
                let map = Mapping {
                    pos: at,
                    entries: Vec::new(),
                    index: std::collections::HashMap::new(),
                };
                self.open(State::Key(map), at);
            }
            Event::SequenceStart(..) => {
                let seq = Sequence {
                    pos: at,
                    items: Vec::new(),
                };
                self.open(State::Items(seq), at);
            }
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            Event::Scalar(_, _, anchor, _) if anchor != 0 => {
                self.state = State::Error(LoadError::UnexpectedAnchor(at));
            }
            Event::Scalar(_, _, _, Some(_)) => {
                self.state = State::Error(LoadError::UnexpectedTag(at));
            }
            Event::Scalar(text, style, _, None) => {
                let scalar = Scalar {
                    pos: at,
                    text,
                    plain: matches!(style, TScalarStyle::Plain),
                };
                let outer = std::mem::replace(&mut self.state, State::Initial);
                self.state = self.complete(outer, Node::Scalar(scalar));
            }
            // An empty stream is an empty mapping, marked where the stream ends.
            Event::StreamEnd if matches!(self.state, State::StartStream) => {
                self.state = State::Finished(Node::Mapping(Mapping {
                    pos: at,
                    entries: Vec::new(),
                    index: std::collections::HashMap::new(),
                }));
            }
            // Aliases need an anchor, which is refused where it is defined.
            Event::Alias(_) => self.state = State::Error(LoadError::UnexpectedAnchor(at)),
            Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
