//! THE run loop, written once: connect (creating the database when asked),
//! read history, plan, lint the pending files, lock, re-read, run each
//! migration (transactional: one call with its history row; non-transactional:
//! statement by statement with progress), unlock on every path, close.
//!
//! Every command and the library go through here; rendering is done by the
//! caller from the [`Event`]s and the returned report.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::backend::{self, Backend, ExecError, Purpose};
use crate::config::Config;
use crate::dialect::{history_values, quote, Dialect, Value};
use crate::error::{DbError, Error, Result};
use crate::history::{Row, Status};
use crate::migration::{self, Migration, TxMode};
use crate::plan::{self, Plan, Step};
use crate::retry::{self, Backoff};
use crate::{lint, sql};

/// What `up` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub target: Option<i64>,
    pub dry_run: bool,
    /// Catch SIGINT/SIGTERM: roll back the transactional migration in
    /// flight, or finish the current statement of a non-transactional one,
    /// then stop. The CLI sets this; a library caller decides for itself.
    pub handle_signals: bool,
}

/// Progress, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// Connected; what the backend can do, and what the server is (Citus:
    /// release and workers).
    Connected {
        target: String,
        backend: &'static str,
        capabilities: backend::Capabilities,
        facts: Vec<(String, String)>,
    },
    /// This runner created the database (a concurrent runner that found it
    /// created by another does not get this event).
    CreatedDatabase {
        name: String,
    },
    Applying {
        version: i64,
        name: String,
        tx: TxMode,
    },
    Resuming {
        version: i64,
        name: String,
        from: usize,
        total: usize,
    },
    Applied(Applied),
    /// A CONCURRENTLY build that failed earlier left an INVALID index; it is
    /// dropped before the statement runs again.
    DroppedInvalidIndex {
        version: i64,
        index: String,
    },
    /// The connection was lost; reconnecting to re-read the history and go on.
    Reconnecting {
        attempt: u32,
        reason: String,
    },
    /// A transactional migration was rolled back by the transport (Data API:
    /// transaction expired) and starts over.
    Restarting {
        version: i64,
        name: String,
        reason: String,
    },
    /// A statement outlived the transport's timeout and is still running on
    /// the server; chatmigrate polls until it ends.
    StillRunning {
        version: i64,
        statement: usize,
        elapsed_s: u64,
    },
    /// A session-level SET in a no-transaction file cannot take effect on a
    /// transport without sessions (the Data API) and is skipped.
    SkippedSessionSetting {
        version: i64,
        statement: String,
    },
    /// The backend sends a statement differently, or wants it known how it
    /// behaves (Citus: create_distributed_table_concurrently for a table
    /// with rows, or that writes are blocked while rows are copied).
    Note {
        version: i64,
        message: String,
    },
    /// SIGINT or SIGTERM arrived while a statement of a no-transaction
    /// migration runs: it finishes, its progress is recorded, then `up` stops.
    Stopping {
        signal: &'static str,
        version: i64,
        statement: usize,
        total: usize,
        excerpt: String,
    },
    /// A transactional migration hit lock_timeout and is retried.
    LockRetry {
        version: i64,
        name: String,
        attempt: u32,
        of: u32,
        wait_ms: u64,
    },
}

/// One migration that ran in this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    pub transaction: TxMode,
    pub statements: usize,
    pub resumed_from: usize,
    pub out_of_order: bool,
    pub duration_ms: u64,
    /// The answer to its COMMIT (or last history write) was lost with the
    /// connection; after reconnecting, the history showed it applied.
    pub answer_lost: bool,
}

/// One migration as dry-run shows it: the exact SQL, in order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DryStep {
    pub version: i64,
    pub name: String,
    pub transaction: TxMode,
    pub sql: Vec<String>,
    /// What the backend says about how it sends them (see [`Event::Note`]).
    pub notes: Vec<String>,
}

/// The outcome of `up`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UpReport {
    pub target: String,
    pub applied: Vec<Applied>,
    /// Filled only by `--dry-run`.
    pub dry_run: Vec<DryStep>,
    pub created_database: bool,
    /// When nothing was pending up to `--target`: where the database is, for
    /// the message (it is not "up to date" with migrations above the target).
    #[serde(skip)]
    pub short_of_target: Option<ShortOfTarget>,
}

/// `up --target T` found nothing to apply up to T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortOfTarget {
    pub target: i64,
    /// The highest applied version.
    pub highest_applied: Option<i64>,
    /// Migrations not applied whose version is above the target.
    pub pending_above: usize,
}

/// Connects to the configured database; with `create_database`, creates it
/// first through the maintenance database when it does not exist. Returns
/// `None` when the database is missing and `dry_run` forbids creating it,
/// and whether this runner created the database.
async fn connect_target(
    cfg: &Config,
    first: Result<Box<dyn Backend>>,
    purpose: Purpose,
    dry_run: bool,
    events: &mut dyn FnMut(&Event),
) -> Result<(Option<Box<dyn Backend>>, bool)> {
    match first {
        Ok(b) => Ok((Some(b), false)),
        Err(Error::DatabaseMissing { .. }) if cfg.create_database => {
            // The server answered (the database is missing): a reconnect.
            let created = crate::database::create(cfg, purpose.again(), dry_run).await?;
            if dry_run {
                return Ok((None, true));
            }
            if created {
                events(&Event::CreatedDatabase {
                    name: cfg.pg.dbname.clone(),
                });
            }
            Ok((Some(backend::connect(cfg, purpose.again()).await?), created))
        }
        Err(e) => Err(e),
    }
}

/// Applies pending migrations from `cfg.source`.
///
/// The files are read on a thread while the connection is set up and the
/// history read (a no-op run pays for the slower of the two, not their
/// sum); a bad file wins over a connection error, and a missing database is
/// only created once every file has been read without error.
pub async fn up(cfg: &Config, opts: &UpOptions, events: &mut dyn FnMut(&Event)) -> Result<UpReport> {
    let (source, backend) = (cfg.source.clone(), cfg.backend);
    let loader = std::thread::spawn(move || migration::load(&source, backend));
    // A dry run only reads: it works on a replica and on a read-only session.
    let purpose = if opts.dry_run { Purpose::READ } else { Purpose::WRITE };
    let mut first = backend::connect(cfg, purpose).await;
    // The fast path's one query, while the files are still being read.
    let early = match &mut first {
        Ok(b) => Some(b.read_history_for_plan().await),
        Err(_) => None,
    };
    let loaded = loader
        .join()
        .unwrap_or_else(|panic| Err(crate::error::internal(Some("reading the migration files".into()), panic.as_ref())));
    let mut local = match loaded {
        Ok(l) => l,
        Err(e) => {
            if let Ok(b) = first {
                b.close().await;
            }
            return Err(e);
        }
    };
    let local = &mut local[..];
    if matches!(first, Err(Error::DatabaseMissing { .. })) && cfg.create_database && !opts.dry_run {
        // Every file is pending in a new database: a syntax error or a lint
        // refusal stops here, before the database is created.
        let plan = plan::plan(local, &[], &plan_options(cfg, opts))?;
        prepare_and_lint(cfg, local, &plan)?;
    }
    let (b, created) = connect_target(cfg, first, purpose, opts.dry_run, events).await?;
    let mut report = UpReport {
        target: cfg.target_display(),
        created_database: created,
        ..UpReport::default()
    };
    let Some(mut b) = b else {
        // Dry run against a database that does not exist yet.
        report.dry_run.push(DryStep {
            version: 0,
            name: "create database".into(),
            transaction: TxMode::NoTransaction,
            sql: vec![format!("CREATE DATABASE {}", quote(&cfg.pg.dbname))],
            notes: Vec::new(),
        });
        report.dry_run.extend(dry_run_empty(cfg, local, opts)?);
        return Ok(report);
    };
    let mut reconnects = 0;
    let mut carry = Carry {
        in_flight: None,
        history: early,
    };
    loop {
        let result = up_on(&mut *b, cfg, local, opts, events, &mut report, &mut carry).await;
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
                b = backend::connect(cfg, purpose.again()).await?;
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

/// The dry run of `local` against an empty history, with no connection:
/// what `up --dry-run` prints for a database that has nothing applied (the
/// backend's adaptations, which read the database, are not included).
fn dry_run_empty(cfg: &Config, local: &mut [Migration], opts: &UpOptions) -> Result<Vec<DryStep>> {
    let plan = plan::plan(local, &[], &plan_options(cfg, opts))?;
    prepare_and_lint(cfg, local, &plan)?;
    let dialect = Dialect::postgres(&cfg.history, &cfg.pg.dbname);
    Ok(dry_run(
        cfg,
        &dialect,
        cfg.backend.as_str(),
        backend::capabilities_of(cfg.backend),
        local,
        &plan,
        &[],
    ))
}

/// What `up --dry-run` prints for `cfg` on a database where nothing is
/// applied yet, computed without connecting: the configured migrations
/// (for backend `citus`, with the citus-only files), the backend's
/// transaction prelude, the statements and the history writes.
pub fn dry_run_offline(cfg: &Config, opts: &UpOptions) -> Result<UpReport> {
    let mut local = migration::load(&cfg.source, cfg.backend)?;
    Ok(UpReport {
        target: cfg.target_display(),
        dry_run: dry_run_empty(cfg, &mut local, opts)?,
        ..UpReport::default()
    })
}

/// How many times one `up` reconnects after losing its connection mid-run.
const MAX_RECONNECTS: u32 = 3;

fn plan_options(cfg: &Config, opts: &UpOptions) -> plan::Options {
    plan::Options {
        target: opts.target,
        allow_out_of_order: cfg.allow_out_of_order,
    }
}

/// Splits the files about to run and applies the error-level lint rules to
/// them (docs/lint.md). The other files of the set are split too, for the
/// rules' context (which tables exist, how Citus distributes them); one of
/// those that does not parse only gives no context.
fn prepare_and_lint(cfg: &Config, local: &mut [Migration], plan: &Plan) -> Result<()> {
    if plan.steps.is_empty() {
        return Ok(());
    }
    for s in &plan.steps {
        local[s.index].prepare()?;
    }
    for m in local.iter_mut() {
        let _ = m.prepare();
    }
    let pending: Vec<usize> = plan.steps.iter().map(|s| s.index).collect();
    lint::gate(local, &pending, &lint::Options::for_config(cfg))
}

/// Resolves to the signal's name once SIGINT or SIGTERM arrives (never, when
/// signals are not handled).
fn signal_watch(enabled: bool) -> watch::Receiver<Option<&'static str>> {
    let (tx, rx) = watch::channel(None);
    if enabled {
        tokio::spawn(async move {
            #[cfg(unix)]
            let name = {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                }
            };
            #[cfg(not(unix))]
            let name = {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            };
            let _ = tx.send(Some(name));
            // Keep the sender alive so receivers keep seeing the value.
            std::future::pending::<()>().await;
        });
    }
    rx
}

async fn signalled(rx: &mut watch::Receiver<Option<&'static str>>) -> &'static str {
    loop {
        if let Some(s) = *rx.borrow_and_update() {
            return s;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs `fut` unless a signal comes first (only where dropping `fut` is
/// harmless: waiting for the lock).
async fn or_signal<T>(
    fut: impl std::future::Future<Output = Result<T>>,
    rx: &mut watch::Receiver<Option<&'static str>>,
    applied: usize,
    stopped: &str,
) -> Result<T> {
    tokio::select! {
        r = fut => r,
        s = signalled(rx) => Err(Error::Interrupted { signal: s.into(), applied, stopped: stopped.into() }),
    }
}

/// The migration that was running when the connection was lost: the
/// history read after the reconnect tells whether it committed.
struct InFlight {
    applied: Applied,
    started: Instant,
}

/// The migration whose answer was lost with the connection: if the history
/// (written in the same transaction, or after its last statement) shows it
/// applied, it committed, and this run applied it: count it. Otherwise it is
/// kept until the history read under the lock, and then runs again.
/// What `up` hands to a pass of [`up_on`], and one pass to the next after a
/// lost connection.
struct Carry {
    /// The migration whose answer was lost with the connection.
    in_flight: Option<InFlight>,
    /// The history, read before the first pass while the files loaded.
    history: Option<Result<Vec<Row>>>,
}

fn settle_lost(in_flight: &mut Option<InFlight>, applied: &[Row], events: &mut dyn FnMut(&Event), report: &mut UpReport) {
    let Some(f) = in_flight.take_if(|f| {
        applied
            .iter()
            .any(|r| r.version == f.applied.version && r.status == Status::Applied)
    }) else {
        return;
    };
    // The time the history row holds, as for any applied migration.
    let recorded = applied
        .iter()
        .find(|r| r.version == f.applied.version)
        .map(|r| r.execution_ms.max(0) as u64);
    let a = Applied {
        duration_ms: recorded.unwrap_or_else(|| f.started.elapsed().as_millis() as u64),
        answer_lost: true,
        ..f.applied
    };
    events(&Event::Applied(a.clone()));
    report.applied.push(a);
}

async fn up_on(
    b: &mut dyn Backend,
    cfg: &Config,
    local: &mut [Migration],
    opts: &UpOptions,
    events: &mut dyn FnMut(&Event),
    report: &mut UpReport,
    carry: &mut Carry,
) -> Result<()> {
    report.target = b.target();
    events(&Event::Connected {
        target: b.target(),
        backend: b.name(),
        capabilities: b.capabilities(),
        facts: b.facts(),
    });
    let popts = plan_options(cfg, opts);
    // Fast path: one query, no lock (read already while the files loaded,
    // on the first connection). Nothing pending means nothing to do.
    let applied = match carry.history.take() {
        Some(h) => h?,
        None => b.read_history_for_plan().await?,
    };
    settle_lost(&mut carry.in_flight, &applied, events, report);
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
    prepare_and_lint(cfg, local, &plan)?;
    if opts.dry_run {
        // How the backend would send each statement, as the database is now.
        let mut adapted = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            let m = &local[step.index];
            let in_transaction = m.tx_mode() == TxMode::Transaction;
            let mut per = Vec::with_capacity(m.statements.len());
            for s in &m.statements {
                per.push(b.adapt(s, in_transaction).await?);
            }
            adapted.push(per);
        }
        let dialect = Dialect::postgres(&cfg.history, &cfg.pg.dbname);
        report.dry_run = dry_run(cfg, &dialect, b.name(), b.capabilities(), local, &plan, &adapted);
        return Ok(());
    }

    // Signals are caught only from here on: a no-op run installs nothing.
    let mut sig = signal_watch(opts.handle_signals);
    let nothing = "nothing was applied";
    or_signal(b.lock(cfg.lock_wait), &mut sig, 0, nothing).await?;
    b.ensure_history().await?;
    // Another runner may have applied some while we waited (or the lost
    // connection's session committed while it held the lock).
    let applied = b.read_history_for_plan().await?;
    settle_lost(&mut carry.in_flight, &applied, events, report);
    let plan = plan::plan(local, &applied, &popts)?;
    prepare_and_lint(cfg, local, &plan)?;

    let last = plan.steps.len().saturating_sub(1);
    for (i, step) in plan.steps.iter().enumerate() {
        let m = &local[step.index];
        let left = plan.steps.len() - i;
        if let Some(s) = *sig.borrow() {
            return Err(Error::Interrupted {
                signal: s.into(),
                applied: report.applied.len(),
                stopped: format!("{left} pending migration(s) not started"),
            });
        }
        let started = Instant::now();
        // What the history row holds once it is applied (`status` shows it).
        let duration_ms;
        carry.in_flight = Some(InFlight {
            applied: Applied {
                version: m.version,
                name: m.name.clone(),
                transaction: m.tx_mode(),
                statements: m.statements.len(),
                resumed_from: step.resume_from,
                out_of_order: step.out_of_order,
                duration_ms: 0,
                answer_lost: false,
            },
            started,
        });
        match m.tx_mode() {
            TxMode::Transaction => {
                events(&Event::Applying {
                    version: m.version,
                    name: m.name.clone(),
                    tx: TxMode::Transaction,
                });
                let outcome = run_transactional(b, cfg, m, step, i == last, events, &mut sig).await;
                let ms = match outcome {
                    Err(Error::Interrupted { signal, .. }) => {
                        return Err(Error::Interrupted {
                            signal,
                            applied: report.applied.len(),
                            stopped: format!(
                                "V{} {} was rolled back; {} later migration(s) not started",
                                m.version,
                                m.name,
                                left - 1
                            ),
                        })
                    }
                    outcome => outcome?,
                };
                duration_ms = ms;
            }
            TxMode::NoTransaction => {
                if step.resume_from > 0 {
                    events(&Event::Resuming {
                        version: m.version,
                        name: m.name.clone(),
                        from: step.resume_from,
                        total: m.statements.len(),
                    });
                } else {
                    events(&Event::Applying {
                        version: m.version,
                        name: m.name.clone(),
                        tx: TxMode::NoTransaction,
                    });
                }
                let earlier = applied.iter().find(|r| r.version == m.version);
                let resumed = earlier.is_some();
                let (done, ms) = run_statements(b, m, step, resumed, events, &sig, &cfg.progress).await?;
                // The history adds each statement's time to the earlier runs'.
                duration_ms = earlier.map_or(0, |r| r.execution_ms.max(0) as u64) + ms;
                if done < m.statements.len() {
                    return Err(Error::Interrupted {
                        signal: sig.borrow().unwrap_or("SIGINT").into(),
                        applied: report.applied.len(),
                        stopped: format!(
                            "V{} {} stopped after statement {done} of {} (recorded as partial; `up` resumes it); {} later migration(s) not started",
                            m.version,
                            m.name,
                            m.statements.len(),
                            left - 1
                        ),
                    });
                }
            }
        }
        carry.in_flight = None;
        let a = Applied {
            version: m.version,
            name: m.name.clone(),
            transaction: m.tx_mode(),
            statements: m.statements.len(),
            resumed_from: step.resume_from,
            out_of_order: step.out_of_order,
            duration_ms,
            answer_lost: false,
        };
        events(&Event::Applied(a.clone()));
        report.applied.push(a);
    }
    Ok(())
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

async fn run_transactional(
    b: &mut dyn Backend,
    cfg: &Config,
    m: &Migration,
    step: &Step,
    last: bool,
    events: &mut dyn FnMut(&Event),
    sig: &mut watch::Receiver<Option<&'static str>>,
) -> Result<u64> {
    // The backend sends them its own way (the Data API: one call, which
    // also holds the lease row for the transaction).
    let prelude = prelude(cfg, m, last);
    let mut adapted = Vec::with_capacity(m.statements.len());
    for s in &m.statements {
        let a = b.adapt(s, true).await?;
        if let Some(note) = a.note {
            events(&Event::Note {
                version: m.version,
                message: note,
            });
        }
        adapted.push(a.sql);
    }
    let statements: Vec<&str> = m
        .statements
        .iter()
        .zip(&adapted)
        .map(|(s, a)| a.as_deref().unwrap_or(s.sql.as_str()))
        .collect();
    let row = Row::new(m, b.name(), Status::Applied, m.statements.len(), step.out_of_order);
    let attempts = cfg.lock_retries + 1;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
    let mut restarted = false;
    let mut attempt = 0;
    while attempt < attempts {
        attempt += 1;
        let canceller = b.canceller();
        let mut interrupted = None;
        let result = {
            let fut = b.run_transaction(&prelude, &statements, &row);
            tokio::pin!(fut);
            tokio::select! {
                r = &mut fut => r,
                s = signalled(sig) => {
                    // Cancel the statement in flight: the server rolls the
                    // transaction back (unless COMMIT already ran).
                    interrupted = Some(s);
                    if let Some(cancel) = &canceller {
                        cancel().await;
                    }
                    // A transport that cannot cancel (the Data API) rolls
                    // back after the statement in flight: say what is waited for.
                    retry::report_while(fut, &cfg.progress, Instant::now(), |elapsed| retry::Waiting {
                        what: format!("V{} {} to roll back", m.version, m.name),
                        elapsed,
                        attempts: 0,
                        cause: format!("{s}: the statement in flight ends first"),
                    })
                    .await
                }
            }
        };
        if let Some(s) = interrupted {
            if let Ok(ms) = result {
                // COMMIT won the race: it is applied and recorded.
                return Ok(ms.max(0) as u64);
            }
            return Err(Error::Interrupted {
                signal: s.into(),
                applied: 0,
                stopped: String::new(),
            });
        }
        match result {
            // The time the history row holds, which `status` shows too.
            Ok(ms) => return Ok(ms.max(0) as u64),
            Err(ExecError::Statement { error, .. }) if error.code == "55P03" && attempt < attempts => {
                let wait = backoff.delay();
                events(&Event::LockRetry {
                    version: m.version,
                    name: m.name.clone(),
                    attempt,
                    of: attempts,
                    wait_ms: wait.as_millis() as u64,
                });
                tokio::time::sleep(wait).await;
            }
            Err(ExecError::Statement { index, error }) if error.code == "55P03" => {
                let i = index;
                let rows = b.query(&Dialect::lock_blockers(&sql::tables(&m.sql))).await.unwrap_or_default();
                let blockers: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        let f = |k: usize| r.get(k).cloned().flatten().unwrap_or_default();
                        format!("pid {} ({}, {}) holds {} on {}: {}", f(0), f(1), f(2), f(5), f(4), f(3))
                    })
                    .collect();
                return Err(Error::LockNotAvailable {
                    location: m.location(i, 0),
                    version: m.version,
                    attempts,
                    blockers: if blockers.is_empty() {
                        String::new()
                    } else {
                        format!("; blocking: {}", blockers.join("; "))
                    },
                });
            }
            Err(ExecError::Statement { index, error }) => {
                let (i, offset) = (index, error.offset.unwrap_or(0));
                return Err(Error::Migration {
                    location: m.location(i, offset),
                    version: m.version,
                    error: Box::new(error),
                    transactional: true,
                });
            }
            // The transport ended the transaction (Data API: it expired):
            // nothing was committed, so it may start over once.
            Err(ExecError::RolledBack { message, retry: true }) if !restarted => {
                restarted = true;
                attempt -= 1;
                events(&Event::Restarting {
                    version: m.version,
                    name: m.name.clone(),
                    reason: message,
                });
            }
            // Whether COMMIT happened is unknown: `up` reconnects and the
            // history (written in the same transaction) tells.
            Err(ExecError::Lost { message }) => {
                return Err(Error::ConnectionLost {
                    context: format!("V{} {}", m.version, m.name),
                    message,
                })
            }
            Err(e) => return Err(e.into_error(&format!("{} (version {})", m.path, m.version))),
        }
    }
    unreachable!("the last attempt always returns")
}

/// Runs a non-transactional migration statement by statement, recording
/// progress after each so an interrupted run resumes at the right place.
/// Returns how many statements are done (fewer than all after a signal),
/// and the time of this run's statements, which the history adds to the
/// row's.
async fn run_statements(
    b: &mut dyn Backend,
    m: &Migration,
    step: &Step,
    resumed: bool,
    events: &mut dyn FnMut(&Event),
    sig: &watch::Receiver<Option<&'static str>>,
    progress: &retry::Progress,
) -> Result<(usize, u64)> {
    let total = m.statements.len();
    let mut ms_total = 0u64;
    let caps = b.capabilities();
    let mut row = Row::new(m, b.name(), Status::Partial, step.resume_from, step.out_of_order);
    let (mut set, mut reset) = session_timeouts(m);
    if !caps.session_state {
        // The file's timeout directives would be session SETs: say they
        // cannot apply, as for a SET written in the file.
        for s in set.drain(..) {
            events(&Event::SkippedSessionSetting {
                version: m.version,
                statement: s,
            });
        }
        reset.clear();
    }
    for s in &set {
        b.execute(s).await.map_err(|e| e.into_error(&format!("{}: {s}", m.path)))?;
    }
    if step.resume_from == 0 {
        b.write_history(&row).await?;
    } else if caps.session_state {
        // Session settings (SET maintenance_work_mem ...) made by the
        // statements already done were lost with the old session.
        for s in &m.statements[..step.resume_from] {
            if matches!(s.node, Some(pg_query::NodeEnum::VariableSetStmt(_))) {
                b.execute(&s.sql)
                    .await
                    .map_err(|e| e.into_error(&format!("{}: re-applying a session setting", m.path)))?;
            }
        }
    }
    for i in step.resume_from..total {
        if i > step.resume_from && sig.borrow().is_some() {
            // Stop between statements; progress is already recorded.
            return Ok((i, ms_total));
        }
        let s = &m.statements[i];
        if !caps.session_state && is_session_setting(s) {
            // SET maintenance_work_mem etc. would apply to one Data API call
            // only: say so instead of pretending it took effect.
            events(&Event::SkippedSessionSetting {
                version: m.version,
                statement: s.excerpt(),
            });
            row.statements_done = (i + 1) as i32;
            if i + 1 == total {
                row.status = Status::Applied;
                // Adds nothing to the time the history holds.
                row.execution_ms = 0;
                b.write_history(&row).await?;
            }
            continue;
        }
        // A runner killed during this statement (a resumed migration) may
        // have left it running on the server, where a Data API statement
        // outlives its call: wait for it and read its outcome, never send
        // it a second time next to it.
        let abandoned = match resumed && i == step.resume_from && !caps.statements_die_with_connection {
            true => still_running_elsewhere(b, &s.sql).await?,
            false => None,
        };
        let (started, result) = if let Some((pid, secs)) = abandoned {
            events(&Event::Note {
                version: m.version,
                message: format!(
                    "statement {} is still running on the server (process {pid}, for {secs} s), sent by an earlier runner that stopped: waiting for it to end, then reading its outcome from the catalog",
                    i + 1
                ),
            });
            let started = Instant::now();
            (started, await_statement(b, m, i, pid, started, events).await)
        } else {
            if let Some((name, schema)) = sql::concurrent_index(s) {
                // A failed or killed CONCURRENTLY build leaves an INVALID index
                // that IF NOT EXISTS would silently accept: drop it first.
                let found = b.query(&Dialect::invalid_index(&name, schema.as_deref())).await?;
                if let Some(qualified) = found.first().and_then(|r| r.first().cloned().flatten()) {
                    b.execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}"))
                        .await
                        .map_err(|e| e.into_error(&format!("{}: dropping the invalid index {qualified}", m.path)))?;
                    events(&Event::DroppedInvalidIndex {
                        version: m.version,
                        index: qualified,
                    });
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
            let mut result = {
                // A signal does not cut a statement short here: it finishes,
                // its progress is recorded, and `up` stops. Say so at once,
                // and keep saying what is waited for until it ends.
                let mut rx = sig.clone();
                let fut = b.execute(adapted.sql.as_deref().unwrap_or(&s.sql));
                tokio::pin!(fut);
                tokio::select! {
                    r = &mut fut => r,
                    signal = signalled(&mut rx) => {
                        events(&Event::Stopping {
                            signal,
                            version: m.version,
                            statement: i + 1,
                            total,
                            excerpt: s.excerpt(),
                        });
                        let since = Instant::now();
                        retry::report_while(fut, progress, since, |elapsed| retry::Waiting {
                            what: format!("V{} statement {} of {total} to finish", m.version, i + 1),
                            elapsed,
                            attempts: 0,
                            cause: format!("{signal}: stopping after it"),
                        })
                        .await
                    }
                }
            };
            if let Err(ExecError::StillRunning { connection_id }) = result {
                result = await_statement(b, m, i, connection_id, started, events).await;
            } else if let Err(ExecError::Lost { message }) = result {
                result = resolve_lost_statement(b, m, i, message).await;
            }
            (started, result)
        };
        row.execution_ms = started.elapsed().as_millis() as i64;
        ms_total += row.execution_ms as u64;
        match result {
            Ok(()) => {
                row.statements_done = (i + 1) as i32;
                row.status = if i + 1 == total { Status::Applied } else { Status::Partial };
                row.error = None;
                b.write_history(&row).await?;
            }
            Err(ExecError::Statement { error, .. }) => {
                let location = m.location(i, error.offset.unwrap_or(0));
                row.status = Status::Failed;
                row.statements_done = i as i32;
                row.error = Some(format!("statement {} at {location}: {error}", i + 1));
                b.write_history(&row).await?;
                return Err(Error::Migration {
                    location,
                    version: m.version,
                    error: Box::new(error),
                    transactional: false,
                });
            }
            Err(ExecError::Lost { message }) => {
                // The session died with the statement (a direct connection):
                // `up` reconnects and resumes here.
                return Err(Error::ConnectionLost {
                    context: format!("V{} {} statement {}", m.version, m.name, i + 1),
                    message,
                });
            }
            Err(e) => return Err(e.into_error(&format!("{} statement {}", m.path, i + 1))),
        }
    }
    for s in &reset {
        b.execute(s).await.map_err(|e| e.into_error(&format!("{}: {s}", m.path)))?;
    }
    Ok((total, ms_total))
}

/// A session-level `SET`/`RESET` (not `SET LOCAL`).
fn is_session_setting(s: &sql::Statement) -> bool {
    matches!(&s.node, Some(pg_query::NodeEnum::VariableSetStmt(v)) if !v.is_local)
}

/// A statement outside a transaction outlived the transport's timeout (Data
/// API `StatementTimeoutException` with continueAfterTimeout): it goes on
/// running on the server. Poll until that server process is idle, then read
/// the outcome from the catalog; never send the statement again.
async fn await_statement(
    b: &mut dyn Backend,
    m: &Migration,
    i: usize,
    pid: i64,
    started: Instant,
    events: &mut dyn FnMut(&Event),
) -> Result<(), ExecError> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut reported = Instant::now() - Duration::from_secs(10);
    loop {
        let rows = b.query(&Dialect::statement_running(pid)).await.map_err(ExecError::transport)?;
        let running = rows.first().and_then(|r| r.first().cloned().flatten()).is_some_and(|n| n != "0");
        if !running {
            break;
        }
        if reported.elapsed() >= Duration::from_secs(5) {
            reported = Instant::now();
            events(&Event::StillRunning {
                version: m.version,
                statement: i + 1,
                elapsed_s: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(backoff.delay()).await;
    }
    statement_outcome(b, m, i, "it outlived the Data API's statement timeout and ended on the server").await
}

/// The server process (and seconds running) of another session of this
/// database that is running exactly `statement`, if any.
async fn still_running_elsewhere(b: &mut dyn Backend, statement: &str) -> Result<Option<(i64, u64)>> {
    let rows = b.query(&Dialect::statement_abandoned(statement)).await?;
    Ok(rows.first().and_then(|r| {
        let pid = r.first().cloned().flatten()?.parse().ok()?;
        let secs = r.get(1).cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        Some((pid, secs))
    }))
}

/// The answer to a statement outside a transaction never came (Data API
/// 500/504, a hung response): if the transport's statements can outlive
/// the call, read the outcome from the catalog instead of re-sending.
async fn resolve_lost_statement(b: &mut dyn Backend, m: &Migration, i: usize, message: String) -> Result<(), ExecError> {
    if b.capabilities().statements_die_with_connection {
        return Err(ExecError::Lost { message });
    }
    statement_outcome(b, m, i, &format!("the Data API did not answer ({message})")).await
}

/// What the catalog says about statement `i` of `m` after its call ended
/// without an answer: a CONCURRENTLY index is valid (done), invalid (failed:
/// dropped and rebuilt on the next run) or absent; anything else cannot be
/// checked and is reported as unknown.
async fn statement_outcome(b: &mut dyn Backend, m: &Migration, i: usize, why: &str) -> Result<(), ExecError> {
    let s = &m.statements[i];
    let unknown = |detail: &str| {
        ExecError::transport(Error::OutcomeUnknown {
            context: format!("{} statement {} (`{}`)", m.location(i, 0), i + 1, s.excerpt()),
            message: format!("{why}; {detail}"),
        })
    };
    let Some((name, schema)) = sql::concurrent_index(s) else {
        return Err(unknown("chatmigrate cannot check this kind of statement in the catalog"));
    };
    let rows = b
        .query(&Dialect::index_state(&name, schema.as_deref()))
        .await
        .map_err(ExecError::transport)?;
    match rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() {
        Some("valid") => Ok(()),
        Some(_) => Err(ExecError::Statement {
            index: 0,
            error: DbError {
                code: "XX000".into(),
                message: format!("the index build ended with index {name} INVALID (it is dropped and rebuilt on the next run)"),
                detail: Some(why.to_string()),
                hint: None,
                offset: None,
            },
        }),
        None => Err(unknown(&format!("index {name} does not exist"))),
    }
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

/// The exact statements `up` would send, in order, with the transaction
/// boundaries and the history writes. `adapted[step][statement]` is how the
/// backend sends a statement (empty: as written, no notes).
/// On a transport without sessions (the Data API) it mirrors what `up`
/// does there: settings folded into one call, session SETs shown as
/// skipped comments.
fn dry_run(
    cfg: &Config,
    dialect: &Dialect,
    backend: &str,
    caps: backend::Capabilities,
    local: &[Migration],
    plan: &Plan,
    adapted: &[Vec<backend::Adapted>],
) -> Vec<DryStep> {
    let skipped = |s: &str| format!("-- skipped on {backend} (a session setting does not outlive one call): {s}");
    let mut out = Vec::new();
    let last = plan.steps.len().saturating_sub(1);
    for (i, step) in plan.steps.iter().enumerate() {
        let m = &local[step.index];
        let sent = |k: usize| -> String {
            adapted
                .get(i)
                .and_then(|a| a.get(k))
                .and_then(|a| a.sql.clone())
                .unwrap_or_else(|| m.statements[k].sql.clone())
        };
        let mut notes = Vec::new();
        let mut sql = Vec::new();
        match m.tx_mode() {
            TxMode::Transaction => {
                sql.push("BEGIN".to_string());
                let p = prelude(cfg, m, i == last);
                if caps.lock == backend::LockKind::LeaseRow {
                    // One call: the settings, and the lease row held for the transaction.
                    sql.push(dialect.transaction_guard(&p, "<this run's lease owner>"));
                } else {
                    sql.extend(p);
                }
                sql.extend((0..m.statements.len()).map(sent));
                notes.extend(adapted.get(i).into_iter().flatten().filter_map(|a| a.note.clone()));
                let row = Row::new(m, backend, Status::Applied, m.statements.len(), step.out_of_order);
                sql.push(dialect.upsert_history_in_transaction(&row));
                sql.push("COMMIT".to_string());
            }
            TxMode::NoTransaction => {
                let mut row = Row::new(m, backend, Status::Partial, step.resume_from, step.out_of_order);
                let (set, reset) = session_timeouts(m);
                if caps.session_state {
                    sql.extend(set);
                } else {
                    sql.extend(set.iter().map(|s| skipped(s)));
                }
                if step.resume_from == 0 {
                    sql.push(dialect.upsert_history(&history_values(&row, Value::Expr("<elapsed ms>"))));
                }
                for (k, s) in m.statements.iter().enumerate().skip(step.resume_from) {
                    if !caps.session_state && is_session_setting(s) {
                        sql.push(skipped(&s.sql));
                    } else {
                        sql.push(sent(k));
                    }
                    notes.extend(adapted.get(i).and_then(|a| a.get(k)).and_then(|a| a.note.clone()));
                    row.statements_done = (k + 1) as i32;
                    row.status = if k + 1 == m.statements.len() {
                        Status::Applied
                    } else {
                        Status::Partial
                    };
                    sql.push(dialect.upsert_history(&history_values(&row, Value::Expr("<elapsed ms>"))));
                }
                if caps.session_state {
                    sql.extend(reset);
                }
            }
        }
        out.push(DryStep {
            version: m.version,
            name: m.name.clone(),
            transaction: m.tx_mode(),
            sql,
            notes,
        });
    }
    out
}

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
    let (source, backend) = (cfg.source.clone(), cfg.backend);
    let loader = std::thread::spawn(move || migration::load(&source, backend));
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
            let target = b.target();
            let facts = b.facts();
            b.close().await;
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
