//! One transactional migration's call, as `up` makes it: sent whole
//! (`Backend::run_transaction`), and on lock_timeout (55P03, the
//! transaction rolled back) sent again up to `lock_retries` times with
//! jittered backoff (0.5 s doubling, at most 10 s); after the last attempt
//! the error names the sessions that hold locks on the file's tables. A
//! transaction the transport rolled back (the Data API: expired) starts
//! over once. On SIGINT/SIGTERM the statement in flight is cancelled, so
//! the server rolls the transaction back (unless COMMIT won the race).

use std::time::{Duration, Instant};

use crate::backend::{Backend, ExecError};
use crate::classify;
use crate::config::Config;
use crate::dialect::ToolSql;
use crate::error::{Error, Result};
use crate::history::Row;
use crate::migration::SplitMigration;
use crate::retry::{self, Backoff};
use crate::sql;

use super::signals::{signalled, Signals};
use super::Event;

/// Runs `m` as one transaction: `settings`, `statements` (as the backend
/// sends them), then its history `row`. Returns the time the row records
/// (the server's, as the row is written), which `up` reports.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn transaction(
    b: &mut dyn Backend,
    cfg: &Config,
    m: &SplitMigration,
    settings: &[String],
    statements: &[String],
    row: &Row,
    events: &mut dyn FnMut(&Event),
    sig: &mut Signals,
) -> Result<u64> {
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    let attempts = cfg.lock_retries + 1;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
    let mut restarted = false;
    let mut attempt = 0;
    while attempt < attempts {
        attempt += 1;
        let canceller = b.canceller();
        let mut interrupted = None;
        let result = {
            let fut = b.run_transaction(settings, &statements, row);
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
                        what: format!("{} to roll back", m.label()),
                        elapsed,
                        attempts: 0,
                        cause: format!("{s}: the statement in flight ends first"),
                    })
                    .await
                }
            }
        };
        for message in b.take_notices() {
            events(&Event::Note {
                version: m.version,
                message,
            });
        }
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
            Ok(ms) => return Ok(ms.max(0) as u64),
            Err(ExecError::Statement { error, .. }) if classify::lock_not_available(&error.code) && attempt < attempts => {
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
            Err(ExecError::Statement { index, error }) if classify::lock_not_available(&error.code) => {
                return Err(Error::LockNotAvailable {
                    location: m.location(index, 0),
                    version: m.version,
                    attempts,
                    blockers: blockers(b, m).await,
                });
            }
            Err(ExecError::Statement { index, error }) => {
                let offset = error.offset.unwrap_or(0);
                return Err(Error::Migration {
                    location: m.location(index, offset),
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
                    context: m.label(),
                    message,
                })
            }
            Err(e) => return Err(e.into_error(&format!("{} (version {})", m.path, m.version))),
        }
    }
    unreachable!("the last attempt always returns")
}

/// `; blocking: pid P (app, addr) holds MODE on TABLE: QUERY; ...` for the
/// sessions holding locks on `m`'s tables, or nothing when none is found.
async fn blockers(b: &mut dyn Backend, m: &SplitMigration) -> String {
    let rows = b.query(&ToolSql::lock_blockers(&sql::tables(&m.sql))).await.unwrap_or_default();
    let blockers: Vec<String> = rows
        .iter()
        .map(|r| {
            let f = |k: usize| r.get(k).cloned().flatten().unwrap_or_default();
            format!("pid {} ({}, {}) holds {} on {}: {}", f(0), f(1), f(2), f(5), f(4), f(3))
        })
        .collect();
    if blockers.is_empty() {
        String::new()
    } else {
        format!("; blocking: {}", blockers.join("; "))
    }
}
