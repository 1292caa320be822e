//! The tree must be marked-yaml's, which it replaced: for every text, the same nodes at the
//! same positions, or the same first error at the same place.

use super::*;
use marked_yaml::LoaderOptions;

fn dump_new(node: &Node, out: &mut String) {
    let p = node.own_pos();
    match node {
        Node::Scalar(s) => *out += &format!("S{}:{}:{}:{:?} ", p.line, p.col, s.plain, s.text),
        Node::Sequence(s) => {
            *out += &format!("L{}:{}[ ", p.line, p.col);
            s.items.iter().for_each(|n| dump_new(n, out));
            *out += "] ";
        }
        Node::Mapping(m) => {
            *out += &format!("M{}:{}{{ ", p.line, p.col);
            for (k, v) in m.iter() {
                dump_new(&Node::Scalar(clone(k)), out);
                dump_new(v, out);
            }
            *out += "} ";
        }
    }
}

fn clone(s: &Scalar) -> Scalar {
    Scalar {
        pos: s.pos,
        text: s.text.clone(),
        plain: s.plain,
    }
}

fn dump_old(node: &marked_yaml::Node, out: &mut String) {
    use marked_yaml::Node as N;
    let m = node
        .span()
        .start()
        .map_or((0, 0), |m| (m.line(), m.column()));
    match node {
        N::Scalar(s) => *out += &format!("S{}:{}:{}:{:?} ", m.0, m.1, s.may_coerce(), s.as_str()),
        N::Sequence(s) => {
            *out += &format!("L{}:{}[ ", m.0, m.1);
            s.iter().for_each(|n| dump_old(n, out));
            *out += "] ";
        }
        N::Mapping(map) => {
            *out += &format!("M{}:{}{{ ", m.0, m.1);
            for (k, v) in map.iter() {
                dump_old(&N::Scalar(k.clone()), out);
                dump_old(v, out);
            }
            *out += "} ";
        }
    }
}

/// marked-yaml's errors, as the loader worded them before.
fn old_error(e: &marked_yaml::LoadError) -> String {
    use marked_yaml::LoadError as E;
    let at = |m: &marked_yaml::Marker, what: &str| format!("{}:{}: {what}", m.line(), m.column());
    match e {
        E::TopLevelMustBeMapping(m) | E::TopLevelMustBeSequence(m) => at(m, "top"),
        E::UnexpectedAnchor(m) => at(m, "anchor"),
        E::MappingKeyMustBeScalar(m) => at(m, "key"),
        E::UnexpectedTag(m) => at(m, "tag"),
        E::ScanError(m, e) => at(m, e.info()),
        E::DuplicateKey(d) => {
            let first = d.prev_key.span().start().map_or(0, |m| m.line());
            let m = d
                .key
                .span()
                .start()
                .map_or((0, 0), |m| (m.line(), m.column()));
            format!("{}:{}: duplicate {} {first}", m.0, m.1, d.key.as_str())
        }
    }
}

fn new_error(e: &LoadError) -> String {
    let at = |p: &Pos, what: &str| format!("{}:{}: {what}", p.line, p.col);
    match e {
        LoadError::TopLevelMustBeMapping(p) => at(p, "top"),
        LoadError::UnexpectedAnchor(p) => at(p, "anchor"),
        LoadError::MappingKeyMustBeScalar(p) => at(p, "key"),
        LoadError::UnexpectedTag(p) => at(p, "tag"),
        LoadError::Syntax(p, e) => at(p, e.info()),
        LoadError::DuplicateKey {
            key,
            pos,
            first_line,
        } => format!("{}:{}: duplicate {key} {first_line}", pos.line, pos.col),
    }
}

fn same(text: &str) {
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let old = marked_yaml::parse_yaml_with_options(0, text, options).map(|n| {
        let mut s = String::new();
        dump_old(&n, &mut s);
        s
    });
    let old = old.map_err(|e| old_error(&e));
    let new = parse(text)
        .map(|n| {
            let mut s = String::new();
            dump_new(&n, &mut s);
            s
        })
        .map_err(|e| new_error(&e));
    assert_eq!(new, old, "for {text:?}");
}

const CASES: &[&str] = &[
    "",
    "# only a comment\n",
    "---\n",
    "a: 1\n",
    "- a\n- b\n",
    "just text\n",
    "a: &x 1\nb: *x\n",
    "a: *x\n",
    "a: !!str 1\n",
    "!!map {a: 1}\n",
    "a: [1, !t 2]\n",
    "a: 1\na: 2\n",
    "a: {b: 1, b: 2}\n",
    "a: {b: [1, 2]}\nc: 3\na: [x]\n",
    "a:\n  b: 1\n  c:\n    - d: 2\n      e: \"3\"\n    - 'x'\n",
    "{a: 1}: 2\n",
    "? [a]\n: b\n",
    "[a]: b\n",
    "a: |\n  text\n  more\nb: >\n  folded\n",
    "a: [1, 2\nb: 3\n",
    "a: {b: 1\n",
    "a:\tb\n",
    "  a: 1\n b: 2\n",
    "a: 'unclosed\n",
    "a: \"x\\qy\"\n",
    "\"a\": 1\n'b': 2\n\"a\": 3\n",
    "a: ~\nb: null\nc:\nd: \"\"\n",
    "k0: 0\nk1: 1\nk2: 2\nk3: 3\nk4: 4\nk5: 5\nk6: 6\nk7: 7\nk8: 8\nk9: 9\nk10: 0\nk11: 1\nk12: 2\nk13: 3\nk14: 4\nk15: 5\nk16: 6\nk17: 7\nk3: dup\n",
    "a: 1\n---\nb: 2\n",
    "%YAML 1.2\n---\na: 1\n",
    "a: 1\n...\n",
    "- &a [1]\n",
    "a: &a {b: 1}\n",
];

#[test]
fn handwritten_cases_parse_as_marked_yaml_did() {
    for text in CASES {
        same(text);
    }
}

/// Every config in the docs and the example, then thousands of copies with bytes cut,
/// repeated or replaced by YAML's punctuation: broken files must fail at the same place.
#[test]
fn docs_and_mutated_configs_parse_as_marked_yaml_did() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = vec![std::fs::read_to_string(root.join("tests/example.yaml")).unwrap()];
    for doc in ["config.md", "tls.md", "kubernetes.md", "interception.md"] {
        let md = std::fs::read_to_string(root.join("../docs").join(doc)).unwrap();
        for block in md.split("```yaml\n").skip(1) {
            texts.push(block.split("```").next().unwrap_or_default().to_string());
        }
    }
    assert!(texts.len() > 10, "{} configs found", texts.len());
    for text in &texts {
        same(text);
    }
    let mut rng = fastrand::Rng::with_seed(18);
    let punctuation = b":-[]{},#&*!|>'\"%@` \n\t?";
    for _ in 0..3000 {
        let mut bytes = texts[rng.usize(..texts.len())].clone().into_bytes();
        for _ in 0..rng.usize(1..4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.usize(..bytes.len());
            match rng.u8(..3) {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, punctuation[rng.usize(..punctuation.len())]),
                _ => bytes[at] = punctuation[rng.usize(..punctuation.len())],
            }
        }
        if let Ok(text) = String::from_utf8(bytes) {
            same(&text);
        }
    }
}
