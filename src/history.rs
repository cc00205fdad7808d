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
