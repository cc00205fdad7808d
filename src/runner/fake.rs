//! An in-memory backend for the runner's unit tests: a "server" that keeps
//! a history table, a lock and a log of everything sent to it (rendered as
//! `backend::wire` renders it for a real backend), shared by every
//! connection the runner makes, and failures scripted by the test:
//! connections lost before or after a COMMIT, lock_timeout, a failing
//! statement, a lost lease, a statement that outlives its call, a signal
//! while a statement runs.
//!
//! A failure is keyed on a `marker`: the first request (a transaction, or
//! one statement) whose SQL contains it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::backend::wire::Wire;
use crate::backend::{Backend, Canceller, Capabilities, ExecError, LockKind, Purpose};
use crate::config::Config;
use crate::dialect::{ToolSql, Value};
use crate::error::{DbError, Error, Result};
use crate::history::Row;

use super::signals::Signals;
use super::Outside;

/// The capabilities of a direct connection (a session, a session advisory
/// lock, statements that die with their connection).
pub const SESSION: Capabilities = crate::backend::postgres::CAPABILITIES;
/// Those of the Data API (no session, a lease row, statements that outlive
/// their calls).
pub const NO_SESSION: Capabilities = crate::backend::rds_data::CAPABILITIES;

/// The lease owner of every fake connection (fenced writes show it).
pub const OWNER: &str = "fake-owner";

/// A scripted failure.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The connection is lost while the transaction holding `marker` runs:
    /// before its COMMIT (nothing of it stays) or after (it committed; its
    /// answer is lost).
    LoseTransaction { marker: &'static str, committed: bool },
    /// The transaction holding `marker` fails on lock_timeout, `times` times.
    LockTimeout { marker: &'static str, times: u32 },
    /// The request holding `marker` fails with SQLSTATE `code`.
    Fail { marker: &'static str, code: &'static str },
    /// The transport rolls back the transaction holding `marker` once (the
    /// Data API: it expired).
    RollBack { marker: &'static str },
    /// The lease is lost as the request holding `marker` arrives: it and
    /// every later write are refused.
    LoseLease { marker: &'static str },
    /// The connection dies during the statement holding `marker`
    /// (outside a transaction), before it ran.
    LoseStatement { marker: &'static str },
    /// SIGINT arrives while the request holding `marker` runs.
    Signal { marker: &'static str },
    /// The database is missing; CREATE DATABASE answers `code` (None: it
    /// creates it), `busy` times "template busy" (55006) first.
    Missing { code: Option<&'static str>, busy: u32 },
    /// The catalog says the statement holding `marker` is still running in
    /// server process 4242 (left by an earlier runner), for `polls` polls,
    /// and that its index ended valid.
    Abandoned { marker: &'static str, polls: u32 },
}

impl Fault {
    fn marker(&self) -> Option<&'static str> {
        match self {
            Fault::LoseTransaction { marker, .. }
            | Fault::LockTimeout { marker, .. }
            | Fault::Fail { marker, .. }
            | Fault::RollBack { marker }
            | Fault::LoseLease { marker }
            | Fault::LoseStatement { marker }
            | Fault::Signal { marker }
            | Fault::Abandoned { marker, .. } => Some(marker),
            Fault::Missing { .. } => None,
        }
    }
}

/// What the fake server holds.
pub struct Server {
    pub caps: Capabilities,
    pub history: BTreeMap<i64, Row>,
    /// Every request, in order: `BEGIN`/`COMMIT` and what is between them,
    /// statements, history writes, reads.
    pub sent: Vec<String>,
    /// Connections made, the maintenance ones included.
    pub connections: u32,
    /// Where `sent` was when the lock was last taken: what a run sends
    /// for its migrations comes after (the gate's reads come before).
    pub locked_at: usize,
    pub lock: Option<u32>,
    pub lease_lost: bool,
    pub exists: bool,
    pub faults: Vec<Fault>,
    signal: watch::Sender<Option<&'static str>>,
}

/// The fake server and its connections; also the runner's [`Outside`].
#[derive(Clone)]
pub struct Fake(Arc<Mutex<Server>>);

impl Fake {
    pub fn new(caps: Capabilities, faults: Vec<Fault>) -> Fake {
        let (signal, _) = watch::channel(None);
        let exists = !faults.iter().any(|f| matches!(f, Fault::Missing { .. }));
        Fake(Arc::new(Mutex::new(Server {
            caps,
            history: BTreeMap::new(),
            sent: Vec::new(),
            connections: 0,
            locked_at: 0,
            lock: None,
            lease_lost: false,
            exists,
            faults,
            signal,
        })))
    }

    pub fn server(&self) -> MutexGuard<'_, Server> {
        self.0.lock().unwrap()
    }

    /// Forgets a signal sent by [`Fault::Signal`] (the next run starts clean).
    pub fn reset_signal(&self) {
        self.server().signal.send_replace(None);
    }

    fn open(&self, cfg: &Config, maintenance: bool) -> Result<Box<dyn Backend>> {
        let mut s = self.server();
        if !maintenance && !s.exists {
            return Err(Error::DatabaseMissing {
                name: "fake".into(),
                target: "fake".into(),
            });
        }
        s.connections += 1;
        Ok(Box::new(Conn {
            fake: self.clone(),
            id: s.connections,
            alive: true,
            dialect: ToolSql::new(&cfg.history, &cfg.pg.dbname),
        }))
    }
}

#[async_trait]
impl Outside for Fake {
    async fn connect(&self, cfg: &Config, _purpose: Purpose) -> Result<Box<dyn Backend>> {
        self.open(cfg, false)
    }

    async fn maintenance(&self, cfg: &Config, _purpose: Purpose) -> Result<Box<dyn Backend>> {
        self.open(cfg, true)
    }

    fn signals(&self, _handle: bool) -> Signals {
        self.server().signal.subscribe()
    }
}

/// One connection to the fake server.
struct Conn {
    fake: Fake,
    id: u32,
    alive: bool,
    dialect: ToolSql,
}

impl Conn {
    fn server(&self) -> MutexGuard<'_, Server> {
        self.fake.server()
    }

    /// The first fault whose marker `sql` holds and that `pick` accepts;
    /// `pick` may update it (counts), returning whether it fires.
    fn fault(&self, sql: &str, pick: impl FnMut(&mut Fault) -> Option<Fault>) -> Option<Fault> {
        let mut s = self.server();
        s.faults
            .iter_mut()
            .filter(|f| f.marker().is_some_and(|m| sql.contains(m)))
            .find_map(pick)
    }

    /// Takes the first fault whose marker `sql` holds and that `want`
    /// accepts (it fires once).
    fn once(&self, sql: &str, want: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut s = self.server();
        let pos = s
            .faults
            .iter()
            .position(|f| f.marker().is_some_and(|m| sql.contains(m)) && want(f))?;
        Some(s.faults.remove(pos))
    }

    fn wire_owner(&self) -> Option<Value> {
        (self.server().caps.lock == LockKind::LeaseRow).then(|| Value::Text(OWNER.into()))
    }

    fn lost(&mut self) -> ExecError {
        self.alive = false;
        let mut s = self.server();
        if s.lock == Some(self.id) {
            // A session's advisory lock ends with it.
            s.lock = None;
        }
        ExecError::Lost {
            message: "connection reset by peer".into(),
        }
    }

    fn check_alive(&self) -> Result<(), Box<ExecError>> {
        if self.alive {
            Ok(())
        } else {
            Err(Box::new(ExecError::Lost {
                message: "the connection is closed".into(),
            }))
        }
    }

    fn lease_lost(&self, sql: &str) -> bool {
        if self.once(sql, |f| matches!(f, Fault::LoseLease { .. })).is_some() {
            self.server().lease_lost = true;
        }
        self.server().lease_lost
    }

    /// Sends SIGINT while the request holding a [`Fault::Signal`] marker
    /// runs, and lets the runner see it before the request ends.
    async fn signal_on(&self, sql: &str) {
        if self.once(sql, |f| matches!(f, Fault::Signal { .. })).is_some() {
            self.server().signal.send_replace(Some("SIGINT"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn db_error(code: &str, message: &str) -> DbError {
    DbError {
        fix: None,
        code: code.into(),
        message: message.into(),
        detail: None,
        hint: None,
        offset: None,
    }
}

fn to_error(e: ExecError, context: &str) -> Error {
    e.into_error(context)
}

#[async_trait]
impl Backend for Conn {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> Capabilities {
        self.server().caps
    }

    fn target(&self) -> String {
        "fake".into()
    }

    async fn lock(&mut self, _wait: Duration) -> Result<()> {
        self.check_alive().map_err(|e| to_error(*e, "lock"))?;
        let mut s = self.server();
        match s.lock {
            Some(other) if other != self.id => Err(Error::Other(format!("the lock is held by connection {other}"))),
            _ => {
                s.lock = Some(self.id);
                s.lease_lost = false;
                s.locked_at = s.sent.len();
                Ok(())
            }
        }
    }

    async fn unlock(&mut self) -> Result<()> {
        self.check_alive().map_err(|e| to_error(*e, "unlock"))?;
        let mut s = self.server();
        if s.lock == Some(self.id) {
            s.lock = None;
        }
        Ok(())
    }

    async fn ensure_history(&mut self) -> Result<()> {
        self.check_alive().map_err(|e| to_error(*e, "ensure_history"))
    }

    async fn ensure_repeatables(&mut self) -> Result<()> {
        self.check_alive().map_err(|e| to_error(*e, "ensure_repeatables"))
    }

    async fn read_history(&mut self) -> Result<Vec<Row>> {
        self.check_alive().map_err(|e| to_error(*e, "read_history"))?;
        Ok(self.server().history.values().cloned().collect())
    }

    async fn write_history(&mut self, row: &Row) -> Result<()> {
        self.check_alive().map_err(|e| to_error(*e, "write_history"))?;
        let owner = self.wire_owner();
        let caps = self.capabilities();
        let sql = Wire {
            dialect: &self.dialect,
            lock: caps.lock,
            owner: owner.as_ref(),
        }
        .history(row, Value::Int(row.execution_ms));
        if self.lease_lost(&sql) {
            return Err(Error::LeaseLost {
                message: "another runner holds it now; the history row was not written".into(),
            });
        }
        let mut s = self.server();
        s.sent.push(sql);
        let mut row = row.clone();
        if let Some(old) = s.history.get(&row.version) {
            row.execution_ms += old.execution_ms;
        }
        s.history.insert(row.version, row);
        Ok(())
    }

    async fn accept_file(&mut self, _version: i64, _name: &str, _checksum: &str) -> Result<()> {
        Ok(())
    }

    async fn delete_history(&mut self, version: i64) -> Result<()> {
        self.server().history.remove(&version);
        Ok(())
    }

    async fn log_event(&mut self, _v: i64, _a: &str, _o: Option<&str>, _n: Option<&str>, _d: Option<&str>) -> Result<()> {
        Ok(())
    }

    async fn run_transaction(&mut self, settings: &[String], statements: &[&str], row: &Row) -> Result<i64, ExecError> {
        self.check_alive().map_err(|e| *e)?;
        let owner = self.wire_owner();
        let caps = self.capabilities();
        let t = Wire {
            dialect: &self.dialect,
            lock: caps.lock,
            owner: owner.as_ref(),
        }
        .transaction(settings, statements, row);
        let whole = t.parts().join(";\n");
        self.signal_on(&whole).await;
        if self.lease_lost(&whole) {
            return Err(ExecError::transport(Error::LeaseLost {
                message: "another runner holds it now; nothing of this migration ran".into(),
            }));
        }
        self.server().sent.extend(t.parts().into_iter().map(str::to_string));
        let timeout = self.fault(&whole, |f| match f {
            Fault::LockTimeout { times, .. } if *times > 0 => {
                *times -= 1;
                Some(f.clone())
            }
            _ => None,
        });
        if timeout.is_some() {
            return Err(ExecError::Statement {
                index: 0,
                error: db_error("55P03", "canceling statement due to lock timeout"),
            });
        }
        if let Some(Fault::Fail { code, marker }) = self.once(&whole, |f| matches!(f, Fault::Fail { .. })) {
            let index = statements.iter().position(|s| s.contains(marker)).unwrap_or(0);
            return Err(ExecError::Statement {
                index,
                error: db_error(code, "the fake server refused it"),
            });
        }
        if self.once(&whole, |f| matches!(f, Fault::RollBack { .. })).is_some() {
            return Err(ExecError::RolledBack {
                message: "Transaction expired".into(),
                retry: true,
            });
        }
        let lose = self.once(&whole, |f| matches!(f, Fault::LoseTransaction { .. }));
        if let Some(Fault::LoseTransaction { committed: false, .. }) = lose {
            return Err(self.lost());
        }
        let mut committed = row.clone();
        committed.execution_ms = 1;
        self.server().history.insert(row.version, committed);
        if lose.is_some() {
            return Err(self.lost());
        }
        // The time the row records, as a server's RETURNING gives it.
        Ok(1)
    }

    async fn execute(&mut self, statement: &str) -> Result<(), ExecError> {
        self.check_alive().map_err(|e| *e)?;
        if statement.starts_with("CREATE DATABASE") {
            let mut s = self.server();
            s.sent.push(statement.to_string());
            let missing = s.faults.iter_mut().find_map(|f| match f {
                Fault::Missing { code, busy } => Some((*code, busy)),
                _ => None,
            });
            let code = match missing {
                Some((_, busy)) if *busy > 0 => {
                    *busy -= 1;
                    return Err(ExecError::Statement {
                        index: 0,
                        error: db_error("55006", "source database \"template1\" is being accessed by other users"),
                    });
                }
                Some((code, _)) => code,
                None => None,
            };
            // Created: by this runner, or by another one just before.
            s.exists = true;
            return match code {
                Some(code) => Err(ExecError::Statement {
                    index: 0,
                    error: db_error(code, "database \"fake\" already exists"),
                }),
                None => Ok(()),
            };
        }
        self.signal_on(statement).await;
        if self.lease_lost(statement) {
            return Err(ExecError::transport(Error::LeaseLost {
                message: "it was not renewed within lease_ttl".into(),
            }));
        }
        self.server().sent.push(statement.to_string());
        if let Some(Fault::Fail { code, .. }) = self.once(statement, |f| matches!(f, Fault::Fail { .. })) {
            return Err(ExecError::Statement {
                index: 0,
                error: db_error(code, "the fake server refused it"),
            });
        }
        if let Some(Fault::LoseStatement { .. }) = self.once(statement, |f| matches!(f, Fault::LoseStatement { .. })) {
            return Err(self.lost());
        }
        Ok(())
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        self.check_alive().map_err(|e| to_error(*e, "query"))?;
        self.server().sent.push(sql.to_string());
        let cell = |v: &str| vec![vec![Some(v.to_string())]];
        if sql.contains("pg_stat_progress_create_index") {
            // No index build reports progress.
            return Ok(Vec::new());
        }
        if sql.contains("FROM pg_locks") {
            return Ok(vec![[
                "77",
                "psql",
                "idle in transaction",
                "LOCK TABLE t",
                "t",
                "AccessExclusiveLock",
            ]
            .iter()
            .map(|c| Some(c.to_string()))
            .collect()]);
        }
        if sql.contains("a.pid <> pg_backend_pid()") {
            // Is the resumed statement still running elsewhere?
            let hit = self.fault(sql, |f| matches!(f, Fault::Abandoned { .. }).then(|| f.clone()));
            return Ok(match hit {
                Some(_) => vec![vec![Some("4242".into()), Some("30".into())]],
                None => Vec::new(),
            });
        }
        if sql.contains("count(*)::text FROM pg_stat_activity") {
            let mut s = self.server();
            for f in s.faults.iter_mut() {
                if let Fault::Abandoned { polls, .. } = f {
                    if *polls > 0 {
                        *polls -= 1;
                        return Ok(cell("1"));
                    }
                }
            }
            return Ok(cell("0"));
        }
        if sql.contains("THEN 'valid' ELSE 'invalid'") {
            return Ok(cell("valid"));
        }
        if sql.contains("FROM pg_database") {
            return Ok(if self.server().exists { cell("1") } else { Vec::new() });
        }
        Ok(Vec::new())
    }

    async fn database_exists(&mut self, _name: &str) -> Result<bool> {
        Ok(self.server().exists)
    }

    fn canceller(&self) -> Option<Canceller> {
        None
    }

    async fn close(self: Box<Self>) {}
}
