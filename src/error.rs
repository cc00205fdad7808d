//! The one error type of chatmigrate: data, not strings.
//!
//! Every variant knows how to say itself in one line (`Display`) and which
//! command to run next (`hint`). `main.rs` prints `error: <line>` and
//! `hint: <hint>` to stderr and exits with [`Error::exit_code`] (always 2: a
//! "found something" result is not an error, see `cmd/`). No variant ever
//! carries a password: URLs are redacted before they are stored.

use std::path::PathBuf;

/// A database error, copied out of the driver so it can be rendered and
/// compared in tests without the driver's types.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DbError {
    /// The SQLSTATE; empty when the server sent only a text that names none.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The fix the backend that returned the error knows for it (Citus's
    /// run-time errors, `backend::citus::runtime_hint`): attached
    /// by the backend, shown as the error's hint.
    #[serde(skip)]
    pub fix: Option<String>,
    /// Byte offset of the error inside the statement that failed, if the
    /// server reported one.
    #[serde(skip)]
    pub offset: Option<usize>,
}

/// A server text on one line: a line break and the indentation after it
/// (libpq's "Connection refused\n\tIs the server running ...", relayed by
/// dblink, postgres_fdw and Citus) become one space.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\n') {
        return text.into();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .into()
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", one_line(&self.message))?;
        if let Some(d) = &self.detail {
            write!(f, "; DETAIL: {}", one_line(d))?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; HINT: {}", one_line(h))?;
        }
        // An error known only by its text has no code (the Data API).
        if !self.code.is_empty() {
            write!(f, " (SQLSTATE {})", self.code)?;
        }
        Ok(())
    }
}

pub use crate::location::Location;

/// An object that a pending migration creates (without `IF NOT EXISTS`)
/// and that the database has already: `up` refuses before sending anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingObject {
    /// `table`, `index`, `sequence`, `view`, `type`, `extension`, ...
    pub kind: &'static str,
    pub name: String,
    /// For an index: its table.
    pub table: Option<String>,
    /// The statement that creates it.
    pub location: Location,
    pub version: i64,
}

impl std::fmt::Display for ExistingObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.table {
            Some(t) => write!(f, "{} {} on {} ({})", self.kind, self.name, t, self.location),
            None => write!(f, "{} {} ({})", self.kind, self.name, self.location),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- configuration -----
    #[error("{path}: {message}")]
    ConfigParse { path: PathBuf, message: String },
    #[error("{path}: unknown key `{key}` in {section}")]
    ConfigUnknownKey { path: PathBuf, key: String, section: String },
    #[error("{path}: cannot read config file: {source}")]
    ConfigRead { path: PathBuf, source: std::io::Error },
    #[error("environment `{name}` is not defined in {path}")]
    UnknownEnvironment { name: String, path: String },
    #[error("invalid setting {key}: {message}")]
    InvalidSetting { key: String, message: String },
    #[error("no database given")]
    NoDatabase,
    #[error("invalid database URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The Data API endpoint (`endpoint_url`, `AWS_ENDPOINT_URL` or AWS's
    /// regional one) cannot be reached or answers as something else.
    #[error("{setting} {url} does not answer as an RDS Data API ({attempts} attempt(s); last: {last})")]
    DataApiEndpoint {
        /// `endpoint_url`, `AWS_ENDPOINT_URL`, or "AWS's regional endpoint".
        setting: String,
        url: String,
        attempts: u32,
        last: String,
        hint: String,
    },
    /// A raw `@`, `%`, `/`, `?` or `#` in the user name or password of a
    /// URL (`url` is redacted: the password is never shown).
    #[error(
        "invalid database URL {url}: the {part} holds {}",
        if *found == '%' { "a `%` that starts no %XX escape".to_string() } else { format!("a raw `{found}`, which a URL reads as a separator") }
    )]
    UrlNeedsEncoding { url: String, part: &'static str, found: char },
    /// A duration or number out of range or not one at all; `at` is where
    /// it was written (`file:line:col`, a URL), when that is not the key.
    #[error("{}{invalid}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
    BadValue {
        at: Option<String>,
        invalid: Box<crate::value::Invalid>,
    },

    // ----- migration files -----
    #[error("{path}: not a migration file name{problem} (expected V{{version}}__{{name}}.sql, e.g. V20250101120000__create_users.sql)")]
    BadFileName { path: String, problem: NameProblem },
    /// `new`: the highest version is i64's maximum.
    #[error("no version is left after {path}: it has the highest version a migration can have (9223372036854775807)")]
    NoVersionLeft { path: String },
    /// A path that is there but cannot be a migration file.
    #[error("{path}: {problem}")]
    NotAFile { path: String, problem: PathProblem },
    #[error("version {version} is used twice: {first} and {second}")]
    DuplicateVersion { version: i64, first: String, second: String },
    #[error("repeatable migration {name} is defined twice: {first} and {second}")]
    DuplicateRepeatable { name: String, first: String, second: String },
    #[error("{path}: file is not valid UTF-8 (byte {offset})")]
    NotUtf8 { path: String, offset: usize },
    #[error("{path}: migration is empty (no SQL statements)")]
    EmptyMigration { path: String },
    #[error("{path}: cannot read: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{location}: {message}")]
    SqlSyntax { location: Location, message: String },
    #[error("{location}: unknown directive `{directive}`")]
    UnknownDirective { location: Location, directive: String },
    #[error("{location}: {message}")]
    BadDirective { location: Location, message: String },
    /// An undo file that belongs to no migration, or a `down` that cannot
    /// run (`at`: the file, or the command).
    #[error("{at}: {message}")]
    Undo { at: String, message: String, hint: String },
    /// A placeholder that has no value, or a value that cannot be used;
    /// `at` is `file:line:col` (then `location` is set) or the setting.
    #[error("{at}: {message}")]
    Placeholder {
        at: String,
        message: String,
        hint: String,
        location: Option<Location>,
    },
    /// Error-level lint findings (at least one) in the files about to run.
    #[error("{}", lint_line(.0))]
    Lint(Box<crate::findings::Report>),

    // ----- plan (history vs files) -----
    #[error(
        "{path}: version {version} was applied with checksum {} but the file now has {}",
        short_checksum(applied),
        short_checksum(file)
    )]
    ChecksumDrift {
        path: String,
        version: i64,
        applied: String,
        file: String,
    },
    #[error("{path}: version {version} was applied as `{applied}` but the file is now named `{file}`")]
    NameDrift {
        path: String,
        version: i64,
        applied: String,
        file: String,
    },
    #[error("version {version} ({name}) is applied in the database but has no migration file")]
    MissingFile { version: i64, name: String },
    #[error("{path}: version {version} is below the highest applied version {max_applied} (out of order)")]
    OutOfOrder { path: String, version: i64, max_applied: i64 },
    /// `flag` is the option the user gave (`--target` of `up` or `baseline`).
    #[error("{flag} {target}: no migration file has that version")]
    UnknownTarget { flag: &'static str, target: i64 },
    #[error(
        "baseline --target {version}: the history already holds {} row(s) ({}); it would mark {} as applied without running {}",
        applied.len(), versions(applied), versions(would_mark), if would_mark.len() == 1 { "it" } else { "them" }
    )]
    BaselineOverHistory {
        version: i64,
        applied: Vec<i64>,
        would_mark: Vec<i64>,
    },
    /// Objects the pending migrations create exist already (a database
    /// made by hand or by another tool); listed below the hint.
    #[error(
        "{} object(s) that the pending migrations create already exist in {target}: {}; nothing was applied",
        objects.len(), objects.iter().take(3).map(|o| o.to_string()).collect::<Vec<_>>().join(", ") + if objects.len() > 3 { ", ..." } else { "" }
    )]
    ObjectsExist { target: String, objects: Vec<ExistingObject> },

    // ----- database -----
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String, hint: String },
    #[error("cannot connect to {target}: no answer within {wait}")]
    ConnectTimeout { target: String, wait: String },
    #[error("database `{name}` does not exist on {target}")]
    DatabaseMissing { name: String, target: String },
    /// A replica (`pg_is_in_recovery()`) where the run must write; `waited`:
    /// how long a writer was waited for.
    #[error(
        "{target} is a read-only replica (in recovery){}",
        waited.map(|s| format!(" and no writer took its place within {s} s")).unwrap_or_default()
    )]
    Replica { target: String, waited: Option<u64> },
    /// The session is read-only by configuration (not a replica): waiting
    /// does not help. `set_by` is where `default_transaction_read_only` was
    /// set (`pg_settings.source`).
    #[error(
        "{target}: the session is read-only (default_transaction_read_only = on, set {}); migrations need a session that may write",
        read_only_where(set_by, user, database)
    )]
    ReadOnlySession {
        target: String,
        user: String,
        database: String,
        set_by: String,
    },
    #[error("{location}: {} failed: {error}", failed_what(*version))]
    Migration {
        location: Location,
        version: i64,
        error: Box<DbError>,
        /// Rolled back as a whole (false: a no-transaction file, resumable).
        transactional: bool,
    },
    #[error("{context}: {error}")]
    Db { context: String, error: Box<DbError> },
    #[error("connection lost during {context}: {message}")]
    ConnectionLost { context: String, message: String },
    #[error("could not take the migration lock within {secs} s{holder}")]
    LockTimeout { secs: u64, holder: String },
    #[error("interrupted by {signal}: {applied} migration(s) applied in this run; {stopped}")]
    Interrupted { signal: String, applied: usize, stopped: String },
    #[error("{location}: version {version} could not get its locks after {attempts} attempt(s) (lock_timeout){blockers}")]
    LockNotAvailable {
        location: Location,
        version: i64,
        attempts: u32,
        blockers: String,
    },
    #[error("{target} did not become available within {secs} s ({attempts} attempt(s); last: {last})")]
    ResumeTimeout {
        target: String,
        secs: u64,
        attempts: u32,
        last: String,
    },
    #[error("{context}: AWS answered {code}: {message}")]
    Aws { context: String, code: String, message: String },
    #[error("{context}: outcome unknown: {message}")]
    OutcomeUnknown { context: String, message: String },
    #[error("{context}: the Data API ended the transaction ({message}); nothing of it was applied")]
    TransactionRolledBack { context: String, message: String },
    #[error("the migration lease was lost: {message}")]
    LeaseLost { message: String },

    // ----- citus -----
    #[error("{target} is not a Citus coordinator: the citus extension is not installed in this database")]
    NotCitus { target: String },
    #[error(
        "{target} is a Citus worker (group {group}), not the coordinator{}: the migration lock and the distributed metadata live on the coordinator",
        coordinator.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    CitusWorker {
        target: String,
        group: i64,
        coordinator: Option<String>,
    },
    #[error("{target} has the citus extension but pg_dist_node lists no active node: a worker of a cluster without metadata, or a coordinator that was never set up")]
    CitusNoNodes { target: String },
    #[error("will not create database `{name}` on {target}: {why}")]
    CitusCreateDatabase { name: String, target: String, why: String },
    #[error("will not drop database `{name}` on {target}: it holds the Citus metadata, and the workers' databases would stay behind")]
    CitusDropDatabase { name: String, target: String },
    /// `database create|drop|reset` on a database that is not a
    /// development environment's (`dev = true`).
    #[error("will not {action} database `{name}` on {target}: {why}")]
    NotDevDatabase {
        action: &'static str,
        name: String,
        target: String,
        why: String,
        hint: String,
    },
    /// `database drop|reset` of the maintenance database, through which it
    /// would be dropped.
    #[error("will not {action} database `{name}`: it is maintenance_db, the database chatmigrate connects to in order to create and drop databases")]
    DropMaintenanceDb { action: &'static str, name: String },
    /// `wait` gave up.
    #[error("{target} did not accept a query within {secs} s (last: {last})")]
    WaitTimeout {
        target: String,
        secs: u64,
        last: String,
        hint: String,
    },
    /// `history_schema` is a distributed schema: chatmigrate's own tables
    /// in it would be (or are) distributed tables.
    #[error("history_schema `{schema}` is a distributed schema on {target} (citus_schemas): chatmigrate's own tables (history, log, lease) there are single-shard distributed tables, not local tables of the coordinator")]
    CitusTenantSchema { schema: String, target: String },
    /// The command line does not parse (clap's message; clap prints its own
    /// text, so this is rendered only as the JSON error object), or asks a
    /// command for what it does not have (a `--format`).
    #[error("{message}")]
    Usage { message: String, hint: String },
    /// A panic caught at the top of the binary or around a file being
    /// read: a bug, never the user's input.
    #[error("internal error{}: {message} (this is a bug in chatmigrate)", context.as_ref().map(|c| format!(" while {c}")).unwrap_or_default())]
    Internal { context: Option<String>, message: String },
    /// `adopt`, `diff`, their scratch database and adopt fixes: the
    /// message and the next step (the knowledge lives in `schema/`).
    #[error("{message}")]
    Schema { kind: &'static str, message: String, hint: String },
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The next command to run, for people.
    pub fn hint(&self) -> Option<String> {
        use Error::*;
        Some(match self {
            ConfigParse { .. } | ConfigUnknownKey { .. } => "every key is listed with a comment in docs/config.reference.toml".into(),
            ConfigRead { .. } => "pass --config PATH, or run without a config file and use --database-url".into(),
            UnknownEnvironment { .. } => "add an [environments.<name>] table, or pick one that exists with --env".into(),
            InvalidSetting { .. } => "see docs/config.reference.toml for the accepted values".into(),
            NoDatabase => "pass --database-url, set DATABASE_URL or PGHOST/PGDATABASE, or pick an environment with --env".into(),
            DataApiEndpoint { hint, .. } => hint.clone(),
            BadUrl { .. } => {
                "the form is postgres://user@host:port/dbname?sslmode=verify-full (put the password in PGPASSWORD or password_env)".into()
            }
            UrlNeedsEncoding { part, .. } => format!(
                "percent-encode the {part} (`@` is %40, `%` is %25, `/` is %2F, `?` is %3F, `#` is %23), e.g. postgres://app:p%40ss%25word@db.example.com:5432/st_chat_db, or leave the password out of the URL and set PGPASSWORD"
            ),
            BadValue { invalid, .. } => invalid.hint(),
            BadFileName { problem, .. } => problem.hint().into(),
            NotAFile { problem, .. } => problem.hint(),
            NoVersionLeft { .. } => "rename that file to a lower version (e.g. a timestamp such as V20250101120000__name.sql), then run `chatmigrate new` again".into(),
            DuplicateVersion { .. } => "give one of the files a new version (`chatmigrate new <name>` picks a free one)".into(),
            DuplicateRepeatable { .. } => "keep one R__ file of each name across the migration directories".into(),
            NotUtf8 { .. } => "save the file as UTF-8".into(),
            EmptyMigration { .. } => "add SQL to the file or delete it".into(),
            Io { .. } => "check the path and its permissions".into(),
            SqlSyntax { .. } => "fix the SQL at that position; nothing was sent to the database".into(),
            UnknownDirective { .. } | BadDirective { .. } => {
                "known directives: no-transaction, lock-timeout <dur>, statement-timeout <dur>, citus-parallel, adopt-fix, placeholders-in-dollar-quotes, ignore <rule> -- <reason>".into()
            }
            Lint(report) => {
                // The help's first line; its SQL, if any, is in the report below.
                let f = report.findings.first()?;
                let mut lines = f.help.lines();
                let mut hint = lines.next().unwrap_or("").trim_end_matches([':', ';']).to_string();
                if lines.next().is_some() {
                    hint.push_str(" (as shown below)");
                }
                let more = report.findings.len() - 1;
                if more > 0 {
                    hint.push_str(&format!("; {more} more finding(s) below"));
                }
                if f.ignorable {
                    hint.push_str(&format!("; or accept it with `-- chatmigrate:ignore {} -- <reason>` above the statement", f.rule));
                }
                hint
            }
            ChecksumDrift { .. } => "restore the applied file, or accept the new text with `chatmigrate repair`".into(),
            NameDrift { applied, version, .. } => {
                format!("rename the file back to V{version}__{applied}.sql, or accept the new name with `chatmigrate repair`")
            }
            BaselineOverHistory { .. } => {
                "run `chatmigrate up` to apply them, or pass --allow-existing if they are already in the database".into()
            }
            ObjectsExist { .. } => {
                "this database was built without chatmigrate: `chatmigrate adopt` compares it with the migrations and records them as applied when they match, or shows what differs (docs/adopt.md)".into()
            }
            MissingFile { .. } => "restore the file, or point --migrations at the directory that has it".into(),
            OutOfOrder { .. } => {
                "give the file a version above the highest applied one, or run `chatmigrate up --allow-out-of-order`".into()
            }
            UnknownTarget { .. } => "run `chatmigrate status` to list the versions".into(),
            Connect { hint, .. } => hint.clone(),
            ConnectTimeout { .. } => "check that the host is reachable from here and that the port is open".into(),
            DatabaseMissing { .. } => "create it with `chatmigrate up --create-database`".into(),
            Replica { .. } => format!(
                "point the environment at the writer (for Aurora the cluster endpoint, not the reader endpoint); {READ_ONLY_COMMANDS}"
            ),
            ReadOnlySession {
                set_by, user, database, ..
            } => read_only_hint(set_by, user, database),
            Migration { error, transactional, .. } => match (error.fix.clone(), *transactional) {
                (Some(fix), true) => format!("{fix}; this migration was rolled back"),
                (Some(fix), false) => format!("{fix}; `chatmigrate up` then resumes at the failing statement"),
                (None, true) => "fix the migration and run `chatmigrate up` again; this migration was rolled back".into(),
                (None, false) => {
                    "fix the failing statement and run `chatmigrate up` again: it resumes at that statement (the ones before it stay done)".into()
                }
            },
            Db { error, .. } => {
                error.fix.clone().unwrap_or_else(|| "check the database user's privileges, then retry".into())
            }
            ConnectionLost { .. } => {
                "check the network or server, then run `chatmigrate up` again: applied migrations are recorded, the one in flight is re-checked".into()
            }
            LockTimeout { .. } => "another chatmigrate is running; wait for it, or raise --lock-wait".into(),
            Interrupted { .. } => "run `chatmigrate status` to see what is applied, then `chatmigrate up` to continue".into(),
            LockNotAvailable { .. } => {
                "end or wait for the blocking session, or raise lock_timeout / lock_retries, then run `chatmigrate up` again".into()
            }
            ResumeTimeout { .. } => {
                "check that the cluster is available (RDS console: status, capacity), then retry; raise resume_timeout if it resumes slowly".into()
            }
            Aws { code, .. } => aws_hint(code).into(),
            OutcomeUnknown { .. } => {
                "run `chatmigrate status`: the history says what was recorded; check the object in the database before running `chatmigrate up` again".into()
            }
            TransactionRolledBack { .. } => "run `chatmigrate up` again: the migration starts over from its first statement".into(),
            LeaseLost { .. } => {
                "another runner may have taken over; run `chatmigrate status`, and raise lease_ttl if the network is slow".into()
            }
            NotCitus { .. } => {
                "connect to the database that has the citus extension (on an Azure elastic cluster the one named when it was created, `postgres` by default; on Azure Cosmos DB for PostgreSQL dbname = \"citus\"), or use backend = \"postgres\"".into()
            }
            CitusWorker { .. } => {
                "point the environment at the coordinator (on an Azure elastic cluster port 5432, not the load-balanced 7432 or 8432; on Azure Cosmos DB for PostgreSQL the host name that starts with c-, not w0-, w1-, ...)".into()
            }
            CitusNoNodes { .. } => {
                "connect to the coordinator; on a new cluster register the nodes in this database first: SELECT citus_set_coordinator_host('<host>', <port>); SELECT citus_add_node('<worker>', <port>) for each worker".into()
            }
            CitusCreateDatabase { .. } => {
                "on Azure use the database the cluster was created with (elastic clusters: `postgres` by default, and CREATE DATABASE is refused there; Azure Cosmos DB for PostgreSQL: use the `citus` database (dbname = \"citus\")); on your own cluster create the database on every node, then in it run CREATE EXTENSION citus, citus_set_coordinator_host and citus_add_node per worker (docs/citus.md), and run `chatmigrate up` without --create-database".into()
            }
            CitusDropDatabase { .. } => {
                "drop it on every node yourself (DROP DATABASE on the coordinator and on each worker); on Azure Cosmos DB for PostgreSQL the `citus` database cannot be dropped".into()
            }
            NotDevDatabase { hint, .. } | WaitTimeout { hint, .. } => hint.clone(),
            DropMaintenanceDb { .. } => "set dbname to the database to drop, or maintenance_db to another database".into(),
            CitusTenantSchema { schema, .. } => format!(
                "set history_schema to a schema that is not distributed (chatmigrate creates a missing one as a regular schema, whatever citus.enable_schema_based_sharding says), or make `{schema}` a regular schema again on the coordinator: SELECT citus_schema_undistribute('{schema}') (it also makes the other tables of `{schema}` local)"
            ),
            Usage { hint, .. } => hint.clone(),
            Placeholder { hint, .. } => hint.clone(),
            Undo { hint, .. } => hint.clone(),
            Schema { hint, .. } => hint.clone(),
            Internal { .. } => {
                "please report it with this output, `chatmigrate --version` and the command you ran (RUST_BACKTRACE=1 adds a backtrace)".into()
            }
            Other(_) => return None,
        })
    }

    /// The place in a migration file this error is about, when it has one
    /// (for the annotations of `--format github`).
    pub fn location(&self) -> Option<&Location> {
        use Error::*;
        match self {
            SqlSyntax { location, .. }
            | UnknownDirective { location, .. }
            | BadDirective { location, .. }
            | Migration { location, .. }
            | LockNotAvailable { location, .. } => Some(location),
            Placeholder { location, .. } => location.as_ref(),
            _ => None,
        }
    }

    /// Process exit code for this error: 2, or 130/143 after SIGINT/SIGTERM;
    /// 1 is reserved for "ran fine and found something" (pending, drift).
    pub fn exit_code(&self) -> i32 {
        match self {
            // The shell's convention: 128 + signal number.
            Error::Interrupted { signal, .. } if signal == "SIGINT" => 130,
            Error::Interrupted { signal, .. } if signal == "SIGTERM" => 143,
            _ => 2,
        }
    }

    /// A short machine-readable kind, used in JSON output.
    pub fn kind(&self) -> &'static str {
        use Error::*;
        match self {
            ConfigParse { .. }
            | ConfigUnknownKey { .. }
            | ConfigRead { .. }
            | UnknownEnvironment { .. }
            | InvalidSetting { .. }
            | NoDatabase
            | BadUrl { .. }
            | DataApiEndpoint { .. }
            | UrlNeedsEncoding { .. } => "config",
            BadValue { invalid, .. } => match invalid.origin {
                crate::value::Origin::Directive | crate::value::Origin::FileName => "migration-file",
                _ => "config",
            },
            BadFileName { .. }
            | NotAFile { .. }
            | NoVersionLeft { .. }
            | DuplicateVersion { .. }
            | DuplicateRepeatable { .. }
            | NotUtf8 { .. }
            | EmptyMigration { .. }
            | Io { .. }
            | SqlSyntax { .. }
            | UnknownDirective { .. }
            | BadDirective { .. } => "migration-file",
            Placeholder { location: Some(_), .. } => "migration-file",
            Placeholder { location: None, .. } => "config",
            Undo { .. } => "plan",
            Lint(_) => "lint",
            ChecksumDrift { .. }
            | NameDrift { .. }
            | MissingFile { .. }
            | OutOfOrder { .. }
            | UnknownTarget { .. }
            | BaselineOverHistory { .. }
            | ObjectsExist { .. } => "plan",
            Connect { .. } | ConnectTimeout { .. } | DatabaseMissing { .. } | ConnectionLost { .. } => "connect",
            Replica { .. } | ReadOnlySession { .. } => "connect",
            Migration { .. } | Db { .. } => "database",
            LockTimeout { .. } | LockNotAvailable { .. } => "lock",
            Interrupted { .. } => "interrupted",
            ResumeTimeout { .. } => "connect",
            Aws { .. } => "aws",
            OutcomeUnknown { .. } | TransactionRolledBack { .. } => "database",
            LeaseLost { .. } => "lock",
            NotCitus { .. } | CitusWorker { .. } | CitusNoNodes { .. } => "connect",
            CitusCreateDatabase { .. }
            | CitusTenantSchema { .. }
            | CitusDropDatabase { .. }
            | NotDevDatabase { .. }
            | DropMaintenanceDb { .. } => "config",
            WaitTimeout { .. } => "connect",
            Internal { .. } => "internal",
            Usage { .. } => "usage",
            Schema { kind, .. } => kind,
            Other(_) => "other",
        }
    }
}

/// The commands that work on a replica or a read-only session.
const READ_ONLY_COMMANDS: &str = "`status`, `verify`, `lint --pending` and `up --dry-run` work on a read-only session";

/// `V2, V3, V4`; long lists shortened to their first ten and a count.
fn versions(v: &[i64]) -> String {
    let shown: Vec<String> = v.iter().take(10).map(|v| format!("V{v}")).collect();
    match v.len() {
        0 => "none".into(),
        n if n > 10 => format!("{}, ... ({n} in all)", shown.join(", ")),
        _ => shown.join(", "),
    }
}

/// Where `default_transaction_read_only` was set, from `pg_settings.source`.
fn read_only_where(source: &str, user: &str, database: &str) -> String {
    match source {
        "user" => format!("for role {user}"),
        "database" => format!("for database {database}"),
        "database user" => format!("for role {user} in database {database}"),
        "configuration file" => "in the server's configuration".into(),
        "client" => "by the client's connection options".into(),
        "" => "on the server".into(),
        other => format!("by {other}"),
    }
}

/// The statement that takes a read-only setting away, where one exists.
fn read_only_hint(source: &str, user: &str, database: &str) -> String {
    // Quoted as identifiers, so the statement can be pasted as it is.
    let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let (u, d) = (ident(user), ident(database));
    let fix = match source {
        "user" => format!("connect as a role that may write, or run `ALTER ROLE {u} RESET default_transaction_read_only`"),
        "database" => format!("run `ALTER DATABASE {d} RESET default_transaction_read_only` (or connect to a database that takes writes)"),
        "database user" => {
            format!("connect as a role that may write, or run `ALTER ROLE {u} IN DATABASE {d} RESET default_transaction_read_only`")
        }
        "client" => "remove default_transaction_read_only from PGOPTIONS or the connection's options".into(),
        _ => "set default_transaction_read_only = off in the server's configuration (for Aurora and RDS: the parameter group) and reload"
            .into(),
    };
    format!("{fix}; {READ_ONLY_COMMANDS}")
}

/// The one-line form of a lint refusal: its first finding.
fn lint_line(r: &crate::findings::Report) -> String {
    match r.findings.first() {
        Some(f) => format!("{}: [{}] {} (`{}`)", f.location, f.rule, f.message, f.excerpt),
        None => "lint refused the migrations".into(),
    }
}

/// What to do about an AWS error code (Data API, Secrets Manager, credentials).
fn aws_hint(code: &str) -> &'static str {
    match code {
        "HttpEndpointNotEnabledException" => {
            "enable the Data API on the cluster: aws rds enable-http-endpoint --resource-arn <resource_arn> (and check the ARN's letter case)"
        }
        "AccessDeniedException" | "ForbiddenException" | "AccessDenied" | "UnrecognizedClientException" => {
            "the AWS identity needs rds-data:ExecuteStatement, BeginTransaction, CommitTransaction, RollbackTransaction and secretsmanager:GetSecretValue (docs/aurora.md)"
        }
        "InvalidSecretException" | "SecretsErrorException" | "ResourceNotFoundException" => {
            "check secret_arn: the secret must exist in this region and hold username and password for the cluster"
        }
        "DatabaseNotFoundException" | "NotFoundException" => "check resource_arn: it must be the cluster's ARN and the cluster must have a writer instance",
        "ValidationException" => "this is a chatmigrate bug if it names a statement it sent; please report it with `--verbose` output",
        "UnsupportedResultException" => {
            "chatmigrate's own queries return text only, so this is a bug: please report it with this output and `chatmigrate --version`"
        }
        "credentials" => {
            "configure AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO (`aws sso login`), or a role; see docs/aurora.md"
        }
        _ => "see docs/aurora.md for the Data API's errors, then retry",
    }
}

impl Error {
    /// [`Error::BadValue`] for a value written at `at` (`file:line:col`, a URL).
    pub fn value_at(at: impl Into<String>, invalid: crate::value::Invalid) -> Error {
        Error::BadValue {
            at: Some(at.into()),
            invalid: Box::new(invalid),
        }
    }
}

/// A value whose key says where it was written (a flag, an environment
/// variable, a config key before its line is known).
impl From<crate::value::Invalid> for Error {
    fn from(invalid: crate::value::Invalid) -> Error {
        Error::BadValue {
            at: None,
            invalid: Box::new(invalid),
        }
    }
}

/// The text of a panic's payload (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

thread_local! {
    /// Where this thread last panicked (`src/x.rs:10:5`), noted by the
    /// binary's panic hook through [`note_panic_location`].
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Called from a panic hook: where the panic happened, for the error.
pub fn note_panic_location(at: String) {
    PANIC_AT.with(|p| *p.borrow_mut() = Some(at));
}

/// [`Error::Internal`] for a caught panic: its message, and where it
/// happened when a hook noted it on this thread.
pub fn internal(context: Option<String>, payload: &(dyn std::any::Any + Send)) -> Error {
    let mut message = panic_message(payload);
    if let Some(at) = PANIC_AT.with(|p| p.borrow_mut().take()) {
        message = format!("{message} at {at}");
    }
    Error::Internal { context, message }
}

/// Runs `f`, turning a panic into [`Error::Internal`] that says what was
/// being done (`context`, e.g. "reading V2__x.sql").
pub fn catch_panic<T>(context: impl FnOnce() -> String, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(internal(Some(context()), payload.as_ref())))
}

/// Writing to stdout failed (a closed pipe, a full disk).
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Other(format!("cannot write output: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What failed, in [`Error::Migration`]: `version 3`, or `the repeatable
/// migration` (version 0; its file is in the location).
fn failed_what(version: i64) -> String {
    match version {
        0 => "the repeatable migration".into(),
        v => format!("version {v}"),
    }
}

/// Why a file name is not `V{version}__{name}.sql` (shown after "not a
/// migration file name"; [`NameProblem::Form`] adds nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Nothing like the grammar (`notes.txt`).
    Form,
    /// `v1__a.sql`.
    LowercaseV,
    /// `V1__a.txt`.
    NotSql,
    /// `V1_a.sql`.
    OneUnderscore,
    /// `V__a.sql`.
    NoVersion,
    /// `V1a__b.sql`.
    VersionNotDigits,
    /// `V1__.sql`.
    EmptyName,
    /// `V1__a-b.sql`.
    NameChars,
    /// `U{n}__{name}.sql`: refinery's unversioned migration (not an undo).
    RefineryUnversioned,
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameProblem::Form => "",
            NameProblem::LowercaseV => ": the V must be upper-case",
            NameProblem::NotSql => ": migration files end in .sql",
            NameProblem::OneUnderscore => ": two underscores separate the version from the name",
            NameProblem::NoVersion => ": the version after the V is missing",
            NameProblem::VersionNotDigits => ": the version must be digits only",
            NameProblem::EmptyName => ": the name after the two underscores is empty",
            NameProblem::NameChars => ": the name may hold only letters, digits and underscores",
            NameProblem::RefineryUnversioned => {
                ": U is refinery's unversioned migration, which chatmigrate does not run (docs/migrations.md#refinerys-u-files)"
            }
        })
    }
}

impl NameProblem {
    /// The next step, for the `hint:` line.
    pub fn hint(&self) -> &'static str {
        match self {
            NameProblem::RefineryUnversioned => {
                "rename it to V{n}__{name}.sql and apply it with `chatmigrate up --allow-out-of-order` (which applies a file below the highest applied version)"
            }
            _ => "rename the file, or create one with `chatmigrate new <name>`",
        }
    }
}

/// Why a path in a migration directory cannot be read as a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// A directory whose name ends in `.sql`.
    Directory,
    /// A FIFO, socket or device: reading it could block forever.
    Special(&'static str),
    /// A symbolic link whose target does not exist.
    DanglingSymlink {
        /// Where the link points.
        target: String,
    },
    /// Larger than 32 MiB (`MAX_FILE_BYTES`).
    TooLarge {
        /// The file's size.
        bytes: u64,
    },
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathProblem::Directory => write!(f, "is a directory, not a migration file"),
            PathProblem::Special(what) => write!(f, "is {what}, not a regular file"),
            PathProblem::DanglingSymlink { target } => write!(f, "is a symbolic link to {target}, which does not exist"),
            PathProblem::TooLarge { bytes } => write!(
                f,
                "is {:.1} MiB, over the {} MiB limit for one migration file",
                *bytes as f64 / (1024.0 * 1024.0),
                crate::value::MAX_FILE_BYTES / (1024 * 1024)
            ),
        }
    }
}

impl PathProblem {
    /// The next step, for the `hint:` line.
    pub fn hint(&self) -> String {
        match self {
            PathProblem::Directory => "rename the directory so that its name does not end in .sql, or move its files up".into(),
            PathProblem::Special(_) => "replace it with a regular file that holds the SQL".into(),
            PathProblem::DanglingSymlink { .. } => "restore the link's target, or remove the link".into(),
            PathProblem::TooLarge { .. } => {
                "split it into several migrations, or load bulk data with COPY outside the migration files".into()
            }
        }
    }
}

/// A checksum as text output shows it: `sha256:` and its first 8 hex digits,
/// then `…` (JSON output and the history keep the whole one).
pub fn short_checksum(checksum: &str) -> String {
    match checksum.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 8 && hex.is_char_boundary(8) => format!("sha256:{}…", &hex[..8]),
        _ => checksum.to_string(),
    }
}
