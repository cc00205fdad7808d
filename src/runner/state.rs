//! What the commands that do not run migrations read and write: the local
//! files and the history for `status`, `verify` and `lint --pending`
//! ([`load_state`], [`read_state`]: no lock, nothing written), and
//! bookkeeping under the migration lock for `baseline` and `repair`
//! ([`with_lock`]).

use crate::backend::{self, Backend, Purpose};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::history::Row;
use crate::migration::Migration;

/// What `status` and `verify` look at: the local files and the history.
pub struct Snapshot {
    pub local: Vec<Migration>,
    pub applied: Vec<Row>,
    pub database_missing: bool,
    pub target: String,
    /// What the server is (Citus: release and workers), from the backend.
    pub facts: Vec<(String, String)>,
}

/// Loads the files (on a thread) while reading the history: no lock,
/// nothing written. A bad file wins over a connection error.
pub async fn load_state(cfg: &Config) -> Result<Snapshot> {
    let loader = crate::placeholders::spawn_load(cfg);
    let history = read_state(cfg).await;
    let local = loader
        .join()
        .unwrap_or_else(|panic| Err(crate::error::internal(Some("reading the migration files".into()), panic.as_ref())))?;
    let (applied, database_missing, target, facts) = history?;
    Ok(Snapshot {
        local,
        applied,
        database_missing,
        target,
        facts,
    })
}

/// Reads history for `status`/`verify`: no lock, nothing written. A missing
/// database reads as "nothing applied" and is reported as such. Also
/// returns the target and the backend's facts about the server.
pub async fn read_state(cfg: &Config) -> Result<(Vec<Row>, bool, String, Vec<(String, String)>)> {
    match backend::connect(cfg, Purpose::READ).await {
        Ok(mut b) => {
            let r = b.read_history().await;
            let checked = b.check_cluster().await;
            let target = b.target();
            let facts = b.facts();
            b.close().await;
            checked?;
            Ok((r?, false, target, facts))
        }
        Err(Error::DatabaseMissing { .. }) => Ok((Vec::new(), true, cfg.target_display(), Vec::new())),
        Err(e) => Err(e),
    }
}

/// Runs `work` on a connected backend under the migration lock with the
/// history table in place (for baseline and repair), unlocking and closing
/// on every path.
pub async fn with_lock<T>(
    cfg: &Config,
    work: impl for<'a> FnOnce(&'a mut dyn Backend) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + 'a>>,
) -> Result<T> {
    let mut b = backend::connect(cfg, Purpose::WRITE).await?;
    let r = async {
        b.lock(cfg.lock_wait).await?;
        b.ensure_history().await?;
        work(&mut *b).await
    }
    .await;
    let unlocked = b.unlock().await;
    b.close().await;
    let v = r?;
    unlocked?;
    Ok(v)
}
