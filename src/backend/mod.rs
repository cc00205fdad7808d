//! The backend seam: transport only.
//!
//! A backend executes statements, runs one transactional migration (its
//! statements plus its history row) atomically, takes and releases the
//! migration lock, and reads and writes history rows. Ordering, checksums,
//! planning, dry-run, lint gates, progress and reporting live in `runner/`
//! and above, once. How a transaction and a history row look on the wire
//! is written once, in `wire.rs`, for the backends and for dry-run. Each backend states its [`Capabilities`]; the runner uses
//! those and never asks which backend it is talking to.
//!
//! Deviation from DESIGN.md, on purpose: instead of separate begin / commit /
//! rollback calls, the seam has one `run_transaction(statements, row)`. Each
//! transport composes a transaction its own way (PostgreSQL: one simple-query
//! round trip `BEGIN; ...; INSERT history; COMMIT`; the Data API:
//! BeginTransaction + ExecuteStatement(transactionId) ... + Commit), and a
//! begin/commit API would force the slowest of those shapes on every backend.

pub mod aws;
pub mod citus;
pub mod lock;
pub mod postgres;
pub mod rds_data;
pub mod sqlstate;
pub mod tls;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;

pub use crate::capabilities::{Capabilities, LockKind};
use crate::error::{DbError, Error, Result};
use crate::history::Row;
use crate::migration::Migration;
use crate::settings::{BackendKind, Config};
use crate::sql::Statement;

/// Cancels the statement in flight on the backend it came from.
pub type Canceller = Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// What a connection is for, decided by the command before it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purpose {
    /// The run writes (migrations, history rows, CREATE DATABASE). A replica
    /// is then waited for within `resume_timeout`, as a failover; a
    /// read-only session (a role's or database's
    /// `default_transaction_read_only`) is refused at once. Reads (`status`,
    /// `verify`, `lint --pending`, `up --dry-run`) take either.
    pub write: bool,
    /// This run reached the server before (the reconnect after a lost
    /// connection): a refused connection is a rebooting server and is
    /// retried within `resume_timeout`, not only `refused_timeout`.
    pub reconnect: bool,
}

impl Purpose {
    pub const READ: Purpose = Purpose {
        write: false,
        reconnect: false,
    };
    pub const WRITE: Purpose = Purpose {
        write: true,
        reconnect: false,
    };

    /// The same purpose, for a server this run has reached before.
    pub fn again(self) -> Purpose {
        Purpose { reconnect: true, ..self }
    }
}

/// What the connect-time probe (`dialects/postgres/probe.sql`) read, in the
/// round trip that every backend makes right after connecting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// `pg_is_in_recovery()`: a replica (a hot standby, an Aurora reader).
    pub in_recovery: bool,
    /// `transaction_read_only` of the new session.
    pub read_only: bool,
    /// Where `default_transaction_read_only` was set (`pg_settings.source`:
    /// `user`, `database`, `database user`, `configuration file`, ...).
    pub read_only_source: String,
    pub user: String,
    pub database: String,
    /// The history table exists: reading it cannot fail with "does not exist".
    pub history_exists: bool,
    /// The table of applied repeatable migrations exists (a database of an
    /// earlier release has none until its next locked run creates it).
    pub repeatables_exist: bool,
    /// The backend's own columns, in order (Citus: the extension's version).
    pub extra: Vec<Option<String>>,
}

impl Session {
    /// Reads the probe's row.
    pub fn from_row(r: &[Option<String>]) -> Result<Session> {
        let s = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let yes = |i: usize| matches!(s(i).as_str(), "true" | "t" | "on");
        if r.len() < 7 {
            return Err(Error::Other(format!(
                "unexpected answer from the connect-time probe ({} column(s))",
                r.len()
            )));
        }
        Ok(Session {
            in_recovery: yes(0),
            read_only: yes(1),
            read_only_source: s(2),
            user: s(3),
            database: s(4),
            history_exists: yes(5),
            repeatables_exist: yes(6),
            extra: r[7..].to_vec(),
        })
    }

    /// Whether a run with `purpose` may go on in this session: a replica is
    /// [`Error::Replica`] (the caller waits for a writer), a read-only
    /// session [`Error::ReadOnlySession`] (stop: waiting would not help).
    pub fn check(&self, purpose: Purpose, target: &str) -> Result<()> {
        if !purpose.write {
            return Ok(());
        }
        if self.in_recovery {
            return Err(Error::Replica {
                target: target.to_string(),
                waited: None,
            });
        }
        if self.read_only {
            return Err(Error::ReadOnlySession {
                target: target.to_string(),
                user: self.user.clone(),
                database: self.database.clone(),
                set_by: self.read_only_source.clone(),
            });
        }
        Ok(())
    }
}

/// A statement as the backend will send it, given the database's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adapted {
    /// The text to send instead of the file's (`None`: as written).
    pub sql: Option<String>,
    /// What the user should know about it (e.g. that writes are blocked).
    pub note: Option<String>,
    /// The catalog queries the backend sent to decide, in order (dry-run
    /// shows them with the statement).
    pub reads: Vec<String>,
}

/// A failure while executing statements.
#[derive(Debug)]
pub enum ExecError {
    /// Statement `index` of the request failed; the transaction (if any) was
    /// rolled back. `error.offset` is relative to that statement.
    Statement { index: usize, error: DbError },
    /// The tool's own SQL (BEGIN, the history row, COMMIT) failed.
    /// `context` (which of them) is read only by `Debug`: the runner names
    /// the step itself through [`ExecError::into_error`].
    #[allow(dead_code)]
    Internal { context: &'static str, error: DbError },
    /// The connection went away, or the answer to a non-idempotent call
    /// never came: the outcome is unknown to the transport (the runner
    /// resolves it by re-reading history or the catalog, never by re-sending).
    Lost { message: String },
    /// A statement outside a transaction ran past the transport's timeout
    /// and goes on running in server backend `connection_id`.
    StillRunning { connection_id: i64 },
    /// The transport ended the transaction (Data API: expired, aborted);
    /// nothing of it was committed. `retry`: starting over is expected to work.
    RolledBack { message: String, retry: bool },
    /// A failure that is not the database's (AWS permissions, resume
    /// deadline, a lost lease).
    Transport(Box<Error>),
}

/// The transport interface every backend implements.
#[async_trait]
pub trait Backend: Send {
    /// The value written into the history table's `backend` column.
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// Human-readable target (no secrets), for messages.
    fn target(&self) -> String;

    /// Takes the migration lock, waiting at most `wait`.
    async fn lock(&mut self, wait: Duration) -> Result<()>;
    /// Releases the migration lock (a no-op when not held).
    async fn unlock(&mut self) -> Result<()>;

    /// Creates the history table(s) when missing. Called under the lock.
    async fn ensure_history(&mut self) -> Result<()>;
    /// Creates the table of repeatable migrations when missing (after
    /// [`Backend::ensure_history`], under the lock, before the first
    /// repeatable migration's row is written; no call where the probe
    /// found it).
    async fn ensure_repeatables(&mut self) -> Result<()>;
    /// Every history row, by version. A missing table reads as empty.
    async fn read_history(&mut self) -> Result<Vec<Row>>;
    /// Every history row with only the columns `up` plans with
    /// ([`Row::from_plan_text`]): a no-op `up` reads every row, so it reads
    /// less of each.
    async fn read_history_for_plan(&mut self) -> Result<Vec<Row>> {
        self.read_history().await
    }
    /// Inserts or replaces one history row (autocommit).
    async fn write_history(&mut self, row: &Row) -> Result<()>;
    /// Gives an applied row the file's current name and checksum (repair),
    /// keeping its other columns.
    async fn accept_file(&mut self, version: i64, name: &str, checksum: &str) -> Result<()>;
    /// Deletes one history row (autocommit).
    async fn delete_history(&mut self, version: i64) -> Result<()>;
    /// Appends to the history log: repairs, baselines, imports.
    async fn log_event(&mut self, version: i64, action: &str, old: Option<&str>, new: Option<&str>, detail: Option<&str>) -> Result<()>;

    /// Runs `settings` (`SET LOCAL name = value` statements), then
    /// `statements`, then writes `row`, all in one transaction; rolls back
    /// on any failure. `ExecError::Statement::index` is an index into
    /// `statements` (a failed setting is reported as statement 0).
    /// `row.execution_ms` is filled in by the server (the transaction's
    /// duration so far, as the row is written); returns that value, which
    /// `up` reports, so `up` and `status` show the same time.
    async fn run_transaction(&mut self, settings: &[String], statements: &[&str], row: &Row) -> Result<i64, ExecError>;
    /// Runs one statement outside any transaction.
    async fn execute(&mut self, statement: &str) -> Result<(), ExecError>;
    /// Runs a read-only query and returns its rows as text.
    async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>>;
    /// Does a database of this name exist on the server?
    async fn database_exists(&mut self, name: &str) -> Result<bool>;

    /// What the server is beyond the transport (Citus: release, role,
    /// workers), as `(what, value)` lines for `status` and `up -v`.
    fn facts(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// How this backend sends `statement` (of a file that runs in a
    /// transaction, or not), given the database's current state; asked just
    /// before it is sent, and by dry-run.
    async fn adapt(&mut self, _statement: &Statement, _in_transaction: bool) -> Result<Adapted> {
        Ok(Adapted::default())
    }

    /// What the server said while the statements last sent ran, as lines
    /// for the user (Citus: the NOTICEs and WARNINGs of its function calls,
    /// e.g. that a table has no replica identity); taken once.
    fn take_notices(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// A handle on the notices of the connection that runs the statements,
    /// readable while a statement runs (the backend itself is busy): `walk`
    /// shows pgvector's "hnsw graph no longer fits" at once. `None` where
    /// notices do not reach the client (the Data API).
    fn notices(&self) -> Option<postgres::Notices> {
        None
    }

    /// Asked by `status` and `verify` before [`Backend::facts`]: checks the
    /// parts of the server beyond this connection (Citus: whether the
    /// coordinator reaches each worker); what it finds shows in the facts.
    async fn check_cluster(&mut self) -> Result<()> {
        Ok(())
    }

    /// Asked on the maintenance connection before `CREATE DATABASE name`: a
    /// backend that could not use a database made that way refuses here,
    /// before anything is created.
    async fn check_create_database(&mut self, _name: &str) -> Result<()> {
        Ok(())
    }

    /// Asked on the maintenance connection before `DROP DATABASE name`
    /// (`chatmigrate database drop|reset`): a backend whose databases cannot
    /// be dropped from one node refuses here.
    async fn check_drop_database(&mut self, _name: &str) -> Result<()> {
        Ok(())
    }

    /// The index builds of this database that the session's own server
    /// does not see (Citus: the builds on shards, which run on the
    /// workers): one `(node, JSON array of builds)` per node that
    /// answered, read while a build runs. Empty where the server's own
    /// `pg_stat_progress_create_index` has them all.
    async fn remote_index_builds(&mut self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// The statement in flight is left running on the server (a
    /// CONCURRENTLY build at the deadline, on a session transport): the
    /// session is not used again, so [`Backend::unlock`] does not queue
    /// behind the build (the server releases the lock with the session once
    /// the build ends) and [`Backend::close`] only drops the connection.
    fn leave_session(&mut self) {}

    /// A handle that cancels the statement in flight (used on SIGINT/SIGTERM
    /// so a transactional migration rolls back); `None` if the transport
    /// cannot cancel.
    fn canceller(&self) -> Option<Canceller>;

    /// Closes the connection(s). Idle connections keep a serverless cluster
    /// awake, so every run ends with this.
    async fn close(self: Box<Self>);
}

/// The future a backend's connect function returns.
pub type Connecting<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Box<dyn Backend>>> + Send + 'a>>;

/// A backend as the rest of the crate knows it, declared in the backend's
/// own module (`DEF`) and listed once in [`BACKENDS`]: its name, what it
/// can do, how it connects, what it puts first in a transaction and which
/// migrations it adds. Nothing else matches on which backend it is.
pub struct BackendDef {
    pub kind: BackendKind,
    /// The value of `backend =` and of the history's `backend` column.
    pub name: &'static str,
    pub capabilities: Capabilities,
    /// Migrations added to the embedded set (Citus: its citus-only files).
    pub extra_migrations: &'static [crate::migration::ExtraSet],
    /// The statements after `BEGIN` of every transactional migration, known
    /// from the configuration alone (dry-run shows them without connecting).
    pub prelude: fn(&Config, &Migration) -> Vec<String>,
    /// Connects to the configured database and probes the session.
    pub connect: for<'a> fn(&'a Config, Purpose) -> Connecting<'a>,
    /// Connects to `maintenance_db`, to create or drop the database.
    pub connect_maintenance: for<'a> fn(&'a Config, Purpose) -> Connecting<'a>,
    /// The target for messages (`user@host:port/db`), never a secret.
    pub target: fn(&Config) -> String,
    /// What to check when the target never answered (`chatmigrate wait`).
    pub unreachable_hint: fn(&Config) -> String,
}

/// [`BackendDef::target`] of a backend that connects to `host:port`.
pub fn pg_target(cfg: &Config) -> String {
    cfg.pg.display()
}

/// [`BackendDef::unreachable_hint`] of a backend that connects to `host:port`.
pub fn pg_unreachable_hint(cfg: &Config) -> String {
    format!(
        "check that the server runs and listens on {}:{} (`chatmigrate -v wait` shows the target); raise --timeout to wait longer",
        cfg.pg.host, cfg.pg.port
    )
}

/// Every backend: one line each.
pub static BACKENDS: &[&BackendDef] = &[&postgres::DEF, &rds_data::DEF, &citus::DEF];

/// The registry's entry for `kind`.
pub fn def(kind: BackendKind) -> &'static BackendDef {
    BACKENDS
        .iter()
        .copied()
        .find(|d| d.kind == kind)
        .expect("every BackendKind has a line in BACKENDS")
}

/// No statements before a migration's own.
pub fn no_prelude(_: &Config, _: &Migration) -> Vec<String> {
    Vec::new()
}

/// What a backend kind can do, known before connecting (for checks at load time).
pub fn capabilities_of(kind: BackendKind) -> Capabilities {
    def(kind).capabilities
}

/// The migrations a backend adds to the embedded set (Citus: its
/// citus-only files).
pub fn extra_migrations(kind: BackendKind) -> &'static [crate::migration::ExtraSet] {
    def(kind).extra_migrations
}

/// The settings a backend puts first in every transactional migration,
/// after `BEGIN` (Citus: `SET LOCAL citus.multi_shard_modify_mode`). Known
/// from the configuration alone, so dry-run shows them without connecting.
pub fn transaction_prelude(cfg: &Config, m: &Migration) -> Vec<String> {
    (def(cfg.backend).prelude)(cfg, m)
}

/// Connects to the configured database with the configured backend, and
/// probes the session for `purpose` ([`Session::check`]).
pub async fn connect(cfg: &Config, purpose: Purpose) -> Result<Box<dyn Backend>> {
    (def(cfg.backend).connect)(cfg, purpose).await
}

/// Connects to `maintenance_db`, to create or drop the configured database
/// from there (no role checks: it is not where migrations run). After a
/// connect that found the database missing, `purpose` is a reconnect
/// ([`Purpose::again`]): the server answered already.
pub async fn connect_maintenance(cfg: &Config, purpose: Purpose) -> Result<Box<dyn Backend>> {
    (def(cfg.backend).connect_maintenance)(cfg, purpose).await
}

impl ExecError {
    pub fn transport(e: Error) -> ExecError {
        ExecError::Transport(Box::new(e))
    }

    /// Turns a failure of the tool's own SQL into an [`Error`].
    pub fn into_error(self, context: &str) -> Error {
        match self {
            ExecError::Statement { error, .. } | ExecError::Internal { error, .. } => Error::Db {
                context: context.to_string(),
                error: Box::new(error),
            },
            ExecError::Lost { message } => Error::ConnectionLost {
                context: context.to_string(),
                message,
            },
            ExecError::StillRunning { connection_id } => Error::OutcomeUnknown {
                context: context.to_string(),
                message: format!("the statement is still running in server process {connection_id}"),
            },
            ExecError::RolledBack { message, .. } => Error::TransactionRolledBack {
                context: context.to_string(),
                message,
            },
            ExecError::Transport(e) => *e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<Option<String>> {
        cells.iter().map(|c| Some(c.to_string())).collect()
    }

    #[test]
    fn the_probe_tells_a_replica_from_a_read_only_session() {
        let primary = Session::from_row(&row(&["false", "off", "default", "app", "db", "true", "true"])).unwrap();
        assert!(primary.history_exists && primary.repeatables_exist && primary.extra.is_empty());
        assert!(primary.check(Purpose::WRITE, "t").is_ok());

        let replica = Session::from_row(&row(&["true", "on", "default", "app", "db", "false", "false"])).unwrap();
        assert!(matches!(
            replica.check(Purpose::WRITE, "t"),
            Err(Error::Replica { waited: None, .. })
        ));
        assert!(replica.check(Purpose::READ, "t").is_ok());

        let role = Session::from_row(&row(&["false", "on", "user", "app_ro", "db", "true", "true", "14.0"])).unwrap();
        assert_eq!(role.extra, vec![Some("14.0".to_string())]);
        let e = role.check(Purpose::WRITE, "app_ro@h:5432/db").unwrap_err();
        assert_eq!(
            e.to_string(),
            "app_ro@h:5432/db: the session is read-only (default_transaction_read_only = on, set for role app_ro); migrations need a session that may write"
        );
        assert!(role.check(Purpose::READ, "t").is_ok());
        for (source, at, fix) in [
            (
                "database user",
                "for role app_ro in database db",
                "ALTER ROLE \"app_ro\" IN DATABASE \"db\" RESET",
            ),
            ("configuration file", "in the server's configuration", "the parameter group"),
            ("client", "by the client's connection options", "PGOPTIONS"),
        ] {
            let s = Session {
                read_only_source: source.into(),
                ..role.clone()
            };
            let e = s.check(Purpose::WRITE, "t").unwrap_err();
            assert!(e.to_string().contains(at), "{e}");
            assert!(e.hint().unwrap().contains(fix), "{:?}", e.hint());
        }
        assert!(Session::from_row(&row(&["false", "off"])).is_err());
    }
}

#[cfg(test)]
mod registry {
    use super::{def, BACKENDS};
    use crate::settings::BackendKind;

    #[test]
    fn every_backend_kind_has_one_line_under_its_name() {
        for kind in [BackendKind::Postgres, BackendKind::RdsData, BackendKind::Citus] {
            assert_eq!(def(kind).name, kind.as_str());
        }
        for d in BACKENDS {
            assert_eq!(
                BACKENDS.iter().filter(|o| o.kind == d.kind || o.name == d.name).count(),
                1,
                "{}",
                d.name
            );
            assert_eq!(d.kind.as_str(), d.name);
        }
    }
}
