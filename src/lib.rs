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
//! With a `chatmigrate.toml` and its environments, as the CLI reads them
//! (flags become [`Overrides`], the process environment is [`ProcessEnv`]):
//!
//! ```no_run
//! # async fn demo() -> Result<(), chatmigrate::Error> {
//! use chatmigrate::{Config, Migrator, Overrides, ProcessEnv, State};
//!
//! let overrides = Overrides { env: Some("prod".into()), ..Overrides::default() };
//! let migrator = Migrator::new(Config::load(&overrides, &ProcessEnv)?);
//! for entry in migrator.status().await? {
//!     if entry.state != State::Applied {
//!         println!("V{} {}: {}", entry.version, entry.name, entry.state.as_str());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The API: [`Migrator`] (what runs), [`Config`] and [`Overrides`] (where it
//! runs), [`EmbeddedSet`], [`CHAT_SCHEMA`] and [`embed_migrations!`] (which
//! migrations), [`UpReport`] / [`Applied`] and [`Entry`] / [`State`] (what
//! happened), [`Error`] (what failed: `Display` is one line, [`Error::hint`]
//! the next step, [`Error::kind`] and [`Error::exit_code`] what the CLI
//! prints and exits with), and [`Migration`], one file as read. Everything
//! else is private to the crate; docs/architecture.md describes it.

mod backend;
mod capabilities;
mod classify;
mod cli;
mod cmd;
mod config;
mod database;
mod dialect;
mod embedded;
mod error;
mod findings;
mod history;
#[cfg(test)]
mod layers;
mod lint;
mod location;
mod migration;
mod placeholders;
mod plan;
mod render;
mod retry;
mod runner;
mod schema;
mod settings;
mod shipped_checksums;
mod sql;
mod undo;
mod value;
mod vector_index;

use std::path::PathBuf;

pub use config::{Config, Env, Overrides, ProcessEnv};
pub use embedded::{EmbeddedSet, CHAT_SCHEMA};
pub use error::{DbError, Error, ExistingObject, Location, Result};
use migration::Source;
pub use migration::{Directives, Ignore, Migration, NameProblem, PathProblem, TxMode};
pub use plan::{Entry, Kind, State, UndoProgress};
pub use runner::{Applied, BuildProgress, DownReport, Locker, NodeBuilds, Undone, UpReport, DEADLINE};

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
    on_progress: Option<OnProgress>,
}

/// The callback of [`Migrator::on_progress`].
#[derive(Clone)]
struct OnProgress(std::sync::Arc<dyn Fn(&BuildProgress) + Send + Sync>);

impl std::fmt::Debug for OnProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnProgress(..)")
    }
}

impl Migrator {
    /// A migrator for a resolved [`Config`].
    pub fn new(config: Config) -> Migrator {
        Migrator {
            config,
            target: None,
            stop_before: None,
            on_progress: None,
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
    /// [`DEADLINE`]; the next `up` goes on from there.
    pub fn stop_before(mut self, at: std::time::Instant) -> Migrator {
        self.stop_before = Some(at);
        self
    }

    /// Calls `f` with each reading of a long index build's progress during
    /// [`Migrator::up`]: once a build has run about two seconds, about once
    /// a second (the phase, the session a CONCURRENTLY build waits for,
    /// blocks or tuples done of total, elapsed and estimated time left),
    /// then once with [`BuildProgress::ended`] set. The readings come from
    /// a second, short-lived connection (docs/vector-indexes.md).
    pub fn on_progress(mut self, f: impl Fn(&BuildProgress) + Send + Sync + 'static) -> Migrator {
        self.on_progress = Some(OnProgress(std::sync::Arc::new(f)));
        self
    }

    /// The configuration this migrator runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reverts applied migrations with their undo files
    /// (`V{n}__{name}.undo.sql`, docs/migrations.md): every one above
    /// [`Migrator::target`] when it is set, else the last applied one.
    pub async fn down(&self) -> Result<DownReport> {
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
        let on_progress = self.on_progress.clone();
        runner::up(&self.config, &opts, &mut |ev| {
            if let (Some(f), runner::Event::IndexProgress(p)) = (&on_progress, ev) {
                (f.0)(p);
            }
        })
        .await
    }

    /// Every version with its state (applied, pending, changed, ...).
    pub async fn status(&self) -> Result<Vec<Entry>> {
        let st = runner::load_state(&self.config).await?;
        let mut entries = plan::status(&st.local, &st.applied);
        plan::mark_undoing(&mut entries, &st.undoing);
        Ok(entries)
    }
}

/// Not part of the API: what the `chatmigrate` binary (`src/main.rs`, a
/// crate of its own), the integration tests and the examples reach inside
/// the library. No stability promise; may change in any release.
#[doc(hidden)]
pub mod __private {
    pub mod cli {
        pub use crate::cli::{command, Cli};
    }
    pub mod cmd {
        pub use crate::cmd::{run, style};
    }
    pub mod config {
        pub use crate::config::HistoryTable;
    }
    pub mod dialect {
        pub use crate::dialect::{history_values, ToolSql, Value};
    }
    pub mod error {
        pub use crate::error::{internal, note_panic_location, panic_message};
    }
    pub mod history {
        pub use crate::history::{Row, Status};
    }
    pub mod lint {
        pub use crate::lint::RULES;
    }
    pub mod migration {
        pub use crate::migration::{checksum, embedded_files, short_checksum, SplitMigration};

        /// The citus backend's own migrations, as (file name, bytes).
        pub fn embedded_citus_files() -> Vec<(&'static str, &'static [u8])> {
            crate::backend::citus::EXTRA_MIGRATIONS
                .iter()
                .flat_map(|set| (set.files)())
                .collect()
        }

        /// [`crate::Migration`] split into its statements.
        pub fn split(m: &crate::migration::Migration) -> crate::error::Result<SplitMigration> {
            m.split()
        }
    }
    pub mod render {
        pub use crate::render::{error, error_json, note, outcome, Outcome, Stdout, Style, UpOutcome};
    }
    pub mod runner {
        pub use crate::runner::{dry_run_offline, UpOptions};
    }
    pub mod vector_index {
        pub use crate::vector_index::memory;
    }
}
