//! `chatmigrate database create|drop|reset`: creating and dropping the
//! target database through the maintenance database (`maintenance_db`), for
//! development environments only ([`crate::config::DevMark`], checked by
//! [`check_dev`]). Creating is the runner's own (`up --create-database`,
//! with its race between runners); the backend may refuse first (Citus: a
//! database made or dropped on one node is not a Citus database), before
//! anything is sent.

use crate::backend::{self, Purpose};
use crate::config::{Config, DevMark};
use crate::dialect::quote;
use crate::error::{Error, Result};

/// Creates the configured database unless it exists (`chatmigrate
/// database create`). Returns whether this call created it: of several
/// runners started at once, one creates it and the others find it created.
pub async fn create(cfg: &Config, purpose: Purpose) -> Result<bool> {
    let name = cfg.pg.dbname.clone();
    let mut m = backend::connect_maintenance(cfg, purpose).await?;
    let r = async {
        // The backend may refuse a database made this way (Citus: it would
        // have no citus extension and no nodes).
        m.check_create_database(&name).await?;
        crate::runner::create_on(&mut *m, &name).await
    }
    .await;
    m.close().await;
    r
}

/// Drops the configured database, closing the sessions connected to it
/// (`WITH (FORCE)`). Returns whether it existed.
pub async fn drop(cfg: &Config, action: &'static str) -> Result<bool> {
    let name = cfg.pg.dbname.clone();
    if name == cfg.maintenance_db {
        return Err(Error::DropMaintenanceDb { action, name });
    }
    let mut m = backend::connect_maintenance(cfg, Purpose::WRITE).await?;
    let r = async {
        m.check_drop_database(&name).await?;
        if !m.database_exists(&name).await? {
            return Ok(false);
        }
        m.execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&name)))
            .await
            .map_err(|e| e.into_error("DROP DATABASE"))?;
        Ok(true)
    }
    .await;
    m.close().await;
    r
}

/// Whether `database <action>` may act on the target: only on the database
/// of an environment marked `dev = true`, and never on one a URL names.
pub fn check_dev(cfg: &Config, action: &'static str) -> Result<()> {
    let (why, hint) = match &cfg.dev {
        DevMark::Yes => return Ok(()),
        DevMark::NoEnvironment => (
            "no environment is chosen (--env, CHATMIGRATE_ENV or default_env), so none is marked as a development one".to_string(),
            "choose an environment marked `dev = true` in chatmigrate.toml: `chatmigrate --env NAME database ...`".to_string(),
        ),
        DevMark::NotMarked { env } => (
            format!("environment `{env}` is not marked as a development environment (dev = true)"),
            format!(
                "`database create|drop|reset` act only on a development database: add `dev = true` to [environments.{env}] if it is one; `chatmigrate up --create-database` creates any database"
            ),
        ),
        DevMark::Replaced { env, by } => (
            format!("{by} names the database, not development environment `{env}`"),
            match *by {
                "--database-url" => format!("leave out --database-url to act on the database of environment `{env}`"),
                _ => format!("unset {by} to act on the database of environment `{env}`"),
            },
        ),
    };
    let target = cfg.target_display();
    let server = target.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(target);
    Err(Error::NotDevDatabase {
        action,
        name: cfg.pg.dbname.clone(),
        target: server,
        why,
        hint,
    })
}
