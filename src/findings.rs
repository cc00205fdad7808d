//! The linter's vocabulary, without the linter: a finding (one rule, one
//! statement, its level and whether it may be silenced) and the report of a
//! run. The errors (`Error::Lint`) and every output format read these; the
//! rules that make them live in `lint/`.

use crate::location::Location;

/// How serious a finding is. Error-level findings stop `up` and make `lint`
/// exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// One problem found by one rule in one statement.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static str,
    pub level: Level,
    pub location: Location,
    /// The statement's first line (or the comment line, for ignores).
    pub excerpt: String,
    pub message: String,
    /// What to do instead, with the safer SQL; may span several lines.
    pub help: String,
    /// Whether an ignore comment or `lint_exclude` may silence the rule
    /// (not for what the server would refuse anyway).
    pub ignorable: bool,
}

/// The outcome of one lint run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// How many files were linted.
    pub files: usize,
    /// The ids of the rules that ran.
    pub rules: Vec<&'static str>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.level == Level::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.level == Level::Warning).count()
    }
}
