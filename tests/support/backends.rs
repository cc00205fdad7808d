//! The backends the contract story (`tests/integration/contract.rs`) runs
//! against, one implementation of [`Backend`] each, as atuin runs one story
//! against every database:
//! - [`Postgres`]: a direct connection to the test PostgreSQL;
//! - [`DataApi`]: the Data API test server (any of its [`Options`]
//!   variants), running the SQL on the test PostgreSQL;
//! - [`Citus`]: the live coordinator of `CHATMIGRATE_TEST_CITUS_URL`.
//!
//! A backend hands the story a [`Target`]: the `[environments.story]` keys
//! that reach a database through it, how chatmigrate names that database, a
//! direct URL for the test's own checks, and what keeps it alive. Each run
//! of the story works in a schema of its own (`ns`), which also holds the
//! history table: on PostgreSQL and the Data API in a new database, which
//! the first `up` creates (`--create-database`); on the shared Citus
//! coordinator, where a database cannot be created, in its existing
//! database, out of the way of the other live tests.

use std::any::Any;

use super::cli::AWS_ENV;
use super::dataapi::{DataApiServer, Options};
use super::db::{query_url, server_url, try_query_url, Db};

/// Where one run of the story migrates.
pub struct Target {
    /// The `[environments.story]` keys that reach the database (backend,
    /// address), without `history_schema`.
    pub environment: String,
    /// The database's name.
    pub database: String,
    /// The database as chatmigrate prints it (`postgres@127.0.0.1:5432/db`,
    /// `rds-data:chat/db`).
    pub shown: String,
    /// A direct URL of the database, for the test's own checks.
    pub url: String,
    /// The database does not exist yet: the first `up` creates it with
    /// `--create-database`.
    pub create: bool,
    /// Environment variables the binary needs (AWS credentials).
    pub env: &'static [(&'static str, &'static str)],
    /// The prefixes of the lines `status` prints about the server before
    /// its table (Citus: its release and its workers), in order.
    pub server_lines: &'static [&'static str],
    /// Keeps the database and the peers alive for the story; dropping it
    /// removes what the story made.
    _keep: Box<dyn Any>,
}

/// A backend the contract story runs against.
pub trait Backend {
    /// The backend's name in messages: "postgres", "rds-data", "citus".
    fn name(&self) -> &'static str;

    /// A new target for one run of the story, which will work in schema
    /// `ns`; `None`, after printing why, when the backend is not available
    /// here.
    fn target(&self, ns: &str) -> Option<Target>;
}

/// A direct connection to the test PostgreSQL.
pub struct Postgres;

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn target(&self, _ns: &str) -> Option<Target> {
        let db = Db::adopt(&Db::fresh_name());
        Some(Target {
            environment: format!("url = \"{}\"\n", db.url),
            database: db.name.clone(),
            shown: format!("postgres@127.0.0.1:{}/{}", super::db::port(), db.name),
            url: db.url.clone(),
            create: true,
            env: &[],
            server_lines: &[],
            _keep: Box::new(db),
        })
    }
}

/// The Data API test server with these options, in front of the test PostgreSQL.
pub struct DataApi(pub Options);

impl Backend for DataApi {
    fn name(&self) -> &'static str {
        "rds-data"
    }

    fn target(&self, _ns: &str) -> Option<Target> {
        let db = Db::adopt(&Db::fresh_name());
        let server = DataApiServer::start(&server_url(), self.0.clone());
        Some(Target {
            environment: server.environment(&db.name),
            database: db.name.clone(),
            shown: format!("rds-data:chat/{}", db.name),
            url: db.url.clone(),
            create: true,
            env: &AWS_ENV,
            server_lines: &[],
            // The server first: it closes its sessions before the database goes.
            _keep: Box::new((server, db)),
        })
    }
}

/// The live Citus coordinator of `CHATMIGRATE_TEST_CITUS_URL`.
pub struct Citus;

/// The story's schema on the shared coordinator, dropped with the value.
struct Schema {
    url: String,
    ns: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        if std::thread::panicking() && super::db::keep_failed() {
            eprintln!(
                "{}: kept schema {} on {}",
                super::db::KEEP_ENV,
                self.ns,
                super::citus::target(&self.url)
            );
            return;
        }
        if let Err(e) = try_query_url(&self.url, &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.ns)) {
            eprintln!("could not drop the story's schema {} on Citus: {e}", self.ns);
        }
    }
}

impl Backend for Citus {
    fn name(&self) -> &'static str {
        "citus"
    }

    fn target(&self, ns: &str) -> Option<Target> {
        let url = super::citus::url_or_skip("contract::story_on_citus")?;
        let shown = super::citus::target(&url);
        let database = shown.rsplit_once('/').unwrap().1.to_string();
        // Schemas of story runs whose test process died before dropping them.
        for old in query_url(&url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cmt\\_story\\_%'") {
            let old = old[0].clone().unwrap_or_default();
            let pid = old.split('_').nth(2).and_then(|p| p.parse().ok());
            if pid.is_some_and(|p| !super::db::process_runs(p)) {
                let _ = try_query_url(&url, &format!("DROP SCHEMA IF EXISTS {old} CASCADE"));
            }
        }
        Some(Target {
            environment: format!("backend = \"citus\"\nurl = \"{url}\"\n"),
            database,
            shown,
            url: url.clone(),
            create: false,
            env: &[],
            server_lines: &["citus: ", "workers: "],
            _keep: Box::new(Schema { url, ns: ns.to_string() }),
        })
    }
}
