//! The resolved settings of a run, as plain data: [`Config`] and the types
//! of its fields (the target, the history table, the AWS and Citus
//! settings, [`Secret`] for passwords). Backends, lint and the runner read
//! these; reading them from `chatmigrate.toml`, the environment and the
//! flags is `config.rs`, which sits above the backends (it asks the backend
//! registry for each backend's settings table).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::migration::Source;

/// A password. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Which transport runs the migrations: the key of a backend's entry in
/// the registry (`backend::BACKENDS`), where everything else about it is.
/// It is the backend's name, so a new backend declares its own kind in its
/// module (`BackendKind::named("...")`) and nothing here changes; the
/// three kinds below are the shipped backends', for the code that treats
/// one of them specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendKind(&'static str);

#[allow(non_upper_case_globals)]
impl BackendKind {
    /// The direct PostgreSQL transport (`backend/postgres.rs`).
    pub const Postgres: BackendKind = BackendKind::named("postgres");
    /// The AWS RDS Data API (`backend/rds_data.rs`).
    pub const RdsData: BackendKind = BackendKind::named("rds-data");
    /// A Citus coordinator: the postgres transport plus Citus checks,
    /// settings and the citus-only migrations (`backend/citus.rs`).
    pub const Citus: BackendKind = BackendKind::named("citus");

    /// The kind of the backend registered under `name`.
    pub const fn named(name: &'static str) -> BackendKind {
        BackendKind(name)
    }

    /// The backend's name, as `backend =` spells it.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// AWS settings shared by the Data API transport and by the direct
/// transport's Secrets Manager and IAM credentials. Credentials themselves
/// come from the standard AWS chain (environment, profile, SSO, web
/// identity, container, IMDS), never from this file.
#[derive(Debug, Clone, Default)]
pub struct Aws {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Another endpoint for every AWS call (VPC endpoints, tests).
    pub endpoint_url: Option<String>,
    /// The Aurora cluster's ARN (Data API).
    pub resource_arn: Option<String>,
    /// Secrets Manager secret: the Data API's credentials, or the direct
    /// connection's user/password (and host/port/dbname when present).
    pub secret_arn: Option<String>,
    /// Direct connection: authenticate with an IAM token (rds-db:connect).
    pub iam_auth: bool,
    /// Per-attempt timeout of one AWS call (the SDK's own retries are off).
    pub request_timeout: Duration,
    /// Data API: how long a lease on the migration lock lasts without a heartbeat.
    pub lease_ttl: Duration,
    /// Data API: an open transaction gets a `SELECT 1` after this much idle time.
    pub transaction_keepalive: Duration,
}

/// `citus.multi_shard_modify_mode` for the transaction of a transactional
/// migration on Citus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifyMode {
    /// One connection per worker: DDL, `CREATE TYPE` and reference-table
    /// writes after a distributed operation all work in one transaction.
    Sequential,
    /// Citus's default: many connections per worker; faster multi-shard
    /// work, but objects created later in the same transaction fail.
    Parallel,
}

impl ModifyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ModifyMode::Sequential => "sequential",
            ModifyMode::Parallel => "parallel",
        }
    }
}

/// Settings of the `citus` backend (ignored by the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Citus {
    /// Sent as `SET LOCAL citus.multi_shard_modify_mode` first in every
    /// transactional migration (a file may ask for parallel with
    /// `-- chatmigrate:citus-parallel`).
    pub multi_shard_modify_mode: ModifyMode,
    /// Distribute a table that already has rows with
    /// `create_distributed_table_concurrently` (writes go on) where the
    /// Citus version has it and the statement runs outside a transaction.
    pub distribute_concurrently: bool,
    /// How long a migration statement that failed because the coordinator
    /// could not reach a worker is tried again (zero: not at all).
    pub node_wait: Duration,
}

/// libpq's sslmode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// `key` is the name the user wrote it under (sslmode, PGSSLMODE).
    pub(crate) fn parse(key: &str, s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::InvalidSetting {
                    key: key.into(),
                    message: format!("`{other}` is not one of disable, prefer, require, verify-ca, verify-full"),
                })
            }
        })
    }
}

/// Where and how to connect (the direct PostgreSQL transport).
#[derive(Debug, Clone)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub password: Option<Secret>,
    /// `None`: verify-full for remote hosts, prefer for loopback.
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<PathBuf>,
    pub application_name: String,
    pub connect_timeout: Duration,
    /// Which of host, port, dbname were given (file, environment, URL): a
    /// Secrets Manager secret fills in only the others.
    pub explicit: Explicit,
}

/// See [`PgTarget::explicit`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Explicit {
    pub host: bool,
    pub port: bool,
    pub dbname: bool,
}

impl PgTarget {
    pub fn is_loopback(&self) -> bool {
        let h = self.host.as_str();
        h.starts_with('/') || h == "localhost" || h.starts_with("127.") || h == "::1" || h == "[::1]"
    }

    pub fn effective_sslmode(&self) -> SslMode {
        self.sslmode
            .unwrap_or(if self.is_loopback() { SslMode::Prefer } else { SslMode::VerifyFull })
    }

    /// `user@host:port/dbname`, for messages. Never includes the password.
    pub fn display(&self) -> String {
        self.display_db(&self.dbname)
    }

    /// [`PgTarget::display`] for another database on the same server.
    pub fn display_db(&self, dbname: &str) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, dbname)
    }
}

/// The history table's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTable {
    pub schema: Option<String>,
    pub table: String,
}

/// Everything a run needs, resolved: the target, the migrations, the
/// history table and every setting of `docs/config.reference.toml`. Made by
/// [`Config::from_url`] (defaults) or [`Config::load`] (the file, the
/// environment variables and [`Overrides`](crate::config::Overrides), as the
/// CLI does); the builder methods of [`Migrator`](crate::Migrator) change
/// what it runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) env_name: Option<String>,
    /// The file that was read, if any.
    pub(crate) file: Option<PathBuf>,
    pub(crate) backend: BackendKind,
    pub(crate) pg: PgTarget,
    pub(crate) source: Source,
    pub(crate) history: HistoryTable,
    pub(crate) lock_wait: Duration,
    /// `SET LOCAL lock_timeout` for transactional migrations; `None` = server default.
    pub(crate) lock_timeout: Option<Duration>,
    /// `SET LOCAL statement_timeout`; `None` = off.
    pub(crate) statement_timeout: Option<Duration>,
    /// Retries of a transactional migration that failed on lock_timeout (55P03).
    pub(crate) lock_retries: u32,
    pub(crate) create_database: bool,
    pub(crate) maintenance_db: String,
    /// Commit all but the last migration of a run with
    /// `synchronous_commit = off` (the last one flushes them all).
    pub(crate) group_commit: bool,
    pub(crate) allow_out_of_order: bool,
    pub(crate) aws: Aws,
    /// How long to keep retrying while the database resumes (Aurora
    /// auto-pause) or refuses connections transiently.
    pub(crate) resume_timeout: Duration,
    /// How long a refused connection is retried before this run has reached
    /// the server (nothing may be listening there at all); a reconnect is
    /// retried within `resume_timeout` (a rebooting writer).
    pub(crate) refused_timeout: Duration,
    /// Where "waiting for Aurora to resume: 14 s" lines go.
    pub(crate) progress: crate::retry::Progress,
    /// The `citus` backend's settings.
    pub(crate) citus: Citus,
    /// Lint rules turned on outside their backend (`lint_include`).
    pub(crate) lint_include: Vec<String>,
    /// Lint rules turned off (`lint_exclude`; never the non-ignorable ones).
    pub(crate) lint_exclude: Vec<String>,
    /// The gate: above this many estimated rows (`lint_large_table_rows`)
    /// or MB (`lint_large_table_mb`), a lock held on a table hurts.
    pub(crate) large_table_rows: i64,
    pub(crate) large_table_mb: i64,
    /// `index_build_memory`: the cap, in kB, of the `maintenance_work_mem`
    /// chatmigrate sets for a vector index build (`None`: `auto`, i.e.
    /// [`crate::vector_index::AUTO_CAP_KB`]).
    pub(crate) index_build_memory_kb: Option<u64>,
    /// `index_build_workers`: `max_parallel_maintenance_workers` for a
    /// vector index build (`None`: the server's).
    pub(crate) index_build_workers: Option<u32>,
    /// `dev_url` / `--dev-url`: the scratch database of `adopt` and `diff`
    /// (`None`: a temporary database on the same server). May hold a password.
    pub(crate) dev_url: Option<Secret>,
    /// The environment's `password_env` names a variable that is not set, and
    /// nothing else gives a password: connecting fails before it starts.
    pub(crate) password_env_unset: Option<UnsetPasswordEnv>,
    /// Whether `database create|drop|reset` may act on the target.
    pub(crate) dev: DevMark,
    /// Placeholder values given by the file, the flags or the library
    /// (`placeholders.rs` adds the built-ins and defaults).
    pub(crate) placeholders: std::collections::BTreeMap<String, Given>,
}

/// A placeholder's value as the user gave it, and where (for messages and
/// `status -v`): `[environments.dev.placeholders]`, `--placeholder`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub value: String,
    pub from: String,
}

/// Whether the target is a development database, which `database
/// create|drop|reset` may create and drop: the chosen environment says
/// `dev = true` and its own database is the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DevMark {
    /// `dev = true`, and no URL replaced the environment's database.
    Yes,
    /// No environment was chosen (no `--env`, `CHATMIGRATE_ENV` or `default_env`).
    #[default]
    NoEnvironment,
    /// The chosen environment is not marked `dev = true`.
    NotMarked { env: String },
    /// The environment is marked, but a URL (`--database-url` or
    /// `DATABASE_URL`) names the database instead of it.
    Replaced { env: String, by: &'static str },
}

/// See [`Config::password_env_unset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetPasswordEnv {
    /// The variable `password_env` names.
    pub var: String,
    /// The environment (`[environments.NAME]`) that names it.
    pub env: String,
    /// `password_env_hint`: the command that sets it.
    pub hint: Option<String>,
}

/// Replaces `user:password@` in a URL with `user:***@`. The password ends
/// at the last `@`, so one holding a raw `@`, `/` or `?` is hidden whole.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // key=value form: hide the value of each password=, quoted or not.
        let mut from = 0;
        while let Some(i) = url[from..].find("password").map(|i| i + from) {
            from = i + "password".len();
            let is_key = url[..i].chars().next_back().is_none_or(char::is_whitespace);
            let Some(value) = url[from..].trim_start().strip_prefix('=').map(str::trim_start) else {
                continue;
            };
            if !is_key {
                continue;
            }
            let end = match value.strip_prefix('\'') {
                Some(quoted) => {
                    let mut escaped = false;
                    quoted
                        .char_indices()
                        .find(|&(_, c)| {
                            let close = c == '\'' && !escaped;
                            escaped = c == '\\' && !escaped;
                            close
                        })
                        .map(|(j, _)| j + 2)
                        .unwrap_or(value.len())
                }
                None => value.find(char::is_whitespace).unwrap_or(value.len()),
            };
            let start = url.len() - value.len();
            return format!("{}***{}", &url[..start], redact_url(&url[start + end..]));
        }
        // Not a URL at all: whatever precedes a last `@` may be a password.
        return match url.rfind('@') {
            Some(at) => format!("***{}", &url[at..]),
            None => url.to_string(),
        };
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else { return url.to_string() };
    let userinfo = &rest[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_string(),
    };
    format!("{}{}{}", &url[..scheme_end + 3], shown, &rest[at..])
}
