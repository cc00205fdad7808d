//! Executing a script: each step of it sent to the backend, in order, with
//! what only a run has: the backend's answers, progress events, signals,
//! a statement that outlives its call, and the `failed` row when a
//! statement fails. Nothing is sent that the script does not list, except
//! on a failure's branch (the failed row, lock_timeout retries, the
//! catalog reads that settle a lost answer).

use std::time::Instant;

use crate::backend::{Backend, ExecError};
use crate::config::Config;
use crate::dialect::ToolSql;
use crate::error::{Error, Result};
use crate::history::{Row, Status};
use crate::retry;
use crate::sql;

use super::script::{invalid_index_check, Op, Script};
use super::signals::{deadline_came, signalled, Signals, DEADLINE};
use super::{lock_retry, lost, progress, Event};

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walked {
    /// Every step was sent; `ms`: the time this walk's history writes
    /// recorded (a transaction: the server's, for its row; without one:
    /// the statements', which the history adds to the row's earlier time).
    Done { ms: u64 },
    /// A signal stopped a no-transaction migration between statements,
    /// after `done` of them (recorded as partial), or the deadline came
    /// during statement `done` (left running on the server, or cancelled).
    Stopped { done: usize },
}

/// Sends `script` to `b`. Settings that outlive the session
/// ([`Op::Undoable`]) are undone however the walk ends.
pub(crate) async fn walk(
    b: &mut dyn Backend,
    cfg: &Config,
    script: &Script<'_>,
    events: &mut dyn FnMut(&Event),
    sig: &mut Signals,
) -> Result<Walked> {
    let mut pending = Vec::new();
    let walked = walk_ops(b, cfg, script, events, sig, &mut pending).await;
    for undo in pending {
        if let Err(e) = b.execute(&undo).await {
            events(&Event::Warning {
                version: script.m.version,
                message: format!(
                    "{}: could not undo `{undo}` after the build: {}; run it by hand",
                    script.m.path,
                    e.into_error("undo")
                ),
            });
        }
    }
    walked
}

async fn walk_ops(
    b: &mut dyn Backend,
    cfg: &Config,
    script: &Script<'_>,
    events: &mut dyn FnMut(&Event),
    sig: &mut Signals,
    pending: &mut Vec<String>,
) -> Result<Walked> {
    let m = script.m;
    let note = |events: &mut dyn FnMut(&Event), message: String| {
        events(&Event::Note {
            version: m.version,
            message,
        })
    };
    // The time of the statement just run, for the history row after it.
    let mut elapsed_ms = 0;
    // What this walk's history writes record.
    let mut recorded = 0u64;
    for op in &script.ops {
        match op {
            Op::Transaction { settings, row } => {
                // The backend sends them its own way (the Data API: one call,
                // which also holds the lease row for the transaction).
                let mut statements = Vec::with_capacity(m.statements.len());
                for s in &m.statements {
                    let a = b.adapt(s, true).await?;
                    if let Some(n) = a.note {
                        note(events, n);
                    }
                    statements.push(a.sql.unwrap_or_else(|| s.sql.clone()));
                }
                recorded += lock_retry::transaction(b, cfg, m, settings, &statements, row, events, sig).await?;
                // A build inside a transaction: its overflow is known at the end.
                for n in b.notices().iter().flat_map(|w| w.take_where(is_graph_overflow)) {
                    events(&Event::Warning {
                        version: m.version,
                        message: format!(
                            "{}: the server said \"{}\": the index was built partly on disk, many times more slowly; raise index_build_memory (docs/vector-indexes.md)",
                            m.path, n.error.message
                        ),
                    });
                }
            }
            Op::Session(s) => b.execute(s).await.map_err(|e| e.into_error(&format!("{}: {s}", m.path)))?,
            Op::Undoable { sql, undo } => {
                b.execute(sql).await.map_err(|e| e.into_error(&format!("{}: {sql}", m.path)))?;
                pending.push(undo.clone());
            }
            Op::Undo(s) => {
                pending.retain(|u| u != s);
                b.execute(s).await.map_err(|e| e.into_error(&format!("{}: {s}", m.path)))?
            }
            Op::CheckValid { index, sql } => check_valid(b, script, *index, sql, elapsed_ms).await?,
            Op::IndexPlan { index, note, warning } => {
                if !note.is_empty() {
                    events(&Event::Note {
                        version: m.version,
                        message: format!("statement {}: {note}", index + 1),
                    });
                }
                if let Some(w) = warning {
                    events(&Event::Warning {
                        version: m.version,
                        message: format!("{}: statement {}: {w}", m.path, index + 1),
                    });
                }
            }
            Op::SkipSession(s) => events(&Event::SkippedSessionSetting {
                version: m.version,
                statement: s.clone(),
            }),
            Op::Reapply(k) => b
                .execute(&m.statements[*k].sql)
                .await
                .map_err(|e| e.into_error(&format!("{}: re-applying a session setting", m.path)))?,
            Op::SkipStatement(_) | Op::Statement { .. } => {
                let k = op.statement().unwrap_or_default();
                if k > script.step.resume_from && sig.borrow().is_some() {
                    // Stop between statements; progress is already recorded.
                    return Ok(Walked::Stopped { done: k });
                }
                if let Op::SkipStatement(_) = op {
                    events(&Event::SkippedSessionSetting {
                        version: m.version,
                        statement: m.statements[k].excerpt(),
                    });
                    continue;
                }
                let Some((started, result)) = statement(b, cfg, script, op, events, sig).await? else {
                    return Ok(Walked::Stopped { done: k });
                };
                elapsed_ms = started.elapsed().as_millis() as i64;
                settle(b, script, k, elapsed_ms, result).await?;
            }
            Op::History { row, elapsed } => {
                let mut row = row.clone();
                if *elapsed {
                    row.execution_ms = elapsed_ms;
                }
                b.write_history(&row).await?;
                recorded += row.execution_ms.max(0) as u64;
            }
        }
    }
    Ok(Walked::Done { ms: recorded })
}

/// Sends statement op `op` outside a transaction, after its checks, and
/// waits for its end (a statement that outlives its call is polled, a lost
/// answer read from the catalog). A signal does not cut it short; the
/// deadline does. Returns when it was sent (or found running), and how it
/// ended; `None` when the deadline came first (the statement is left
/// running on the server where it outlives its call, else cancelled: not
/// done either way).
async fn statement(
    b: &mut dyn Backend,
    cfg: &Config,
    script: &Script<'_>,
    op: &Op,
    events: &mut dyn FnMut(&Event),
    sig: &Signals,
) -> Result<Option<(Instant, Result<(), ExecError>)>> {
    let Op::Statement {
        index: i,
        abandoned,
        invalid_index,
        left_build,
    } = op
    else {
        return Ok(Some((Instant::now(), Ok(()))));
    };
    let (m, i) = (script.m, *i);
    let (s, total) = (&m.statements[i], m.statements.len());
    // A runner killed during this statement (a resumed migration) may have
    // left it running on the server, where a Data API statement outlives
    // its call: wait for it and read its outcome, never send it a second
    // time next to it.
    if *abandoned {
        if let Some((pid, secs)) = lost::still_running_elsewhere(b, &s.sql).await? {
            events(&Event::Note {
                version: m.version,
                message: format!(
                    "statement {} is still running on the server (process {pid}, for {secs} s), sent by an earlier runner that stopped: waiting for it to end, then reading its outcome from the catalog",
                    i + 1
                ),
            });
            let started = Instant::now();
            let mut last: Option<progress::BuildProgress> = None;
            let mut track = |ev: &Event| {
                if let Event::IndexProgress(p) = ev {
                    last = Some((**p).clone());
                }
                events(ev)
            };
            let r = tokio::select! {
                r = lost::await_statement(b, m, i, pid, started, &mut track) => r,
                () = deadline_came(sig.clone()) => return Ok(left_running(events, m, i)),
            };
            if let Some(p) = last {
                // Its time so far, as the server counts it.
                let elapsed = std::time::Duration::from_secs(p.elapsed_s);
                events(&Event::IndexProgress(Box::new(progress::ended(&p, elapsed))));
            }
            return Ok(Some((started, r)));
        }
    }
    if let Some((name, schema)) = invalid_index {
        // The run that stopped during this statement (at its deadline, or
        // killed) may have left the build on the server, which finished it
        // while this run waited for the lock: valid, and no copy of it left
        // invalid (on Citus, a shard's), it is not built again.
        let valid_already = *left_build && {
            let state = b.query(&ToolSql::index_state(name, schema.as_deref())).await?;
            state.first().and_then(|r| r.first().cloned().flatten()).as_deref() == Some("valid")
        };
        // A failed or killed CONCURRENTLY build leaves an INVALID index
        // that IF NOT EXISTS would silently accept: drop it first.
        let found = b.query(&invalid_index_check(name, schema.as_deref(), b.name())).await?;
        match found.first().and_then(|r| r.first().cloned().flatten()) {
            None if valid_already => {
                events(&Event::Note {
                    version: m.version,
                    message: format!(
                        "statement {}: index {name} was built by the earlier run, which stopped during this statement (left building at its deadline, or killed), and is valid: not built again",
                        i + 1
                    ),
                });
                return Ok(Some((Instant::now(), Ok(()))));
            }
            None => {}
            Some(qualified) => drop_invalid_index(b, m, qualified, events).await?,
        }
    }
    let adapted = b.adapt(s, false).await?;
    if let Some(note) = adapted.note {
        events(&Event::Note {
            version: m.version,
            message: note,
        });
    }
    let started = Instant::now();
    // pgvector's "hnsw graph no longer fits" comes while the build runs,
    // which may go on for hours: shown at once, read from the connection's
    // notices (the backend itself is busy with the statement).
    let watch = b.notices();
    let overflow = |events: &mut dyn FnMut(&Event)| {
        for n in watch.iter().flat_map(|w| w.take_where(is_graph_overflow)) {
            events(&Event::Warning {
                version: m.version,
                message: format!(
                    "{}: statement {}: the server says \"{}\": pgvector builds the rest of the index on disk, many times more slowly; raise index_build_memory (docs/vector-indexes.md)",
                    m.path,
                    i + 1,
                    n.error.message
                ),
            });
        }
    };
    let statements_die_with_connection = b.capabilities().statements_die_with_connection;
    let canceller = b.canceller();
    let mut last_reading: Option<progress::BuildProgress> = None;
    let result = {
        // A signal does not cut a statement short here: it finishes, its
        // progress is recorded, and `up` stops. Say so at once, and keep
        // saying what is waited for until it ends.
        let mut rx = sig.clone();
        let sent = adapted.sql.as_deref().unwrap_or(&s.sql);
        let fut = b.execute(sent);
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // An index build that runs on: its progress, from a second connection.
        let (tx, mut readings) = tokio::sync::mpsc::unbounded_channel();
        let watching = progress::is_index_build(s);
        let watcher = progress::watch(cfg, sent, m.version, i + 1, tx);
        tokio::pin!(watcher);
        let ended = loop {
            tokio::select! {
                r = &mut fut => break Ok(r),
                _ = tick.tick(), if watch.is_some() => overflow(events),
                () = &mut watcher, if watching => {}
                Some(p) = readings.recv() => {
                    last_reading = Some(p.clone());
                    events(&Event::IndexProgress(Box::new(p)));
                }
                signal = signalled(&mut rx) => break Err(signal),
            }
        };
        match ended {
            Ok(r) => Some(r),
            Err(DEADLINE) if !statements_die_with_connection => {
                // It goes on on the server (the Data API runs it with
                // continueAfterTimeout): the next `up` waits for it.
                return Ok(left_running(events, m, i));
            }
            // A CONCURRENTLY build of a named index on a session transport:
            // left building (the server goes on after the client has gone),
            // found by the next `up`, never built twice.
            Err(DEADLINE) if sql::concurrent_index(s).is_some() => None,
            Err(DEADLINE) => {
                // The deadline cuts it short: cancelled, and one that ends
                // cancelled counts as not done.
                if let Some(cancel) = &canceller {
                    cancel().await;
                }
                match fut.await {
                    Err(ExecError::Statement { error, .. }) if crate::classify::query_canceled(&error.code) => {
                        events(&Event::Note {
                            version: m.version,
                            message: format!(
                                "statement {} of {total} was cancelled at the deadline: the next `up` runs it again",
                                i + 1
                            ),
                        });
                        return Ok(None);
                    }
                    r => Some(r),
                }
            }
            Err(signal) => {
                events(&Event::Stopping {
                    signal,
                    version: m.version,
                    statement: i + 1,
                    total,
                    excerpt: s.excerpt(),
                });
                Some(
                    retry::report_while(fut, &cfg.progress, Instant::now(), |elapsed| retry::Waiting {
                        what: format!("V{} statement {} of {total} to finish", m.version, i + 1),
                        elapsed,
                        attempts: 0,
                        cause: format!("{signal}: stopping after it"),
                    })
                    .await,
                )
            }
        }
    };
    let Some(mut result) = result else {
        b.leave_session();
        return Ok(left_building(events, m, i, last_reading.as_ref().map(|p| p.pid)));
    };
    overflow(events);
    for message in b.take_notices() {
        events(&Event::Note {
            version: m.version,
            message,
        });
    }
    if let Err(ExecError::StillRunning { connection_id }) = result {
        // Its progress goes on (read by its server process).
        let mut track = |ev: &Event| {
            if let Event::IndexProgress(p) = ev {
                last_reading = Some((**p).clone());
            }
            events(ev)
        };
        result = tokio::select! {
            r = lost::await_statement(b, m, i, connection_id, started, &mut track) => r,
            () = deadline_came(sig.clone()) => return Ok(left_running(events, m, i)),
        };
    } else if let Err(ExecError::Lost { message }) = result {
        result = lost::resolve_lost_statement(b, m, i, message).await;
    }
    if let Some(p) = last_reading.take() {
        events(&Event::IndexProgress(Box::new(progress::ended(&p, started.elapsed()))));
    }
    Ok(Some((started, result)))
}

/// The deadline came while statement `i` of `m` runs on a transport where
/// it outlives its call: it goes on on the server, its history row says
/// `i` statements done, and the next `up` waits for it (never sends it
/// again).
fn left_running(
    events: &mut dyn FnMut(&Event),
    m: &crate::migration::SplitMigration,
    i: usize,
) -> Option<(Instant, Result<(), ExecError>)> {
    events(&Event::Note {
        version: m.version,
        message: format!(
            "statement {} of {} is left running on the server at the deadline: the next `up` waits for it to end and reads its outcome from the catalog",
            i + 1,
            m.statements.len()
        ),
    });
    None
}

/// The deadline came while statement `i` of `m`, a CONCURRENTLY build,
/// runs on a session transport: the session is left to the server, which
/// goes on building (in process `pid`, when a reading named it) and keeps
/// the migration lock until the build ends. Its history row says `i`
/// statements done; the next `up` waits for the build with its progress,
/// then finds the index built and checks it (never builds it twice).
fn left_building(
    events: &mut dyn FnMut(&Event),
    m: &crate::migration::SplitMigration,
    i: usize,
    pid: Option<i64>,
) -> Option<(Instant, Result<(), ExecError>)> {
    let process = pid.map(|p| format!(" (server process {p})")).unwrap_or_default();
    events(&Event::Note {
        version: m.version,
        message: format!(
            "statement {} of {} is left building on the server{process} at the deadline; it holds the migration lock until it ends: run `chatmigrate up` again to wait for it with its progress, check the index and record the migration (it is not built a second time)",
            i + 1,
            m.statements.len()
        ),
    });
    None
}

/// After a CONCURRENTLY build that ended without an error: an index it
/// left not valid or not ready fails statement `i` like an error would (a
/// `failed` row; the next `up` resumes at it, and drops an INVALID index of
/// its name before building it again).
async fn check_valid(b: &mut dyn Backend, script: &Script<'_>, i: usize, sql: &str, elapsed_ms: i64) -> Result<()> {
    let bad = b.query(sql).await?;
    if bad.is_empty() {
        return Ok(());
    }
    let cell = |r: &Vec<Option<String>>, k: usize| r.get(k).cloned().flatten().unwrap_or_default();
    let list: Vec<String> = bad
        .iter()
        .map(|r| {
            format!(
                "{} (indisvalid = {}, indisready = {})",
                cell(r, 0),
                cell(r, 1) == "true",
                cell(r, 2) == "true"
            )
        })
        .collect();
    let error = crate::error::DbError {
        fix: None,
        code: String::new(),
        message: format!(
            "the statement ended without an error but left {} not usable: {}",
            if list.len() == 1 { "an index" } else { "indexes" },
            list.join(", ")
        ),
        detail: None,
        hint: Some("the next `chatmigrate up` drops an INVALID index of the statement's name and builds it again; drop any other with DROP INDEX CONCURRENTLY".into()),
        offset: None,
    };
    settle(b, script, i, elapsed_ms, Err(ExecError::Statement { index: 0, error })).await
}

/// pgvector's NOTICE when the HNSW graph outgrows `maintenance_work_mem`
/// (hnswbuild.c: "hnsw graph no longer fits into maintenance_work_mem
/// after N tuples").
fn is_graph_overflow(n: &crate::backend::postgres::Notice) -> bool {
    n.error.message.starts_with("hnsw graph no longer fits into maintenance_work_mem")
}

/// After statement `i` ended: on success the script's next step writes its
/// row; on an SQL error a `failed` row records it and the run stops; a lost
/// session is the run loop's (it reconnects and resumes here).
async fn settle(b: &mut dyn Backend, script: &Script<'_>, i: usize, elapsed_ms: i64, result: Result<(), ExecError>) -> Result<()> {
    let m = script.m;
    match result {
        Ok(()) => Ok(()),
        Err(ExecError::Statement { error, .. }) => {
            let location = m.location(i, error.offset.unwrap_or(0));
            let status = if script.undo { Status::UndoFailed } else { Status::Failed };
            let mut row = Row::new(m, b.name(), status, i, script.step.out_of_order);
            row.execution_ms = elapsed_ms;
            row.error = Some(format!("statement {} at {location}: {error}", i + 1));
            b.write_history(&row).await?;
            Err(Error::Migration {
                location,
                version: m.version,
                error: Box::new(error),
                transactional: false,
            })
        }
        // The session died with the statement (a direct connection): `up`
        // reconnects and resumes here.
        Err(ExecError::Lost { message }) => Err(Error::ConnectionLost {
            context: format!("{} statement {}", m.label(), i + 1),
            message,
        }),
        Err(e) => Err(e.into_error(&format!("{} statement {}", m.path, i + 1))),
    }
}

/// Drops the INVALID index `qualified` that a failed or killed
/// CONCURRENTLY build of migration `m` left (with its shard indexes on
/// Citus), before the build runs again, and says so.
pub(crate) async fn drop_invalid_index(
    b: &mut dyn Backend,
    m: &crate::migration::SplitMigration,
    qualified: String,
    events: &mut dyn FnMut(&Event),
) -> Result<()> {
    b.execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}"))
        .await
        .map_err(|e| e.into_error(&format!("{}: dropping the invalid index {qualified}", m.path)))?;
    events(&Event::DroppedInvalidIndex {
        version: m.version,
        index: qualified,
    });
    Ok(())
}
