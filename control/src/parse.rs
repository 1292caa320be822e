//! YAML text to a tree of position-marked nodes.

use crate::node::Pos;
use crate::problem::Problem;
use crate::yaml::{LoadError, Node};

/// Parses `text`, or returns the single syntax problem: after a syntax error
/// the parser has no reliable structure left, so reporting more would be
/// guesswork.
pub(crate) fn parse(text: &str, file: &str) -> Result<Node, Problem> {
    if let Some(pos) = second_document(text) {
        return Err(Problem::new(
            file,
            pos.line,
            pos.col,
            "only one YAML document is allowed; remove this `---` and what follows or split the file",
        ));
    }
    // Duplicate keys are an error (the last would otherwise silently win), and a quoted
    // `"100"` stays a string, as YAML and JSON mean it.
    crate::yaml::parse(text).map_err(|e| syntax_problem(&e, file))
}

fn syntax_problem(error: &LoadError, file: &str) -> Problem {
    let at = |p: &Pos, reason: String| Problem::new(file, p.line, p.col, reason);
    match error {
        LoadError::TopLevelMustBeMapping(p) => {
            at(p, "the top level of the config must be a mapping".into())
        }
        LoadError::UnexpectedAnchor(p) => at(
            p,
            "YAML anchors and aliases are not supported; write the value out".into(),
        ),
        LoadError::MappingKeyMustBeScalar(p) => at(p, "mapping keys must be plain strings".into()),
        LoadError::UnexpectedTag(p) => at(p, "YAML tags (`!...`) are not supported".into()),
        LoadError::Syntax(p, e) => at(p, format!("YAML syntax error: {}", e.info())),
        LoadError::DuplicateKey {
            key,
            pos,
            first_line,
        } => at(
            pos,
            format!("duplicate key `{key}` (first at line {first_line})"),
        ),
    }
}

/// The loader reads only the first document and would silently ignore the
/// rest, so find a `---` that starts a later one.
fn second_document(text: &str) -> Option<Pos> {
    let mut seen_content = false;
    for (index, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker && seen_content {
            return Some(Pos {
                line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                col: 1,
            });
        }
        let trimmed = line.trim_start();
        if is_marker {
            // A marker may carry content on its own line (`--- {a: 1}`).
            seen_content |= !line[3..].trim().is_empty() && !line[3..].trim().starts_with('#');
        } else if !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('%') {
            seen_content = true;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_document_marker_is_fine() {
        assert_eq!(second_document("# c\n---\na: 1\n"), None);
        assert_eq!(
            second_document("a: 1\n---\nb: 2\n"),
            Some(Pos { line: 2, col: 1 })
        );
        assert_eq!(second_document("a: \"---\"\n"), None);
    }
}
