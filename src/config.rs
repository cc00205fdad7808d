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
use crate::migration::Source;
pub use crate::settings::{
    redact_url, Aws, BackendKind, Citus, Config, DevMark, Explicit, HistoryTable, ModifyMode, PgTarget, Secret, SslMode, UnsetPasswordEnv,
};
use crate::value::{self, duration_text, whole_number, Origin};

/// The config file as written. Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Environment used when neither `--env` nor `CHATMIGRATE_ENV` names one.
    pub default_env: Option<String>,
    #[serde(default)]
    pub environments: BTreeMap<String, EnvFile>,
    /// `[placeholders]`: values for `${name}` in migrations, for every
    /// environment (docs/migrations.md).
    #[serde(default)]
    pub placeholders: BTreeMap<String, crate::placeholders::FileValue>,
}

/// One `[environments.<name>]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    pub backend: Option<String>,
    pub url: Option<String>,
    pub host: Option<String>,
    #[serde(default, deserialize_with = "whole_number")]
    pub port: Option<i64>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    pub password_env: Option<String>,
    /// The command that sets `password_env`, for the error when it is not set.
    pub password_env_hint: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<PathBuf>,
    pub application_name: Option<String>,
    pub migrations: Option<Vec<PathBuf>>,
    pub history_schema: Option<String>,
    pub history_table: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub lock_wait: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub connect_timeout: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub lock_timeout: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub statement_timeout: Option<String>,
    #[serde(default, deserialize_with = "whole_number")]
    pub lock_retries: Option<i64>,
    pub create_database: Option<bool>,
    /// A development environment: `database create|drop|reset` may act on
    /// its database.
    pub dev: Option<bool>,
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
    #[serde(default, deserialize_with = "duration_text")]
    pub resume_timeout: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub refused_timeout: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub request_timeout: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub lease_ttl: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub transaction_keepalive: Option<String>,
    pub citus_multi_shard_modify_mode: Option<String>,
    pub citus_distribute_concurrently: Option<bool>,
    #[serde(default, deserialize_with = "duration_text")]
    pub citus_node_wait: Option<String>,
    /// Lint rules to run here although their scope is another backend.
    pub lint_include: Option<Vec<String>>,
    /// Lint rules not to run here.
    pub lint_exclude: Option<Vec<String>>,
    /// Above this many estimated rows a table is large for the locking rules.
    #[serde(default, deserialize_with = "whole_number")]
    pub lint_large_table_rows: Option<i64>,
    /// Above this many MB on disk a table is large for the locking rules.
    #[serde(default, deserialize_with = "whole_number")]
    pub lint_large_table_mb: Option<i64>,
    /// The database `adopt` and `diff` apply the migrations to (instead of
    /// a temporary one).
    pub dev_url: Option<String>,
    /// The cap of the `maintenance_work_mem` set for a vector index build:
    /// `auto` or a size (`2GB`).
    pub index_build_memory: Option<String>,
    /// `max_parallel_maintenance_workers` for a vector index build.
    #[serde(default, deserialize_with = "whole_number")]
    pub index_build_workers: Option<i64>,
    /// `[environments.<name>.citus]`: the citus backend's own table
    /// (`backend/citus.rs`); the `citus_*` keys above are its aliases.
    pub citus: Option<crate::backend::citus::Table>,
    /// `[environments.<name>.rds-data]`: the rds-data backend's own table
    /// (`backend/rds_data.rs`); `resource_arn`, `lease_ttl` and
    /// `transaction_keepalive` above are its aliases.
    #[serde(rename = "rds-data")]
    pub rds_data: Option<crate::backend::rds_data::Table>,
    /// `[environments.<name>.placeholders]`: this environment's values for
    /// `${name}` in migrations, over the file's `[placeholders]`.
    pub placeholders: Option<BTreeMap<String, crate::placeholders::FileValue>>,
}

/// What the command line (or a library caller) overrides: the input of
/// [`Config::load`]. Each field is the flag of the same name.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`: the file to read (default `chatmigrate.toml`, when it exists).
    pub config_path: Option<PathBuf>,
    /// `--env`: the `[environments.NAME]` to use.
    pub env: Option<String>,
    /// `--database-url`: the whole target, replacing the environment's.
    pub database_url: Option<String>,
    /// `--migrations`: directories that replace the environment's.
    pub migrations: Vec<PathBuf>,
    /// `--lock-wait`: how long to wait for the migration lock.
    pub lock_wait: Option<Duration>,
    /// `--create-database`.
    pub create_database: bool,
    /// `--allow-out-of-order`.
    pub allow_out_of_order: bool,
    /// `--placeholder name=value`, in order (a later one wins).
    pub placeholders: Vec<(String, String)>,
}

/// The process environment as [`Config::load`] reads it (`DATABASE_URL`,
/// `PG*`, `CHATMIGRATE_*`, the variables `password_env` names), injectable
/// for tests; [`ProcessEnv`] is the real one.
pub trait Env {
    /// The variable's value; `None` when it is unset or empty.
    fn var(&self, key: &str) -> Option<String>;

    /// Every variable whose name starts with `prefix`, as (name, value),
    /// sorted by name; empty values and names or values that are not UTF-8
    /// left out. (An environment that lists nothing has none.)
    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let _ = prefix;
        Vec::new()
    }
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }

    fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, v)| k.starts_with(prefix) && !v.is_empty())
            .collect();
        out.sort();
        out
    }
}

/// `CHATMIGRATE_PLACEHOLDER_<NAME>`: a value for `${name}`, the part after
/// the prefix in lower case (docs/migrations.md#placeholders).
pub const PLACEHOLDER_ENV_PREFIX: &str = "CHATMIGRATE_PLACEHOLDER_";

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
                node_wait: Duration::ZERO,
            },
            lint_include: Vec::new(),
            lint_exclude: Vec::new(),
            large_table_rows: 10_000,
            large_table_mb: 10,
            index_build_memory_kb: None,
            index_build_workers: None,
            dev_url: None,
            password_env_unset: None,
            dev: DevMark::NoEnvironment,
            placeholders: BTreeMap::new(),
        }
    }

    /// The error for a connect that has no password although the
    /// environment's `password_env` was meant to give one (see
    /// [`Config::password_env_unset`]); `Ok` otherwise.
    pub(crate) fn check_password(&self) -> Result<()> {
        let Some(u) = &self.password_env_unset else {
            return Ok(());
        };
        Err(Error::Connect {
            target: self.target_display(),
            message: format!("no password: {} is not set (password_env of environment `{}`)", u.var, u.env),
            hint: match &u.hint {
                Some(cmd) => format!("set {} with: {cmd}", u.var),
                None => format!("export {} with the password of user `{}` (or set PGPASSWORD)", u.var, self.pg.user),
            },
        })
    }

    /// The target for messages: `user@host:port/db`, or for the Data API
    /// `rds-data:<cluster>/<db>`. Never a secret.
    pub fn target_display(&self) -> String {
        (crate::backend::def(self.backend).target)(self)
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
        let (file, text) = match &path {
            Some(p) => {
                let text = read_text(p)?;
                (Some(parse_file(p, &text)?), text)
            }
            None => (None, String::new()),
        };
        let env_name = o
            .env
            .clone()
            .or_else(|| env.var("CHATMIGRATE_ENV"))
            .or_else(|| file.as_ref().and_then(|f| f.default_env.clone()));
        if env_name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(Error::InvalidSetting {
                key: if o.env.is_some() { "--env" } else { "default_env" }.into(),
                message: "the environment name is empty".into(),
            });
        }
        let mut unset_password = None;
        for (k, v) in file.iter().flat_map(|f| &f.placeholders) {
            let from = "[placeholders]".to_string();
            c.placeholders.insert(
                k.clone(),
                crate::placeholders::Given {
                    value: v.to_string(),
                    from,
                },
            );
        }
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
            let url_flag = o.database_url.is_some();
            if url_flag && e.backend.as_deref() == Some("rds-data") {
                return Err(Error::InvalidSetting {
                    key: "--database-url".into(),
                    message: format!(
                        "environment `{name}` uses the rds-data backend, which reaches the database through resource_arn and secret_arn, not a URL"
                    ),
                });
            }
            for (k, v) in e.placeholders.iter().flatten() {
                let from = format!("[environments.{name}.placeholders]");
                c.placeholders.insert(
                    k.clone(),
                    crate::placeholders::Given {
                        value: v.to_string(),
                        from,
                    },
                );
            }
            apply_file(&mut c, e, &base, env).map_err(|err| match (err, &path) {
                // Point at the value in the file: `chatmigrate.toml:7:19`.
                (Error::BadValue { at: None, invalid }, Some(p)) if invalid.origin == Origin::ConfigKey => {
                    let at = match locate(&text, name, &invalid.key) {
                        Some((line, col)) => format!("{}:{line}:{col}", p.display()),
                        None => p.display().to_string(),
                    };
                    Error::value_at(at, *invalid)
                }
                (err, _) => err,
            })?;
            c.dev = match (e.dev, url_flag, env.var("DATABASE_URL").is_some()) {
                (Some(true), false, false) => DevMark::Yes,
                (Some(true), true, _) => DevMark::Replaced {
                    env: name.clone(),
                    by: "--database-url",
                },
                (Some(true), false, true) => DevMark::Replaced {
                    env: name.clone(),
                    by: "DATABASE_URL",
                },
                _ => DevMark::NotMarked { env: name.clone() },
            };
            if url_flag {
                // --database-url names the database and how to reach it and
                // log in: the environment's keys for that (checked above
                // all the same) are dropped, and so is create_database, which
                // is about the environment's own database, not any a URL
                // names. Its other keys stay.
                let d = Config::defaults();
                c.pg = PgTarget {
                    application_name: c.pg.application_name.clone(),
                    connect_timeout: c.pg.connect_timeout,
                    ..d.pg
                };
                c.create_database = d.create_database;
                c.aws.secret_arn = None;
                c.aws.iam_auth = false;
            } else if let Some(var) = &e.password_env {
                if env.var(var).is_none() {
                    unset_password = Some(UnsetPasswordEnv {
                        var: var.clone(),
                        env: name.clone(),
                        hint: e.password_env_hint.clone(),
                    });
                }
            }
        }
        c.env_name = env_name;
        c.file = path;

        // Environment variables (libpq's names), then DATABASE_URL.
        if let Some(h) = env.var("PGHOST") {
            c.pg.host = h;
            c.pg.explicit.host = true;
        }
        if let Some(p) = env.var("PGPORT") {
            c.pg.port = port(value::count("PGPORT", Origin::EnvVar, &p, value::PORT))?;
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
            c.pg.sslmode = Some(SslMode::parse("PGSSLMODE", &m)?);
        }
        if let Some(r) = env.var("PGSSLROOTCERT") {
            c.pg.sslrootcert = Some(PathBuf::from(r));
        }
        if let Some(url) = env.var("DATABASE_URL") {
            apply_url(&mut c.pg, &url)?;
        }
        apply_chatmigrate_env(&mut c, env);

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
        for (k, v) in &o.placeholders {
            let from = "--placeholder".to_string();
            c.placeholders
                .insert(k.clone(), crate::placeholders::Given { value: v.clone(), from });
        }
        // PGPASSWORD, a URL's password, a secret or an IAM token count too.
        if c.pg.password.is_none() && c.aws.secret_arn.is_none() && !c.aws.iam_auth && c.backend != BackendKind::RdsData {
            c.password_env_unset = unset_password;
        }
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

/// The Data API and the migration directories from environment variables,
/// for a deploy (a Lambda function, a CI job) configured without a file or
/// with a file that leaves them out. They beat the file, as every
/// environment variable does:
///
/// - `CHATMIGRATE_RESOURCE_ARN`: the Aurora cluster's ARN; setting it selects
///   the Data API (`backend = "rds-data"`);
/// - `CHATMIGRATE_SECRET_ARN`: the Secrets Manager secret (the Data API's
///   credentials, or the direct connection's user and password);
/// - `CHATMIGRATE_DATABASE`: the database name (also for a direct connection);
/// - `CHATMIGRATE_MIGRATIONS`: migration directories, separated like `PATH`
///   entries (`:`), instead of the built-in set.
fn apply_chatmigrate_env(c: &mut Config, env: &dyn Env) {
    // Placeholders: over the config file's, under --placeholder.
    for (key, value) in env.vars_with_prefix(PLACEHOLDER_ENV_PREFIX) {
        let name = key[PLACEHOLDER_ENV_PREFIX.len()..].to_ascii_lowercase();
        c.placeholders.insert(name, crate::placeholders::Given { value, from: key });
    }
    if let Some(arn) = env.var("CHATMIGRATE_RESOURCE_ARN") {
        c.backend = BackendKind::RdsData;
        c.aws.resource_arn = Some(arn);
    }
    if let Some(arn) = env.var("CHATMIGRATE_SECRET_ARN") {
        c.aws.secret_arn = Some(arn);
    }
    if let Some(db) = env.var("CHATMIGRATE_DATABASE") {
        c.pg.dbname = db;
        c.pg.explicit.dbname = true;
    }
    if let Some(dirs) = env.var("CHATMIGRATE_MIGRATIONS") {
        c.source = Source::Dirs(std::env::split_paths(&dirs).filter(|p| !p.as_os_str().is_empty()).collect());
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::ConfigRead {
        path: path.to_path_buf(),
        source: e,
    })
}

/// 1-based (line, column) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// Where `[environments.<env>] <key> = ...`'s value is written, as (line, column).
fn locate(text: &str, env: &str, key: &str) -> Option<(usize, usize)> {
    #[derive(Deserialize)]
    struct Spans {
        #[serde(default)]
        environments: BTreeMap<String, BTreeMap<String, toml::Spanned<toml::Value>>>,
    }
    let spans: Spans = toml::from_str(text).ok()?;
    let value = spans.environments.get(env)?.get(key)?;
    Some(line_col(text, value.span().start))
}

/// A port from a checked whole number.
fn port(n: std::result::Result<i64, value::Invalid>) -> Result<u16> {
    let n = n.map_err(Error::from)?;
    // value::PORT bounds it to 1..=65535.
    Ok(u16::try_from(n).unwrap_or(u16::MAX))
}

/// Parses config text; errors carry `path:line:col` and name unknown keys.
pub fn parse_file(path: &Path, text: &str) -> Result<File> {
    toml::from_str::<File>(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        // One line: toml's message may add an "expected ..." line.
        let message = e
            .message()
            .trim()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let located = PathBuf::from(format!("{}:{line}:{col}", path.display()));
        if let Some(key) = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            let mut start = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let section = text[..start]
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

/// A duration key of the file, range-checked ([`value`]).
fn duration(key: &str, v: &str, limits: value::DurationLimits) -> Result<Duration> {
    value::duration(key, Origin::ConfigKey, v, limits).map_err(Error::from)
}

/// A duration where `off` or `0` means "none" (the server's setting).
fn optional_duration(key: &str, v: &str, limits: value::DurationLimits) -> Result<Option<Duration>> {
    duration(key, v, limits).map(|d| (!d.is_zero()).then_some(d))
}

/// The environment with its backends' own tables folded into the flat keys
/// they are the new names of. A key given both ways must have the same value.
fn with_tables(e: &EnvFile) -> Result<EnvFile> {
    let mut out = e.clone();
    if let Some(t) = &e.citus {
        let table = "[environments.<name>.citus]";
        fold(
            &mut out.citus_multi_shard_modify_mode,
            "citus_multi_shard_modify_mode",
            &t.multi_shard_modify_mode,
            table,
            "multi_shard_modify_mode",
            same,
        )?;
        fold(
            &mut out.citus_distribute_concurrently,
            "citus_distribute_concurrently",
            &t.distribute_concurrently,
            table,
            "distribute_concurrently",
            same,
        )?;
        in_range("citus.node_wait", &t.node_wait, value::CITUS_NODE_WAIT)?;
        fold(
            &mut out.citus_node_wait,
            "citus_node_wait",
            &t.node_wait,
            table,
            "node_wait",
            same_duration,
        )?;
    }
    if let Some(t) = &e.rds_data {
        let table = "[environments.<name>.rds-data]";
        fold(&mut out.resource_arn, "resource_arn", &t.resource_arn, table, "resource_arn", same)?;
        in_range("rds-data.lease_ttl", &t.lease_ttl, value::LEASE_TTL)?;
        in_range(
            "rds-data.transaction_keepalive",
            &t.transaction_keepalive,
            value::TRANSACTION_KEEPALIVE,
        )?;
        fold(&mut out.lease_ttl, "lease_ttl", &t.lease_ttl, table, "lease_ttl", same_duration)?;
        fold(
            &mut out.transaction_keepalive,
            "transaction_keepalive",
            &t.transaction_keepalive,
            table,
            "transaction_keepalive",
            same_duration,
        )?;
    }
    Ok(out)
}

/// A duration of a backend's table, range-checked under the name it has
/// there (`citus.node_wait`).
fn in_range(key: &str, v: &Option<String>, limits: value::DurationLimits) -> Result<()> {
    match v {
        Some(v) => duration(key, v, limits).map(drop),
        None => Ok(()),
    }
}

fn same<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

/// Two spellings of one duration (`"2min"`, `"120s"`, `120`).
fn same_duration(a: &String, b: &String) -> bool {
    let parse = |v: &str| value::parse_duration(v).ok();
    a == b || parse(a).is_some_and(|d| Some(d) == parse(b))
}

/// Takes a backend table's `key` into the flat key it aliases.
fn fold<T: Clone + std::fmt::Debug>(
    flat: &mut Option<T>,
    flat_key: &str,
    given: &Option<T>,
    table: &str,
    key: &str,
    same: fn(&T, &T) -> bool,
) -> Result<()> {
    match (flat.as_ref(), given) {
        (Some(old), Some(new)) if !same(old, new) => Err(Error::InvalidSetting {
            key: key.into(),
            message: format!(
                "{new:?} in {table}, but {old:?} under its old name `{flat_key}`: set it once (the table's spelling, docs/config.reference.toml)"
            ),
        }),
        (_, Some(new)) => {
            *flat = Some(new.clone());
            Ok(())
        }
        _ => Ok(()),
    }
}

fn apply_file(c: &mut Config, e: &EnvFile, base: &Path, env: &dyn Env) -> Result<()> {
    let e = &with_tables(e)?;
    if let Some(b) = &e.backend {
        let backends = crate::backend::BACKENDS;
        c.backend = match backends.iter().find(|d| d.name == b.as_str()) {
            Some(d) => d.kind,
            None => {
                let names: Vec<&str> = backends.iter().map(|d| d.name).collect();
                return Err(Error::InvalidSetting {
                    key: "backend".into(),
                    message: format!("`{b}` is not a backend this build supports ({})", names.join(", ")),
                });
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
        c.pg.port = port(value::count("port", Origin::ConfigKey, &p.to_string(), value::PORT))?;
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
        c.pg.sslmode = Some(SslMode::parse("sslmode", m)?);
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
        c.lock_wait = duration("lock_wait", v, value::LOCK_WAIT)?;
    }
    if let Some(v) = &e.connect_timeout {
        c.pg.connect_timeout = duration("connect_timeout", v, value::CONNECT_TIMEOUT)?;
    }
    if let Some(v) = &e.lock_timeout {
        c.lock_timeout = optional_duration("lock_timeout", v, value::LOCK_TIMEOUT)?;
    }
    if let Some(v) = &e.statement_timeout {
        c.statement_timeout = optional_duration("statement_timeout", v, value::STATEMENT_TIMEOUT)?;
    }
    if let Some(v) = e.lock_retries {
        let n = value::count("lock_retries", Origin::ConfigKey, &v.to_string(), value::LOCK_RETRIES).map_err(Error::from)?;
        c.lock_retries = u32::try_from(n).unwrap_or(0);
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
        a.request_timeout = duration("request_timeout", v, value::REQUEST_TIMEOUT)?;
    }
    if let Some(v) = &e.lease_ttl {
        a.lease_ttl = duration("lease_ttl", v, value::LEASE_TTL)?;
    }
    if let Some(v) = &e.transaction_keepalive {
        a.transaction_keepalive = duration("transaction_keepalive", v, value::TRANSACTION_KEEPALIVE)?;
    }
    if let Some(v) = &e.resume_timeout {
        c.resume_timeout = duration("resume_timeout", v, value::RESUME_TIMEOUT)?;
    }
    if let Some(v) = &e.refused_timeout {
        c.refused_timeout = duration("refused_timeout", v, value::REFUSED_TIMEOUT)?;
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
    if let Some(v) = &e.citus_node_wait {
        c.citus.node_wait = duration("citus_node_wait", v, value::CITUS_NODE_WAIT)?;
    }
    if let Some(v) = e.lint_large_table_rows {
        c.large_table_rows =
            value::count("lint_large_table_rows", Origin::ConfigKey, &v.to_string(), value::LARGE_TABLE_ROWS).map_err(Error::from)?;
    }
    if let Some(v) = e.lint_large_table_mb {
        c.large_table_mb =
            value::count("lint_large_table_mb", Origin::ConfigKey, &v.to_string(), value::LARGE_TABLE_MB).map_err(Error::from)?;
    }
    if let Some(v) = &e.dev_url {
        c.dev_url = Some(Secret::new(v.clone()));
    }
    if let Some(v) = &e.index_build_memory {
        c.index_build_memory_kb =
            value::memory("index_build_memory", Origin::ConfigKey, v, value::INDEX_BUILD_MEMORY).map_err(Error::from)?;
    }
    if let Some(v) = e.index_build_workers {
        let n = value::count("index_build_workers", Origin::ConfigKey, &v.to_string(), value::INDEX_BUILD_WORKERS).map_err(Error::from)?;
        c.index_build_workers = u32::try_from(n).ok();
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

/// The linter's options for an environment: its backend, that backend's
/// capabilities and transaction prelude, `lint_include` / `lint_exclude`.
pub fn lint_options(cfg: &Config) -> crate::lint::Options {
    let at_open = cfg.clone();
    crate::lint::Options {
        backend: cfg.backend,
        capabilities: crate::backend::capabilities_of(cfg.backend),
        include: cfg.lint_include.clone(),
        exclude: cfg.lint_exclude.clone(),
        errors_only: false,
        prelude: crate::lint::Prelude(std::sync::Arc::new(move |m| crate::backend::transaction_prelude(&at_open, m))),
        live: None,
        undo: false,
    }
}

/// A URL's user name and password must percent-encode `@ / ? #` and a `%`
/// that does not start an escape: otherwise the driver cuts the URL in the
/// wrong place and connects elsewhere, or sends another password.
fn check_userinfo(url: &str) -> Result<()> {
    let Some((_, rest)) = url.split_once("://") else { return Ok(()) };
    let Some(at) = rest.rfind('@') else { return Ok(()) };
    let userinfo = &rest[..at];
    let needs = |part, found| {
        Err(Error::UrlNeedsEncoding {
            url: redact_url(url),
            part,
            found,
        })
    };
    // An `@` inside a parameter (`?application_name=me@host`).
    if let Some(q) = userinfo.find('?') {
        if userinfo[q..].contains('=') && !userinfo[..q].contains('@') {
            return needs("query", '@');
        }
    }
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) if !u.contains(['/', '?', '#']) => (u, Some(p)),
        _ => (userinfo, None),
    };
    for (part, text) in [("user name", Some(user)), ("password", password)] {
        let Some(text) = text else { continue };
        if let Some(found) = text.chars().find(|c| matches!(c, '@' | '/' | '?' | '#')) {
            return needs(part, found);
        }
        let b = text.as_bytes();
        let bad_escape = b
            .iter()
            .enumerate()
            .any(|(i, &c)| c == b'%' && !b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
        if bad_escape {
            return needs(part, '%');
        }
    }
    Ok(())
}

/// Every port in the URL's host list (`h1:5432,[::1]:6432`), range-checked.
fn check_ports(url: &str, at: &dyn Fn() -> String) -> Result<()> {
    let Some((_, rest)) = url.split_once("://") else { return Ok(()) };
    let rest = rest.rfind('@').map(|i| &rest[i + 1..]).unwrap_or(rest);
    let hosts = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    for chunk in hosts.split(',') {
        let port = match chunk.strip_prefix('[') {
            Some(v6) => v6.split_once("]:").map(|(_, p)| p),
            None => chunk.split_once(':').map(|(_, p)| p),
        };
        if let Some(p) = port.filter(|p| !p.is_empty()) {
            value::count("port", Origin::UrlParam, p, value::PORT).map_err(|invalid| Error::value_at(at(), invalid))?;
        }
    }
    Ok(())
}

/// Applies a `postgres://` URL (or libpq key=value string) onto the target.
/// `sslmode` and `sslrootcert` are read here because tokio-postgres does not
/// know verify-ca/verify-full.
pub fn apply_url(pg: &mut PgTarget, url: &str) -> Result<()> {
    let bad = |reason: String| Error::BadUrl {
        url: redact_url(url),
        reason,
    };
    let at = || format!("invalid database URL {}", redact_url(url));
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    // libpq's key=value form starts with `key=` (a URL without its scheme
    // does not, and the driver would echo its user info as an option name).
    let key_value = url
        .trim_start()
        .split_once('=')
        .is_some_and(|(k, _)| !k.trim().is_empty() && k.trim().chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !is_url && (url.contains("://") || !key_value) {
        return Err(bad("expected a postgres:// or postgresql:// URL".into()));
    }
    if is_url {
        check_userinfo(url)?;
        check_ports(url, &at)?;
    }
    let (head, query) = match url.split_once('?').filter(|_| is_url) {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut kept = Vec::new();
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let checked = |limits| value::duration(k, Origin::UrlParam, v, limits).map_err(|invalid| Error::value_at(at(), invalid));
            match k {
                // libpq's whole seconds, or a duration such as 10s.
                "connect_timeout" => pg.connect_timeout = checked(value::CONNECT_TIMEOUT_URL)?,
                "port" => {
                    for p in v.split(',').filter(|p| !p.is_empty()) {
                        value::count("port", Origin::UrlParam, p, value::PORT).map_err(|invalid| Error::value_at(at(), invalid))?;
                    }
                    kept.push(pair)
                }
                "sslmode" => {
                    pg.sslmode = Some(SslMode::parse("sslmode", v).map_err(|_| {
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
    if let (false, Some(t)) = (is_url, parsed.get_connect_timeout()) {
        // key=value form: the driver read whole seconds.
        pg.connect_timeout = value::duration(
            "connect_timeout",
            Origin::UrlParam,
            &t.as_secs().to_string(),
            value::CONNECT_TIMEOUT_URL,
        )
        .map_err(|invalid| Error::value_at(at(), invalid))?;
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

        fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = self
                .0
                .iter()
                .filter(|(k, v)| k.starts_with(prefix) && !v.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            out.sort();
            out
        }
    }

    #[test]
    fn placeholders_come_from_the_environment_between_the_file_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("chatmigrate.toml");
        std::fs::write(&conf, "[placeholders]\nregion = \"eu\"\ntier = \"gold\"\nowner = \"ops\"\n").unwrap();
        let env = FakeEnv(vec![
            ("CHATMIGRATE_PLACEHOLDER_TIER", "silver"),
            ("CHATMIGRATE_PLACEHOLDER_EMBEDDING_DIMENSIONS", "1536"),
            ("CHATMIGRATE_PLACEHOLDER_OWNER", "app"),
            ("CHATMIGRATE_PLACEHOLDER_EMPTY", ""),
        ]);
        let o = Overrides {
            config_path: Some(conf),
            database_url: Some("postgres://app@db:5432/chat".into()),
            placeholders: vec![("owner".into(), "flag".into())],
            ..Overrides::default()
        };
        let c = Config::load(&o, &env).unwrap();
        let got: Vec<(&str, &str, &str)> = c
            .placeholders
            .iter()
            .map(|(k, g)| (k.as_str(), g.value.as_str(), g.from.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("embedding_dimensions", "1536", "CHATMIGRATE_PLACEHOLDER_EMBEDDING_DIMENSIONS"),
                ("owner", "flag", "--placeholder"),
                ("region", "eu", "[placeholders]"),
                ("tier", "silver", "CHATMIGRATE_PLACEHOLDER_TIER"),
            ]
        );
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
        assert!(
            !f.placeholders.is_empty(),
            "[placeholders] is missing from docs/config.reference.toml"
        );
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
        assert_eq!(redact_url("host=h password = 'a b\\' c' port=1"), "host=h password = *** port=1");
        assert_eq!(redact_url("u:s3cret@h/db"), "***@h/db");
        assert_eq!(redact_url("host=passwordhost password=s3cret"), "host=passwordhost password=***");
        assert_eq!(redact_url("password=a password=b"), "password=*** password=***");
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
    fn deploy_variables_beat_the_file_and_flags_beat_them() {
        let arn = "arn:aws:rds:us-east-1:123456789012:cluster:chat";
        let env = FakeEnv(vec![
            ("CHATMIGRATE_RESOURCE_ARN", arn),
            ("CHATMIGRATE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:s"),
            ("CHATMIGRATE_DATABASE", "st_chat_db"),
            ("CHATMIGRATE_MIGRATIONS", "/var/task/db::/var/task/more"),
        ]);
        let c = load_toml("[environments.e]\nhost = \"h\"\ndbname = \"file_db\"\nmigrations = [\"m\"]\n", &env).unwrap();
        assert_eq!(c.backend, BackendKind::RdsData);
        assert_eq!(c.aws.resource_arn.as_deref(), Some(arn));
        assert_eq!(
            c.aws.secret_arn.as_deref(),
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:s")
        );
        assert_eq!(c.pg.dbname, "st_chat_db");
        // Empty entries (a stray `::`) are skipped.
        assert!(matches!(&c.source, Source::Dirs(d) if d == &[PathBuf::from("/var/task/db"), PathBuf::from("/var/task/more")]));
        // Without them, the file's values; `--migrations` beats the variable.
        let c = load_toml("[environments.e]\ndbname = \"file_db\"\n", &FakeEnv(vec![])).unwrap();
        assert_eq!((c.backend, c.pg.dbname.as_str()), (BackendKind::Postgres, "file_db"));
        let o = Overrides {
            migrations: vec![PathBuf::from("flag")],
            ..Default::default()
        };
        let c = Config::load(&o, &env).unwrap();
        assert!(matches!(&c.source, Source::Dirs(d) if d == &[PathBuf::from("flag")]));
    }

    /// `--database-url` is the whole target: the environment's connection keys
    /// and its `create_database` (which is about its own database) are left
    /// out, so the URL's database is created only with `--create-database`;
    /// the environment's other keys and PGPASSWORD still apply, and its
    /// connection keys are still checked.
    #[test]
    fn database_url_flag_replaces_the_environments_connection() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chatmigrate.toml");
        std::fs::write(
            &p,
            "default_env = \"dev\"\n[environments.dev]\nurl = \"postgres://fileuser@filehost:1/filedb\"\nhost = \"127.0.0.1\"\nport = 54329\nuser = \"postgres\"\ndbname = \"st_chat_db\"\npassword_env = \"DEV_PW\"\nsslmode = \"disable\"\nsslrootcert = \"ca.pem\"\ncreate_database = true\nmigrations = [\"m\"]\nlock_wait = \"7s\"\nhistory_table = \"h\"\niam_auth = false\n",
        )
        .unwrap();
        let file_only = Overrides {
            config_path: Some(p.clone()),
            ..Default::default()
        };
        let env = FakeEnv(vec![("DEV_PW", "devsecret")]);
        let c = Config::load(&file_only, &env).unwrap();
        assert_eq!(c.pg.display(), "postgres@127.0.0.1:54329/st_chat_db");
        assert_eq!(c.pg.password.as_ref().unwrap().expose(), "devsecret");
        assert_eq!(c.pg.sslmode, Some(SslMode::Disable));
        assert!(c.create_database);

        let flag = Overrides {
            database_url: Some("postgres://app@db.example.com/nope".into()),
            ..file_only.clone()
        };
        let c = Config::load(&flag, &env).unwrap();
        assert_eq!(c.pg.display(), "app@db.example.com:5432/nope");
        assert!(
            c.pg.password.is_none(),
            "the environment's password_env is not sent to another server"
        );
        assert_eq!(c.pg.sslmode, None);
        assert_eq!(
            c.pg.effective_sslmode(),
            SslMode::VerifyFull,
            "not the environment's sslmode = disable"
        );
        assert_eq!(c.pg.sslrootcert, None);
        assert!(!c.create_database, "create_database is the environment's database's");
        assert_eq!(c.password_env_unset, None);
        // The rest of the environment still applies.
        assert_eq!(c.env_name.as_deref(), Some("dev"));
        assert!(matches!(&c.source, Source::Dirs(d) if d[0] == dir.path().join("m")));
        assert_eq!(c.lock_wait, Duration::from_secs(7));
        assert_eq!(c.history.table, "h");

        // --create-database still creates the URL's database; PGPASSWORD
        // gives the password the URL leaves out.
        let create = Overrides {
            create_database: true,
            ..flag.clone()
        };
        let env = FakeEnv(vec![("DEV_PW", "devsecret"), ("PGPASSWORD", "pw")]);
        let c = Config::load(&create, &env).unwrap();
        assert!(c.create_database);
        assert_eq!(c.pg.password.as_ref().unwrap().expose(), "pw");

        // DATABASE_URL, like the PG* variables, overrides only the parts it gives.
        let env = FakeEnv(vec![("DEV_PW", "devsecret"), ("DATABASE_URL", "postgres://app@other:5/x")]);
        let c = Config::load(&file_only, &env).unwrap();
        assert_eq!(c.pg.display(), "app@other:5/x");
        assert_eq!(c.pg.password.as_ref().unwrap().expose(), "devsecret");
        assert!(c.create_database);

        // Left out, but still checked: a typo never passes silently.
        std::fs::write(&p, "default_env = \"dev\"\n[environments.dev]\nsslmode = \"verify-all\"\n").unwrap();
        let e = Config::load(&flag, &FakeEnv(vec![])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting sslmode: `verify-all` is not one of disable, prefer, require, verify-ca, verify-full"
        );

        // A Data API environment has no URL to replace.
        std::fs::write(
            &p,
            "[environments.aurora]\nbackend = \"rds-data\"\nresource_arn = \"arn:aws:rds:eu-west-1:1:cluster:c\"\nsecret_arn = \"arn:aws:secretsmanager:eu-west-1:1:secret:s\"\n",
        )
        .unwrap();
        let aurora = Overrides {
            env: Some("aurora".into()),
            ..flag
        };
        let e = Config::load(&aurora, &FakeEnv(vec![])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting --database-url: environment `aurora` uses the rds-data backend, which reaches the database through resource_arn and secret_arn, not a URL"
        );
    }

    #[test]
    fn an_unset_password_env_is_named_before_connecting() {
        let toml =
            "[environments.e]\nhost = \"127.0.0.1\"\npassword_env = \"DEV_PW\"\npassword_env_hint = 'eval \"$(bash scripts/pg.sh env)\"'\n";
        let c = load_toml(toml, &FakeEnv(vec![])).unwrap();
        let e = c.check_password().unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot connect to postgres@127.0.0.1:5432/postgres: no password: DEV_PW is not set (password_env of environment `e`)"
        );
        assert_eq!(e.hint().unwrap(), "set DEV_PW with: eval \"$(bash scripts/pg.sh env)\"");
        // Without a hint in the file: how to set it.
        let c = load_toml("[environments.e]\nuser = \"app\"\npassword_env = \"DEV_PW\"\n", &FakeEnv(vec![])).unwrap();
        assert_eq!(
            c.check_password().unwrap_err().hint().unwrap(),
            "export DEV_PW with the password of user `app` (or set PGPASSWORD)"
        );
        // Any other source of a password will do.
        for env in [
            FakeEnv(vec![("DEV_PW", "x")]),
            FakeEnv(vec![("PGPASSWORD", "x")]),
            FakeEnv(vec![("DATABASE_URL", "postgres://u:x@h/d")]),
        ] {
            load_toml(toml, &env).unwrap().check_password().unwrap();
        }
        for extra in [
            "secret_arn = \"arn:aws:secretsmanager:eu-west-1:1:secret:s\"",
            "iam_auth = true\nsslmode = \"verify-full\"",
        ] {
            load_toml(&format!("{toml}{extra}\n"), &FakeEnv(vec![]))
                .unwrap()
                .check_password()
                .unwrap();
        }
    }

    /// Loads `toml` as the file of environment `e` with the fake environment.
    fn load_toml(toml: &str, env: &FakeEnv) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, toml).unwrap();
        let o = Overrides {
            config_path: Some(p),
            env: Some("e".into()),
            ..Default::default()
        };
        Config::load(&o, env).map_err(|e| match e {
            // The temp path varies: show it as c.toml.
            Error::BadValue { at, invalid } => Error::BadValue {
                at: at.map(|a| a.replace(&dir.path().join("c.toml").display().to_string(), "c.toml")),
                invalid,
            },
            e => e,
        })
    }

    #[test]
    fn backend_tables_and_their_flat_aliases_give_the_same_config() {
        let none = FakeEnv(vec![]);
        let flat = "[environments.e]\nbackend = \"citus\"\nurl = \"postgres://u:p@h/db\"\n\
                    citus_multi_shard_modify_mode = \"parallel\"\ncitus_distribute_concurrently = false\ncitus_node_wait = \"2min\"\n\
                    resource_arn = \"arn:aws:rds:eu-west-1:1:cluster:c\"\nlease_ttl = \"30s\"\ntransaction_keepalive = 90\n";
        let tables = "[environments.e]\nbackend = \"citus\"\nurl = \"postgres://u:p@h/db\"\n\
                      [environments.e.citus]\nmulti_shard_modify_mode = \"parallel\"\ndistribute_concurrently = false\nnode_wait = \"2min\"\n\
                      [environments.e.rds-data]\nresource_arn = \"arn:aws:rds:eu-west-1:1:cluster:c\"\nlease_ttl = \"30s\"\ntransaction_keepalive = \"90s\"\n";
        // Both, with the same values (a duration spelled two ways included).
        let both = format!("{}\n[environments.e.citus]\nnode_wait = 120\n", flat.trim_end());
        let shown = |c: &Config| format!("{:?} {:?}", c.citus, c.aws);
        let a = load_toml(flat, &none).unwrap();
        let b = load_toml(tables, &none).unwrap();
        let c = load_toml(&both, &none).unwrap();
        assert_eq!(shown(&a), shown(&b));
        assert_eq!(shown(&a), shown(&c));
        assert_eq!(a.citus.multi_shard_modify_mode, ModifyMode::Parallel);
        assert_eq!(a.citus.node_wait, Duration::from_secs(120));
        assert_eq!(b.aws.transaction_keepalive, Duration::from_secs(90));
    }

    #[test]
    fn a_backend_table_key_and_its_alias_must_agree() {
        let none = FakeEnv(vec![]);
        for (toml, want) in [
            (
                "[environments.e]\ncitus_node_wait = \"1min\"\n[environments.e.citus]\nnode_wait = \"2min\"\n",
                "invalid setting node_wait: \"2min\" in [environments.<name>.citus], but \"1min\" under its old name `citus_node_wait`: set it once (the table's spelling, docs/config.reference.toml)",
            ),
            (
                "[environments.e]\nlease_ttl = \"10s\"\n[environments.e.rds-data]\nlease_ttl = \"20s\"\n",
                "invalid setting lease_ttl: \"20s\" in [environments.<name>.rds-data], but \"10s\" under its old name `lease_ttl`: set it once (the table's spelling, docs/config.reference.toml)",
            ),
            (
                "[environments.e.citus]\nnode_wait = \"25h\"\n",
                "c.toml: citus.node_wait `25h` is out of range (0s to 24h)",
            ),
        ] {
            let got = load_toml(toml, &none).unwrap_err().to_string();
            assert!(got.ends_with(want), "{toml}\n{got}");
        }
        let e = parse_file(Path::new("c.toml"), "[environments.e.citus]\nnode_wiat = \"1s\"\n").unwrap_err();
        assert_eq!(e.to_string(), "c.toml:2:1: unknown key `node_wiat` in [environments.e.citus]");
    }

    #[test]
    fn values_are_range_checked_and_located() {
        let none = FakeEnv(vec![]);
        for (toml, want) in [
            (
                "[environments.e]\nconnect_timeout = \"10000000000000000h\"\n",
                "c.toml:2:19: connect_timeout `10000000000000000h` is out of range (1ms to 24h)",
            ),
            (
                "[environments.e]\nport = 99999\n",
                "c.toml:2:8: port `99999` is out of range (1 to 65535)",
            ),
            ("[environments.e]\nport = 0\n", "c.toml:2:8: port `0` is out of range (1 to 65535)"),
            (
                "[environments]\ne = { lock_retries = -1 }\n",
                "c.toml:2:22: lock_retries `-1` is out of range (0 to 100)",
            ),
            (
                "[environments.e]\nlock_wait = \"25h\"\n",
                "c.toml:2:13: lock_wait `25h` is out of range (0s to 24h)",
            ),
            (
                "[environments.e]\nlease_ttl = \"50ms\"\n",
                "c.toml:2:13: lease_ttl `50ms` is out of range (100ms to 24h)",
            ),
            (
                "[environments.e]\ntransaction_keepalive = \"25h\"\n",
                "c.toml:2:25: transaction_keepalive `25h` is out of range (100ms to 24h)",
            ),
            (
                "[environments.e]\nstatement_timeout = \"forever\"\n",
                "c.toml:2:21: statement_timeout `forever` is not a duration (e.g. 500ms, 30s, 5min, 1h)",
            ),
        ] {
            assert_eq!(load_toml(toml, &none).unwrap_err().to_string(), want, "{toml}");
        }
        for (toml, want) in [
            (
                "[environments.e]\nport = \"x\"\n",
                "2:8: invalid type: string \"x\", expected a whole number",
            ),
            (
                "[environments.e]\nlock_wait = true\n",
                "2:13: invalid type: boolean `true`, expected a duration such as \"30s\" or \"5min\"",
            ),
        ] {
            let e = load_toml(toml, &none).unwrap_err().to_string();
            assert!(e.ends_with(want), "{e}");
        }
        // Integers are seconds; `off` and 0 turn a timeout off.
        let c = load_toml(
            "[environments.e]\nlock_wait = 30\nlock_timeout = 0\nstatement_timeout = \"off\"\n",
            &none,
        )
        .unwrap();
        assert_eq!(
            (c.lock_wait, c.lock_timeout, c.statement_timeout),
            (Duration::from_secs(30), None, None)
        );
        let e = load_toml("[environments.e]\n", &FakeEnv(vec![("PGPORT", "65536")])).unwrap_err();
        assert_eq!(e.to_string(), "PGPORT `65536` is out of range (1 to 65535)");
        let e = load_toml("[environments.e]\n", &FakeEnv(vec![("PGSSLMODE", "on")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting PGSSLMODE: `on` is not one of disable, prefer, require, verify-ca, verify-full"
        );
    }

    #[test]
    fn urls_with_raw_separators_in_the_password() {
        let e = |url: &str| Config::from_url(url).unwrap_err();
        for (url, want) in [
            (
                "postgres://u:p@ss@h/db",
                "invalid database URL postgres://u:***@h/db: the password holds a raw `@`, which a URL reads as a separator",
            ),
            (
                "postgres://u:p%zz@h/db",
                "invalid database URL postgres://u:***@h/db: the password holds a `%` that starts no %XX escape",
            ),
            (
                "postgres://u:pa/ss@h/db",
                "invalid database URL postgres://u:***@h/db: the password holds a raw `/`, which a URL reads as a separator",
            ),
            (
                "postgres://u:pa?ss@h/db",
                "invalid database URL postgres://u:***@h/db: the password holds a raw `?`, which a URL reads as a separator",
            ),
            (
                "postgres://a@b@h/db",
                "invalid database URL postgres://a@b@h/db: the user name holds a raw `@`, which a URL reads as a separator",
            ),
            (
                "postgres://h/db?application_name=me@x",
                "invalid database URL postgres://h/db?application_name=me@x: the query holds a raw `@`, which a URL reads as a separator",
            ),
            (
                "postgres://u@h:70000/db",
                "invalid database URL postgres://u@h:70000/db: port `70000` is out of range (1 to 65535)",
            ),
            (
                "postgres://u@h/db?port=0",
                "invalid database URL postgres://u@h/db?port=0: port `0` is out of range (1 to 65535)",
            ),
            (
                "postgres://u@h/db?connect_timeout=-1",
                "invalid database URL postgres://u@h/db?connect_timeout=-1: connect_timeout `-1` is out of range (1ms to 24h)",
            ),
        ] {
            assert_eq!(e(url).to_string(), want, "{url}");
        }
        assert!(e("postgres://u:p@ss@h/db")
            .hint()
            .unwrap()
            .starts_with("percent-encode the password (`@` is %40"));
        let c = Config::from_url("postgres://u:p%40ss%25@h:6000/db?connect_timeout=7").unwrap();
        assert_eq!(c.pg.password.unwrap().expose(), "p@ss%");
        assert_eq!((c.pg.port, c.pg.connect_timeout), (6000, Duration::from_secs(7)));
        assert_eq!(
            Config::from_url("postgres://u@h/db?connect_timeout=1500ms")
                .unwrap()
                .pg
                .connect_timeout,
            Duration::from_millis(1500)
        );
        // libpq's key=value form: a raw `@` in a password is fine there.
        let c = Config::from_url("host=h password=p@ss dbname=d").unwrap();
        assert_eq!((c.pg.password.unwrap().expose(), c.pg.dbname.as_str()), ("p@ss", "d"));
        let e = Config::from_url("u:s3cret@h/db?connect_timeout=1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid database URL ***@h/db?connect_timeout=1: expected a postgres:// or postgresql:// URL"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Keys of every type, with values of every shape.
        fn snippets() -> impl Strategy<Value = (String, String)> {
            let key = prop_oneof![
                Just("lock_wait"),
                Just("connect_timeout"),
                Just("lock_timeout"),
                Just("statement_timeout"),
                Just("resume_timeout"),
                Just("refused_timeout"),
                Just("request_timeout"),
                Just("lease_ttl"),
                Just("transaction_keepalive"),
                Just("port"),
                Just("lock_retries"),
                Just("sslmode"),
                Just("backend"),
                Just("url"),
                Just("host"),
                Just("group_commit"),
                Just("migrations"),
                Just("citus_multi_shard_modify_mode"),
                Just("citus_node_wait"),
                Just("index_build_memory"),
                Just("index_build_workers"),
                Just("no_such_key"),
            ];
            let value = prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                "-?[0-9]{1,22}(\\.[0-9]{1,3})?(ms|s|min|h)?".prop_map(|t| format!("\"{t}\"")),
                "\\PC{0,16}".prop_map(|t| format!("{t:?}")),
                Just("true".to_string()),
                Just("[\"a\", 1]".to_string()),
                Just("{ x = 1 }".to_string()),
                "[a-z0-9\"=\\[\\] ]{0,12}",
            ];
            (key, value).prop_map(|(k, v)| (k.to_string(), v))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A TOML snippet loads, or the error names the file and, for a
            /// value, the key.
            #[test]
            fn a_config_value_loads_or_names_its_key((key, value) in snippets()) {
                let toml = format!("[environments.e]\n{key} = {value}\n");
                match load_toml(&toml, &FakeEnv(vec![])) {
                    Ok(c) => {
                        prop_assert!(c.lock_wait <= Duration::from_secs(24 * 3600));
                        prop_assert!(c.pg.port >= 1);
                    }
                    Err(e) => {
                        let line = e.to_string();
                        prop_assert!(!line.contains('\n'), "{}", line);
                        prop_assert!(e.hint().is_some());
                        match &e {
                            Error::BadValue { invalid, .. } => prop_assert_eq!(&invalid.key, &key),
                            Error::ConfigParse { .. } | Error::ConfigUnknownKey { .. } => prop_assert!(line.starts_with("c.toml") || line.contains("c.toml:"), "{}", line),
                            Error::InvalidSetting { key: k, .. } => prop_assert!(key.contains(k.as_str()) || k == "backend", "{}", line),
                            _ => prop_assert!(line.starts_with("invalid database URL") || key == "url", "{}", line),
                        }
                    }
                }
            }

            /// Any URL made of tricky parts: applied, or an error that never
            /// shows the password.
            #[test]
            fn a_url_applies_or_fails_without_showing_the_password(
                scheme in prop_oneof![Just("postgres://"), Just("postgresql://"), Just("mysql://"), Just("")],
                user in "[a-z@%/?#:]{0,6}",
                password in "[A-Za-z0-9@%/?#:]{0,8}",
                host in prop_oneof![Just("h".to_string()), Just("[::1]".to_string()), Just("h1,h2".to_string()), "[a-z0-9.@:-]{0,10}"],
                port in proptest::option::of("[0-9-]{0,7}"),
                query in proptest::collection::vec((prop_oneof![Just("connect_timeout"), Just("port"), Just("sslmode"), Just("application_name"), Just("bogus")], "[0-9a-z@%=-]{0,8}"), 0..3),
            ) {
                let secret = format!("Zq{password}Zq");
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let url = if scheme.is_empty() && user.len() % 2 == 1 {
                    // libpq's key=value form.
                    format!("host={host} password={secret} dbname=db {}", q.join(" "))
                } else {
                    format!("{scheme}{user}:{secret}@{host}{port}/db{}{}", if q.is_empty() { "" } else { "?" }, q.join("&"))
                };
                if let Err(e) = Config::from_url(&url) {
                    let line = e.to_string();
                    prop_assert!(!line.contains(&secret), "{}", line);
                    prop_assert!(!line.contains('\n'), "{}", line);
                    prop_assert!(e.hint().is_some_and(|h| !h.contains(&secret)));
                }
            }
        }
    }

    #[test]
    fn default_sslmode_depends_on_host() {
        let c = Config::from_url("postgres://u@db.example.com/x").unwrap();
        assert_eq!(c.pg.effective_sslmode(), SslMode::VerifyFull);
        let c = Config::from_url("postgres://u@127.0.0.1/x").unwrap();
        assert_eq!(c.pg.effective_sslmode(), SslMode::Prefer);
    }
}
