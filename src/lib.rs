//! # chatmigrate
//!
//! PostgreSQL schema migrations through a direct connection (tokio-postgres),
//! the AWS RDS Data API, or a Citus coordinator, with the chat-history schema
//! of the seed application built in: the history table and its indexes,
//! pgvector, the 1024-dimension vector table and its HNSW index, and on
//! Citus the tables distributed by `userid` with a reference table of themes.
//!
//! The same engine runs the CLI and [`Migrator`], for applications that
//! migrate at start-up:
//!
//! ```no_run
//! # async fn demo() -> Result<(), chatmigrate::Error> {
//! // The built-in chat schema, against a URL:
//! let report = chatmigrate::Migrator::from_url("postgres://app@127.0.0.1:5432/st_chat_db")?
//!     .create_database(true)
//!     .up()
//!     .await?;
//! for m in &report.applied {
//!     println!("applied V{} {} in {} ms", m.version, m.name, m.duration_ms);
//! }
//! # Ok(()) }
//! ```
//!
//! Layout: `migration` (files, checksums, directives), `sql` (libpg_query
//! splitting), `plan` (pure planning), `runner` (the one run loop),
//! `backend` (transports), `dialect` (the tool's own SQL), `lint` (rules),
//! `config`, `render` (outcomes and errors as text or JSON), `error`.

pub mod backend;
pub mod classify;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod database;
pub mod dialect;
pub mod embedded;
pub mod error;
pub mod history;
pub mod lint;
pub mod migration;
pub mod placeholders;
pub mod plan;
pub mod render;
pub mod retry;
pub mod runner;
pub mod schema;
pub mod shipped_checksums;
pub mod sql;
pub mod undo;
pub mod value;
pub mod vector_index;

use std::path::PathBuf;

pub use config::Config;
pub use embedded::{EmbeddedSet, CHAT_SCHEMA};
pub use error::{Error, Result};
pub use migration::{Migration, Source};
pub use plan::{Entry, State};
pub use runner::{Applied, UpReport};

/// Compiles a directory of `V{version}__{name}.sql` files (relative to the
/// calling crate's `Cargo.toml`) into the binary as an [`EmbeddedSet`] for
/// [`Migrator::embedded`]. A file name that is not a migration's, or a
/// version used twice, is a compile error naming the file. Each file is
/// embedded with `include_bytes!`, so an edit rebuilds the crate; to
/// rebuild when a file is added or removed, put
/// `println!("cargo:rerun-if-changed=db/migrations");` in a build script.
///
/// ```ignore
/// let set = chatmigrate::embed_migrations!("db/migrations");
/// ```
pub use chatmigrate_macros::embed_migrations;

/// Runs migrations from an application: the embedded chat schema by default,
/// or directories of `V{version}__{name}.sql` files.
#[derive(Debug, Clone)]
pub struct Migrator {
    config: Config,
    target: Option<i64>,
    stop_before: Option<std::time::Instant>,
}

impl Migrator {
    /// A migrator for a resolved [`Config`].
    pub fn new(config: Config) -> Migrator {
        Migrator {
            config,
            target: None,
            stop_before: None,
        }
    }

    /// A migrator for one `postgres://` URL, with defaults and the embedded set.
    pub fn from_url(url: &str) -> Result<Migrator> {
        Ok(Migrator::new(Config::from_url(url)?))
    }

    /// Reads migrations from these directories instead of the embedded set.
    pub fn migrations(mut self, dirs: impl IntoIterator<Item = impl Into<PathBuf>>) -> Migrator {
        self.config.source = Source::Dirs(dirs.into_iter().map(Into::into).collect());
        self
    }

    /// Runs these compiled-in sets instead of the built-in chat schema
    /// alone: an application's own (`embed_migrations!`), alone or with
    /// [`CHAT_SCHEMA`]. The versions of all the sets share one version space.
    ///
    /// ```ignore
    /// # async fn demo() -> Result<(), chatmigrate::Error> {
    /// let app = chatmigrate::embed_migrations!("db/migrations");
    /// chatmigrate::Migrator::from_url("postgres://app@db:5432/app")?
    ///     .embedded([chatmigrate::CHAT_SCHEMA, app])
    ///     .up()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn embedded(mut self, sets: impl IntoIterator<Item = EmbeddedSet>) -> Migrator {
        self.config.source = Source::Compiled(sets.into_iter().collect());
        self
    }

    /// Creates the database first when it does not exist.
    pub fn create_database(mut self, yes: bool) -> Migrator {
        self.config.create_database = yes;
        self
    }

    /// A value for `${name}` in the migrations, over the config file's
    /// (docs/migrations.md); e.g. `.placeholder("embedding_dimensions", "1536")`
    /// for the chat schema. Checked when the migrations are loaded.
    pub fn placeholder(mut self, name: impl Into<String>, value: impl Into<String>) -> Migrator {
        let from = "Migrator::placeholder".to_string();
        self.config
            .placeholders
            .insert(name.into(), placeholders::Given { value: value.into(), from });
        self
    }

    /// Applies nothing above this version (`up`); undoes every applied
    /// migration above it (`down`).
    pub fn target(mut self, version: i64) -> Migrator {
        self.target = Some(version);
        self
    }

    /// Starts no migration after this instant (e.g. a Lambda invocation's
    /// deadline minus a margin), cancels a transactional one still running
    /// then (it is rolled back), and leaves a statement of a no-transaction
    /// migration running on the server where it outlives its call (the
    /// Data API; the next `up` waits for it and never sends it again).
    /// `up` then fails with [`Error::Interrupted`] whose `signal` is
    /// [`runner::DEADLINE`]; the next `up` goes on from there.
    pub fn stop_before(mut self, at: std::time::Instant) -> Migrator {
        self.stop_before = Some(at);
        self
    }

    /// The configuration this migrator runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reverts applied migrations with their undo files
    /// (`V{n}__{name}.undo.sql`, docs/migrations.md): every one above
    /// [`Migrator::target`] when it is set, else the last applied one.
    pub async fn down(&self) -> Result<runner::DownReport> {
        let opts = runner::DownOptions {
            target: self.target,
            steps: None,
            dry_run: false,
            handle_signals: false,
        };
        runner::down(&self.config, &opts, &mut |_| {}).await
    }

    /// Applies pending migrations.
    pub async fn up(&self) -> Result<UpReport> {
        let opts = runner::UpOptions {
            target: self.target,
            dry_run: false,
            handle_signals: false,
            stop_before: self.stop_before,
        };
        runner::up(&self.config, &opts, &mut |_| {}).await
    }

    /// Every version with its state (applied, pending, changed, ...).
    pub async fn status(&self) -> Result<Vec<Entry>> {
        let st = runner::load_state(&self.config).await?;
        Ok(plan::status(&st.local, &st.applied))
    }
}
