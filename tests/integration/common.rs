//! Test support: a fresh database per test (dropped when the test passes),
//! a temporary migrations directory, and a runner for the real binary with a
//! clean environment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The server URL (with password) of the test PostgreSQL.
pub fn server_url() -> String {
    std::env::var("CHATMIGRATE_TEST_PG_URL").expect("CHATMIGRATE_TEST_PG_URL is not set: run the tests with scripts/test.sh")
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

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs SQL on a database and returns the rows as text.
pub fn query_url(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
        let h = tokio::spawn(conn);
        let rows = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = h.await;
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect()
    })
}

/// A database of its own for one test; dropped if the test did not panic.
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
    pub fn fresh_name() -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("cmt_{}_{}_{}", std::process::id(), n, nanos % 100_000)
    }

    /// A handle for a database created by the test itself.
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
        if !self.table_exists("chatmigrate_history") {
            return Vec::new();
        }
        self.query("SELECT version, status, statements_done FROM chatmigrate_history ORDER BY version")
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

    pub fn versions(&self) -> Vec<i64> {
        self.history().into_iter().map(|h| h.0).collect()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            query_url(&server_url(), &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// A temporary directory holding migration files.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Writes a file (relative to the directory) and returns its path.
    pub fn write(&self, name: &str, body: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, body).unwrap();
        p
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.path().join(name)).unwrap();
    }

    /// `path/name` as the binary prints it.
    pub fn shown(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit 2 and that stderr is exactly `error: <line>` + `hint: ...`.
    pub fn assert_error(&self, line: &str) -> &Run {
        assert_eq!(self.code, 2, "expected exit 2, got {self:#?}");
        assert_eq!(self.error_line(), format!("error: {line}"), "stderr was:\n{}", self.stderr);
        assert!(self.hint().starts_with("hint: "), "no hint:\n{}", self.stderr);
        self
    }

    /// stderr without the "waiting for ..." progress lines.
    fn messages(&self) -> impl Iterator<Item = &str> {
        self.stderr.lines().filter(|l| !l.starts_with("waiting for "))
    }

    /// The `error: ...` line.
    pub fn error_line(&self) -> &str {
        self.messages().next().unwrap_or("")
    }

    pub fn assert_ok(&self) -> &Run {
        assert_eq!(self.code, 0, "expected exit 0, got {self:#?}");
        self
    }

    pub fn hint(&self) -> String {
        self.messages().nth(1).unwrap_or("").to_string()
    }

    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Variables that would point the binary elsewhere; every run clears them.
pub const CLEARED_ENV: [&str; 11] = [
    "DATABASE_URL",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "CHATMIGRATE_ENV",
    "CHATMIGRATE_CONFIG",
    "NO_COLOR",
];

/// AWS credentials from the environment (the first link of the AWS chain),
/// for the Data API, Secrets Manager and IAM tests.
pub const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
    ("AWS_SECRET_ACCESS_KEY", "secret"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent"),
];

/// Runs the real binary in `cwd` with a clean environment plus `env`.
pub fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chatmigrate"));
    c.args(args).current_dir(cwd);
    for k in CLEARED_ENV {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run chatmigrate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the binary against `db` with migrations from `dir`.
pub fn cm(db: &Db, dir: &Dir, args: &[&str]) -> Run {
    let mut full: Vec<&str> = vec!["--database-url", &db.url, "--migrations", dir.path().to_str().unwrap()];
    full.extend_from_slice(args);
    run_in(dir.path(), &full, &[])
}

/// Runs the binary against `db` with the built-in (embedded) chat schema.
pub fn cm_embedded(db: &Db, args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let mut full: Vec<&str> = vec!["--database-url", &db.url];
    full.extend_from_slice(args);
    run_in(tmp.path(), &full, &[])
}

/// Starts the binary in the background (same clean environment as `run_in`).
pub fn spawn_in(cwd: &Path, args: &[&str]) -> std::process::Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chatmigrate"));
    c.args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for k in CLEARED_ENV {
        c.env_remove(k);
    }
    c.spawn().expect("spawn chatmigrate")
}

/// Waits for a spawned binary and collects its output.
pub fn finish(child: std::process::Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Sends a signal (by name, e.g. "INT", "TERM", "KILL") to a child, with
/// kill(2) itself: no `kill` program needed (a minimal system has none).
pub fn signal(child: &std::process::Child, name: &str) {
    let sig = match name {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        other => panic!("signal: unknown signal name {other}"),
    };
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a child's pid and a valid signal number has no
    // memory effects in this process.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill -{name} {pid}: {}", std::io::Error::last_os_error());
}

/// Polls until `f` is true (panics after `secs`).
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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
