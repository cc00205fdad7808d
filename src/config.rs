//! `chatmigrate.toml` → [`Config`]: strict serde types for the file, the
//! precedence rules (flags > environment variables > file > defaults), and
//! the resolved target a backend connects to.
//!
//! Every key of the file is set, with a comment, in
//! `docs/config.reference.toml`; a test parses that file, so the reference and
//! this module cannot drift apart. Passwords live in [`Secret`], whose `Debug`
//! and `Display` never show the value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::migration::{parse_duration, Source};

/// The config file as written. Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Environment used when neither `--env` nor `CHATMIGRATE_ENV` names one.
    pub default_env: Option<String>,
    #[serde(default)]
    pub environments: BTreeMap<String, EnvFile>,
}

/// One `[environments.<name>]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    pub backend: Option<String>,
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    pub password_env: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<PathBuf>,
    pub application_name: Option<String>,
    pub migrations: Option<Vec<PathBuf>>,
    pub history_schema: Option<String>,
    pub history_table: Option<String>,
    pub lock_wait: Option<String>,
    pub connect_timeout: Option<String>,
    pub lock_timeout: Option<String>,
    pub statement_timeout: Option<String>,
    pub lock_retries: Option<u32>,
    pub create_database: Option<bool>,
    pub maintenance_db: Option<String>,
    pub group_commit: Option<bool>,
    pub allow_out_of_order: Option<bool>,
    /// Alias of `dbname` (the Data API's name for it).
    pub database: Option<String>,
    pub resource_arn: Option<String>,
    pub secret_arn: Option<String>,
    pub iam_auth: Option<bool>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub resume_timeout: Option<String>,
    pub refused_timeout: Option<String>,
    pub request_timeout: Option<String>,
    pub lease_ttl: Option<String>,
    pub transaction_keepalive: Option<String>,
    pub citus_multi_shard_modify_mode: Option<String>,
    pub citus_distribute_concurrently: Option<bool>,
    /// Lint rules to run here although their scope is another backend.
    pub lint_include: Option<Vec<String>>,
    /// Lint rules not to run here.
    pub lint_exclude: Option<Vec<String>>,
}

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

/// Which transport runs the migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Postgres,
    RdsData,
    /// A Citus coordinator: the postgres transport plus Citus checks,
    /// settings and the citus-only migrations.
    Citus,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Postgres => "postgres",
            BackendKind::RdsData => "rds-data",
            BackendKind::Citus => "citus",
        }
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

    fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::InvalidSetting {
                    key: "sslmode".into(),
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

/// Everything a run needs, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub env_name: Option<String>,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    pub backend: BackendKind,
    pub pg: PgTarget,
    pub source: Source,
    pub history: HistoryTable,
    pub lock_wait: Duration,
    /// `SET LOCAL lock_timeout` for transactional migrations; `None` = server default.
    pub lock_timeout: Option<Duration>,
    /// `SET LOCAL statement_timeout`; `None` = off.
    pub statement_timeout: Option<Duration>,
    /// Retries of a transactional migration that failed on lock_timeout (55P03).
    pub lock_retries: u32,
    pub create_database: bool,
    pub maintenance_db: String,
    /// Commit all but the last migration of a run with
    /// `synchronous_commit = off` (the last one flushes them all).
    pub group_commit: bool,
    pub allow_out_of_order: bool,
    pub aws: Aws,
    /// How long to keep retrying while the database resumes (Aurora
    /// auto-pause) or refuses connections transiently.
    pub resume_timeout: Duration,
    /// How long a refused connection is retried before this run has reached
    /// the server (nothing may be listening there at all); a reconnect is
    /// retried within `resume_timeout` (a rebooting writer).
    pub refused_timeout: Duration,
    /// Where "waiting for Aurora to resume: 14 s" lines go.
    pub progress: crate::retry::Progress,
    /// The `citus` backend's settings.
    pub citus: Citus,
    /// Lint rules turned on outside their backend (`lint_include`).
    pub lint_include: Vec<String>,
    /// Lint rules turned off (`lint_exclude`; never the non-ignorable ones).
    pub lint_exclude: Vec<String>,
}

/// What the command line (or a library caller) overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_path: Option<PathBuf>,
    pub env: Option<String>,
    pub database_url: Option<String>,
    pub migrations: Vec<PathBuf>,
    pub lock_wait: Option<Duration>,
    pub create_database: bool,
    pub allow_out_of_order: bool,
}

/// The process environment, injectable for tests.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// A config for one URL with every default and the embedded migrations
    /// (what the library's `Migrator::from_url` uses).
    pub fn from_url(url: &str) -> Result<Config> {
        let mut c = Config::defaults();
        apply_url(&mut c.pg, url)?;
        Ok(c)
    }

    fn defaults() -> Config {
        Config {
            env_name: None,
            file: None,
            backend: BackendKind::Postgres,
            pg: PgTarget {
                host: "localhost".into(),
                port: 5432,
                user: "postgres".into(),
                dbname: "postgres".into(),
                password: None,
                sslmode: None,
                sslrootcert: None,
                application_name: "chatmigrate".into(),
                connect_timeout: Duration::from_secs(45),
                explicit: Explicit::default(),
            },
            source: Source::Embedded,
            history: HistoryTable {
                schema: None,
                table: "chatmigrate_history".into(),
            },
            lock_wait: Duration::from_secs(60),
            lock_timeout: Some(Duration::from_secs(5)),
            statement_timeout: None,
            lock_retries: 3,
            create_database: false,
            maintenance_db: "postgres".into(),
            group_commit: true,
            allow_out_of_order: false,
            aws: Aws {
                request_timeout: Duration::from_secs(65),
                lease_ttl: Duration::from_secs(60),
                transaction_keepalive: Duration::from_secs(120),
                ..Aws::default()
            },
            resume_timeout: Duration::from_secs(120),
            refused_timeout: Duration::from_secs(10),
            progress: crate::retry::Progress::default(),
            citus: Citus {
                multi_shard_modify_mode: ModifyMode::Sequential,
                distribute_concurrently: true,
            },
            lint_include: Vec::new(),
            lint_exclude: Vec::new(),
        }
    }

    /// The target for messages: `user@host:port/db`, or for the Data API
    /// `rds-data:<cluster>/<db>`. Never a secret.
    pub fn target_display(&self) -> String {
        match self.backend {
            BackendKind::Postgres | BackendKind::Citus => self.pg.display(),
            BackendKind::RdsData => {
                let arn = self.aws.resource_arn.as_deref().unwrap_or("");
                let cluster = arn.rsplit(':').next().unwrap_or(arn);
                format!("rds-data:{cluster}/{}", self.pg.dbname)
            }
        }
    }

    /// Resolves the configuration: defaults, then the file's environment,
    /// then environment variables, then flags.
    pub fn load(o: &Overrides, env: &dyn Env) -> Result<Config> {
        let mut c = Config::defaults();
        let path = o
            .config_path
            .clone()
            .or_else(|| env.var("CHATMIGRATE_CONFIG").map(PathBuf::from))
            .or_else(|| {
                let p = PathBuf::from("chatmigrate.toml");
                p.exists().then_some(p)
            });
        let file = match &path {
            Some(p) => Some(read_file(p)?),
            None => None,
        };
        let env_name = o
            .env
            .clone()
            .or_else(|| env.var("CHATMIGRATE_ENV"))
            .or_else(|| file.as_ref().and_then(|f| f.default_env.clone()));
        if let Some(name) = &env_name {
            let shown = path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "chatmigrate.toml (not found)".into());
            let e = file
                .as_ref()
                .and_then(|f| f.environments.get(name))
                .ok_or_else(|| Error::UnknownEnvironment {
                    name: name.clone(),
                    path: shown,
                })?;
            let base = path.as_ref().and_then(|p| p.parent()).map(Path::to_path_buf).unwrap_or_default();
            apply_file(&mut c, e, &base, env)?;
        }
        c.env_name = env_name;
        c.file = path;

        // Environment variables (libpq's names), then DATABASE_URL.
        if let Some(h) = env.var("PGHOST") {
            c.pg.host = h;
            c.pg.explicit.host = true;
        }
        if let Some(p) = env.var("PGPORT") {
            c.pg.port = p.parse().map_err(|_| Error::InvalidSetting {
                key: "PGPORT".into(),
                message: format!("`{p}` is not a port number"),
            })?;
            c.pg.explicit.port = true;
        }
        if let Some(u) = env.var("PGUSER") {
            c.pg.user = u;
        }
        if let Some(d) = env.var("PGDATABASE") {
            c.pg.dbname = d;
            c.pg.explicit.dbname = true;
        }
        if let Some(p) = env.var("PGPASSWORD") {
            c.pg.password = Some(Secret::new(p));
        }
        if let Some(m) = env.var("PGSSLMODE") {
            c.pg.sslmode = Some(SslMode::parse(&m)?);
        }
        if let Some(r) = env.var("PGSSLROOTCERT") {
            c.pg.sslrootcert = Some(PathBuf::from(r));
        }
        if let Some(url) = env.var("DATABASE_URL") {
            apply_url(&mut c.pg, &url)?;
        }

        // Flags.
        if let Some(url) = &o.database_url {
            apply_url(&mut c.pg, url)?;
        }
        if !o.migrations.is_empty() {
            c.source = Source::Dirs(o.migrations.clone());
        }
        if let Some(w) = o.lock_wait {
            c.lock_wait = w;
        }
        c.create_database |= o.create_database;
        c.allow_out_of_order |= o.allow_out_of_order;
        if c.backend == BackendKind::RdsData && (c.aws.resource_arn.is_none() || c.aws.secret_arn.is_none()) {
            return Err(Error::InvalidSetting {
                key: "backend".into(),
                message: "`rds-data` needs resource_arn (the cluster ARN) and secret_arn (its Secrets Manager secret)".into(),
            });
        }
        let mode = c.pg.effective_sslmode();
        if c.aws.iam_auth && c.backend != BackendKind::RdsData && matches!(mode, SslMode::Disable | SslMode::Prefer) {
            return Err(Error::InvalidSetting {
                key: "sslmode".into(),
                message: format!(
                    "iam_auth sends an IAM token as the password, which needs TLS: `{}` may send it in clear",
                    mode.as_str()
                ),
            });
        }
        Ok(c)
    }
}

/// Reads and strictly parses a config file.
pub fn read_file(path: &Path) -> Result<File> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigRead {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_file(path, &text)
}

/// Parses config text; errors carry `path:line:col` and name unknown keys.
pub fn parse_file(path: &Path, text: &str) -> Result<File> {
    toml::from_str::<File>(text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                (
                    before.matches('\n').count() + 1,
                    before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1,
                )
            })
            .unwrap_or((1, 1));
        let message = e.message().trim().to_string();
        let located = PathBuf::from(format!("{}:{line}:{col}", path.display()));
        if let Some(key) = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            let section = text[..e.span().map(|s| s.start).unwrap_or(0).min(text.len())]
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')).map(str::to_string))
                .map(|s| format!("[{s}]"))
                .unwrap_or_else(|| "the top level".into());
            return Error::ConfigUnknownKey {
                path: located,
                key: key.to_string(),
                section,
            };
        }
        Error::ConfigParse { path: located, message }
    })
}

fn duration(key: &str, v: &str) -> Result<Duration> {
    parse_duration(v).ok_or_else(|| Error::InvalidSetting {
        key: key.into(),
        message: format!("`{v}` is not a duration (e.g. 500ms, 5s, 10min)"),
    })
}

/// A duration where `0` or `off` means "none".
fn optional_duration(key: &str, v: &str) -> Result<Option<Duration>> {
    if v == "off" || v == "0" {
        return Ok(None);
    }
    duration(key, v).map(Some)
}

fn apply_file(c: &mut Config, e: &EnvFile, base: &Path, env: &dyn Env) -> Result<()> {
    if let Some(b) = &e.backend {
        c.backend = match b.as_str() {
            "postgres" => BackendKind::Postgres,
            "rds-data" => BackendKind::RdsData,
            "citus" => BackendKind::Citus,
            other => {
                return Err(Error::InvalidSetting {
                    key: "backend".into(),
                    message: format!("`{other}` is not a backend this build supports (postgres, rds-data, citus)"),
                })
            }
        };
    }
    if let Some(url) = &e.url {
        apply_url(&mut c.pg, url)?;
    }
    if let Some(h) = &e.host {
        c.pg.host = h.clone();
        c.pg.explicit.host = true;
    }
    if let Some(p) = e.port {
        c.pg.port = p;
        c.pg.explicit.port = true;
    }
    if let Some(u) = &e.user {
        c.pg.user = u.clone();
    }
    if let Some(d) = &e.dbname {
        c.pg.dbname = d.clone();
        c.pg.explicit.dbname = true;
    }
    if let Some(var) = &e.password_env {
        if let Some(p) = env.var(var) {
            c.pg.password = Some(Secret::new(p));
        }
    }
    if let Some(m) = &e.sslmode {
        c.pg.sslmode = Some(SslMode::parse(m)?);
    }
    if let Some(r) = &e.sslrootcert {
        c.pg.sslrootcert = Some(base.join(r));
    }
    if let Some(a) = &e.application_name {
        c.pg.application_name = a.clone();
    }
    if let Some(dirs) = &e.migrations {
        c.source = Source::Dirs(dirs.iter().map(|d| base.join(d)).collect());
    }
    if let Some(s) = &e.history_schema {
        c.history.schema = Some(s.clone());
    }
    if let Some(t) = &e.history_table {
        c.history.table = t.clone();
    }
    if let Some(v) = &e.lock_wait {
        c.lock_wait = duration("lock_wait", v)?;
    }
    if let Some(v) = &e.connect_timeout {
        c.pg.connect_timeout = duration("connect_timeout", v)?;
    }
    if let Some(v) = &e.lock_timeout {
        c.lock_timeout = optional_duration("lock_timeout", v)?;
    }
    if let Some(v) = &e.statement_timeout {
        c.statement_timeout = optional_duration("statement_timeout", v)?;
    }
    if let Some(v) = e.lock_retries {
        c.lock_retries = v;
    }
    if let Some(v) = e.create_database {
        c.create_database = v;
    }
    if let Some(v) = &e.maintenance_db {
        c.maintenance_db = v.clone();
    }
    if let Some(v) = e.group_commit {
        c.group_commit = v;
    }
    if let Some(v) = e.allow_out_of_order {
        c.allow_out_of_order = v;
    }
    if let Some(d) = &e.database {
        c.pg.dbname = d.clone();
        c.pg.explicit.dbname = true;
    }
    let a = &mut c.aws;
    a.resource_arn = e.resource_arn.clone().or(a.resource_arn.take());
    a.secret_arn = e.secret_arn.clone().or(a.secret_arn.take());
    a.region = e.region.clone().or(a.region.take());
    a.profile = e.profile.clone().or(a.profile.take());
    a.endpoint_url = e.endpoint_url.clone().or(a.endpoint_url.take());
    if let Some(v) = e.iam_auth {
        a.iam_auth = v;
    }
    if let Some(v) = &e.request_timeout {
        a.request_timeout = duration("request_timeout", v)?;
    }
    if let Some(v) = &e.lease_ttl {
        a.lease_ttl = duration("lease_ttl", v)?;
    }
    if let Some(v) = &e.transaction_keepalive {
        a.transaction_keepalive = duration("transaction_keepalive", v)?;
    }
    if let Some(v) = &e.resume_timeout {
        c.resume_timeout = duration("resume_timeout", v)?;
    }
    if let Some(v) = &e.refused_timeout {
        c.refused_timeout = duration("refused_timeout", v)?;
    }
    if let Some(v) = &e.citus_multi_shard_modify_mode {
        c.citus.multi_shard_modify_mode = match v.as_str() {
            "sequential" => ModifyMode::Sequential,
            "parallel" => ModifyMode::Parallel,
            other => {
                return Err(Error::InvalidSetting {
                    key: "citus_multi_shard_modify_mode".into(),
                    message: format!("`{other}` is not one of sequential, parallel"),
                })
            }
        };
    }
    if let Some(v) = e.citus_distribute_concurrently {
        c.citus.distribute_concurrently = v;
    }
    for (key, list, excluding, into) in [
        ("lint_include", &e.lint_include, false, &mut c.lint_include),
        ("lint_exclude", &e.lint_exclude, true, &mut c.lint_exclude),
    ] {
        if let Some(ids) = list {
            crate::lint::check_rule_list(key, ids, excluding).map_err(|message| Error::InvalidSetting { key: key.into(), message })?;
            *into = ids.clone();
        }
    }
    Ok(())
}

/// Replaces `user:password@` in a URL with `user:***@`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // key=value form: hide password=...
        return url
            .split_whitespace()
            .map(|kv| if kv.starts_with("password=") { "password=***" } else { kv })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let userinfo = &authority[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_string(),
    };
    format!("{}{}{}", &url[..scheme_end + 3], shown, &rest[at..])
}

/// Applies a `postgres://` URL (or libpq key=value string) onto the target.
/// `sslmode` and `sslrootcert` are read here because tokio-postgres does not
/// know verify-ca/verify-full.
pub fn apply_url(pg: &mut PgTarget, url: &str) -> Result<()> {
    let bad = |reason: String| Error::BadUrl {
        url: redact_url(url),
        reason,
    };
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut kept = Vec::new();
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => {
                    pg.sslmode = Some(SslMode::parse(v).map_err(|_| {
                        bad(format!(
                            "sslmode `{v}` is not one of disable, prefer, require, verify-ca, verify-full"
                        ))
                    })?)
                }
                "sslrootcert" => pg.sslrootcert = Some(PathBuf::from(v)),
                _ => kept.push(pair),
            }
        }
    }
    let rebuilt = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    if !(rebuilt.starts_with("postgres://") || rebuilt.starts_with("postgresql://") || rebuilt.contains('=')) {
        return Err(bad("expected a postgres:// or postgresql:// URL".into()));
    }
    let parsed: tokio_postgres::Config = rebuilt.parse().map_err(|e: tokio_postgres::Error| {
        // The driver's message names the option, never its value.
        let cause = std::error::Error::source(&e).map(|s| s.to_string());
        bad(cause.unwrap_or_else(|| e.to_string()))
    })?;
    if let Some(h) = parsed.get_hosts().first() {
        pg.host = match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        pg.explicit.host = true;
    }
    if let Some(p) = parsed.get_ports().first() {
        pg.port = *p;
        pg.explicit.port = true;
    }
    if let Some(u) = parsed.get_user() {
        pg.user = u.to_string();
    }
    if let Some(d) = parsed.get_dbname() {
        pg.dbname = d.to_string();
        pg.explicit.dbname = true;
    }
    if let Some(p) = parsed.get_password() {
        pg.password = Some(Secret::new(String::from_utf8_lossy(p).into_owned()));
    }
    if let Some(a) = parsed.get_application_name() {
        pg.application_name = a.to_string();
    }
    if let Some(t) = parsed.get_connect_timeout() {
        pg.connect_timeout = *t;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeEnv(Vec<(&'static str, &'static str)>);
    impl Env for FakeEnv {
        fn var(&self, key: &str) -> Option<String> {
            self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn reference_file_parses_and_sets_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.reference.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let f = parse_file(&path, &text).unwrap();
        let e = f.environments.get("example").expect("[environments.example]");
        // Every field is set in the reference: a new key fails this until documented.
        let dbg = format!("{e:?}");
        assert!(!dbg.contains("None"), "a key is missing from docs/config.reference.toml: {dbg}");
        assert!(f.default_env.is_some());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse_file(Path::new("c.toml"), "[environments.dev]\nhots = \"x\"\n").unwrap_err();
        assert_eq!(e.to_string(), "c.toml:2:1: unknown key `hots` in [environments.dev]");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_url("postgres://u:s3cret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("host=h password=s3cret"), "host=h password=***");
    }

    #[test]
    fn precedence_flags_env_file() {
        let env = FakeEnv(vec![("PGHOST", "envhost"), ("PGPASSWORD", "pw")]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chatmigrate.toml");
        std::fs::write(
            &p,
            "[environments.a]\nhost = \"filehost\"\nport = 7\ndbname = \"d\"\nmigrations = [\"m\"]\n",
        )
        .unwrap();
        let o = Overrides {
            config_path: Some(p.clone()),
            env: Some("a".into()),
            ..Default::default()
        };
        let c = Config::load(&o, &env).unwrap();
        assert_eq!((c.pg.host.as_str(), c.pg.port, c.pg.dbname.as_str()), ("envhost", 7, "d"));
        assert_eq!(c.pg.password.as_ref().unwrap().expose(), "pw");
        assert!(matches!(&c.source, Source::Dirs(d) if d[0] == dir.path().join("m")));
        let o = Overrides {
            database_url: Some("postgres://flag@flaghost:9/x?sslmode=verify-full".into()),
            ..o
        };
        let c = Config::load(&o, &env).unwrap();
        assert_eq!((c.pg.host.as_str(), c.pg.port, c.pg.user.as_str()), ("flaghost", 9, "flag"));
        assert_eq!(c.pg.sslmode, Some(SslMode::VerifyFull));
    }

    #[test]
    fn default_sslmode_depends_on_host() {
        let c = Config::from_url("postgres://u@db.example.com/x").unwrap();
        assert_eq!(c.pg.effective_sslmode(), SslMode::VerifyFull);
        let c = Config::from_url("postgres://u@127.0.0.1/x").unwrap();
        assert_eq!(c.pg.effective_sslmode(), SslMode::Prefer);
    }
}
