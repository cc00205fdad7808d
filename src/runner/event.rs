//! Progress of `up`, as it happens: the runner reports each [`Event`] to
//! its caller, which renders it (the CLI: one line each) or ignores it.

use crate::backend::Capabilities;

use super::{Applied, BuildProgress};

/// Progress, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// Connected; what the backend can do, and what the server is (Citus:
    /// release and workers).
    Connected {
        target: String,
        backend: &'static str,
        capabilities: Capabilities,
        facts: Vec<(String, String)>,
    },
    /// This runner created the database (a concurrent runner that found it
    /// created by another does not get this event).
    CreatedDatabase {
        name: String,
    },
    Applying {
        version: i64,
        name: String,
    },
    Resuming {
        version: i64,
        name: String,
        from: usize,
        total: usize,
    },
    Applied(Applied),
    /// What this run is about to apply, in order (version, name), once the
    /// migration lock is held.
    Planned {
        pending: Vec<(i64, String)>,
    },
    /// A CONCURRENTLY build that failed earlier left an INVALID index; it is
    /// dropped before the statement runs again.
    DroppedInvalidIndex {
        version: i64,
        index: String,
    },
    /// The connection was lost; reconnecting to re-read the history and go on.
    Reconnecting {
        attempt: u32,
        reason: String,
    },
    /// A transactional migration was rolled back by the transport (Data API:
    /// transaction expired) and starts over.
    Restarting {
        version: i64,
        name: String,
        reason: String,
    },
    /// A statement outlived the transport's timeout and is still running on
    /// the server; chatmigrate polls until it ends.
    StillRunning {
        version: i64,
        statement: usize,
        elapsed_s: u64,
    },
    /// A session-level SET in a no-transaction file cannot take effect on a
    /// transport without sessions (the Data API) and is skipped.
    SkippedSessionSetting {
        version: i64,
        statement: String,
    },
    /// The backend sends a statement differently, or wants it known how it
    /// behaves (Citus: create_distributed_table_concurrently for a table
    /// with rows, or that writes are blocked while rows are copied).
    Note {
        version: i64,
        message: String,
    },
    /// Something the user should act on, said before or while it happens
    /// (a vector index build whose memory is capped below its estimate;
    /// pgvector's "hnsw graph no longer fits" NOTICE), with the file and
    /// statement.
    Warning {
        version: i64,
        message: String,
    },
    /// SIGINT or SIGTERM arrived while a statement of a no-transaction
    /// migration runs: it finishes, its progress is recorded, then `up` stops.
    Stopping {
        signal: &'static str,
        version: i64,
        statement: usize,
        total: usize,
        excerpt: String,
    },
    /// An index build has run for about two seconds or more: its progress,
    /// about once a second, read from a second connection (a reading with
    /// `ended` closes it).
    IndexProgress(Box<BuildProgress>),
    /// A transactional migration hit lock_timeout and is retried.
    LockRetry {
        version: i64,
        name: String,
        attempt: u32,
        of: u32,
        wait_ms: u64,
    },
}
