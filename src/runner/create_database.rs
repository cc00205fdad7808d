//! `--create-database`: when the target database is missing, create it
//! through the maintenance database, then connect to it. Concurrent runners
//! are expected: one creates it; the others find it there (42P04, or 23505
//! when they lose the race on `pg_database`'s unique index) and go on, and
//! "source database is being accessed by other users" (55006, another runner
//! copies `template1` right now) is retried. Only the runner that created
//! it says so.

use std::time::Duration;

use crate::backend::{Backend, ExecError, Purpose};
use crate::classify;
use crate::config::Config;
use crate::dialect::quote;
use crate::error::{Error, Result};
use crate::migration::TxMode;
use crate::retry;

use super::{DryStep, Event, Line, Outside};

/// How many times "template busy" (55006) is tried again.
const TEMPLATE_BUSY_TRIES: u32 = 50;

/// The statement that creates database `name` (also what dry-run shows).
pub(crate) fn statement(name: &str) -> String {
    format!("CREATE DATABASE {}", quote(name))
}

/// What `up --dry-run --create-database` shows for a database that does
/// not exist yet, sent through the maintenance database.
pub(crate) fn dry_step(cfg: &Config) -> DryStep {
    DryStep {
        version: 0,
        kind: crate::plan::Kind::Versioned,
        name: "create database".into(),
        transaction: TxMode::NoTransaction,
        lines: vec![Line::Sent(statement(&cfg.pg.dbname))],
        notes: Vec::new(),
    }
}

/// Connects to the configured database (`first` is the first attempt's
/// result); with `create_database`, creates it first when it does not
/// exist. Returns `None` when the database is missing and `dry_run`
/// forbids creating it, and whether this runner created the database.
pub(crate) async fn connect_target(
    outside: &dyn Outside,
    cfg: &Config,
    first: Result<Box<dyn Backend>>,
    purpose: Purpose,
    dry_run: bool,
    events: &mut dyn FnMut(&Event),
) -> Result<(Option<Box<dyn Backend>>, bool)> {
    match first {
        Ok(b) => Ok((Some(b), false)),
        Err(Error::DatabaseMissing { .. }) if cfg.create_database => {
            let name = cfg.pg.dbname.clone();
            // The backend may refuse a database made this way (Citus: it
            // would have no citus extension and no nodes); a dry run asks too.
            // The server answered (the database is missing): a reconnect.
            let mut m = outside.maintenance(cfg, purpose.again()).await?;
            if let Err(e) = m.check_create_database(&name).await {
                m.close().await;
                return Err(e);
            }
            if dry_run {
                m.close().await;
                return Ok((None, true));
            }
            let r = create_on(&mut *m, &name).await;
            m.close().await;
            let created = r?;
            if created {
                events(&Event::CreatedDatabase { name: name.clone() });
            }
            Ok((Some(outside.connect(cfg, purpose.again()).await?), created))
        }
        Err(e) => Err(e),
    }
}

/// Creates database `name` on the maintenance connection `m`: whether this
/// runner created it (true) or found it created by another runner (false).
/// Also what `chatmigrate database create` runs.
pub(crate) async fn create_on(m: &mut dyn Backend, name: &str) -> Result<bool> {
    for attempt in 0.. {
        if m.database_exists(name).await? {
            return Ok(false);
        }
        match m.execute(&statement(name)).await {
            Ok(()) => return Ok(true),
            Err(ExecError::Statement { error, .. })
                if classify::duplicate_database(&error.code) || classify::unique_violation(&error.code) =>
            {
                return Ok(false)
            }
            Err(ExecError::Statement { error, .. }) if classify::object_in_use(&error.code) && attempt < TEMPLATE_BUSY_TRIES => {
                tokio::time::sleep(Duration::from_millis(50) + retry::jitter(Duration::from_millis(150))).await;
            }
            Err(e) => return Err(e.into_error("CREATE DATABASE")),
        }
    }
    Ok(false)
}
