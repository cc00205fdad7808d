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
    /// Applied migrations whose no-transaction undo stopped part way:
    /// (version, `N/M` or `N/M: error`) from the history log.
    pub undoing: Vec<(i64, String)>,
}

/// Loads the files (on a thread) while reading the history: no lock,
/// nothing written. A bad file wins over a connection error.
pub async fn load_state(cfg: &Config) -> Result<Snapshot> {
    let loader = crate::placeholders::spawn_load(cfg);
    let history = read_state(cfg).await;
    let local = loader
        .join()
        .unwrap_or_else(|panic| Err(crate::error::internal(Some("reading the migration files".into()), panic.as_ref())))?;
    let (applied, database_missing, target, facts, undoing) = history?;
    Ok(Snapshot {
        local,
        applied,
        database_missing,
        target,
        facts,
        undoing,
    })
}

/// Reads history for `status`/`verify`: no lock, nothing written. A missing
/// database reads as "nothing applied" and is reported as such. Also
/// returns the target and the backend's facts about the server, and the
/// undos that stopped part way (read only when a row is applied: the
/// history log is created with the history table).
#[allow(clippy::type_complexity)]
pub async fn read_state(cfg: &Config) -> Result<(Vec<Row>, bool, String, Vec<(String, String)>, Vec<(i64, String)>)> {
    match backend::connect(cfg, Purpose::READ).await {
        Ok(mut b) => {
            let r = b.read_history().await;
            let undoing = match &r {
                Ok(rows) if rows.iter().any(|r| !r.is_repeatable()) => undoing(&mut *b, cfg).await,
                _ => Ok(Vec::new()),
            };
            let checked = b.check_cluster().await;
            let target = b.target();
            let facts = b.facts();
            b.close().await;
            checked?;
            Ok((r?, false, target, facts, undoing?))
        }
        Err(Error::DatabaseMissing { .. }) => Ok((Vec::new(), true, cfg.target_display(), Vec::new(), Vec::new())),
        Err(e) => Err(e),
    }
}

/// The undos that stopped part way (`undo_progress_all.sql`).
async fn undoing(b: &mut dyn Backend, cfg: &Config) -> Result<Vec<(i64, String)>> {
    let sql = crate::dialect::ToolSql::new(&cfg.history, &cfg.pg.dbname).undo_progress_all();
    Ok(b.query(&sql)
        .await?
        .into_iter()
        .filter_map(|r| {
            let mut cells = r.into_iter();
            let version = cells.next().flatten()?.parse().ok()?;
            Some((version, cells.next().flatten().unwrap_or_default()))
        })
        .collect())
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
