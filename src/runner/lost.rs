//! When the answer never came: what happened to a migration or a statement
//! whose connection was lost, or which outlived its call. The runner never
//! sends anything a second time to find out; it reads.
//!
//! - A transactional migration in flight ([`InFlight`]): after the
//!   reconnect, the history (written in the same transaction) tells whether
//!   its COMMIT happened ([`settle_lost`]).
//! - A statement outside a transaction on a transport where it can outlive
//!   its call (the Data API): still running ([`await_statement`] polls the
//!   server process until it ends), or its answer lost
//!   ([`resolve_lost_statement`]); its outcome is then read from the
//!   catalog ([`statement_outcome`]), as far as the catalog can tell.
//! - A resumed statement that an earlier, stopped runner left running on
//!   the server ([`still_running_elsewhere`]) is waited for, not sent next
//!   to it.

use std::time::{Duration, Instant};

use crate::backend::{Backend, ExecError};
use crate::dialect::ToolSql;
use crate::error::{DbError, Error, Result};
use crate::history::{Row, Status};
use crate::migration::SplitMigration;
use crate::retry::Backoff;
use crate::sql;

use super::{progress, Applied, Event, UpReport};

/// The migration that was running when the connection was lost: the
/// history read after the reconnect tells whether it committed.
pub(crate) struct InFlight {
    pub applied: Applied,
    /// The file's checksum: a repeatable migration's row (by name) shows
    /// this run's apply only with it.
    pub checksum: String,
    pub started: Instant,
}

impl InFlight {
    /// Whether `r` is this migration's row as this run writes it.
    fn is_row(&self, r: &Row) -> bool {
        r.version == self.applied.version && (!r.is_repeatable() || (r.name == self.applied.name && r.checksum == self.checksum))
    }
}

/// The migration whose answer was lost with the connection: if the history
/// (written in the same transaction, or after its last statement) shows it
/// applied, it committed, and this run applied it: count it. Otherwise it is
/// kept until the history read under the lock, and then runs again.
pub(crate) fn settle_lost(in_flight: &mut Option<InFlight>, applied: &[Row], events: &mut dyn FnMut(&Event), report: &mut UpReport) {
    let Some(f) = in_flight.take_if(|f| applied.iter().any(|r| f.is_row(r) && r.status == Status::Applied)) else {
        return;
    };
    // The time the history row holds, as for any applied migration.
    let recorded = applied.iter().find(|r| f.is_row(r)).map(|r| r.execution_ms.max(0) as u64);
    let a = Applied {
        duration_ms: recorded.unwrap_or_else(|| f.started.elapsed().as_millis() as u64),
        answer_lost: true,
        ..f.applied
    };
    events(&Event::Applied(a.clone()));
    report.applied.push(a);
}

/// The catalog read that tells whether `statement` is still running in
/// another session of this database (sent before a resumed statement on a
/// transport where statements outlive their calls; dry-run shows it).
pub(crate) fn abandoned_check(statement: &str) -> String {
    ToolSql::statement_abandoned(statement)
}

/// A statement outside a transaction outlived the transport's timeout (Data
/// API `StatementTimeoutException` with continueAfterTimeout): it goes on
/// running on the server. Poll until that server process is idle, then read
/// the outcome from the catalog; never send the statement again.
pub(crate) async fn await_statement(
    b: &mut dyn Backend,
    m: &SplitMigration,
    i: usize,
    pid: i64,
    started: Instant,
    events: &mut dyn FnMut(&Event),
) -> Result<(), ExecError> {
    // An index build: its progress, read by its server process with calls
    // of their own, about once a second.
    let build = progress::is_index_build(&m.statements[i]);
    let mut backoff = Backoff::new(
        Duration::from_millis(200),
        if build { progress::EVERY } else { Duration::from_secs(5) },
    );
    let mut reported = Instant::now() - Duration::from_secs(10);
    let mut rate = progress::Rate::default();
    loop {
        let rows = b.query(&ToolSql::statement_running(pid)).await.map_err(ExecError::transport)?;
        let running = rows.first().and_then(|r| r.first().cloned().flatten()).is_some_and(|n| n != "0");
        if !running {
            break;
        }
        if build {
            if let Some(p) = progress::read(b, pid, "", m.version, i + 1, &mut rate).await {
                events(&Event::IndexProgress(Box::new(p)));
            }
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
pub(crate) async fn still_running_elsewhere(b: &mut dyn Backend, statement: &str) -> Result<Option<(i64, u64)>> {
    let rows = b.query(&abandoned_check(statement)).await?;
    Ok(rows.first().and_then(|r| {
        let pid = r.first().cloned().flatten()?.parse().ok()?;
        let secs = r.get(1).cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        Some((pid, secs))
    }))
}

/// The answer to a statement outside a transaction never came (Data API
/// 500/504, a hung response): if the transport's statements can outlive
/// the call, read the outcome from the catalog instead of re-sending.
pub(crate) async fn resolve_lost_statement(b: &mut dyn Backend, m: &SplitMigration, i: usize, message: String) -> Result<(), ExecError> {
    if b.capabilities().statements_die_with_connection {
        return Err(ExecError::Lost { message });
    }
    statement_outcome(b, m, i, &format!("the Data API did not answer ({message})")).await
}

/// What the catalog says about statement `i` of `m` after its call ended
/// without an answer: a CONCURRENTLY index is valid (done), invalid (failed:
/// dropped and rebuilt on the next run) or absent; anything else cannot be
/// checked and is reported as unknown.
pub(crate) async fn statement_outcome(b: &mut dyn Backend, m: &SplitMigration, i: usize, why: &str) -> Result<(), ExecError> {
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
        .query(&ToolSql::index_state(&name, schema.as_deref()))
        .await
        .map_err(ExecError::transport)?;
    match rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() {
        Some("valid") => Ok(()),
        Some(_) => Err(ExecError::Statement {
            index: 0,
            error: DbError {
                fix: None,
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
