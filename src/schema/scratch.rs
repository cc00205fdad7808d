//! The expected schema: the migrations applied to a scratch database, then
//! read back as a [`Model`].
//!
//! By default the scratch database is a temporary one on the target's
//! server: `CREATE DATABASE chatmigrate_scratch_<pid>_<random>` through the
//! maintenance database (the way `up --create-database` creates one),
//! dropped afterwards on every path, also when a migration fails or the run
//! is interrupted (SIGINT, SIGTERM). Through the Data API it is created and
//! used through the Data API; on Citus it is made on the coordinator, with
//! the citus extension and the coordinator as its only node (with shards),
//! so `create_distributed_table` works there as on the cluster. With
//! `--dev-url` / `dev_url`, the migrations go to that database instead: it
//! must be empty, and it is emptied again afterwards.
//!
//! The migrations are applied the way `up` sends them (each transactional
//! file in one transaction with the backend's prelude, the others statement
//! by statement), without the gate: the database is empty.

use std::time::Duration;

use super::introspect::{self, Cost};
use super::model::Model;
use crate::backend::{self, Backend, ExecError, Purpose};
use crate::config::{self, BackendKind, Config};
use crate::dialect::quote;
use crate::error::{Error, Result};
use crate::history::{Row, Status};
use crate::migration::{SplitMigration, TxMode};

/// Where the scratch database is.
#[derive(Debug, Clone)]
enum Place {
    /// Created for this run on the target's server; dropped afterwards.
    Temporary(String),
    /// The user's dev database (`dev_url`); emptied afterwards.
    Dev,
}

/// The expected schema, and what it cost to get it.
#[derive(Debug, Clone)]
pub struct Expected {
    pub model: Model,
    /// The scratch database, as shown in messages (no secrets).
    pub scratch: String,
    pub queries: usize,
    /// How long creating, applying, reading and dropping took.
    pub elapsed: Duration,
}

/// The quoted, qualified names of chatmigrate's own tables (left out of
/// every model).
pub fn own_tables(cfg: &Config) -> Vec<String> {
    let q = |t: String| match &cfg.history.schema {
        Some(s) => format!("{}.{}", quote(s), quote(&t)),
        None => quote(&t),
    };
    let t = &cfg.history.table;
    vec![
        q(t.clone()),
        q(format!("{t}_log")),
        q(format!("{t}_lease")),
        q(format!("{t}_repeatable")),
    ]
}

/// A name for a temporary database: lower case, under 63 bytes, unique.
fn temporary_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "chatmigrate_scratch_{}_{:08x}",
        std::process::id(),
        nanos ^ crate::retry::jitter(Duration::from_millis(1 << 20)).as_micros() as u32
    )
}

/// The configuration that reaches the scratch database.
fn scratch_config(cfg: &Config, place: &Place) -> Result<Config> {
    let mut s = cfg.clone();
    s.create_database = false;
    match place {
        Place::Temporary(name) => {
            s.pg.dbname = name.clone();
        }
        Place::Dev => {
            let url = cfg.dev_url.as_ref().map(|u| u.expose().to_string()).unwrap_or_default();
            let mut target = s.pg.clone();
            config::apply_url(&mut target, &url)?;
            if cfg.backend == BackendKind::RdsData {
                // Same cluster, same secret: only the database differs.
                s.pg.dbname = target.dbname;
            } else {
                s.pg = target;
            }
        }
    }
    Ok(s)
}

/// The migrations `set` applied to a scratch database, read back. `live`
/// is a connection to the target (Citus: where the coordinator's own
/// address is read from).
pub async fn expected(cfg: &Config, set: &[SplitMigration], live_coordinator: Option<(String, u16)>) -> Result<Expected> {
    let started = std::time::Instant::now();
    let place = if cfg.dev_url.is_some() {
        Place::Dev
    } else {
        Place::Temporary(temporary_name())
    };
    let scfg = scratch_config(cfg, &place)?;
    let shown = scfg.target_display();
    if let Place::Temporary(name) = &place {
        create(cfg, name).await?;
    }
    // From here on the database exists: whatever happens, it goes again.
    let work = async {
        if let (Place::Temporary(_), BackendKind::Citus) = (&place, cfg.backend) {
            make_citus_node(&scfg, live_coordinator.clone()).await?;
        }
        let mut b = backend::connect(&scfg, Purpose::WRITE).await.map_err(|e| Error::Schema {
            kind: "connect",
            message: format!("cannot connect to the scratch database {shown}: {e}"),
            hint: e.hint().unwrap_or_else(|| "check dev_url / --dev-url".into()),
        })?;
        let r = async {
            let skip = own_tables(&scfg);
            if let Place::Dev = place {
                let (before, _) = introspect::read(&mut *b, &skip).await?;
                if let Some(what) = not_empty(&before, cfg.backend) {
                    return Err(Error::Schema {
                        kind: "config",
                        message: format!("the dev database {shown} is not empty: it has {what}"),
                        hint: "point dev_url / --dev-url at an empty database that serves nothing else: chatmigrate applies the migrations there and empties it afterwards".into(),
                    });
                }
            }
            apply(&mut *b, &scfg, set, &shown).await?;
            let (model, cost) = introspect::read(&mut *b, &skip).await?;
            if let Place::Dev = place {
                empty(&mut *b, &model, &skip).await?;
            }
            Ok::<(Model, Cost), Error>((model, cost))
        }
        .await;
        b.close().await;
        r
    };
    let result = interruptible(work).await;
    if let Place::Temporary(name) = &place {
        let dropped = drop_database(cfg, name).await;
        if let (Ok(_), Err(e)) = (&result, dropped) {
            return Err(e);
        }
    }
    let (model, cost) = result?;
    Ok(Expected {
        model,
        scratch: shown,
        queries: cost.queries,
        elapsed: started.elapsed(),
    })
}

/// Runs `work` unless SIGINT or SIGTERM comes first (then the scratch
/// database is still dropped by the caller).
async fn interruptible<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return work.await;
        };
        tokio::select! {
            r = work => r,
            _ = int.recv() => Err(Error::Interrupted { signal: "SIGINT".into(), applied: 0, stopped: "the scratch database was dropped; nothing was recorded".into() }),
            _ = term.recv() => Err(Error::Interrupted { signal: "SIGTERM".into(), applied: 0, stopped: "the scratch database was dropped; nothing was recorded".into() }),
        }
    }
    #[cfg(not(unix))]
    {
        work.await
    }
}

/// The maintenance connection (on Citus a plain one: the database is made
/// on the coordinator alone).
async fn maintenance(cfg: &Config) -> Result<Box<dyn Backend>> {
    let mut m = cfg.clone();
    if m.backend == BackendKind::Citus {
        m.backend = BackendKind::Postgres;
    }
    backend::connect_maintenance(&m, Purpose::WRITE).await
}

async fn create(cfg: &Config, name: &str) -> Result<()> {
    let mut m = maintenance(cfg).await?;
    let r = async {
        if cfg.backend == BackendKind::Citus {
            // Only on the coordinator, whatever the server's default.
            let _ = m.execute("SET citus.enable_create_database_propagation = off").await;
        }
        m.execute(&format!("CREATE DATABASE {}", quote(name))).await.map_err(|e| match e {
            ExecError::Statement { error, .. } if error.code == "42501" || error.message.contains("permission denied") => Error::Schema {
                kind: "database",
                message: format!(
                    "cannot create the scratch database {name} on {}: {} (the migrations are applied there to learn the schema they make)",
                    cfg.target_display(),
                    error.message
                ),
                hint: format!(
                    "give the role the privilege (ALTER ROLE {} CREATEDB), or name an empty database for it with --dev-url or dev_url (docs/adopt.md)",
                    crate::lint::ast::ident(&cfg.pg.user)
                ),
            },
            other => other.into_error(&format!("creating the scratch database {name}")),
        })
    }
    .await;
    m.close().await;
    r
}

async fn drop_database(cfg: &Config, name: &str) -> Result<()> {
    let mut m = maintenance(cfg).await?;
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(name));
    let mut r = m.execute(&sql).await;
    if r.is_err() {
        // An older server without WITH (FORCE); the scratch connections are closed.
        r = m.execute(&format!("DROP DATABASE IF EXISTS {}", quote(name))).await;
    }
    m.close().await;
    r.map_err(|e| {
        let e = e.into_error(&format!("dropping the scratch database {name}"));
        Error::Schema {
            kind: "database",
            message: e.to_string(),
            hint: format!("drop it by hand: DROP DATABASE {} WITH (FORCE)", quote(name)),
        }
    })
}

/// Citus: the new database gets the extension and the coordinator as its
/// only node, with shards (a one-node Citus, for `create_distributed_table`).
async fn make_citus_node(scfg: &Config, coordinator: Option<(String, u16)>) -> Result<()> {
    let mut plain = scfg.clone();
    plain.backend = BackendKind::Postgres;
    let mut b = backend::connect(&plain, Purpose::WRITE).await?;
    let (host, port) = coordinator.unwrap_or_else(|| (scfg.pg.host.clone(), scfg.pg.port));
    let host = crate::dialect::Value::Text(host).literal();
    let steps = [
        "CREATE EXTENSION IF NOT EXISTS citus".to_string(),
        format!("SELECT citus_set_coordinator_host({host}, {port})"),
        format!("SELECT citus_set_node_property({host}, {port}, 'shouldhaveshards', true)"),
    ];
    let mut r = Ok(());
    for s in &steps {
        if let Err(e) = b.execute(s).await {
            r = Err(e.into_error(&format!("setting up Citus in the scratch database ({s})")));
            break;
        }
    }
    b.close().await;
    r
}

/// What a dev database has that a fresh one does not.
fn not_empty(m: &Model, backend: BackendKind) -> Option<String> {
    let mut what: Vec<String> = Vec::new();
    what.extend(m.tables.keys().map(|t| format!("table {t}")));
    what.extend(m.views.keys().map(|t| format!("view {t}")));
    what.extend(m.sequences.keys().map(|t| format!("sequence {t}")));
    what.extend(m.types.keys().map(|t| format!("type {t}")));
    what.extend(m.functions.keys().map(|t| format!("function {t}")));
    what.extend(m.schemas.iter().filter(|s| *s != "public").map(|s| format!("schema {s}")));
    let base = |e: &str| e == "plpgsql" || (backend == BackendKind::Citus && (e == "citus" || e == "citus_columnar"));
    what.extend(m.extensions.keys().filter(|e| !base(e)).map(|e| format!("extension {e}")));
    if what.is_empty() {
        return None;
    }
    let n = what.len();
    what.truncate(5);
    Some(if n > 5 {
        format!("{}, ... ({n} objects)", what.join(", "))
    } else {
        what.join(", ")
    })
}

/// Empties a dev database again: what the migrations made, and
/// chatmigrate's own tables.
async fn empty(b: &mut dyn Backend, m: &Model, own: &[String]) -> Result<()> {
    let mut steps: Vec<String> = Vec::new();
    for s in m.schemas.iter().filter(|s| *s != "public") {
        steps.push(format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(s)));
    }
    let public = |k: &String| k.starts_with("public.");
    let list = |keys: Vec<&String>| {
        keys.iter()
            .map(|k| {
                k.split_once('.')
                    .map(|(s, n)| format!("{}.{}", quote(s), quote(n)))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let views: Vec<&String> = m
        .views
        .iter()
        .filter(|(k, v)| public(k) && !v.materialized)
        .map(|(k, _)| k)
        .collect();
    if !views.is_empty() {
        steps.push(format!("DROP VIEW IF EXISTS {} CASCADE", list(views)));
    }
    let mviews: Vec<&String> = m
        .views
        .iter()
        .filter(|(k, v)| public(k) && v.materialized)
        .map(|(k, _)| k)
        .collect();
    if !mviews.is_empty() {
        steps.push(format!("DROP MATERIALIZED VIEW IF EXISTS {} CASCADE", list(mviews)));
    }
    let tables: Vec<&String> = m.tables.keys().filter(|k| public(k)).collect();
    if !tables.is_empty() {
        steps.push(format!("DROP TABLE IF EXISTS {} CASCADE", list(tables)));
    }
    let seqs: Vec<&String> = m.sequences.keys().filter(|k| public(k)).collect();
    if !seqs.is_empty() {
        steps.push(format!("DROP SEQUENCE IF EXISTS {} CASCADE", list(seqs)));
    }
    for f in m.functions.values().filter(|f| f.schema == "public") {
        let what = if f.kind == "procedure" {
            "PROCEDURE"
        } else if f.kind == "aggregate" {
            "AGGREGATE"
        } else {
            "FUNCTION"
        };
        steps.push(format!(
            "DROP {what} IF EXISTS {}.{}({}) CASCADE",
            quote(&f.schema),
            quote(&f.name),
            f.args
        ));
    }
    for t in m.types.keys().filter(|k| public(k)) {
        steps.push(format!("DROP TYPE IF EXISTS {} CASCADE", list(vec![t])));
    }
    for t in own {
        steps.push(format!("DROP TABLE IF EXISTS {t} CASCADE"));
    }
    for e in m
        .extensions
        .keys()
        .filter(|e| !matches!(e.as_str(), "plpgsql" | "citus" | "citus_columnar"))
    {
        steps.push(format!("DROP EXTENSION IF EXISTS {} CASCADE", quote(e)));
    }
    for s in steps {
        b.execute(&s).await.map_err(|e| {
            let e = e.into_error("emptying the dev database");
            Error::Schema {
                kind: "database",
                message: e.to_string(),
                hint: "empty the dev database by hand before the next `adopt` or `diff`".into(),
            }
        })?;
    }
    Ok(())
}

/// Applies `set` in order, the way `up` sends each file.
async fn apply(b: &mut dyn Backend, scfg: &Config, set: &[SplitMigration], shown: &str) -> Result<()> {
    b.lock(scfg.lock_wait).await?;
    let r = async {
        b.ensure_history().await?;
        for m in set {
            apply_one(b, scfg, m, shown).await?;
        }
        Ok::<(), Error>(())
    }
    .await;
    let unlocked = b.unlock().await;
    r?;
    unlocked
}

async fn apply_one(b: &mut dyn Backend, scfg: &Config, m: &SplitMigration, shown: &str) -> Result<()> {
    let failed = |i: usize, error: crate::error::DbError| Error::Schema {
        kind: "database",
        message: format!(
            "{}: V{} does not apply to an empty database (the scratch database {shown}): {error}",
            m.location(i, error.offset.unwrap_or(0)),
            m.version
        ),
        hint: "fix the migration: on an empty database it fails the same way (chatmigrate up shows it too)".into(),
    };
    let caps = b.capabilities();
    match m.tx_mode() {
        TxMode::Transaction => {
            let prelude = backend::transaction_prelude(scfg, m);
            let mut sent = Vec::with_capacity(m.statements.len());
            for s in &m.statements {
                sent.push(b.adapt(s, true).await?.sql.unwrap_or_else(|| s.sql.clone()));
            }
            let statements: Vec<&str> = sent.iter().map(String::as_str).collect();
            let row = Row::new(m, b.name(), Status::Applied, m.statements.len(), false);
            match b.run_transaction(&prelude, &statements, &row).await {
                Ok(_) => Ok(()),
                Err(ExecError::Statement { index, error }) => Err(failed(index, error)),
                Err(e) => Err(e.into_error(&format!("{} on the scratch database", m.path))),
            }
        }
        TxMode::NoTransaction => {
            for (i, s) in m.statements.iter().enumerate() {
                let session_setting = matches!(&s.node, Some(pg_query::NodeEnum::VariableSetStmt(v)) if !v.is_local);
                if session_setting && !caps.session_state {
                    continue;
                }
                let sql = b.adapt(s, false).await?.sql.unwrap_or_else(|| s.sql.clone());
                match b.execute(&sql).await {
                    Ok(()) => {}
                    Err(ExecError::Statement { error, .. }) => return Err(failed(i, error)),
                    Err(e) => return Err(e.into_error(&format!("{} statement {} on the scratch database", m.path, i + 1))),
                }
            }
            Ok(())
        }
    }
}
