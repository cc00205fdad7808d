//! The runner without a server: the run loop against the fake backend
//! (`fake.rs`), with scripted failures. What the fake received is compared
//! with the dry run of the same files, placeholders aside.

use std::path::Path;

use super::fake::{Fake, Fault, NO_SESSION, OWNER, SESSION};
use super::run::up_with;
use super::{Event, UpOptions, UpReport};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::history::Status;
use crate::migration::Source;

/// Migration files used by most tests: two transactional files around a
/// no-transaction one with a setting, a CONCURRENTLY build and a timeout
/// directive.
const FILES: &[(&str, &str)] = &[
    ("V1__a.sql", "CREATE TABLE a (id int);\nCREATE INDEX a_id ON a (id);\n"),
    (
        "V2__b.sql",
        "-- chatmigrate:no-transaction\n-- chatmigrate:lock-timeout 2s\nSET maintenance_work_mem = '256MB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_id2 ON a (id);\nALTER TABLE a ADD COLUMN IF NOT EXISTS b int;\n",
    ),
    ("V3__c.sql", "ALTER TABLE a ADD COLUMN c int;\n"),
];

struct Case {
    _dir: tempfile::TempDir,
    cfg: Config,
    fake: Fake,
}

impl Case {
    fn new(caps: crate::backend::Capabilities, files: &[(&str, &str)], faults: Vec<Fault>) -> Case {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut cfg = Config::from_url("postgres://app@db.example:5432/fake").unwrap();
        cfg.source = Source::Dirs(vec![dir.path().to_path_buf()]);
        Case {
            _dir: dir,
            cfg,
            fake: Fake::new(caps, faults),
        }
    }

    fn path(&self) -> &Path {
        self._dir.path()
    }

    /// Runs `up` (or its dry run) on the fake; the result and the events.
    async fn up(&self, dry_run: bool) -> (Result<UpReport>, Vec<Event>) {
        let mut events = Vec::new();
        let opts = UpOptions {
            dry_run,
            handle_signals: true,
            ..UpOptions::default()
        };
        let r = up_with(&self.fake, &self.cfg, &opts, &mut |e| events.push(e.clone())).await;
        (r, events)
    }

    /// What the fake received so far; forgets it.
    fn take_sent(&self) -> Vec<String> {
        let mut s = self.fake.server();
        s.locked_at = 0;
        std::mem::take(&mut s.sent)
    }

    /// What the last run sent under the lock (its migrations, after the
    /// gate's catalog reads); forgets everything.
    fn take_script(&self) -> Vec<String> {
        let at = self.fake.server().locked_at;
        self.take_sent().split_off(at)
    }

    fn history(&self) -> Vec<(i64, Status, i32)> {
        self.fake
            .server()
            .history
            .values()
            .map(|r| (r.version, r.status, r.statements_done))
            .collect()
    }
}

/// The requests of a dry run, in order.
fn dry_sent(r: &UpReport) -> Vec<String> {
    r.dry_run.iter().flat_map(|s| s.sent().map(str::to_string)).collect()
}

/// `sent` is `dry` with its placeholders filled in: `<elapsed ms>` by a
/// number, `<lease owner>` by the fake's owner.
fn same(dry: &str, sent: &str) -> bool {
    let dry = dry.replace("<lease owner>", &format!("'{OWNER}'"));
    let mut rest = sent;
    let mut parts = dry.split("<elapsed ms>").peekable();
    while let Some(part) = parts.next() {
        let Some(after) = rest.strip_prefix(part) else { return false };
        rest = after;
        if parts.peek().is_some() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return false;
            }
            rest = &rest[digits..];
        }
    }
    rest.is_empty()
}

fn assert_same(dry: &[String], sent: &[String]) {
    assert_eq!(
        dry.len(),
        sent.len(),
        "dry run:\n{}\n\nsent:\n{}",
        dry.join(";\n"),
        sent.join(";\n")
    );
    for (d, s) in dry.iter().zip(sent) {
        assert!(same(d, s), "dry run:\n{d}\n\nsent:\n{s}");
    }
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

#[tokio::test]
async fn the_dry_run_is_what_a_session_backend_receives() {
    let c = Case::new(SESSION, FILES, vec![]);
    let (dry, _) = c.up(true).await;
    let dry = dry_sent(&dry.unwrap());
    assert!(
        c.take_sent().iter().all(|s| s.starts_with("SELECT") || s.starts_with("WITH")),
        "a dry run sends nothing but reads"
    );
    let (r, _) = c.up(false).await;
    assert_eq!(r.unwrap().applied.len(), 3);
    let sent = c.take_script();
    assert_same(&dry, &sent);
    // The script: BEGIN, the prelude, the statements, the history row, COMMIT;
    // the no-transaction file statement by statement with its rows.
    assert_eq!(sent[0], "BEGIN");
    assert_eq!(sent[1], "SET LOCAL lock_timeout = '5000ms'");
    assert_eq!(sent[2], "SET LOCAL synchronous_commit = off");
    assert!(sent[5].starts_with("INSERT INTO \"chatmigrate_history\""), "{}", sent[5]);
    assert_eq!(sent[6], "COMMIT");
    assert_eq!(sent[7], "SET lock_timeout = '2000ms'");
    assert!(
        sent.iter().any(|s| s.contains("NOT i.indisvalid")),
        "the INVALID index check is sent"
    );
    assert_eq!(sent.iter().filter(|s| s.contains("'partial'")).count(), 3);
    assert_eq!(sent.iter().rev().nth(2).unwrap(), "ALTER TABLE a ADD COLUMN c int");
    // The last transaction commits synchronously.
    assert!(!sent[sent.len() - 5..].iter().any(|s| s.contains("synchronous_commit")));
    assert_eq!(
        c.history(),
        vec![(1, Status::Applied, 2), (2, Status::Applied, 3), (3, Status::Applied, 1)]
    );
}

#[tokio::test]
async fn the_dry_run_is_what_a_backend_without_sessions_receives() {
    let c = Case::new(NO_SESSION, FILES, vec![]);
    let (dry, _) = c.up(true).await;
    let dry = dry.unwrap();
    let text: Vec<String> = dry.dry_run.iter().flat_map(|s| s.lines.iter().map(|l| format!("{l:?}"))).collect();
    let dry = dry_sent(&dry);
    c.take_sent();
    let (r, events) = c.up(false).await;
    r.unwrap();
    let sent = c.take_script();
    assert_same(&dry, &sent);
    // The settings fold into the guard call; every history row is fenced
    // by the lease; session settings are skipped, in the dry run and the run.
    assert!(
        sent[1].starts_with("SELECT set_config('lock_timeout', '5000ms', true)"),
        "{}",
        sent[1]
    );
    assert!(sent
        .iter()
        .filter(|s| s.starts_with("INSERT INTO"))
        .all(|s| s.contains(&format!("owner = '{OWNER}'"))));
    assert!(!sent.iter().any(|s| s.starts_with("SET ")), "{sent:#?}");
    assert_eq!(text.iter().filter(|l| l.contains("skipped on fake")).count(), 2, "{text:#?}");
    assert_eq!(count(&events, |e| matches!(e, Event::SkippedSessionSetting { .. })), 2);
}

#[tokio::test]
async fn lock_timeout_is_retried_and_then_applies() {
    let mut c = Case::new(
        SESSION,
        &FILES[..1],
        vec![Fault::LockTimeout {
            marker: "CREATE TABLE a",
            times: 2,
        }],
    );
    c.cfg.lock_retries = 2;
    let (r, events) = c.up(false).await;
    assert_eq!(r.unwrap().applied.len(), 1);
    let retries: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e {
            Event::LockRetry { attempt, of, .. } => Some((*attempt, *of)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, vec![(1, 3), (2, 3)]);
    assert_eq!(c.take_sent().iter().filter(|s| *s == "BEGIN").count(), 3);
    assert_eq!(c.history(), vec![(1, Status::Applied, 2)]);
}

#[tokio::test]
async fn lock_timeout_past_the_retries_stops_and_names_the_blockers() {
    let mut c = Case::new(
        SESSION,
        FILES,
        vec![Fault::LockTimeout {
            marker: "CREATE TABLE a",
            times: 9,
        }],
    );
    c.cfg.lock_retries = 1;
    let (r, events) = c.up(false).await;
    let e = r.unwrap_err();
    assert!(
        matches!(
            e,
            Error::LockNotAvailable {
                attempts: 2,
                version: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("blocking: pid 77 (psql, idle in transaction) holds AccessExclusiveLock on t: LOCK TABLE t"),
        "{e}"
    );
    assert_eq!(count(&events, |e| matches!(e, Event::LockRetry { .. })), 1);
    assert!(c.history().is_empty(), "nothing applied");
    assert_eq!(c.fake.server().lock, None, "the lock is released");
}

#[tokio::test]
async fn a_connection_lost_before_commit_reconnects_and_runs_the_migration_again() {
    let c = Case::new(
        SESSION,
        FILES,
        vec![Fault::LoseTransaction {
            marker: "ADD COLUMN c",
            committed: false,
        }],
    );
    let (r, events) = c.up(false).await;
    let r = r.unwrap();
    assert_eq!(
        r.applied.iter().map(|a| (a.version, a.answer_lost)).collect::<Vec<_>>(),
        vec![(1, false), (2, false), (3, false)]
    );
    assert_eq!(count(&events, |e| matches!(e, Event::Reconnecting { attempt: 1, .. })), 1);
    let sent = c.take_sent();
    assert_eq!(
        sent.iter().filter(|s| *s == "ALTER TABLE a ADD COLUMN c int").count(),
        2,
        "sent again"
    );
    assert_eq!(
        sent.iter().filter(|s| *s == "ALTER TABLE a ADD COLUMN IF NOT EXISTS b int").count(),
        1,
        "not again"
    );
    assert_eq!(c.fake.server().connections, 2);
    assert_eq!(c.history().len(), 3);
}

#[tokio::test]
async fn a_commit_whose_answer_was_lost_counts_as_applied_and_is_not_sent_again() {
    let c = Case::new(
        SESSION,
        FILES,
        vec![Fault::LoseTransaction {
            marker: "CREATE TABLE a",
            committed: true,
        }],
    );
    let (r, events) = c.up(false).await;
    let r = r.unwrap();
    assert_eq!(
        r.applied.iter().map(|a| (a.version, a.answer_lost)).collect::<Vec<_>>(),
        vec![(1, true), (2, false), (3, false)]
    );
    assert_eq!(count(&events, |e| matches!(e, Event::Reconnecting { .. })), 1);
    assert_eq!(c.take_sent().iter().filter(|s| s.starts_with("CREATE TABLE a")).count(), 1);
}

#[tokio::test]
async fn reconnects_are_bounded() {
    let faults = (0..4)
        .map(|_| Fault::LoseTransaction {
            marker: "CREATE TABLE a",
            committed: false,
        })
        .collect();
    let c = Case::new(SESSION, FILES, faults);
    let (r, events) = c.up(false).await;
    assert!(matches!(r, Err(Error::ConnectionLost { .. })), "{r:?}");
    assert_eq!(count(&events, |e| matches!(e, Event::Reconnecting { .. })), 3);
    assert!(c.history().is_empty());
}

#[tokio::test]
async fn a_transaction_the_transport_rolled_back_starts_over_once() {
    let c = Case::new(NO_SESSION, &FILES[..1], vec![Fault::RollBack { marker: "CREATE TABLE a" }]);
    let (r, events) = c.up(false).await;
    assert_eq!(r.unwrap().applied.len(), 1);
    assert_eq!(count(&events, |e| matches!(e, Event::Restarting { version: 1, .. })), 1);
    assert_eq!(c.take_sent().iter().filter(|s| *s == "BEGIN").count(), 2);
}

#[tokio::test]
async fn a_no_transaction_file_resumes_where_the_lost_connection_stopped_it() {
    // The session dies during V2's third statement, before it ran: the
    // reconnect resumes at it, after making V2's SET again on the new
    // session; the first two are not sent again.
    let c = Case::new(SESSION, FILES, vec![Fault::LoseStatement { marker: "EXISTS b int" }]);
    let (r, events) = c.up(false).await;
    assert_eq!(
        r.unwrap().applied.iter().map(|a| (a.version, a.resumed_from)).collect::<Vec<_>>(),
        vec![(1, 0), (2, 2), (3, 0)]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Resuming {
            version: 2,
            from: 2,
            total: 3,
            ..
        }
    )));
    let sent = c.take_sent();
    let after = sent
        .iter()
        .rposition(|s| s == "ALTER TABLE a ADD COLUMN IF NOT EXISTS b int")
        .unwrap();
    let resumed = &sent[sent[..after]
        .iter()
        .rposition(|s| s == "ALTER TABLE a ADD COLUMN IF NOT EXISTS b int")
        .unwrap()
        + 1..after];
    assert_eq!(
        resumed
            .iter()
            .filter(|s| !s.contains("chatmigrate_history") && !s.contains("pg_stat_progress_create_index"))
            .collect::<Vec<_>>(),
        vec!["SET lock_timeout = '2000ms'", "SET maintenance_work_mem = '256MB'"],
        "{resumed:#?}"
    );
    assert_eq!(sent.iter().filter(|s| s.starts_with("CREATE INDEX CONCURRENTLY")).count(), 1);
    assert_eq!(
        c.history(),
        vec![(1, Status::Applied, 2), (2, Status::Applied, 3), (3, Status::Applied, 1)]
    );
}

#[tokio::test]
async fn a_signal_during_a_statement_stops_after_it_and_the_next_up_resumes() {
    let c = Case::new(SESSION, FILES, vec![Fault::Signal { marker: "CONCURRENTLY" }]);
    let (r, events) = c.up(false).await;
    let e = r.unwrap_err();
    assert!(
        e.to_string()
            .contains("V2 b stopped after statement 2 of 3 (recorded as partial; `up` resumes it); 1 later migration(s) not started"),
        "{e}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Stopping {
            statement: 2,
            total: 3,
            ..
        }
    )));
    assert_eq!(c.history(), vec![(1, Status::Applied, 2), (2, Status::Partial, 2)]);
    // The dry run of what is left is what the next run sends.
    c.fake.reset_signal();
    let (dry, _) = c.up(true).await;
    let dry = dry_sent(&dry.unwrap());
    c.take_sent();
    let (r, _) = c.up(false).await;
    assert_eq!(
        r.unwrap().applied.iter().map(|a| (a.version, a.resumed_from)).collect::<Vec<_>>(),
        vec![(2, 2), (3, 0)]
    );
    assert_same(&dry, &c.take_script());
}

#[tokio::test]
async fn a_resumed_statement_left_running_by_a_stopped_runner_is_awaited_not_sent() {
    // A transport where statements outlive their calls: the runner that
    // stopped left V2's index build running; the next one waits for it.
    let c = Case::new(
        NO_SESSION,
        FILES,
        vec![Fault::Abandoned {
            marker: "CONCURRENTLY",
            polls: 2,
        }],
    );
    {
        let mut s = c.fake.server();
        let m = crate::migration::load(&Source::Dirs(vec![c.path().to_path_buf()]), &[]).unwrap();
        let a = m[0].split().unwrap();
        s.history.insert(1, crate::history::Row::new(&a, "fake", Status::Applied, 2, false));
        let b = m[1].split().unwrap();
        s.history.insert(2, crate::history::Row::new(&b, "fake", Status::Partial, 1, false));
    }
    let (dry, _) = c.up(true).await;
    let dry = dry_sent(&dry.unwrap());
    c.take_sent();
    let (r, events) = c.up(false).await;
    r.unwrap();
    let sent = c.take_script();
    assert!(
        !sent.iter().any(|s| s.starts_with("CREATE INDEX CONCURRENTLY")),
        "never sent next to the running one"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Note { message, .. } if message.contains("process 4242"))));
    // The dry run lists the check first; the run then reads until the
    // statement ends and reads its index's state (a branch of the script).
    assert!(
        same(&dry[0], &sent[0]) && sent[0].contains("a.pid <> pg_backend_pid()"),
        "{dry:#?}\n{sent:#?}"
    );
    assert_eq!(
        c.history(),
        vec![(1, Status::Applied, 2), (2, Status::Applied, 3), (3, Status::Applied, 1)]
    );
}

#[tokio::test]
async fn a_lost_lease_stops_the_run_and_nothing_more_is_written() {
    let c = Case::new(NO_SESSION, FILES, vec![Fault::LoseLease { marker: "CONCURRENTLY" }]);
    let (r, _) = c.up(false).await;
    let e = r.unwrap_err();
    assert!(matches!(e, Error::LeaseLost { .. }), "{e:?}");
    let sent = c.take_sent();
    assert!(!sent.iter().any(|s| s.contains("ADD COLUMN")), "{sent:#?}");
    assert_eq!(c.history(), vec![(1, Status::Applied, 2), (2, Status::Partial, 0)]);
    // Lost while a transaction is sent: nothing of it runs.
    let c = Case::new(NO_SESSION, FILES, vec![Fault::LoseLease { marker: "ADD COLUMN c" }]);
    let e = c.up(false).await.0.unwrap_err();
    assert!(e.to_string().contains("nothing of this migration ran"), "{e}");
    assert_eq!(c.history().len(), 2);
}

#[tokio::test]
async fn a_failed_statement_is_recorded_as_failed_where_it_stopped() {
    let c = Case::new(
        SESSION,
        FILES,
        vec![Fault::Fail {
            marker: "EXISTS b int",
            code: "42701",
        }],
    );
    let e = c.up(false).await.0.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Migration {
                version: 2,
                transactional: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("V2__b.sql:5:1"), "{e}");
    let rows = c.fake.server().history.clone();
    let failed = &rows[&2];
    assert_eq!((failed.status, failed.statements_done), (Status::Failed, 2));
    assert!(
        failed.error.as_deref().unwrap().starts_with("statement 3 at "),
        "{:?}",
        failed.error
    );
    // In a transaction: the file's location, nothing recorded.
    let c = Case::new(
        SESSION,
        FILES,
        vec![Fault::Fail {
            marker: "CREATE INDEX a_id",
            code: "42P07",
        }],
    );
    let e = c.up(false).await.0.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Migration {
                version: 1,
                transactional: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("V1__a.sql:2:1"), "{e}");
    assert!(c.history().is_empty());
}

#[tokio::test]
async fn the_create_database_race_is_won_once() {
    let mut c = Case::new(SESSION, &FILES[..1], vec![Fault::Missing { code: None, busy: 2 }]);
    c.cfg.create_database = true;
    let (r, events) = c.up(false).await;
    let r = r.unwrap();
    assert!(r.created_database);
    assert_eq!(count(&events, |e| matches!(e, Event::CreatedDatabase { .. })), 1);
    assert_eq!(
        c.take_sent().iter().filter(|s| s.starts_with("CREATE DATABASE")).count(),
        3,
        "template busy twice, then created"
    );
    // Another runner created it first: this one goes on and does not say it created it.
    let mut c = Case::new(
        SESSION,
        &FILES[..1],
        vec![Fault::Missing {
            code: Some("42P04"),
            busy: 0,
        }],
    );
    c.cfg.create_database = true;
    let (r, events) = c.up(false).await;
    let r = r.unwrap();
    assert!(!r.created_database && r.applied.len() == 1);
    assert_eq!(count(&events, |e| matches!(e, Event::CreatedDatabase { .. })), 0);
    // A dry run shows the statement and creates nothing.
    let mut c = Case::new(SESSION, &FILES[..1], vec![Fault::Missing { code: None, busy: 0 }]);
    c.cfg.create_database = true;
    let dry = c.up(true).await.0.unwrap();
    assert_eq!(dry_sent(&dry)[0], "CREATE DATABASE \"fake\"");
    assert!(!c.fake.server().exists);
}
