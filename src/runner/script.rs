//! One script per pending migration: the exact sequence `up` sends for it,
//! built once. `walk` executes it step by step; `up --dry-run` renders the
//! same script ([`render`]), so what dry-run prints is what a run sends.
//!
//! A script holds, in order:
//! - a transactional migration: one [`Op::Transaction`], which the backend
//!   sends as BEGIN, its prelude (the backend's own settings, the timeouts,
//!   group commit), the statements, the history row and COMMIT, rendered by
//!   `backend::wire` as that backend sends them (the Data API: one call for
//!   the settings that also holds the lease row, the history row fenced by
//!   the lease);
//! - a no-transaction migration: the session timeouts of its directives,
//!   the `partial` history row (or, when resuming, the `SET`s done before,
//!   made again on the new session), then each statement (with the catalog
//!   checks that come before it) followed by its history row, and the
//!   `RESET`s; on a transport without sessions, the session settings are
//!   skipped and said so.
//!
//! What a script does not show is what happens on a failure (a `failed`
//! row, a retry after lock_timeout, a reconnect): those branch off it.
//! How a statement is sent may depend on the database's state (Citus:
//! `create_distributed_table_concurrently` for a table with rows); the
//! backend decides just before it is sent, and dry-run asks it the same
//! question, about the database as it is then.

use std::time::Duration;

use crate::backend::wire::Wire;
use crate::backend::{self, Backend, Capabilities, LockKind};
use crate::config::Config;
use crate::dialect::{ToolSql, Value};
use crate::error::{Error, Result};
use crate::history::{Row, Status};
use crate::migration::{Migration, SplitMigration, TxMode};
use crate::plan::{Plan, Step};
use crate::sql;
use crate::vector_index::plan::{BuildPlan, Plans};

use super::{lost, DryStep, Line, UpOptions, UpReport};

/// What `up` sends for one pending migration, in order.
pub(crate) struct Script<'a> {
    pub m: &'a SplitMigration,
    pub step: &'a Step,
    pub ops: Vec<Op>,
    /// An undo's script (`down.rs`): a failed statement is logged, not
    /// written into the migration's row.
    pub undo: bool,
}

impl<'a> Script<'a> {
    /// The script of an undo file (`down.rs`).
    pub fn undo(m: &'a SplitMigration, step: &'a Step, ops: Vec<Op>) -> Script<'a> {
        Script { m, step, ops, undo: true }
    }
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// The whole transactional migration, in one `Backend::run_transaction`:
    /// `settings` (`SET LOCAL`s) first, every statement, then `row`.
    Transaction { settings: Vec<String>, row: Row },
    /// A session setting of the file's directives, sent outside any
    /// transaction (`SET lock_timeout = ...` first, `RESET ...` last).
    Session(String),
    /// A directive's session setting that a transport without sessions
    /// cannot keep: not sent, said so.
    SkipSession(String),
    /// Resuming: statement `k`, a `SET` done before the stop, made again
    /// (the setting died with the old session).
    Reapply(usize),
    /// Statement `index`, outside a transaction, after its checks:
    /// `abandoned`: is it still running, left by a runner that stopped (a
    /// transport where statements outlive their calls, resuming at it);
    /// `invalid_index`: a CONCURRENTLY build first drops an INVALID index
    /// of its name left by an earlier failed build; `left_build`: see the
    /// field.
    Statement {
        index: usize,
        abandoned: bool,
        invalid_index: Option<(String, Option<String>)>,
        /// Resuming at a CONCURRENTLY build on a session transport: the
        /// earlier run may have left it building at its deadline; an index
        /// of its name that is valid now is that build's, not built again.
        left_build: bool,
    },
    /// Statement `index` builds a vector index: what was estimated for it
    /// (`note`) and, when even `index_build_memory` is below the estimate,
    /// the `warning`; the settings follow as [`Op::Session`]s (or in the
    /// transaction's `SET LOCAL`s).
    IndexPlan {
        index: usize,
        note: String,
        warning: Option<String>,
    },
    /// After statement `index`, a CONCURRENTLY build: the catalog read
    /// (`sql`) for what it left not valid or not ready; any row fails the
    /// statement (the next `up` drops the index and builds it again).
    CheckValid { index: usize, sql: String },
    /// A setting that outlives the session (a vector index build's role
    /// setting on Citus): `sql` is sent, and `undo` is sent after the build
    /// ([`Op::Undo`]) or, when the walk ends before that, at its end.
    Undoable { sql: String, undo: String },
    /// The undo of an [`Op::Undoable`], after the build.
    Undo(String),
    /// Statement `k` is a session setting a transport without sessions
    /// cannot keep: not sent, said so.
    SkipStatement(usize),
    /// The history row, in autocommit; `elapsed`: its `execution_ms` is the
    /// time of the statement just run (known at run time), else 0.
    History { row: Row, elapsed: bool },
}

impl Op {
    /// The statement this op sends or skips, if it is one of the file's.
    pub fn statement(&self) -> Option<usize> {
        match self {
            Op::Statement { index, .. } | Op::SkipStatement(index) => Some(*index),
            _ => None,
        }
    }
}

/// Builds the script of `m` (planned as `step`) for a backend with `caps`
/// named `backend`; `last`: the run's last migration (it commits
/// synchronously); `resumed`: the history has a row for it already;
/// `plans`: its vector index builds, planned on the live database.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<'a>(
    cfg: &Config,
    caps: Capabilities,
    backend: &str,
    m: &'a SplitMigration,
    step: &'a Step,
    last: bool,
    resumed: bool,
    plans: &Plans,
) -> Script<'a> {
    let mut ops = Vec::new();
    let total = m.statements.len();
    let plan_op = |k: usize, p: &BuildPlan| Op::IndexPlan {
        index: k,
        note: p.note.clone(),
        warning: p.warning.clone(),
    };
    if m.tx_mode() == TxMode::Transaction {
        let mut keys: Vec<&usize> = plans.keys().collect();
        keys.sort();
        ops.extend(keys.iter().map(|&&k| plan_op(k, &plans[&k])));
        let mut settings = prelude(cfg, m, last);
        // One transaction, one value: the largest any of its builds needs.
        if let Some(p) = plans.values().max_by_key(|p| p.memory_kb) {
            settings.extend(p.sets(true));
        }
        ops.push(Op::Transaction {
            settings,
            row: Row::new(m, backend, Status::Applied, total, step.out_of_order),
        });
        return Script { m, step, ops, undo: false };
    }
    let mut row = Row::new(m, backend, Status::Partial, step.resume_from, step.out_of_order);
    let (set, reset) = session_timeouts(m);
    if caps.session_state {
        ops.extend(set.into_iter().map(Op::Session));
    } else {
        // The file's timeout directives would be session SETs: they cannot
        // apply, as for a SET written in the file.
        ops.extend(set.into_iter().map(Op::SkipSession));
    }
    if step.resume_from == 0 {
        ops.push(Op::History {
            row: row.clone(),
            elapsed: false,
        });
    } else if caps.session_state {
        // Session settings (SET maintenance_work_mem ...) made by the
        // statements already done were lost with the old session.
        for (k, s) in m.statements[..step.resume_from].iter().enumerate() {
            if matches!(s.node, Some(pg_query::NodeEnum::VariableSetStmt(_))) {
                ops.push(Op::Reapply(k));
            }
        }
    }
    for (k, s) in m.statements.iter().enumerate().skip(step.resume_from) {
        row.statements_done = (k + 1) as i32;
        row.status = if k + 1 == total { Status::Applied } else { Status::Partial };
        if !caps.session_state && is_session_setting(s) {
            // SET maintenance_work_mem etc. would apply to one Data API call
            // only: say so instead of pretending it took effect.
            ops.push(Op::SkipStatement(k));
            if k + 1 == total {
                ops.push(Op::History {
                    row: row.clone(),
                    elapsed: false,
                });
            }
            continue;
        }
        // Without sessions (the Data API) no setting reaches the build.
        let plan = plans.get(&k).map(|p| if caps.session_state { p.clone() } else { p.unsent() });
        let plan = plan.as_ref();
        if let Some(p) = plan {
            ops.push(plan_op(k, p));
            ops.extend(p.persistent().into_iter().map(|(sql, undo)| Op::Undoable { sql, undo }));
            ops.extend(p.sets(false).into_iter().map(Op::Session));
        }
        ops.push(Op::Statement {
            index: k,
            // A runner killed during this statement may have left it running
            // on the server, where a statement outlives its call.
            abandoned: resumed && k == step.resume_from && !caps.statements_die_with_connection,
            invalid_index: sql::concurrent_index(s),
            left_build: resumed && k == step.resume_from && caps.statements_die_with_connection && sql::concurrent_index(s).is_some(),
        });
        if let Some((name, schema, table)) = sql::concurrent_build(s) {
            ops.push(Op::CheckValid {
                index: k,
                sql: if backend == "citus" {
                    crate::dialect::citus::index_validity(name.as_deref(), schema.as_deref(), table.as_deref())
                } else {
                    ToolSql::index_validity(name.as_deref(), schema.as_deref(), table.as_deref())
                },
            });
        }
        ops.push(Op::History {
            row: row.clone(),
            elapsed: true,
        });
        if let Some(p) = plan {
            ops.extend(p.persistent().into_iter().map(|(_, undo)| Op::Undo(undo)));
            ops.extend(p.resets().into_iter().map(Op::Session));
        }
    }
    if caps.session_state {
        ops.extend(reset.into_iter().map(Op::Session));
    }
    Script { m, step, ops, undo: false }
}

/// The `SET LOCAL` statements that open a transactional migration: the
/// backend's own first (Citus: the multi-shard modify mode), then the
/// timeouts and group commit.
fn prelude(cfg: &Config, m: &Migration, last: bool) -> Vec<String> {
    let ms = |d: Duration| format!("'{}ms'", d.as_millis());
    let mut out = backend::transaction_prelude(cfg, m);
    if let Some(t) = m.directives.lock_timeout.or(cfg.lock_timeout) {
        out.push(format!("SET LOCAL lock_timeout = {}", ms(t)));
    }
    if let Some(t) = m.directives.statement_timeout.or(cfg.statement_timeout) {
        out.push(format!("SET LOCAL statement_timeout = {}", ms(t)));
    }
    if cfg.group_commit && backend::capabilities_of(cfg.backend).group_commit && !last {
        // The run's last commit is synchronous and flushes every earlier one.
        out.push("SET LOCAL synchronous_commit = off".into());
    }
    out
}

/// Session-level timeouts a no-transaction file asks for with its
/// directives (the environment's defaults are for transactional files only:
/// a CONCURRENTLY build waits for old transactions, and a 5 s lock_timeout
/// would cut it short). Returns the SETs to send first and the RESETs after.
fn session_timeouts(m: &Migration) -> (Vec<String>, Vec<String>) {
    let ms = |d: Duration| format!("'{}ms'", d.as_millis());
    let mut set = Vec::new();
    let mut reset = Vec::new();
    if let Some(t) = m.directives.lock_timeout {
        set.push(format!("SET lock_timeout = {}", ms(t)));
        reset.push("RESET lock_timeout".to_string());
    }
    if let Some(t) = m.directives.statement_timeout {
        set.push(format!("SET statement_timeout = {}", ms(t)));
        reset.push("RESET statement_timeout".to_string());
    }
    (set, reset)
}

/// A session-level `SET`/`RESET` (not `SET LOCAL`).
fn is_session_setting(s: &sql::Statement) -> bool {
    matches!(&s.node, Some(pg_query::NodeEnum::VariableSetStmt(v)) if !v.is_local)
}

/// The catalog read before a CONCURRENTLY build: an INVALID index of its
/// name, left by an earlier failed build (sent by `walk`, shown by dry-run).
pub(crate) fn invalid_index_check(name: &str, schema: Option<&str>, backend: &str) -> String {
    if backend == "citus" {
        crate::dialect::citus::invalid_index(name, schema)
    } else {
        ToolSql::invalid_index(name, schema)
    }
}

/// The placeholder for this run's lease owner in a dry run.
const OWNER: Value = Value::Placeholder("lease owner");
/// The placeholder for a statement's time in a dry run.
const ELAPSED: Value = Value::Placeholder("elapsed ms");

/// Renders `script` as dry-run shows it: every request as the backend
/// sends it, with comments for the checks and the skipped settings.
/// `b`: the connected backend, asked how it sends each statement (none: as
/// written); `caps`, `backend`: what it is.
pub(crate) async fn render(
    script: &Script<'_>,
    mut b: Option<&mut dyn Backend>,
    cfg: &Config,
    caps: Capabilities,
    backend: &str,
) -> Result<DryStep> {
    let m = script.m;
    let dialect = ToolSql::new(&cfg.history, &cfg.pg.dbname);
    let wire = Wire {
        dialect: &dialect,
        lock: caps.lock,
        owner: (caps.lock == LockKind::LeaseRow).then_some(&OWNER),
    };
    let skipped = |s: &str| Line::Comment(format!("skipped on {backend} (a session setting does not outlive one call): {s}"));
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    for op in &script.ops {
        match op {
            Op::Transaction { settings, row } => {
                let mut statements = Vec::with_capacity(m.statements.len());
                for s in &m.statements {
                    let a = adapt(&mut b, s, true, backend, &mut lines, &mut notes).await?;
                    statements.push(a.unwrap_or_else(|| s.sql.clone()));
                }
                let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
                let t = wire.transaction(settings, &refs, row);
                lines.extend(t.parts().into_iter().map(|p| Line::Sent(p.to_string())));
            }
            Op::Session(s) | Op::Undo(s) => lines.push(Line::Sent(s.clone())),
            Op::Undoable { sql, undo } => {
                lines.push(Line::Comment(format!(
                    "for the build only: undone after it, also when it fails (`{undo}`)"
                )));
                lines.push(Line::Sent(sql.clone()));
            }
            Op::SkipSession(s) => lines.push(skipped(s)),
            Op::Reapply(k) => {
                lines.push(Line::Comment(format!(
                    "resuming: statement {} ran before the stop; its setting is made again on this session",
                    k + 1
                )));
                lines.push(Line::Sent(m.statements[*k].sql.clone()));
            }
            Op::Statement {
                index,
                abandoned,
                invalid_index,
                left_build,
            } => {
                let s = &m.statements[*index];
                if *abandoned {
                    lines.push(Line::Comment(format!(
                        "check: is statement {} still running, left by the runner that stopped? (then its end is awaited and its outcome read from the catalog; it is not sent again)",
                        index + 1
                    )));
                    lines.push(Line::Sent(lost::abandoned_check(&s.sql)));
                }
                if let (true, Some((name, schema))) = (left_build, invalid_index) {
                    lines.push(Line::Comment(format!(
                        "check: is index {name} valid already, built by the run that stopped during this statement (left building at its deadline, or killed)? (then, when the next check finds no invalid copy of it, it is not built again)"
                    )));
                    lines.push(Line::Sent(ToolSql::index_state(name, schema.as_deref())));
                }
                if let Some((name, schema)) = invalid_index {
                    lines.push(Line::Comment(format!(
                        "check: an INVALID index {name} left by an earlier failed build? (then DROP INDEX CONCURRENTLY IF EXISTS it first)"
                    )));
                    lines.push(Line::Sent(invalid_index_check(name, schema.as_deref(), backend)));
                }
                let a = adapt(&mut b, s, false, backend, &mut lines, &mut notes).await?;
                lines.push(Line::Sent(a.unwrap_or_else(|| s.sql.clone())));
            }
            Op::SkipStatement(k) => lines.push(skipped(&m.statements[*k].sql)),
            Op::CheckValid { index, sql } => {
                lines.push(Line::Comment(format!(
                    "check: did statement {} leave an index INVALID or not ready? (then it fails: the next up drops and builds it again)",
                    index + 1
                )));
                lines.push(Line::Sent(sql.clone()));
            }
            Op::IndexPlan { index, note, warning } => {
                if !note.is_empty() {
                    lines.push(Line::Comment(format!("statement {}: {note}", index + 1)));
                }
                if let Some(w) = warning {
                    lines.push(Line::Comment(format!("warning: statement {}: {w}", index + 1)));
                    notes.push(format!("{}: statement {}: {w}", m.path, index + 1));
                }
            }
            Op::History { row, elapsed } => {
                let ms = if *elapsed { ELAPSED } else { Value::Int(row.execution_ms) };
                lines.push(Line::Sent(wire.history(row, ms)));
            }
        }
    }
    Ok(DryStep {
        version: m.version,
        kind: crate::plan::Kind::of(m.version),
        name: m.name.clone(),
        transaction: m.tx_mode(),
        lines,
        notes,
    })
}

/// How the backend sends `s` (None: as written), with the catalog reads it
/// made to decide and its note.
async fn adapt(
    b: &mut Option<&mut dyn Backend>,
    s: &sql::Statement,
    in_transaction: bool,
    backend: &str,
    lines: &mut Vec<Line>,
    notes: &mut Vec<String>,
) -> Result<Option<String>> {
    let Some(b) = b.as_deref_mut() else { return Ok(None) };
    let a = b.adapt(s, in_transaction).await?;
    if !a.reads.is_empty() {
        lines.push(Line::Comment(format!(
            "{backend} reads the catalog to choose how to send `{}`",
            s.excerpt()
        )));
        lines.extend(a.reads.into_iter().map(Line::Sent));
    }
    notes.extend(a.note);
    Ok(a.sql)
}

/// The dry run of `plan`: each pending migration's script, rendered.
/// `applied`: the history as read (a migration with a row resumes).
pub(crate) async fn dry_run(
    mut b: Option<&mut dyn Backend>,
    cfg: &Config,
    caps: Capabilities,
    backend: &str,
    set: &[SplitMigration],
    plan: &Plan,
    applied: &[Row],
) -> Result<Vec<DryStep>> {
    let last = plan.steps.len().saturating_sub(1);
    let mut out = Vec::with_capacity(plan.steps.len());
    for (i, step) in plan.steps.iter().enumerate() {
        let m = &set[step.index];
        let resumed = applied.iter().any(|r| r.version == m.version);
        let plans = match &mut b {
            Some(b) => crate::vector_index::plan::read(&mut **b, cfg, m, step.resume_from).await?,
            None => Plans::new(),
        };
        let script = build(cfg, caps, backend, m, step, i == last, resumed, &plans);
        let b: Option<&mut dyn Backend> = match &mut b {
            Some(b) => Some(&mut **b),
            None => None,
        };
        out.push(render(&script, b, cfg, caps, backend).await?);
    }
    Ok(out)
}

/// The dry run of `local` against an empty history, with no connection:
/// what `up --dry-run` prints for a database that has nothing applied (the
/// backend's adaptations, which read the database, are not included).
pub(crate) async fn dry_run_empty(cfg: &Config, local: &[Migration], opts: &UpOptions) -> Result<Vec<DryStep>> {
    let plan = crate::plan::plan(local, &[], &super::run::plan_options(cfg, opts))?;
    let mut split = None;
    let set = super::gate::split(local, &plan, &mut split)?;
    super::gate::lint(cfg, set, &plan, None)?;
    let caps = backend::capabilities_of(cfg.backend);
    dry_run(None, cfg, caps, cfg.backend.as_str(), set, &plan, &[]).await
}

/// What `up --dry-run` prints for `cfg` on a database where nothing is
/// applied yet, computed without connecting: the configured migrations
/// (for backend `citus`, with the citus-only files), the backend's
/// transaction prelude, the statements and the history writes.
pub fn dry_run_offline(cfg: &Config, opts: &UpOptions) -> Result<UpReport> {
    let local = crate::placeholders::load(cfg)?;
    // Without a backend nothing in it waits: it is ready at the first poll.
    let steps = futures_util::FutureExt::now_or_never(dry_run_empty(cfg, &local, opts))
        .unwrap_or_else(|| Err(Error::Other("the dry run without a connection waited for something".into())))?;
    Ok(UpReport {
        target: cfg.target_display(),
        dry_run: steps,
        ..UpReport::default()
    })
}
