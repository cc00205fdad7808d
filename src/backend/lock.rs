//! The migration lock, one protocol for every transport that can reach a
//! database (direct, Citus coordinator, Data API): a lease row that one
//! runner owns at a time (`dialects/postgres/lease_*.sql`).
//!
//! - A session holder (direct, Citus) takes the session advisory lock on
//!   the lock key, then the lease with its server pid, in one statement; its
//!   lease is live exactly while that pid holds the advisory lock, so the
//!   server releases it with the session (also after a kill, once the last
//!   statement has ended).
//! - A Data API holder takes the lease with an expiry that its heartbeat
//!   renews; its migration transactions hold the lease row `FOR KEY SHARE`
//!   from their first call, so a transaction abandoned by a killed runner
//!   keeps the lease until the Data API rolls it back.
//! - Nobody takes the lease while another session holds the advisory lock,
//!   nor a live lease of someone else; a waiting runner polls (never blocks,
//!   never holds a transaction open while it waits), says every second what
//!   it waits for, and names the holder when it gives up.
//!
//! This module has what both transports share: who a runner is (the
//! `holder` text recorded in the lease), the poll loop, and the description
//! of a holder read with `lease_holder.sql`.

use std::time::{Duration, Instant};

use crate::classify;
use crate::error::{Error, Result};
use crate::retry::{Backoff, Progress, Waiting};

/// A unique owner id for one lease: host, OS process id, a clock value.
pub fn owner_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}:{}:{nanos:x}", hostname(), std::process::id())
}

/// This machine's name (for the holder text), or `unknown host`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

/// Who a runner is, as recorded in the lease and shown to the runners that
/// wait for it: `'app' on host H (chatmigrate process P, backend B)`.
pub fn holder_text(application_name: &str, backend: &str) -> String {
    format!(
        "'{application_name}' on host {} (chatmigrate process {}, backend {backend})",
        hostname(),
        std::process::id()
    )
}

/// One transport's way to take the lock once and to ask who holds it.
#[async_trait::async_trait]
pub trait Taker: Send {
    /// One attempt: true when this runner now holds the lock.
    async fn try_take(&mut self) -> Result<bool>;
    /// Who holds the lock, as [`describe`] words it ("" if unknown).
    async fn holder(&mut self) -> String;
}

/// Polls `taker` until it takes the lock or `wait` has passed. After the
/// first second it reports, at most once a second, what it waits for (the
/// holder); when it gives up, the timeout error names the holder too.
pub async fn poll(wait: Duration, progress: &Progress, taker: &mut dyn Taker) -> Result<()> {
    let start = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_secs(1));
    let mut reported: Option<Instant> = None;
    for attempts in 1u32.. {
        if taker.try_take().await? {
            return Ok(());
        }
        if start.elapsed() >= wait {
            let holder = taker.holder().await;
            return Err(Error::LockTimeout {
                secs: wait.as_secs(),
                holder: if holder.is_empty() { String::new() } else { format!("; {holder}") },
            });
        }
        let due = match reported {
            None => start.elapsed() >= Duration::from_secs(1),
            Some(t) => t.elapsed() >= Duration::from_secs(1),
        };
        if due {
            reported = Some(Instant::now());
            let holder = taker.holder().await;
            progress.report(&Waiting {
                what: "the migration lock".into(),
                elapsed: start.elapsed(),
                attempts,
                cause: if holder.is_empty() {
                    "held by another runner".into()
                } else {
                    holder
                },
            });
        }
        let remaining = wait.saturating_sub(start.elapsed());
        tokio::time::sleep(backoff.delay().min(remaining)).await;
    }
    unreachable!("the loop returns")
}

/// A lost race between first runners creating the lease table (duplicate
/// type or relation): the next attempt finds the table.
pub fn setup_race(e: &Error) -> bool {
    matches!(e, Error::Db { error, .. } if classify::lost_create_race(&error.code))
}

/// The answer of `lease_acquire.sql`: (holds the advisory lock, took the
/// lease, the lease row exists).
pub fn acquired(rows: &[Vec<Option<String>>]) -> (bool, bool, bool) {
    let r = rows.first();
    let b = |i: usize| r.and_then(|r| r.get(i).cloned().flatten()).is_some_and(|v| v == "true" || v == "t");
    (b(0), b(1), b(2))
}

/// Describes the holder from the row of `lease_holder.sql` ("" if nothing
/// is known): the session that holds the advisory lock, the live lease's
/// holder, or the transaction that still locks an expired lease.
pub fn describe(r: &[Option<String>]) -> String {
    let f = |i: usize| r.get(i).cloned().flatten();
    let s = |i: usize| f(i).unwrap_or_default();
    let live = s(3) == "true";
    let lease = |who: String| match (f(4), f(5)) {
        (Some(since), Some(left)) if f(2).is_none() => format!("{who} since {since} (lease expires in {left} s)"),
        (Some(since), _) => format!("{who} since {since}"),
        _ => who,
    };
    // A session holds the advisory lock: a direct or Citus runner (then the
    // lease names it), or a runner of an older release or another session.
    if let Some(pid) = f(7) {
        let session = format!(
            "held by pid {pid} (application_name '{}', client {}, connected since {})",
            s(8),
            s(9),
            s(10)
        );
        return match f(1) {
            Some(holder) if live && f(2).as_deref() == Some(pid.as_str()) => {
                format!("{session}: {}", lease(holder))
            }
            _ => session,
        };
    }
    if live {
        return format!("held by {}", lease(s(1)));
    }
    // Free or expired, yet not taken: a transaction still locks the row.
    if let Some(pid) = f(11) {
        let whose = match (f(0), f(1), f(6)) {
            (Some(_), Some(holder), Some(expired)) => format!("the lease of {holder} expired at {expired}, but "),
            _ => String::new(),
        };
        let state = match s(12).as_str() {
            "active" => "running a statement".to_string(),
            other => other.to_string(),
        };
        return format!(
            "{whose}a Data API migration transaction still holds the lease row (server pid {pid}, {state} since {} for {} s); the Data API rolls an abandoned transaction back 3 minutes after its last call",
            s(13),
            s(14)
        );
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[Option<&str>]) -> Vec<Option<String>> {
        let mut r: Vec<Option<String>> = cells.iter().map(|c| c.map(str::to_string)).collect();
        r.resize(15, None);
        r
    }

    #[test]
    fn holders_are_described() {
        let direct = row(&[
            Some("o"),
            Some("'chatmigrate' on host h (chatmigrate process 7, backend postgres)"),
            Some("42"),
            Some("true"),
            Some("2026-01-01T00:00:00Z"),
            None,
            None,
            Some("42"),
            Some("chatmigrate"),
            Some("127.0.0.1/32"),
            Some("2026-01-01T00:00:00Z"),
        ]);
        assert_eq!(
            describe(&direct),
            "held by pid 42 (application_name 'chatmigrate', client 127.0.0.1/32, connected since 2026-01-01T00:00:00Z): 'chatmigrate' on host h (chatmigrate process 7, backend postgres) since 2026-01-01T00:00:00Z"
        );
        let data_api = row(&[
            Some("o"),
            Some("'chatmigrate' on host h (chatmigrate process 8, backend rds-data)"),
            None,
            Some("true"),
            Some("2026-01-01T00:00:00Z"),
            Some("40"),
        ]);
        assert_eq!(
            describe(&data_api),
            "held by 'chatmigrate' on host h (chatmigrate process 8, backend rds-data) since 2026-01-01T00:00:00Z (lease expires in 40 s)"
        );
        let mut abandoned = row(&[
            Some("o"),
            Some("'chatmigrate' on host h (chatmigrate process 8, backend rds-data)"),
            None,
            Some("false"),
            Some("2026-01-01T00:00:00Z"),
            Some("0"),
            Some("2026-01-01T00:01:00Z"),
        ]);
        abandoned[11] = Some("99".into());
        abandoned[12] = Some("idle in transaction".into());
        abandoned[13] = Some("2026-01-01T00:00:30Z".into());
        abandoned[14] = Some("45".into());
        assert_eq!(
            describe(&abandoned),
            "the lease of 'chatmigrate' on host h (chatmigrate process 8, backend rds-data) expired at 2026-01-01T00:01:00Z, but a Data API migration transaction still holds the lease row (server pid 99, idle in transaction since 2026-01-01T00:00:30Z for 45 s); the Data API rolls an abandoned transaction back 3 minutes after its last call"
        );
        assert_eq!(describe(&row(&[])), "");
    }
}
