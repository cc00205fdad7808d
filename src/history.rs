//! The history table's rows as Rust data: what was applied, when, by whom,
//! and how far a non-transactional migration got. The SQL that reads and
//! writes them lives in `dialects/`; the backends move them.

/// Status of a row in the history table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every statement ran and the row was written with them.
    Applied,
    /// A non-transactional migration was started and not finished (the
    /// process stopped between statements).
    Partial,
    /// A non-transactional migration stopped on an error after
    /// `statements_done` statements.
    Failed,
    /// `down`: written, never stored in the row's status. A no-transaction
    /// undo finished `statements_done` of its statements (a log entry).
    Undoing,
    /// `down`: an undo statement failed (a log entry with the error).
    UndoFailed,
    /// `down`: the undo is done; the row is removed and the log says so.
    Undone,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Partial => "partial",
            Status::Failed => "failed",
            Status::Undoing => "undo-step",
            Status::UndoFailed => "undo-failed",
            Status::Undone => "undo",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "applied" => Status::Applied,
            "partial" => Status::Partial,
            "failed" => Status::Failed,
            _ => return None,
        })
    }
}

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub status: Status,
    pub statements_done: i32,
    pub statements_total: i32,
    /// Set by the database (`now()`); empty on rows about to be written.
    pub applied_at: String,
    pub execution_ms: i64,
    /// Set by the database (`current_user`); empty on rows about to be written.
    pub installed_by: String,
    pub tool_version: String,
    pub backend: String,
    pub out_of_order: bool,
    /// The failing statement and the server's message, for failed rows.
    pub error: Option<String>,
}

impl Row {
    /// A row about to be written for `m`: `done` of its statements finished.
    /// The database fills in applied_at and installed_by.
    pub fn new(m: &crate::migration::SplitMigration, backend: &str, status: Status, done: usize, out_of_order: bool) -> Row {
        Row {
            version: m.version,
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            status,
            statements_done: done as i32,
            statements_total: m.statements.len() as i32,
            applied_at: String::new(),
            execution_ms: 0,
            installed_by: String::new(),
            tool_version: TOOL_VERSION.into(),
            backend: backend.into(),
            out_of_order,
            error: None,
        }
    }
}

/// The version of a repeatable migration's row (its file's,
/// [`crate::migration::REPEATABLE`]). The row lives in the table of
/// repeatables, keyed by name (`repeatable_*.sql`).
pub use crate::migration::REPEATABLE;

impl Row {
    /// Whether this is a repeatable migration's row.
    pub fn is_repeatable(&self) -> bool {
        self.version == REPEATABLE
    }
}

/// The chatmigrate version written into every row.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Row {
    /// A row as read back: the columns of `dialects/*/history_select.sql`,
    /// all as text (so every transport, the Data API included, reads them the
    /// same way; `applied_at` comes as epoch seconds).
    /// The cells are moved into the row, not copied (a no-op `up` reads
    /// every row).
    pub fn from_text(r: Vec<Option<String>>) -> crate::error::Result<Row> {
        let mut cells = r.into_iter();
        let mut s = || cells.next().flatten().unwrap_or_default();
        let version = s();
        let bad = || crate::error::Error::Other(format!("history table has an unreadable row for version {version}"));
        let (name, checksum, status) = (s(), s(), s());
        let (done, total, applied_at, execution_ms) = (s(), s(), s(), s());
        let (installed_by, out_of_order) = (s(), s());
        let error = cells.next().flatten();
        Ok(Row {
            version: version.parse().map_err(|_| bad())?,
            name,
            checksum,
            status: Status::parse(&status).ok_or_else(bad)?,
            statements_done: done.parse().map_err(|_| bad())?,
            statements_total: total.parse().map_err(|_| bad())?,
            applied_at: rfc3339(applied_at.parse().map_err(|_| bad())?),
            execution_ms: execution_ms.parse().map_err(|_| bad())?,
            installed_by,
            // Written, never read back (history_select.sql).
            tool_version: String::new(),
            backend: String::new(),
            out_of_order: out_of_order == "t" || out_of_order == "true",
            error,
        })
    }
}

impl Row {
    /// A row as `up` reads it to plan (`dialects/*/history_select_plan.sql`):
    /// version, name, checksum, status, statements done and execution time;
    /// the other columns are left empty.
    pub fn from_plan_text(r: Vec<Option<String>>) -> crate::error::Result<Row> {
        let mut cells = r.into_iter();
        let mut s = || cells.next().flatten().unwrap_or_default();
        let version = s();
        let bad = || crate::error::Error::Other(format!("history table has an unreadable row for version {version}"));
        let (name, checksum, status, done, execution_ms) = (s(), s(), s(), s(), s());
        Ok(Row {
            version: version.parse().map_err(|_| bad())?,
            name,
            checksum,
            status: Status::parse(&status).ok_or_else(bad)?,
            statements_done: done.parse().map_err(|_| bad())?,
            statements_total: 0,
            applied_at: String::new(),
            execution_ms: execution_ms.parse().map_err(|_| bad())?,
            installed_by: String::new(),
            tool_version: String::new(),
            backend: String::new(),
            out_of_order: false,
            error: None,
        })
    }
}

/// Seconds since the epoch as `2026-01-02T03:04:05Z` (formatting 1,000
/// timestamps here is cheaper than `to_char` on the server).
fn rfc3339(epoch: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}
