//! The gate before anything is sent: the pending files are split, objects
//! they would create that exist already refuse the run (a database built
//! by hand: `chatmigrate adopt`), and the error-level lint rules decide,
//! with the sizes of the run's tables read from the database (docs/lint.md).
//! A file that does not parse, an existing object or a finding stops the
//! run here, before the lock (or, after the lock, before the first
//! migration) and before anything is written.

use crate::backend::Backend;
use crate::config::Config;
use crate::error::Result;
use crate::lint;
use crate::migration::{self, Migration, SplitMigration};
use crate::plan::Plan;

/// The set split into statements for a run, in the order of `local`
/// (computed once per run, in `split`): the files about to run must split
/// (the first that does not is the error); the other files are split for
/// the rules' context (which tables exist, how Citus distributes them), and
/// one of those that does not parse only gives no context.
pub(crate) fn split<'a>(local: &[Migration], plan: &Plan, split: &'a mut Option<Vec<SplitMigration>>) -> Result<&'a [SplitMigration]> {
    let set = match split {
        Some(set) => {
            // Split before, for another plan: a file that did not parse
            // then and is to run now is the error, read again.
            for s in &plan.steps {
                if set[s.index].statements.is_empty() {
                    local[s.index].split()?;
                }
            }
            set
        }
        None => split.insert(migration::split_set(local, plan.steps.iter().map(|s| s.index))?),
    };
    Ok(set)
}

/// Applies the error-level lint rules to the files about to run
/// (docs/lint.md), the whole split set as their context. `live`: what the
/// database says about the run's tables (`None`: a database that does not
/// exist yet, where every table is new).
pub(crate) fn lint(cfg: &Config, set: &[SplitMigration], plan: &Plan, live: Option<lint::live::Live>) -> Result<()> {
    if plan.steps.is_empty() {
        return Ok(());
    }
    let pending: Vec<usize> = plan.steps.iter().map(|s| s.index).collect();
    let live = live.unwrap_or_else(|| lint::live::Live::empty(crate::schema::live::thresholds(cfg), pending.clone()));
    let opts = lint::Options {
        live: Some(std::sync::Arc::new(live)),
        ..crate::config::lint_options(cfg)
    };
    lint::gate(set, &pending, &opts)
}

/// What the gate read for a run, kept for the same run after the lock.
pub(crate) type GateCache = Option<(Vec<(usize, usize)>, lint::live::Live)>;

/// The gate on a connected database (issue 13), before anything is sent:
/// one catalog query for the run's tables and objects; objects that exist
/// already refuse the run (a hand-made database: `chatmigrate adopt`), then
/// the lint decides locking hazards from the tables' sizes. A database this
/// run created holds nothing (no query); the same run re-planned under the
/// lock reuses what was read before it. `defer`: the gate before the lock
/// of a run that goes on to take it. There, objects found existing while
/// the history table exists may have been made by another runner that
/// applied migrations since this one read the history (its first read may
/// even predate the table): the refusal, if any, is left to the gate under
/// the lock, which reads the history afresh. While the history table is
/// missing no runner has applied anything, and the refusal comes at once.
pub(crate) async fn gate(
    b: &mut dyn Backend,
    cfg: &Config,
    set: &[SplitMigration],
    plan: &Plan,
    created: bool,
    cache: &mut GateCache,
    defer: bool,
) -> Result<()> {
    if plan.steps.is_empty() {
        return Ok(());
    }
    let run: Vec<(usize, usize)> = plan.steps.iter().map(|s| (s.index, s.resume_from)).collect();
    let live = match cache.as_ref().filter(|(r, _)| *r == run) {
        _ if created => lint::live::Live::empty(crate::schema::live::thresholds(cfg), run.iter().map(|r| r.0).collect()),
        Some((_, live)) => live.clone(),
        None => {
            let read = crate::schema::live::read(b, cfg, set, &run).await?;
            if defer && read.history_exists && !read.existing.is_empty() {
                return Ok(());
            }
            crate::schema::live::refuse(&b.target(), read.existing)?;
            *cache = Some((run, read.live.clone()));
            read.live
        }
    };
    lint(cfg, set, plan, Some(live))
}
