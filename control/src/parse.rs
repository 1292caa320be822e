//! YAML text to a tree of position-marked nodes.

use crate::node::Pos;
use crate::problem::Problem;
use marked_yaml::{LoadError, LoaderOptions, Marker, Node};

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
    let options = LoaderOptions::default()
        // The last duplicate would otherwise silently win.
        .error_on_duplicate_keys(true)
        // Keep `"100"` a string, as YAML and JSON mean it.
        .prevent_coercion(true);
    marked_yaml::parse_yaml_with_options(0, text, options).map_err(|e| syntax_problem(&e, file))
}

fn syntax_problem(error: &LoadError, file: &str) -> Problem {
    let at = |m: &Marker, reason: String| {
        Problem::new(
            file,
            u32::try_from(m.line()).unwrap_or(u32::MAX),
            u32::try_from(m.column()).unwrap_or(u32::MAX),
            reason,
        )
    };
    match error {
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => {
            at(m, "the top level of the config must be a mapping".into())
        }
        LoadError::UnexpectedAnchor(m) => at(
            m,
            "YAML anchors and aliases are not supported; write the value out".into(),
        ),
        LoadError::MappingKeyMustBeScalar(m) => at(m, "mapping keys must be plain strings".into()),
        LoadError::UnexpectedTag(m) => at(m, "YAML tags (`!...`) are not supported".into()),
        LoadError::ScanError(m, e) => at(m, format!("YAML syntax error: {}", e.info())),
        LoadError::DuplicateKey(dup) => {
            let first = dup
                .prev_key
                .span()
                .start()
                .map(|m| format!(" (first at line {})", m.line()))
                .unwrap_or_default();
            match dup.key.span().start() {
                Some(m) => at(m, format!("duplicate key `{}`{first}", dup.key.as_str())),
                None => Problem::new(
                    file,
                    Pos::START.line,
                    Pos::START.col,
                    format!("duplicate key `{}`{first}", dup.key.as_str()),
                ),
            }
        }
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
