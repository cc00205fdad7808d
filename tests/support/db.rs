//! The test PostgreSQL and a database of its own per test.
//!
//! scripts/test.sh starts PostgreSQL 18 + pgvector and exports its URL (with
//! password) as `CHATMIGRATE_TEST_PG_URL`. [`Db::new`] creates a database
//! named `cmt_<pid>_<n>_<nanos>` on it; dropping the [`Db`] drops the
//! database, also when the test failed. With `CHATMIGRATE_TEST_KEEP=1` the
//! database of a failed test is kept and its name printed, to inspect it.
//!
//! A test process killed before its databases were dropped (Ctrl-C, a
//! timeout) leaves them behind; the first [`Db`] of the next run drops every
//! `cmt_<pid>_…` database whose process no longer runs (not with
//! `CHATMIGRATE_TEST_KEEP=1`, so kept databases survive until a run without it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Set to 1 to keep the databases (and migration directories) of failed tests.
pub const KEEP_ENV: &str = "CHATMIGRATE_TEST_KEEP";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The server URL (with password) of the test PostgreSQL.
pub fn server_url() -> String {
    std::env::var("CHATMIGRATE_TEST_PG_URL").expect("CHATMIGRATE_TEST_PG_URL is not set: run the tests with scripts/test.sh")
}

/// The test server's port, as chatmigrate prints it in targets.
pub fn port() -> String {
    let url = server_url();
    let after_at = url.rsplit_once('@').unwrap().1;
    after_at.split(['/', ':']).nth(1).unwrap().to_string()
}

/// `url` with its database name replaced.
pub fn with_db(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h.to_string(), format!("?{q}")),
        None => (url.to_string(), String::new()),
    };
    let base = head.rsplit_once('/').map(|(b, _)| b).unwrap_or(&head);
    format!("{base}/{db}{query}")
}

/// The password inside the server URL (to assert it never shows up).
pub fn server_password() -> String {
    let url = server_url();
    let rest = url.split_once("://").unwrap().1;
    let userinfo = rest.split_once('@').unwrap().0;
    userinfo.split_once(':').map(|(_, p)| p.to_string()).unwrap_or_default()
}

/// Whether failed tests keep their databases (`CHATMIGRATE_TEST_KEEP=1`).
pub fn keep_failed() -> bool {
    std::env::var(KEEP_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs SQL (one or more statements) and returns the rows as text, or the error.
pub fn try_query_url(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let h = tokio::spawn(conn);
        let rows = client.simple_query(sql).await.map_err(|e| match e.as_db_error() {
            Some(d) => format!("{}: {} (SQLSTATE {})", sql, d.message(), d.code().code()),
            None => format!("{sql}: {e}"),
        });
        drop(client);
        let _ = h.await;
        Ok(rows?
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect())
    })
}

/// Runs SQL on a database and returns the rows as text (panics on an error).
pub fn query_url(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    try_query_url(url, sql).unwrap_or_else(|e| panic!("{e}"))
}

/// A database of its own for one test, dropped with the value (see the module docs).
pub struct Db {
    pub name: String,
    pub url: String,
}

impl Db {
    pub fn new() -> Db {
        let name = Db::fresh_name();
        query_url(&server_url(), &format!("CREATE DATABASE {name}"));
        Db {
            url: with_db(&server_url(), &name),
            name,
        }
    }

    /// A name for a database that does not exist yet (for --create-database).
    /// Hand it to [`Db::adopt`] before the binary may create it, so that it
    /// is dropped with the test.
    pub fn fresh_name() -> String {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_leftovers);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("cmt_{}_{}_{}", std::process::id(), n, nanos % 100_000)
    }

    /// A handle for a database the test (or the binary) creates: dropped
    /// with the handle, like one from [`Db::new`], if it exists by then.
    pub fn adopt(name: &str) -> Db {
        Db {
            name: name.to_string(),
            url: with_db(&server_url(), name),
        }
    }

    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        query_url(&self.url, sql)
    }

    pub fn exec(&self, sql: &str) {
        self.query(sql);
    }

    /// The first column of the first row ("" for NULL, panics without a row).
    pub fn scalar(&self, sql: &str) -> String {
        self.query(sql).first().unwrap_or_else(|| panic!("no row: {sql}"))[0]
            .clone()
            .unwrap_or_default()
    }

    pub fn table_exists(&self, name: &str) -> bool {
        self.scalar(&format!("SELECT to_regclass('{name}') IS NOT NULL")) == "t"
    }

    /// Rows of the history table: (version, status, statements_done).
    pub fn history(&self) -> Vec<(i64, String, i32)> {
        history_at(&self.url, "chatmigrate_history")
    }

    pub fn versions(&self) -> Vec<i64> {
        self.history().into_iter().map(|h| h.0).collect()
    }
}

/// Rows of the history table `table` (may be schema-qualified) of the
/// database at `url`: (version, status, statements_done); none without it.
pub fn history_at(url: &str, table: &str) -> Vec<(i64, String, i32)> {
    if query_url(url, &format!("SELECT to_regclass('{table}') IS NULL"))[0][0].as_deref() == Some("t") {
        return Vec::new();
    }
    query_url(
        url,
        &format!("SELECT version, status, statements_done FROM {table} ORDER BY version"),
    )
    .into_iter()
    .map(|r| {
        (
            r[0].as_ref().unwrap().parse().unwrap(),
            r[1].clone().unwrap(),
            r[2].as_ref().unwrap().parse().unwrap(),
        )
    })
    .collect()
}

impl Drop for Db {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed && keep_failed() {
            eprintln!(
                "{KEEP_ENV}: kept database {} of the failed test (drop it with: DROP DATABASE {} WITH (FORCE))",
                self.name, self.name
            );
            return;
        }
        // Never panic while the test is already panicking: that would abort
        // the whole test process.
        let Ok(server) = std::env::var("CHATMIGRATE_TEST_PG_URL") else {
            return;
        };
        let drop_it = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        match try_query_url(&server, &drop_it) {
            Ok(_) => {}
            Err(e) if failed => eprintln!("could not drop the failed test's database: {e}"),
            Err(e) => panic!("could not drop the test's database: {e}"),
        }
    }
}

/// Drops the `cmt_<pid>_…` databases of test processes that no longer run.
fn sweep_leftovers() {
    if keep_failed() {
        return;
    }
    let Ok(server) = std::env::var("CHATMIGRATE_TEST_PG_URL") else {
        return;
    };
    let Ok(rows) = try_query_url(&server, "SELECT datname FROM pg_database WHERE datname LIKE 'cmt\\_%'") else {
        return;
    };
    let mut dropped = Vec::new();
    for name in rows.into_iter().filter_map(|r| r[0].clone()) {
        let Some(pid) = name.split('_').nth(1).and_then(|p| p.parse::<libc::pid_t>().ok()) else {
            continue;
        };
        if pid <= 0 || process_runs(pid) {
            continue;
        }
        if try_query_url(&server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).is_ok() {
            dropped.push(name);
        }
    }
    if !dropped.is_empty() {
        eprintln!(
            "dropped {} database(s) left by test runs that ended without cleaning up: {}",
            dropped.len(),
            dropped.join(", ")
        );
    }
}

/// Whether a process with this pid exists (kill(2) with signal 0).
pub fn process_runs(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A connection held open by the test (to hold locks), released on drop.
pub struct Holder {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Holder {
    /// Connects as application `app`, runs `sql`, and keeps the session
    /// (and any open transaction) until dropped or `after` elapses.
    pub fn hold(url: &str, app: &str, sql: &str, after: Option<std::time::Duration>) -> Holder {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let url = format!("{url}{}application_name={app}", if url.contains('?') { "&" } else { "?" });
        let sql = sql.to_string();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
                let h = tokio::spawn(conn);
                client.batch_execute(&sql).await.unwrap();
                ready_tx.send(()).unwrap();
                match after {
                    Some(d) => tokio::time::sleep(d).await,
                    None => {
                        let _ = tokio::task::spawn_blocking(move || rx.recv()).await;
                    }
                }
                drop(client);
                let _ = h.await;
            });
        });
        ready_rx.recv().unwrap();
        Holder {
            release: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
