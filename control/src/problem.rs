//! Problems found while loading a config file.
//!
//! Loading is all-or-nothing, so callers get every problem at once and can fix
//! a file in one pass instead of one error per reload attempt.

use std::fmt;

/// One problem, pointing at the offending node of the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {reason}")]
pub struct Problem {
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters (not bytes).
    pub col: u32,
    /// What is wrong, phrased for the person editing the file.
    pub reason: String,
}

impl Problem {
    /// Builds a problem at `line:col` of `file`.
    pub fn new(file: &str, line: u32, col: u32, reason: impl Into<String>) -> Self {
        Problem {
            file: file.to_string(),
            line,
            col,
            reason: reason.into(),
        }
    }
}

/// Every problem of one load, sorted by position in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Sorts by position so the output reads top to bottom like the file.
    pub(crate) fn sorted(mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| (p.line, p.col));
        Problems(problems)
    }

    pub(crate) fn one(problem: Problem) -> Self {
        Problems(vec![problem])
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no problems (never the case for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the problems in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
