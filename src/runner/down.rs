//! `chatmigrate down`: reverts applied migrations with their undo files
//! (`V3__x.undo.sql`, `undo.rs`), newest first, the way `up` applies: under
//! the migration lock, one script per undo that executing (`walk`) and
//! `--dry-run` (`script::render`) both read.
//!
//! - A transactional undo: its statements and the history change in one
//!   transaction: the history row is removed and the history log gets an
//!   `undo` entry (who, when, the undo file's checksum), one round trip on
//!   the direct backend as for `up`.
//! - A no-transaction undo (`-- chatmigrate:no-transaction`): statement by
//!   statement; after each an `undo-step` entry in the log records how far
//!   it got (a failure: `undo-failed`, with the error), so the next `down`
//!   resumes after the statements done; the last statement removes the row.
//!
//! Refused before anything runs: a migration in the range without an undo
//! file, drift (an applied file changed or missing), a partial or failed
//! row in the range, a target above the highest applied version.

use std::time::Instant;

use crate::backend::{self, Backend, Purpose};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::history::{Row, Status};
use crate::migration::{self, Migration, SplitMigration, TxMode};
use crate::plan::{self, Plan, Step};

use super::script::{self, Op, Script};
use super::{signals, walk, DryStep, Event, Line};

/// What to undo.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Undo every applied migration above this version (0: all).
    pub target: Option<i64>,
    /// Undo the last `steps` applied migrations (default 1).
    pub steps: Option<usize>,
    pub dry_run: bool,
    /// Stop between statements on SIGINT/SIGTERM (the binary).
    pub handle_signals: bool,
}

/// One migration undone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Undone {
    /// The migration's version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// How long its undo took.
    pub duration_ms: u64,
}

/// What `down` did, or with `dry_run` would send.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DownReport {
    /// The database, as `user@host:port/db` (never a password).
    pub target: String,
    /// What this run undid, in order (newest first).
    pub undone: Vec<Undone>,
    /// Filled only by `--dry-run`.
    pub(crate) dry_run: Vec<DryStep>,
}

/// Reverts applied migrations (see the module docs).
pub async fn down(cfg: &Config, opts: &DownOptions, events: &mut dyn FnMut(&Event)) -> Result<DownReport> {
    let values = crate::placeholders::Values::of(cfg)?;
    let extra = backend::extra_migrations(cfg.backend);
    let local = crate::placeholders::load_with(&cfg.source, extra, &values)?;
    let undos = crate::undo::load(&cfg.source, extra, &local, |m| values.substitute(m))?;
    let purpose = if opts.dry_run { Purpose::READ } else { Purpose::WRITE };
    let mut b = backend::connect(cfg, purpose).await?;
    let r = with_backend(&mut *b, cfg, opts, &local, &undos, events).await;
    let unlocked = match opts.dry_run {
        true => Ok(()),
        false => b.unlock().await,
    };
    b.close().await;
    let report = r?;
    unlocked?;
    Ok(report)
}

async fn with_backend(
    b: &mut dyn Backend,
    cfg: &Config,
    opts: &DownOptions,
    local: &[Migration],
    undos: &[Migration],
    events: &mut dyn FnMut(&Event),
) -> Result<DownReport> {
    let mut report = DownReport {
        target: b.target(),
        ..DownReport::default()
    };
    let mut sig = signals::watch(opts.handle_signals);
    if !opts.dry_run {
        b.lock(cfg.lock_wait).await?;
        b.ensure_history().await?;
    }
    let applied = b.read_history().await?;
    let chosen = choose(local, &applied, opts)?;
    // Every undo of the range is there, parses and may run as written.
    let missing: Vec<String> = chosen
        .iter()
        .filter(|r| !undos.iter().any(|u| u.version == r.version))
        .map(|r| format!("V{} {}", r.version, r.name))
        .collect();
    if !missing.is_empty() {
        let first = chosen
            .iter()
            .find(|r| !undos.iter().any(|u| u.version == r.version))
            .expect("one is missing");
        return Err(Error::Undo {
            at: "down".into(),
            message: format!("no undo file for {}: nothing was undone", missing.join(", ")),
            hint: format!(
                "write V{}__{}.undo.sql beside its migration (`chatmigrate new --undo <name>` creates the pair for a new one), or undo fewer with --steps / --target",
                first.version, first.name
            ),
        });
    }
    let order: Vec<usize> = chosen
        .iter()
        .map(|r| undos.iter().position(|u| u.version == r.version).expect("checked above"))
        .collect();
    let plan = Plan {
        steps: order
            .iter()
            .map(|&index| Step {
                index,
                resume_from: 0,
                out_of_order: false,
            })
            .collect(),
    };
    let undos = gate(b, cfg, local, undos, &plan).await?;
    let (caps, name) = (b.capabilities(), b.name());
    let last = plan.steps.len().saturating_sub(1);
    let dialect = crate::dialect::ToolSql::new(&cfg.history, &cfg.pg.dbname);
    // The repeatable migrations run again at the next `up` (an undo may
    // drop what they made, a view on its table): their rows go, under the
    // lock, logged, before the first undo.
    let reset = (applied.iter().any(Row::is_repeatable) && !plan.steps.is_empty()).then(|| dialect.reset_repeatables());
    if let (Some(reset), false) = (&reset, opts.dry_run) {
        b.query(reset).await?;
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let u = &undos[step.index];
        let mut step = step.clone();
        if u.tx_mode() == TxMode::NoTransaction {
            // How far an interrupted undo of it got.
            let rows = b.query(&dialect.undo_progress(u.version)).await?;
            let detail = rows.first().and_then(|r| r.first().cloned().flatten()).unwrap_or_default();
            step.resume_from = detail
                .split('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
                .min(u.statements.len().saturating_sub(1));
        }
        let script = build(cfg, caps, name, u, &step, i == last);
        if opts.dry_run {
            report.dry_run.push(script::render(&script, Some(&mut *b), cfg, caps, name).await?);
            continue;
        }
        if let Some(s) = *sig.borrow() {
            return Err(Error::Interrupted {
                signal: s.into(),
                applied: report.undone.len(),
                stopped: format!("stopped before undoing V{}; `chatmigrate down` goes on from there", u.version),
            });
        }
        events(&match step.resume_from {
            0 => Event::Applying {
                version: u.version,
                name: format!("{} (undo)", u.name),
            },
            from => Event::Resuming {
                version: u.version,
                name: format!("{} (undo)", u.name),
                from,
                total: u.statements.len(),
            },
        });
        let started = Instant::now();
        match walk::walk(b, cfg, &script, events, &mut sig).await {
            Ok(walk::Walked::Done { .. }) => {}
            Ok(walk::Walked::Stopped { done }) => {
                return Err(Error::Interrupted {
                    signal: sig.borrow().unwrap_or(signals::DEADLINE).into(),
                    applied: report.undone.len(),
                    stopped: format!(
                        "the undo of V{} stopped after {done} of its {} statements; `chatmigrate down` resumes it",
                        u.version,
                        u.statements.len()
                    ),
                })
            }
            Err(Error::Migration {
                location,
                version,
                error,
                transactional,
            }) => {
                return Err(Error::Undo {
                    at: location.to_string(),
                    message: format!("the undo of version {version} failed: {error}"),
                    hint: match transactional {
                        true => "fix the undo file and run `chatmigrate down` again; this undo was rolled back and the migration is still applied".into(),
                        false => "fix the failing statement and run `chatmigrate down` again: it resumes at that statement (the ones before it stay done; the migration stays applied until its undo ends)".into(),
                    },
                })
            }
            Err(e) => return Err(e),
        }
        report.undone.push(Undone {
            version: u.version,
            name: u.name.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    if let (Some(reset), Some(step)) = (&reset, report.dry_run.first_mut()) {
        step.lines.splice(
            0..0,
            [
                Line::Comment(
                    "first: the repeatable migrations' rows are removed (logged), so the next up applies every R__ file again".into(),
                ),
                Line::Sent(reset.clone()),
            ],
        );
    }
    Ok(report)
}

/// The gate of `up` for the undo files about to run: split, then the
/// error-level lint rules with the live sizes of their tables, read on this
/// connection (a `DROP INDEX` without CONCURRENTLY on a table with rows is
/// refused; a transactional undo with `CREATE INDEX CONCURRENTLY` too). The
/// rules see the undos after the whole set, in the order they run, so the
/// tables the migrations made exist. `DROP TABLE` is what an undo is for:
/// `dropping-column-or-table` is not applied to undo files.
async fn gate(b: &mut dyn Backend, cfg: &Config, local: &[Migration], undos: &[Migration], plan: &Plan) -> Result<Vec<SplitMigration>> {
    let split = migration::split_set(undos, plan.steps.iter().map(|s| s.index))?;
    if plan.steps.is_empty() {
        return Ok(split);
    }
    // The migrations are context only: one that does not parse gives no facts.
    let mut set = migration::split_set(local, std::iter::empty())?;
    let first = set.len();
    set.extend(plan.steps.iter().map(|s| split[s.index].clone()));
    let run: Vec<(usize, usize)> = (first..set.len()).map(|i| (i, 0)).collect();
    let mut cfg = cfg.clone();
    cfg.lint_exclude.push("dropping-column-or-table".into());
    let live = crate::schema::live::read(b, &cfg, &set, &run).await?.live;
    let opts = crate::lint::Options {
        live: Some(std::sync::Arc::new(live)),
        undo: true,
        ..crate::config::lint_options(&cfg)
    };
    let targets: Vec<usize> = run.iter().map(|r| r.0).collect();
    crate::lint::gate(&set, &targets, &opts)?;
    Ok(split)
}

/// The applied rows to undo, newest first; refuses what `down` cannot do.
fn choose(local: &[Migration], applied: &[Row], opts: &DownOptions) -> Result<Vec<Row>> {
    // Drift and missing files, as `up` sees them (out of order is no matter here).
    plan::plan(
        local,
        applied,
        &plan::PlanOptions {
            target: None,
            allow_out_of_order: true,
        },
    )?;
    // Repeatable migrations have no undo (their rows are reset after).
    let mut rows: Vec<&Row> = applied.iter().filter(|r| !r.is_repeatable()).collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.version));
    let highest = rows.iter().find(|r| r.status == Status::Applied).map(|r| r.version);
    let picked: Vec<&Row> = match (opts.target, opts.steps) {
        (Some(t), _) => {
            if t < 0 || highest.is_some_and(|h| t > h) || (highest.is_none() && t > 0) {
                return Err(Error::Undo {
                    at: format!("down --target {t}"),
                    message: match highest {
                        Some(h) => format!("the target is above the highest applied version {h}"),
                        None => "nothing is applied".into(),
                    },
                    hint: "`chatmigrate status` lists the applied versions; --target V undoes every one above V (0: all)".into(),
                });
            }
            rows.into_iter().filter(|r| r.version > t).collect()
        }
        (None, steps) => rows.into_iter().take(steps.unwrap_or(1)).collect(),
    };
    if let Some(r) = picked.iter().find(|r| r.status != Status::Applied) {
        return Err(Error::Undo {
            at: format!("V{} {}", r.version, r.name),
            message: format!("the migration is {}, not applied: nothing was undone", r.status.as_str()),
            hint: "finish it with `chatmigrate up`, or clear its row with `chatmigrate repair`, then run `chatmigrate down`".into(),
        });
    }
    Ok(picked.into_iter().cloned().collect())
}

/// The script of undo `u`: the same ops `up` sends, with the history
/// change of an undo (see the module docs).
fn build<'a>(cfg: &Config, caps: backend::Capabilities, backend: &str, u: &'a SplitMigration, step: &'a Step, last: bool) -> Script<'a> {
    let total = u.statements.len();
    let mut row = Row::new(u, backend, Status::Undone, total, false);
    if u.tx_mode() == TxMode::Transaction {
        let mut settings = backend::transaction_prelude(cfg, u);
        let ms = |d: std::time::Duration| format!("'{}ms'", d.as_millis());
        if let Some(t) = u.directives.lock_timeout.or(cfg.lock_timeout) {
            settings.push(format!("SET LOCAL lock_timeout = {}", ms(t)));
        }
        if let Some(t) = u.directives.statement_timeout.or(cfg.statement_timeout) {
            settings.push(format!("SET LOCAL statement_timeout = {}", ms(t)));
        }
        if cfg.group_commit && caps.group_commit && !last {
            settings.push("SET LOCAL synchronous_commit = off".into());
        }
        return Script::undo(u, step, vec![Op::Transaction { settings, row }]);
    }
    let mut ops = Vec::new();
    let ms = |d: std::time::Duration| format!("'{}ms'", d.as_millis());
    let mut reset = Vec::new();
    for (name, d) in [
        ("lock_timeout", u.directives.lock_timeout),
        ("statement_timeout", u.directives.statement_timeout),
    ] {
        if let Some(d) = d {
            let set = format!("SET {name} = {}", ms(d));
            ops.push(if caps.session_state {
                Op::Session(set)
            } else {
                Op::SkipSession(set)
            });
            reset.push(format!("RESET {name}"));
        }
    }
    for (k, s) in u.statements.iter().enumerate().skip(step.resume_from) {
        let session_setting = matches!(&s.node, Some(pg_query::NodeEnum::VariableSetStmt(v)) if !v.is_local);
        if !caps.session_state && session_setting {
            ops.push(Op::SkipStatement(k));
        } else {
            ops.push(Op::Statement {
                index: k,
                abandoned: false,
                invalid_index: None,
                left_build: false,
            });
        }
        row.statements_done = (k + 1) as i32;
        row.status = if k + 1 == total { Status::Undone } else { Status::Undoing };
        ops.push(Op::History {
            row: row.clone(),
            elapsed: true,
        });
    }
    if caps.session_state {
        ops.extend(reset.into_iter().map(Op::Session));
    }
    Script::undo(u, step, ops)
}
