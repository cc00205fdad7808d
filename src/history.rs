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
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Partial => "partial",
            Status::Failed => "failed",
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
    pub fn new(m: &crate::migration::Migration, backend: &str, status: Status, done: usize, out_of_order: bool) -> Row {
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

/// The chatmigrate version written into every row.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Row {
    /// A row as read back: the columns of `dialects/*/history_select.sql`,
    /// all as text (so every transport, the Data API included, reads them the
    /// same way; `applied_at` comes as epoch seconds).
    pub fn from_text(r: &[Option<String>]) -> crate::error::Result<Row> {
        let s = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let bad = || crate::error::Error::Other(format!("history table has an unreadable row for version {}", s(0)));
        Ok(Row {
            version: s(0).parse().map_err(|_| bad())?,
            name: s(1),
            checksum: s(2),
            status: Status::parse(&s(3)).ok_or_else(bad)?,
            statements_done: s(4).parse().map_err(|_| bad())?,
            statements_total: s(5).parse().map_err(|_| bad())?,
            applied_at: rfc3339(s(6).parse().map_err(|_| bad())?),
            execution_ms: s(7).parse().map_err(|_| bad())?,
            installed_by: s(8),
            tool_version: s(9),
            backend: s(10),
            out_of_order: s(11) == "t" || s(11) == "true",
            error: r.get(12).cloned().flatten(),
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
