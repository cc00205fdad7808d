//! Where something is in a migration file: `path:line:col`, the one
//! form every error, finding and message names a place with.

/// Where a statement lives: file (or embedded name) plus 1-based line/column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.path, self.line, self.col)
    }
}
