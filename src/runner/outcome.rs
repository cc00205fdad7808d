//! What `up` returns: the migrations this run applied ([`Applied`]), or
//! with `--dry-run` the script of each pending one ([`DryStep`]), in an
//! [`UpReport`]. Plain data, serialisable; the caller renders it.

use serde::ser::SerializeStruct;

use crate::migration::TxMode;

/// One migration that ran in this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// The migration's version (0 for a repeatable one).
    pub version: i64,
    /// `repeatable` for an `R__` file; left out of the JSON for a
    /// versioned one.
    #[serde(skip_serializing_if = "crate::plan::Kind::is_versioned")]
    pub kind: crate::plan::Kind,
    /// The migration's name.
    pub name: String,
    /// In one transaction, or statement by statement.
    pub transaction: TxMode,
    /// Statements in the file.
    pub statements: usize,
    /// Statements an earlier run had finished (this run started after them).
    pub resumed_from: usize,
    /// Applied below the highest applied version (`allow_out_of_order`).
    pub out_of_order: bool,
    /// How long this run took for it.
    pub duration_ms: u64,
    /// The answer to its COMMIT (or last history write) was lost with the
    /// connection; after reconnecting, the history showed it applied.
    pub answer_lost: bool,
}

/// One line of a dry run: a request as the server receives it, or a
/// comment that says what happens around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Sent: its SQL exactly, with `<...>` where a value is known only at
    /// run time (`<elapsed ms>`, `<lease owner>`). `BEGIN` and `COMMIT` are
    /// the Data API's BeginTransaction and CommitTransaction calls there.
    Sent(String),
    /// Not sent: what a check decides, or a statement a transport skips.
    Comment(String),
}

/// One migration as `up --dry-run` shows it: what `up` sends for it, in
/// order (its script, rendered).
#[derive(Debug, Clone)]
pub struct DryStep {
    pub version: i64,
    /// A repeatable migration's (`R__`; version 0). Steps that are not a
    /// migration (creating the database) have version 0 and `versioned`.
    pub kind: crate::plan::Kind,
    pub name: String,
    pub transaction: TxMode,
    pub lines: Vec<Line>,
    /// What the backend says about how it sends them (see
    /// [`super::Event::Note`]).
    pub notes: Vec<String>,
}

impl DryStep {
    /// The requests, in order, as the server receives them.
    pub fn sent(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            Line::Sent(s) => Some(s.as_str()),
            Line::Comment(_) => None,
        })
    }
}

/// JSON: `sql` holds the requests (what is sent), `comments` the lines
/// that are not sent, `notes` the backend's notes.
impl serde::Serialize for DryStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let comments: Vec<&str> = self
            .lines
            .iter()
            .filter_map(|l| match l {
                Line::Comment(c) => Some(c.as_str()),
                Line::Sent(_) => None,
            })
            .collect();
        let mut st = s.serialize_struct("DryStep", 7)?;
        st.serialize_field("version", &self.version)?;
        if !self.kind.is_versioned() {
            st.serialize_field("kind", &self.kind)?;
        }
        st.serialize_field("name", &self.name)?;
        st.serialize_field("transaction", &self.transaction)?;
        st.serialize_field("sql", &self.sent().collect::<Vec<_>>())?;
        st.serialize_field("comments", &comments)?;
        st.serialize_field("notes", &self.notes)?;
        st.end()
    }
}

/// The outcome of `up` ([`Migrator::up`](crate::Migrator::up)).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UpReport {
    /// The database, as `user@host:port/db` (never a password).
    pub target: String,
    /// What this run applied, in order (empty: nothing was pending).
    pub applied: Vec<Applied>,
    /// Filled only by `--dry-run`.
    pub(crate) dry_run: Vec<DryStep>,
    /// This run created the database (`create_database`).
    pub created_database: bool,
    /// When nothing was pending up to `--target`: where the database is, for
    /// the message (it is not "up to date" with migrations above the target).
    #[serde(skip)]
    pub(crate) short_of_target: Option<ShortOfTarget>,
}

/// `up --target T` found nothing to apply up to T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortOfTarget {
    pub target: i64,
    /// The highest applied version.
    pub highest_applied: Option<i64>,
    /// Migrations not applied whose version is above the target.
    pub pending_above: usize,
}
