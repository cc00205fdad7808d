//! What a backend can do, as data the runner and the linter read: the
//! neutral vocabulary of the backend seam. Behaviour is chosen by these
//! properties ("no session state between calls"), never by a backend's
//! name; each backend states its own in its module.

/// How a backend holds the migration lock: the one lease row of every
/// transport (`lock.rs`), kept live in one of two ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockKind {
    /// By a session advisory lock on a connection that lives as long as
    /// the run (the server releases it with the session).
    SessionAdvisory,
    /// By an expiry renewed by a heartbeat (no sessions).
    LeaseRow,
}

/// What a backend can do; the runner adapts to these, never to names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// A whole transactional migration (BEGIN, statements, history row,
    /// COMMIT) goes to the server in one network round trip.
    pub pipelined_transactions: bool,
    pub lock: LockKind,
    /// `SET` in one statement is still in effect for the next statement
    /// outside a transaction (true for a real session).
    pub session_state: bool,
    /// When the connection is lost, the server ends the statement in flight
    /// (a real session); false where a statement can outlive the call (the
    /// Data API with continueAfterTimeout), so a lost call's outcome must be
    /// read from the catalog, never assumed.
    pub statements_die_with_connection: bool,
    /// The longest statement the transport accepts, in characters.
    pub max_statement_chars: Option<usize>,
    /// Committing all but a run's last migration with `synchronous_commit =
    /// off` is safe: one server, whose last synchronous commit flushes every
    /// earlier one. Not on Citus, where the coordinator's commit decides the
    /// two-phase commit on the workers.
    pub group_commit: bool,
    /// Tables are distributed across nodes (Citus): distribution columns,
    /// colocation and reference tables constrain keys and DDL.
    pub distributed_tables: bool,
}

/// A property of a backend that decides whether a lint rule runs: rules
/// are scoped by what a backend can do, never by its name, so a new backend
/// with the same property gets the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// No session state between calls: a `SET` or a temporary table does
    /// not reach the next statement (the Data API).
    NoSessionState,
    /// The transport limits the size of one statement.
    StatementSizeLimit,
    /// Tables are distributed across nodes (Citus).
    DistributedTables,
}

impl Property {
    /// Whether a backend with `caps` has this property.
    pub fn of(self, caps: &Capabilities) -> bool {
        match self {
            Property::NoSessionState => !caps.session_state,
            Property::StatementSizeLimit => caps.max_statement_chars.is_some(),
            Property::DistributedTables => caps.distributed_tables,
        }
    }
}
