//! What a backend sends for the runner's two kinds of writes, as the server
//! receives it: a transactional migration (BEGIN, its settings, its
//! statements, its history row, COMMIT) and a history row written in
//! autocommit. The backends send these texts, and `up --dry-run` prints
//! them: one function each, so the two cannot drift apart.
//!
//! The shape follows how the backend holds the migration lock
//! ([`LockKind`]), never its name:
//! - a session holder (direct, Citus) sends the settings as `SET LOCAL`
//!   statements and the history row as a plain upsert;
//! - a lease holder without sessions (the Data API) folds the settings into
//!   the transaction's first call, which also holds the lease row
//!   (`lease_guard.sql`), and writes every history row fenced by its lease
//!   (`lease_fence.sql`), so a runner that lost the lease writes nothing.

use super::LockKind;
use crate::dialect::{history_values, ToolSql, Value};
use crate::history::Row;

/// How one backend writes: its SQL, how it holds the lock and, while it
/// holds a lease, the owner that fences its writes (dry-run: a placeholder).
#[derive(Debug, Clone, Copy)]
pub struct Wire<'a> {
    pub dialect: &'a ToolSql,
    pub lock: LockKind,
    /// The lease owner this runner's writes are fenced by: set only for a
    /// lease holder while it holds the lease.
    pub owner: Option<&'a Value>,
}

/// One transactional migration, in the order it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// After `BEGIN`: the settings (`SET LOCAL ...` each), or the one call
    /// that carries them and holds the lease row, or nothing.
    pub opening: Vec<String>,
    pub statements: Vec<String>,
    /// The history row, written in the same transaction with the
    /// server-side elapsed time.
    pub history: String,
}

/// `BEGIN` and `COMMIT` as the server sees them (the Data API sends them as
/// BeginTransaction and CommitTransaction calls).
pub const BEGIN: &str = "BEGIN";
pub const COMMIT: &str = "COMMIT";

impl Transaction {
    /// Every request, in order: BEGIN, the opening, the statements, the
    /// history row, COMMIT.
    pub fn parts(&self) -> Vec<&str> {
        let mut out = Vec::with_capacity(self.opening.len() + self.statements.len() + 3);
        out.push(BEGIN);
        out.extend(self.opening.iter().map(String::as_str));
        out.extend(self.statements.iter().map(String::as_str));
        out.push(&self.history);
        out.push(COMMIT);
        out
    }
}

impl Wire<'_> {
    /// The transaction of a migration: `settings` (`SET LOCAL name = value`
    /// statements), then `statements`, then `row` with the server-side
    /// elapsed time.
    pub fn transaction(&self, settings: &[String], statements: &[&str], row: &Row) -> Transaction {
        let opening = match (self.lock, self.owner) {
            (LockKind::SessionAdvisory, _) => settings.to_vec(),
            (LockKind::LeaseRow, Some(owner)) => vec![self.dialect.transaction_guard(settings, owner)],
            (LockKind::LeaseRow, None) if settings.is_empty() => Vec::new(),
            (LockKind::LeaseRow, None) => vec![ToolSql::combined_settings(settings)],
        };
        Transaction {
            opening,
            statements: statements.iter().map(|s| s.to_string()).collect(),
            history: self.history(row, ToolSql::elapsed_ms()),
        }
    }

    /// A history row (`execution_ms` as given: a number, the server-side
    /// elapsed time, or dry-run's placeholder), fenced by the lease while
    /// this runner holds one.
    pub fn history(&self, row: &Row, execution_ms: Value) -> String {
        use crate::history::Status;
        if matches!(row.status, Status::Undoing | Status::UndoFailed | Status::Undone) {
            // `down`: the log entry of an undo's progress, or its end.
            return self
                .dialect
                .undo_history(row, execution_ms, self.owner.filter(|_| self.lock == LockKind::LeaseRow));
        }
        let mut values = history_values(row, execution_ms);
        match (self.lock, self.owner) {
            (LockKind::LeaseRow, Some(owner)) => {
                values.push(owner.clone());
                self.dialect.upsert_history_fenced(&values)
            }
            _ => self.dialect.upsert_history(&values),
        }
    }
}
