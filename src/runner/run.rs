//! The run loop of `up`: connect (creating the database when asked), read
//! the history and plan without the lock (nothing pending: done), lint the
//! pending files, lock, re-read and re-plan, then each pending migration's
//! script, built and walked; unlock and close on every path, and after a
//! lost connection reconnect and go on from what the history says.

use std::time::Instant;

use async_trait::async_trait;

use crate::backend::{self, Backend, Purpose};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::history::{Row, Status};
use crate::migration::{Migration, SplitMigration, TxMode};
use crate::plan;

use super::gate::{self, gate};
use super::lost::{settle_lost, InFlight};
use super::signals::{self, or_signal, Signals};
use super::walk::{walk, Walked};
use super::{create_database, progress, script, Applied, Event, ShortOfTarget, UpReport};

/// What `up` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub target: Option<i64>,
    pub dry_run: bool,
    /// Catch SIGINT/SIGTERM: roll back the transactional migration in
    /// flight, or finish the current statement of a non-transactional one,
    /// then stop. The CLI sets this; a library caller decides for itself.
    pub handle_signals: bool,
    /// Stop at this instant (a Lambda invocation's deadline minus a margin):
    /// no migration starts after it; a transactional one in flight is
    /// cancelled and rolled back; a statement of a no-transaction one is
    /// left running on the server where it outlives its call (Data API: the
    /// next `up` waits for it, never sends it twice), else cancelled, with
    /// its progress recorded. `up` then fails with [`Error::Interrupted`]
    /// whose `signal` is [`super::DEADLINE`].
    pub stop_before: Option<Instant>,
}

/// What the run loop reaches outside the process: connections to the
/// database and the signals sent to the process. [`Live`] in production;
/// the unit tests' fake backend brings its own.
#[async_trait]
pub(crate) trait Outside: Sync {
    /// Connects to the configured database for `purpose`.
    async fn connect(&self, cfg: &Config, purpose: Purpose) -> Result<Box<dyn Backend>>;
    /// Connects to `maintenance_db`, to create the configured database.
    async fn maintenance(&self, cfg: &Config, purpose: Purpose) -> Result<Box<dyn Backend>>;
    /// SIGINT and SIGTERM as they arrive (when `handle`).
    fn signals(&self, handle: bool) -> Signals {
        signals::watch(handle)
    }
}

/// The configured backend, and the process's own signals.
pub(crate) struct Live;

#[async_trait]
impl Outside for Live {
    async fn connect(&self, cfg: &Config, purpose: Purpose) -> Result<Box<dyn Backend>> {
        backend::connect(cfg, purpose).await
    }

    async fn maintenance(&self, cfg: &Config, purpose: Purpose) -> Result<Box<dyn Backend>> {
        backend::connect_maintenance(cfg, purpose).await
    }
}

/// How many times one `up` reconnects after losing its connection mid-run.
const MAX_RECONNECTS: u32 = 3;

/// Applies pending migrations from `cfg.source`.
///
/// The files are read on a thread while the connection is set up and the
/// history read (a no-op run pays for the slower of the two, not their
/// sum); a bad file wins over a connection error, and a missing database is
/// only created once every file has been read without error.
pub async fn up(cfg: &Config, opts: &UpOptions, events: &mut dyn FnMut(&Event)) -> Result<UpReport> {
    up_with(&Live, cfg, opts, events).await
}

pub(crate) async fn up_with(outside: &dyn Outside, cfg: &Config, opts: &UpOptions, events: &mut dyn FnMut(&Event)) -> Result<UpReport> {
    let loader = crate::placeholders::spawn_load(cfg);
    // A dry run only reads: it works on a replica and on a read-only session.
    let purpose = if opts.dry_run { Purpose::READ } else { Purpose::WRITE };
    let mut first = outside.connect(cfg, purpose).await;
    // The fast path's one query, while the files are still being read.
    let early = match &mut first {
        Ok(b) => Some(b.read_history_for_plan().await),
        Err(_) => None,
    };
    let loaded = loader
        .join()
        .unwrap_or_else(|panic| Err(crate::error::internal(Some("reading the migration files".into()), panic.as_ref())));
    let local = match loaded {
        Ok(l) => l,
        Err(e) => {
            if let Ok(b) = first {
                b.close().await;
            }
            return Err(e);
        }
    };
    let local = &local[..];
    // The set split into statements, once per run (when something is pending).
    let mut split = None;
    // An adopt fix (`adopt --write-fix`) runs alone and is logged, not recorded.
    if super::fixrun::is_fix(local) {
        return super::fixrun::up(cfg, local, opts, events, first).await;
    }
    if matches!(first, Err(Error::DatabaseMissing { .. })) && cfg.create_database && !opts.dry_run {
        // Every file is pending in a new database: a syntax error or a lint
        // refusal stops here, before the database is created.
        let plan = plan::plan(local, &[], &plan_options(cfg, opts))?;
        gate::lint(cfg, gate::split(local, &plan, &mut split)?, &plan, None)?;
    }
    let (b, created) = create_database::connect_target(outside, cfg, first, purpose, opts.dry_run, events).await?;
    let mut report = UpReport {
        target: cfg.target_display(),
        created_database: created,
        ..UpReport::default()
    };
    let Some(mut b) = b else {
        // Dry run against a database that does not exist yet.
        report.dry_run.push(create_database::dry_step(cfg));
        report.dry_run.extend(script::dry_run_empty(cfg, local, opts).await?);
        return Ok(report);
    };
    let mut reconnects = 0;
    let mut in_flight = None;
    let mut history = early;
    loop {
        let result = up_on(
            outside,
            &mut *b,
            cfg,
            local,
            &mut split,
            opts,
            events,
            &mut report,
            &mut in_flight,
            history.take(),
        )
        .await;
        // Release the lock on every path, then close: an idle connection keeps
        // a serverless cluster awake.
        let unlocked = b.unlock().await;
        b.close().await;
        match result {
            // The connection (or the answer to a COMMIT) was lost: reconnect,
            // lock again and re-read the history, which tells whether the
            // migration in flight committed; anything not applied runs again
            // from its first statement (or, without a transaction, resumes
            // at its recorded statement).
            Err(Error::ConnectionLost { context, message }) if reconnects < MAX_RECONNECTS => {
                reconnects += 1;
                events(&Event::Reconnecting {
                    attempt: reconnects,
                    reason: format!("{context}: {message}"),
                });
                b = outside.connect(cfg, purpose.again()).await?;
            }
            result => {
                result?;
                // Losing the connection while unlocking releases the lock anyway.
                if let Err(e) = unlocked {
                    if !matches!(e, Error::ConnectionLost { .. }) {
                        return Err(e);
                    }
                }
                return Ok(report);
            }
        }
    }
}

pub(crate) fn plan_options(cfg: &Config, opts: &UpOptions) -> plan::PlanOptions {
    plan::PlanOptions {
        target: opts.target,
        allow_out_of_order: cfg.allow_out_of_order,
    }
}

/// One connection's part of the run: plan, lock, re-plan, then each pending
/// migration's script. `history`: read already, on the first connection,
/// while the files loaded. Returns `Error::ConnectionLost` for the loop in
/// [`up_with`] to reconnect.
#[allow(clippy::too_many_arguments)]
async fn up_on(
    outside: &dyn Outside,
    b: &mut dyn Backend,
    cfg: &Config,
    local: &[Migration],
    split: &mut Option<Vec<SplitMigration>>,
    opts: &UpOptions,
    events: &mut dyn FnMut(&Event),
    report: &mut UpReport,
    in_flight: &mut Option<InFlight>,
    history: Option<Result<Vec<Row>>>,
) -> Result<()> {
    report.target = b.target();
    events(&Event::Connected {
        target: b.target(),
        backend: b.name(),
        capabilities: b.capabilities(),
        facts: b.facts(),
    });
    let popts = plan_options(cfg, opts);
    // Fast path: one query, no lock, only the columns planning reads.
    // Nothing pending means nothing to do.
    let applied = match history {
        Some(h) => h?,
        None => b.read_history_for_plan().await?,
    };
    settle_lost(in_flight, &applied, events, report);
    let plan = plan::plan(local, &applied, &popts)?;
    if plan.steps.is_empty() {
        if let Some(target) = opts.target {
            let done: std::collections::HashSet<i64> = applied.iter().filter(|r| r.status == Status::Applied).map(|r| r.version).collect();
            report.short_of_target = Some(ShortOfTarget {
                target,
                highest_applied: done.iter().max().copied(),
                pending_above: local.iter().filter(|m| m.version > target && !done.contains(&m.version)).count(),
            });
        }
        return Ok(());
    }
    let mut cache = None;
    let set = gate::split(local, &plan, split)?;
    gate(b, cfg, set, &plan, report.created_database, &mut cache, !opts.dry_run).await?;
    if opts.dry_run {
        // The scripts as `up` would send them, the database as it is now.
        let (caps, name) = (b.capabilities(), b.name());
        report.dry_run = script::dry_run(Some(b), cfg, caps, name, set, &plan, &applied).await?;
        return Ok(());
    }

    // Signals are caught only from here on: a no-op run installs nothing.
    let mut sig = signals::with_deadline(outside.signals(opts.handle_signals), opts.stop_before);
    // A CONCURRENTLY build left at an earlier run's deadline holds the
    // lock (a session transport): wait for it with its progress. Only a
    // partial migration that builds concurrently can have left one.
    let partial = applied
        .iter()
        .find(|r| r.status == Status::Partial)
        .filter(|r| {
            local
                .iter()
                .any(|m| m.version == r.version && m.sql.to_ascii_uppercase().contains("CONCURRENTLY"))
        })
        .map(|r| (r.version, r.statements_done.max(0) as usize + 1));
    if partial.is_some() && b.capabilities().statements_die_with_connection {
        let left = progress::await_left_build(b, cfg, partial, events);
        or_signal(left, &mut sig, 0, "nothing was applied").await?;
    }
    or_signal(b.lock(cfg.lock_wait), &mut sig, 0, "nothing was applied").await?;
    b.ensure_history().await?;
    // Another runner may have applied some while we waited (or the lost
    // connection's session committed while it held the lock).
    let applied = b.read_history_for_plan().await?;
    settle_lost(in_flight, &applied, events, report);
    let plan = plan::plan(local, &applied, &popts)?;
    let set = gate::split(local, &plan, split)?;
    gate(b, cfg, set, &plan, report.created_database, &mut cache, false).await?;
    events(&Event::Planned {
        pending: plan
            .steps
            .iter()
            .map(|s| (local[s.index].version, local[s.index].name.clone()))
            .collect(),
    });

    let last = plan.steps.len().saturating_sub(1);
    for (i, step) in plan.steps.iter().enumerate() {
        let m = &set[step.index];
        let left = plan.steps.len() - i;
        // The deadline is checked here too: its task may not have run yet.
        let past_deadline = opts.stop_before.is_some_and(|at| Instant::now() >= at).then_some(signals::DEADLINE);
        if let Some(s) = past_deadline.or(*sig.borrow()) {
            return Err(Error::Interrupted {
                signal: s.into(),
                applied: report.applied.len(),
                stopped: format!("{left} pending migration(s) not started"),
            });
        }
        let applied_now = |duration_ms, answer_lost| Applied {
            version: m.version,
            kind: plan::Kind::of(m.version),
            name: m.name.clone(),
            transaction: m.tx_mode(),
            statements: m.statements.len(),
            resumed_from: step.resume_from,
            out_of_order: step.out_of_order,
            duration_ms,
            answer_lost,
        };
        let started = Instant::now();
        *in_flight = Some(InFlight {
            applied: applied_now(0, false),
            checksum: m.checksum.clone(),
            started,
        });
        events(&match (m.tx_mode(), step.resume_from) {
            (TxMode::NoTransaction, from) if from > 0 => Event::Resuming {
                version: m.version,
                name: m.name.clone(),
                from,
                total: m.statements.len(),
            },
            _ => Event::Applying {
                version: m.version,
                name: m.name.clone(),
            },
        });
        // A repeatable migration applies whole, again: never a resume.
        if m.is_repeatable() {
            // Its table, where missing (a set without R__ files never makes it).
            b.ensure_repeatables().await?;
        }
        let earlier = applied.iter().find(|r| r.version == m.version && !m.is_repeatable());
        let resumed = earlier.is_some();
        let plans = crate::vector_index::plan::read(b, cfg, m, step.resume_from).await?;
        let script = script::build(cfg, b.capabilities(), b.name(), m, step, i == last, resumed, &plans);
        // The time the history row holds once it is applied, which `status`
        // shows too: a no-transaction file's adds this run's statements to
        // the earlier runs'.
        let duration_ms = match walk(b, cfg, &script, events, &mut sig).await {
            Ok(Walked::Done { ms }) if m.tx_mode() == TxMode::NoTransaction => earlier.map_or(0, |r| r.execution_ms.max(0) as u64) + ms,
            Ok(Walked::Done { ms }) => ms,
            Ok(Walked::Stopped { done }) => {
                return Err(Error::Interrupted {
                    signal: sig.borrow().unwrap_or("SIGINT").into(),
                    applied: report.applied.len(),
                    stopped: format!(
                        "{} stopped after statement {done} of {} (recorded as partial; `up` resumes it); {} later migration(s) not started",
                        m.label(),
                        m.statements.len(),
                        left - 1
                    ),
                });
            }
            Err(Error::Interrupted { signal, .. }) if m.tx_mode() == TxMode::Transaction => {
                return Err(Error::Interrupted {
                    signal,
                    applied: report.applied.len(),
                    stopped: format!("{} was rolled back; {} later migration(s) not started", m.label(), left - 1),
                });
            }
            Err(e) => return Err(e),
        };
        *in_flight = None;
        let a = applied_now(duration_ms, false);
        events(&Event::Applied(a.clone()));
        report.applied.push(a);
    }
    Ok(())
}
