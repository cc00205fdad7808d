//! The direct PostgreSQL transport: tokio-postgres over TCP or a Unix socket,
//! TLS through postgres-native-tls (disable ... verify-full, every
//! certificate of a bundle file trusted), a timeout around the whole connect,
//! and the migration lock as a session holder (`lock.rs`): the session
//! advisory lock, polled with `pg_try_advisory_lock`, plus the lease row
//! that every transport shares, both taken in one statement.
//!
//! A transactional migration is one simple-query round trip:
//! `BEGIN; <statements>; <history row>; COMMIT`. The server's
//! CommandComplete messages tell which statement failed; its error position
//! is mapped back into that statement.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::aws;
use super::lock::{self, Taker};
use super::tls::{load_bundle, LazyTls};
use super::wire::Wire;
use super::{Backend, Canceller, Capabilities, ExecError, LockKind, Purpose, Session};
use crate::classify;
use crate::dialect::{ToolSql, Value};
use crate::error::{DbError, Error, Result};
use crate::history::Row;
use crate::retry::{self, Class, Policy, Progress};
use crate::settings::{Config, SslMode};
use crate::sql::char_pos_to_byte;

/// One round trip per transactional migration; a session advisory lock.
pub const CAPABILITIES: Capabilities = Capabilities {
    distributed_tables: false,
    pipelined_transactions: true,
    lock: LockKind::SessionAdvisory,
    session_state: true,
    statements_die_with_connection: true,
    max_statement_chars: None,
    group_commit: true,
};

/// The `postgres` backend in the registry ([`super::BACKENDS`]).
pub static DEF: super::BackendDef = super::BackendDef {
    kind: crate::settings::BackendKind::Postgres,
    name: "postgres",
    capabilities: CAPABILITIES,
    target: super::pg_target,
    unreachable_hint: super::pg_unreachable_hint,
    extra_migrations: &[],
    prelude: super::no_prelude,
    connect: |cfg, purpose| Box::pin(async move { Ok(Box::new(Postgres::connect(cfg, None, purpose, &[]).await?) as Box<dyn Backend>) }),
    connect_maintenance: |cfg, purpose| {
        Box::pin(
            async move { Ok(Box::new(Postgres::connect(cfg, Some(cfg.maintenance_db.as_str()), purpose, &[]).await?) as Box<dyn Backend>) },
        )
    },
};

pub struct Postgres {
    client: Client,
    conn: tokio::task::JoinHandle<()>,
    tls: Option<LazyTls>,
    dialect: ToolSql,
    target: String,
    progress: Progress,
    /// Who this runner is, recorded in the lease (`lock::holder_text`).
    holder: String,
    /// This run's lease owner id (one per connection).
    owner: String,
    /// This session holds the advisory lock (possibly still waiting for the
    /// lease, held by a Data API runner).
    advisory: bool,
    /// This session holds the lease.
    locked: bool,
    /// The lease table is set up (`lease_setup.sql` ran in this session).
    lease_ready: bool,
    /// Lost races between first runners creating the lease table.
    setup_races: u32,
    /// What the connect-time probe read.
    session: Session,
    /// The notices the server sent (read by the citus backend).
    notices: Notices,
    /// The statement in flight was left running on the server
    /// ([`Backend::leave_session`]): closing drops the socket at once.
    left: bool,
}

/// One open connection: the client, its driver task, the TLS connector
/// used (needed again for cancel requests), and the notices it received.
type Opened = (Client, tokio::task::JoinHandle<()>, Option<LazyTls>, Notices);

/// A NOTICE or WARNING the server sent (`RAISE NOTICE`, Citus's "Copying
/// data from local table...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `NOTICE`, `WARNING`, `INFO`, ...
    pub severity: String,
    pub error: DbError,
}

/// The notices of one connection, in order, since they were last taken;
/// the newest [`Notices::KEPT`] are kept. Filled by the connection's
/// driver task before the answer of the statement that raised them reaches
/// the client, so they are complete once that answer is read.
#[derive(Debug, Clone, Default)]
pub struct Notices(std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Notice>>>);

impl Notices {
    const KEPT: usize = 100;

    fn push(&self, n: &tokio_postgres::error::DbError) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() == Self::KEPT {
            q.pop_front();
        }
        q.push_back(Notice {
            // The nonlocalized severity where the server sends one.
            severity: n
                .parsed_severity()
                .map(|s| s.to_string())
                .unwrap_or_else(|| n.severity().to_string()),
            error: DbError {
                fix: None,
                code: n.code().code().to_string(),
                message: n.message().to_string(),
                detail: n.detail().map(str::to_string),
                hint: n.hint().map(str::to_string),
                offset: None,
            },
        });
    }

    /// The notices received since the last call.
    pub fn take(&self) -> Vec<Notice> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect()
    }

    /// The notices received since the last call that `pick` chooses,
    /// taken; the others stay for [`Notices::take`]. Read while a statement
    /// runs, from a clone of the handle (the connection is busy).
    pub fn take_where(&self, pick: impl Fn(&Notice) -> bool) -> Vec<Notice> {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (taken, kept) = q.drain(..).partition(|n| pick(n));
        *q = kept;
        taken.into()
    }
}

/// Runs a connection until it closes, keeping the notices it receives.
fn drive<S, T>(mut conn: tokio_postgres::Connection<S, T>, notices: Notices) -> tokio::task::JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(Ok(m)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notice(n) = m {
                notices.push(&n);
            }
        }
    })
}

/// Copies a server error out of the driver's type.
fn db_error(e: &tokio_postgres::Error, sql: Option<&str>) -> Option<DbError> {
    let d = e.as_db_error()?;
    let offset = match (d.position(), sql) {
        (Some(ErrorPosition::Original(p)), Some(sql)) => Some(char_pos_to_byte(sql, *p as usize)),
        _ => None,
    };
    Some(DbError {
        fix: None,
        code: d.code().code().to_string(),
        message: d.message().to_string(),
        detail: d.detail().map(str::to_string),
        hint: d.hint().map(str::to_string),
        offset,
    })
}

fn lost_or_internal(e: tokio_postgres::Error, context: &'static str) -> ExecError {
    match db_error(&e, None) {
        Some(error) => ExecError::Internal { context, error },
        None => ExecError::Lost { message: e.to_string() },
    }
}

/// SQLSTATEs after which the session (and its transaction) is gone: a
/// read-only server after failover, shutdown, connection exceptions. A
/// connection exception sent as an ERROR (not FATAL) on a session that is
/// still open is about another connection of the server (a Citus worker,
/// a postgres_fdw or dblink server): this session goes on.
fn session_ended(e: &tokio_postgres::Error, client: &Client) -> bool {
    let Some(d) = e.as_db_error() else { return true };
    let code = d.code().code();
    use tokio_postgres::error::Severity;
    let fatal = match d.parsed_severity() {
        Some(s) => matches!(s, Severity::Fatal | Severity::Panic),
        None => matches!(d.severity(), "FATAL" | "PANIC"),
    } || client.is_closed();
    classify::read_only_transaction(code) || classify::server_going_away(code) || (classify::connection_exception(code) && fatal)
}

/// The driver's message with its cause ("error connecting to server:
/// Connection refused (os error 111)").
fn full_text(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(s) if !e.to_string().contains(&s.to_string()) => format!("{e}: {s}"),
        _ => e.to_string(),
    }
}

/// A failed connection attempt, already classified for `retry.rs`.
struct Attempt {
    error: Error,
    class: Class,
    cause: String,
}

/// The progress line's subject while connect attempts are retried.
const ACCEPTING: &str = "the database to accept connections";
/// The cause of a refused connection, in progress lines and for the retry rule.
const REFUSED: &str = "connection refused";

/// Classifies a failed connect. While Aurora resumes a connect may be held,
/// EOF, reset, or answer 57P03 or even a 28000: those are retried inside
/// `resume_timeout`; an authentication failure gets one retry with fresh
/// credentials (a new IAM token, a re-read secret).
fn classify_connect(e: &tokio_postgres::Error, refreshable: bool) -> (Class, String) {
    if let Some(d) = e.as_db_error() {
        let code = d.code().code();
        let class = match code {
            c if classify::cannot_connect_now(c) || classify::too_many_connections(c) || classify::connection_not_established(c) => {
                Class::Resuming
            }
            c if classify::invalid_authorization(c) => Class::Bounded(1),
            c if classify::invalid_password(c) && refreshable => Class::Bounded(1),
            _ => Class::Fatal,
        };
        return (class, format!("SQLSTATE {code}"));
    }
    let text = full_text(e);
    if e.is_closed() || text.starts_with("error communicating with the server") {
        // EOF or reset during start-up or authentication.
        return (Class::Resuming, text);
    }
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    match io.map(std::io::Error::kind) {
        Some(
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::TimedOut,
        ) => (Class::Resuming, text),
        // Nothing listening: a rebooting writer, or the wrong host or port.
        // How long it is retried depends on whether this run reached the
        // server before (see `open`).
        Some(std::io::ErrorKind::ConnectionRefused) => (Class::Transient, REFUSED.into()),
        _ => (Class::Fatal, text),
    }
}

/// Opens one connection (TCP or socket, TLS per sslmode, password), with a
/// timeout around the whole connect: TCP, TLS, start-up and authentication,
/// then runs the connect-time probe (`probe.sql` plus `extra` columns) in
/// the same attempt. Retried per [`classify_connect`] within
/// `resume_timeout`, with a progress line also while an attempt has no
/// answer yet; the password comes from the config, a Secrets Manager
/// secret, or a fresh IAM token. A replica, where `purpose` writes, is
/// waited for like a failover; a read-only session is refused at once.
/// A refused connection is retried within `refused_timeout` unless this
/// run reached the server before (`purpose.reconnect`: a rebooting writer).
async fn open(cfg: &Config, dbname: Option<&str>, purpose: Purpose, extra: &[&str]) -> Result<(Opened, String, String, Session)> {
    cfg.check_password()?;
    let sdk = if cfg.aws.secret_arn.is_some() || cfg.aws.iam_auth {
        Some(aws::sdk_config(cfg).await?)
    } else {
        None
    };
    let pg = std::sync::Mutex::new(cfg.pg.clone());
    if let (Some(sdk), Some(arn)) = (&sdk, &cfg.aws.secret_arn) {
        let secret = aws::fetch_secret(sdk, arn).await?;
        apply_secret(&mut pg.lock().unwrap_or_else(|p| p.into_inner()), secret);
    }
    let creds = if cfg.aws.iam_auth {
        Creds::Iam
    } else if cfg.aws.secret_arn.is_some() {
        Creds::Secret
    } else {
        Creds::Password
    };
    let refresh = std::sync::atomic::AtomicBool::new(false);
    let policy = Policy::resume(cfg.resume_timeout).pending(ACCEPTING);
    let started = Instant::now();
    let r = retry::retry(
        &policy,
        &cfg.progress,
        |_| async {
            if refresh.swap(false, std::sync::atomic::Ordering::SeqCst) {
                if let (Some(sdk), Some(arn)) = (&sdk, &cfg.aws.secret_arn) {
                    // Rotated password: read the secret again.
                    let fresh = aws::fetch_secret(sdk, arn).await.map_err(|error| Attempt {
                        error,
                        class: Class::Fatal,
                        cause: String::new(),
                    })?;
                    apply_secret(&mut pg.lock().unwrap_or_else(|p| p.into_inner()), fresh);
                }
            }
            let mut target = pg.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let (Some(sdk), true) = (&sdk, cfg.aws.iam_auth) {
                // A token lives 15 minutes: one per connection.
                let token = aws::iam_token(sdk, &target.host, target.port, &target.user)
                    .await
                    .map_err(|error| Attempt {
                        error,
                        class: Class::Fatal,
                        cause: String::new(),
                    })?;
                target.password = Some(token);
            }
            let db = dbname.unwrap_or(&target.dbname).to_string();
            let shown = target.display_db(&db);
            let opened = open_once(&target, &db, creds).await?;
            let session = match probe(&opened.0, &ToolSql::new(&cfg.history, &db), extra, &shown).await {
                Ok(s) => s,
                Err(a) => {
                    close_opened(opened).await;
                    return Err(a);
                }
            };
            if let Err(error) = session.check(purpose, &shown) {
                close_opened(opened).await;
                // A replica: a failover may be under way, so wait for the
                // writer; a read-only role or database does not change by waiting.
                let class = if matches!(error, Error::Replica { .. }) {
                    Class::Transient
                } else {
                    Class::Fatal
                };
                return Err(Attempt {
                    error,
                    class,
                    cause: "the server is a replica in recovery".into(),
                });
            }
            Ok((opened, shown, db, session))
        },
        |a: &Attempt| {
            if a.cause == "SQLSTATE 28P01" || a.cause == "SQLSTATE 28000" {
                // Refused credentials: read the secret again before the retry.
                refresh.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if a.cause == REFUSED && !purpose.reconnect && started.elapsed() >= cfg.refused_timeout {
                // Never reached in this run: the host or port may simply be wrong.
                return (Class::Fatal, ACCEPTING, a.cause.clone());
            }
            let what = match a.error {
                Error::Replica { .. } => "a writer",
                _ => ACCEPTING,
            };
            (a.class, what, a.cause.clone())
        },
    )
    .await;
    r.map_err(|g| {
        let pg = pg.lock().unwrap_or_else(|p| p.into_inner());
        let target = pg.display_db(dbname.unwrap_or(&pg.dbname));
        match g.error.error {
            Error::Replica { .. } => Error::Replica {
                target,
                waited: Some(cfg.resume_timeout.as_secs()),
            },
            Error::Connect { target, message, .. } if g.error.cause == REFUSED && !purpose.reconnect => Error::Connect {
                hint: format!(
                    "nothing accepts connections on {}:{} (refused for {} s): check host and port, and that the server is running; raise refused_timeout to wait longer for a server that is starting",
                    pg.host,
                    pg.port,
                    g.elapsed.as_secs()
                ),
                target,
                message,
            },
            error if g.exhausted && matches!(g.class, Class::Resuming | Class::Transient) => Error::ResumeTimeout {
                target,
                secs: cfg.resume_timeout.as_secs(),
                attempts: g.attempts,
                last: error.to_string(),
            },
            error => error,
        }
    })
}

/// Closes a connection that will not be used (a replica, a read-only session).
async fn close_opened((client, conn, _, _): Opened) {
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
}

/// Runs the connect-time probe on a new connection; a failure is classified
/// like a failed connect (a lost connection is retried).
async fn probe(client: &Client, dialect: &ToolSql, extra: &[&str], target: &str) -> Result<Session, Attempt> {
    let sql = dialect.probe(extra);
    match client.simple_query(&sql).await {
        Ok(msgs) => {
            let row: Vec<Option<String>> = msgs
                .into_iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                    _ => None,
                })
                .unwrap_or_default();
            Session::from_row(&row).map_err(|error| Attempt {
                error,
                class: Class::Fatal,
                cause: String::new(),
            })
        }
        Err(e) => {
            let (class, cause) = classify_connect(&e, false);
            let error = match db_error(&e, Some(&sql)) {
                Some(d) => Error::Db {
                    context: format!("probing {target} after connecting"),
                    error: Box::new(d),
                },
                None => Error::ConnectionLost {
                    context: format!("probing {target} after connecting"),
                    message: full_text(&e),
                },
            };
            Err(Attempt { error, class, cause })
        }
    }
}

/// Takes user and password from a secret, and host, port and dbname where
/// the configuration did not give them.
fn apply_secret(pg: &mut crate::settings::PgTarget, s: aws::DbSecret) {
    pg.user = s.username;
    pg.password = Some(s.password);
    if let (Some(h), false) = (s.host, pg.explicit.host) {
        pg.host = h;
    }
    if let (Some(p), false) = (s.port, pg.explicit.port) {
        pg.port = p;
    }
    if let (Some(d), false) = (s.dbname, pg.explicit.dbname) {
        pg.dbname = d;
    }
}

/// Where the password comes from, for the retry rules and the hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creds {
    Password,
    Secret,
    Iam,
}

/// The next step for a failed connect, from what failed and how we logged in.
fn connect_hint(pg: &crate::settings::PgTarget, creds: Creds, code: &str, message: &str) -> String {
    let bundle = || match &pg.sslrootcert {
        Some(p) => format!("sslrootcert ({})", p.display()),
        None => "the system's CA store (no sslrootcert set)".to_string(),
    };
    if message.contains("certificate verify failed") {
        if message.contains("mismatch") {
            return format!(
                "the server's certificate does not name `{}`: connect with the name it was issued for (for RDS, the cluster endpoint), or use sslmode = \"verify-ca\"",
                pg.host
            );
        }
        return format!(
            "the server's certificate is not signed by a CA in {}; for RDS set sslrootcert to the global bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)",
            bundle()
        );
    }
    if classify::invalid_authorization(code) && message.contains("no encryption") {
        return "the server only accepts TLS: set sslmode = \"verify-full\" and sslrootcert (for RDS, the global bundle)".into();
    }
    match (creds, code) {
        (Creds::Iam, "28000" | "28P01") => format!(
            "the IAM token was refused also when minted again: check that the caller's policy allows rds-db:connect for db user `{}`, that the user has `GRANT rds_iam`, and the region; `aws sts get-caller-identity` shows the caller",
            pg.user
        ),
        (Creds::Secret, "28P01") => format!(
            "the secret's password was refused also after reading the secret again: check that the secret belongs to db user `{}` and that its rotation finished",
            pg.user
        ),
        _ => "check host, port, user and password (PGPASSWORD or password_env), then retry".into(),
    }
}

async fn open_once(pg: &crate::settings::PgTarget, dbname: &str, creds: Creds) -> Result<Opened, Attempt> {
    let target = pg.display_db(dbname);
    let mut c = tokio_postgres::Config::new();
    c.host(&pg.host)
        .port(pg.port)
        .user(&pg.user)
        .dbname(dbname)
        .application_name(&pg.application_name);
    c.connect_timeout(pg.connect_timeout);
    if let Some(p) = &pg.password {
        c.password(p.expose());
    }
    let mode = pg.effective_sslmode();
    c.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    });
    let fatal = |error: Error| Attempt {
        error,
        class: Class::Fatal,
        cause: String::new(),
    };
    // A bad CA bundle fails here, before the network is tried; the
    // connector itself is built only if the server agrees to TLS.
    let tls = if mode == SslMode::Disable || pg.host.starts_with('/') {
        None
    } else {
        let roots = pg.sslrootcert.as_deref().map(load_bundle).transpose().map_err(fatal)?;
        Some(LazyTls::new(mode, roots))
    };
    let notices = Notices::default();
    let attempt = async {
        let (client, handle) = match tls.clone() {
            None => {
                let (client, conn) = c.connect(tokio_postgres::NoTls).await?;
                (client, drive(conn, notices.clone()))
            }
            Some(tls) => {
                let (client, conn) = c.connect(tls).await?;
                (client, drive(conn, notices.clone()))
            }
        };
        Ok::<_, tokio_postgres::Error>((client, handle))
    };
    match tokio::time::timeout(pg.connect_timeout, attempt).await {
        Err(_) => Err(Attempt {
            error: Error::ConnectTimeout {
                target,
                wait: crate::value::elapsed(pg.connect_timeout.as_millis() as u64),
            },
            class: Class::Resuming,
            cause: format!("no answer within {}", crate::value::elapsed(pg.connect_timeout.as_millis() as u64)),
        }),
        Ok(Err(e)) => {
            let (class, cause) = classify_connect(&e, creds != Creds::Password);
            let error = match db_error(&e, None) {
                Some(d) if classify::undefined_database(&d.code) => Error::DatabaseMissing {
                    name: dbname.to_string(),
                    target: format!("{}:{}", pg.host, pg.port),
                },
                Some(d) => Error::Connect {
                    hint: connect_hint(pg, creds, &d.code, &d.message),
                    target,
                    message: format!("{} (SQLSTATE {})", d.message, d.code),
                },
                None => {
                    let message = full_text(&e);
                    Error::Connect {
                        hint: connect_hint(pg, creds, "", &message),
                        target,
                        message,
                    }
                }
            };
            Err(Attempt { error, class, cause })
        }
        Ok(Ok((client, conn))) => Ok((client, conn, tls, notices)),
    }
}

/// The error of a transactional migration whose part `index` failed (0 =
/// BEGIN, 1..=k its `k` settings, then its `n` statements, the history row,
/// COMMIT). A failed setting is reported on the first statement.
fn failed_part(index: usize, k: usize, n: usize, mut error: DbError) -> ExecError {
    if index >= 1 && index <= k {
        error.offset = None;
        return ExecError::Statement { index: 0, error };
    }
    if index > k && index <= k + n {
        return ExecError::Statement {
            index: index - k - 1,
            error,
        };
    }
    error.offset = None;
    let context = if index == 0 {
        "BEGIN"
    } else if index == k + n + 1 {
        "writing the history row"
    } else {
        "COMMIT"
    };
    ExecError::Internal { context, error }
}

impl Postgres {
    /// Runs a transactional migration with every statement as a query
    /// string of its own, pipelined: all of them are sent before the first
    /// answer is read, so it is still one network round trip. The first
    /// error aborts the transaction: the statements after it fail with
    /// 25P02 and the COMMIT rolls back. For servers that must see one
    /// statement per query string: Citus propagates a DDL statement's query
    /// string to the workers, where a string of several commands fails with
    /// "cannot insert multiple commands into a prepared statement".
    pub async fn run_transaction_separately(&mut self, settings: &[String], statements: &[&str], row: &Row) -> Result<i64, ExecError> {
        let t = self.wire().transaction(settings, statements, row);
        let all = t.parts();
        // The history row, second to last (before COMMIT).
        let history_part = all.len() - 2;
        let client = &self.client;
        type Part<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<i64, tokio_postgres::Error>> + Send + 'a>>;
        // Each part answers with the history row's execution_ms (0 for all
        // but the history row, the only one whose rows are read).
        let mut pending: Vec<Part<'_>> = all
            .iter()
            .enumerate()
            .map(|(i, s)| -> Part<'_> {
                if i == history_part {
                    Box::pin(async move {
                        let msgs = client.simple_query(s).await?;
                        Ok(msgs
                            .iter()
                            .find_map(|m| match m {
                                SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                                _ => None,
                            })
                            .unwrap_or(0))
                    })
                } else {
                    Box::pin(async move { client.batch_execute(s).await.map(|()| 0) })
                }
            })
            .collect();
        let mut results: Vec<Option<Result<i64, tokio_postgres::Error>>> = (0..all.len()).map(|_| None).collect();
        // Poll each request once, in order: the first poll sends it. Then
        // collect the answers, which come back in the same order.
        std::future::poll_fn(|cx| {
            for (f, r) in pending.iter_mut().zip(results.iter_mut()) {
                if let std::task::Poll::Ready(done) = std::future::Future::poll(f.as_mut(), cx) {
                    *r = Some(done);
                }
            }
            std::task::Poll::Ready(())
        })
        .await;
        for (f, r) in pending.iter_mut().zip(results.iter_mut()) {
            if r.is_none() {
                *r = Some(f.await);
            }
        }
        let execution_ms = results
            .get(history_part)
            .and_then(|r| r.as_ref())
            .and_then(|r| r.as_ref().ok())
            .copied()
            .unwrap_or(0);
        let Some((index, e)) = results
            .into_iter()
            .enumerate()
            .find_map(|(i, r)| r.and_then(Result::err).map(|e| (i, e)))
        else {
            return Ok(execution_ms);
        };
        let Some(error) = db_error(&e, Some(all[index])) else {
            return Err(ExecError::Lost { message: e.to_string() });
        };
        if session_ended(&e, &self.client) {
            return Err(ExecError::Lost {
                message: format!("{} (SQLSTATE {})", error.message, error.code),
            });
        }
        // The COMMIT after a failed statement already rolled back; this
        // covers a failed COMMIT (a no-op warning otherwise).
        let _ = self.client.batch_execute("ROLLBACK").await;
        Err(failed_part(index, settings.len(), statements.len(), error))
    }

    /// Connects and probes the session for `purpose`; `extra` columns are
    /// added to the probe (the backend reads them from [`Postgres::session`]).
    pub async fn connect(cfg: &Config, dbname: Option<&str>, purpose: Purpose, extra: &[&str]) -> Result<Postgres> {
        let ((client, conn, tls, notices), target, dbname, session) = open(cfg, dbname, purpose, extra).await?;
        Ok(Postgres {
            client,
            conn,
            tls,
            notices,
            left: false,
            target,
            dialect: ToolSql::new(&cfg.history, &dbname),
            progress: cfg.progress.clone(),
            holder: lock::holder_text(&cfg.pg.application_name, cfg.backend.as_str()),
            owner: lock::owner_id(),
            advisory: false,
            locked: false,
            lease_ready: false,
            setup_races: 0,
            session,
        })
    }

    /// How this backend writes a transaction and a history row (a session
    /// holder: `SET LOCAL`s, plain upserts).
    fn wire(&self) -> Wire<'_> {
        Wire {
            dialect: &self.dialect,
            lock: CAPABILITIES.lock,
            owner: None,
        }
    }

    /// What the connect-time probe read.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Every history row: all columns, or (`for_plan`) those `up` plans with.
    async fn history_rows(&mut self, for_plan: bool) -> Result<Vec<Row>> {
        if !self.session.history_exists {
            // The probe found no history table: nothing applied, and no
            // query that would fail (and log an ERROR) on a new database.
            return Ok(Vec::new());
        }
        let mut sql = match for_plan {
            true => self.dialect.select_history_for_plan(i64::MIN, None),
            false => self.dialect.select_history(i64::MIN, None),
        };
        if self.session.repeatables_exist {
            // The repeatable migrations' rows, in the same columns, in the
            // same round trip.
            sql.push_str(";\n");
            sql.push_str(&self.dialect.select_repeatables(for_plan));
        }
        let rows = match self.simple(&sql, "reading the history table").await {
            Ok(r) => r,
            // No table (42P01) or no schema (3F000) yet: nothing applied.
            Err(Error::Db { error, .. }) if classify::undefined_table(&error.code) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let read = if for_plan { Row::from_plan_text } else { Row::from_text };
        rows.into_iter().map(read).collect()
    }

    /// The notices the server sent since the last call.
    pub fn take_notices(&self) -> Vec<Notice> {
        self.notices.take()
    }

    async fn simple(&self, sql: &str, context: &str) -> Result<Vec<Vec<Option<String>>>> {
        let msgs = self.client.simple_query(sql).await.map_err(|e| match db_error(&e, Some(sql)) {
            Some(error) => Error::Db {
                context: context.to_string(),
                error: Box::new(error),
            },
            None => Error::ConnectionLost {
                context: context.to_string(),
                message: e.to_string(),
            },
        })?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect())
    }
}

#[async_trait]
impl Taker for Postgres {
    /// The lease setup (first attempt of a session) and the lease in one
    /// simple-query round trip; the advisory lock is kept across attempts.
    async fn try_take(&mut self) -> Result<bool> {
        let acquire = self.dialect.acquire_lease(&self.owner, &self.holder, None);
        let sql = if self.lease_ready {
            acquire
        } else {
            format!("{};\n{acquire}", self.dialect.setup_lease())
        };
        let rows = match self.simple(&sql, "taking the migration lock").await {
            Ok(rows) => rows,
            Err(e) if lock::setup_race(&e) && self.setup_races < 5 => {
                self.setup_races += 1;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.lease_ready = true;
        let (advisory, took, row) = lock::acquired(&rows);
        self.advisory = advisory;
        if !row {
            // Removed by a runner of an older release: put it back.
            self.lease_ready = false;
        }
        self.locked = took;
        Ok(took)
    }

    async fn holder(&mut self) -> String {
        match self.simple(&self.dialect.lease_holder(), "lock holder").await {
            Ok(rows) => rows.first().map(|r| lock::describe(r)).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

#[async_trait]
impl Backend for Postgres {
    fn notices(&self) -> Option<Notices> {
        Some(self.notices.clone())
    }

    fn name(&self) -> &'static str {
        "postgres"
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    async fn lock(&mut self, wait: Duration) -> Result<()> {
        if self.locked {
            return Ok(());
        }
        // The advisory lock lives on the session that runs the migrations:
        // if this process dies, the server keeps it until that session's
        // last statement has finished (or rolled back), so no other runner,
        // of any transport, starts while a killed runner's batch is still
        // executing. Polled: a waiter never sits inside a snapshot that a
        // CONCURRENTLY build in the holder would have to wait for.
        let progress = self.progress.clone();
        lock::poll(wait, &progress, self).await
    }

    fn leave_session(&mut self) {
        self.locked = false;
        self.advisory = false;
        self.left = true;
    }

    async fn unlock(&mut self) -> Result<()> {
        if self.locked || self.advisory {
            self.locked = false;
            self.advisory = false;
            let sql = self.dialect.release_lease(&self.owner, true);
            // A cancel sent on SIGINT can land on this query instead of the
            // migration's: try once more (closing the session would release
            // the advisory lock, and with it the lease, anyway).
            if let Err(Error::Db { error, .. }) = self.simple(&sql, "releasing the migration lock").await {
                if !classify::query_canceled(&error.code) {
                    return Err(Error::Db {
                        context: "releasing the migration lock".into(),
                        error,
                    });
                }
                self.simple(&sql, "releasing the migration lock").await?;
            }
        }
        Ok(())
    }

    async fn ensure_history(&mut self) -> Result<()> {
        for sql in self.dialect.create_history() {
            self.simple(&sql, "creating the history table").await?;
        }
        self.session.history_exists = true;
        Ok(())
    }

    async fn ensure_repeatables(&mut self) -> Result<()> {
        if !self.session.repeatables_exist {
            let sql = self.dialect.create_repeatables();
            self.simple(&sql, "creating the table of repeatable migrations").await?;
            self.session.repeatables_exist = true;
        }
        Ok(())
    }

    async fn read_history(&mut self) -> Result<Vec<Row>> {
        self.history_rows(false).await
    }

    async fn read_history_for_plan(&mut self) -> Result<Vec<Row>> {
        self.history_rows(true).await
    }

    async fn write_history(&mut self, row: &Row) -> Result<()> {
        let sql = self.wire().history(row, Value::Int(row.execution_ms));
        self.simple(&sql, "writing the history table").await.map(drop)
    }

    async fn accept_file(&mut self, version: i64, name: &str, checksum: &str) -> Result<()> {
        self.simple(&self.dialect.accept_file(version, name, checksum), "updating a history row")
            .await
            .map(drop)
    }

    async fn delete_history(&mut self, version: i64) -> Result<()> {
        self.simple(&self.dialect.delete_history(version), "deleting a history row")
            .await
            .map(drop)
    }

    async fn log_event(&mut self, version: i64, action: &str, old: Option<&str>, new: Option<&str>, detail: Option<&str>) -> Result<()> {
        let sql = self.dialect.insert_log(&[
            Value::Int(version),
            Value::Text(action.into()),
            Value::opt_text(old),
            Value::opt_text(new),
            Value::opt_text(detail),
        ]);
        self.simple(&sql, "writing the history log").await.map(drop)
    }

    async fn run_transaction(&mut self, settings: &[String], statements: &[&str], row: &Row) -> Result<i64, ExecError> {
        // One round trip: BEGIN; settings; s1; ...; sn; history; COMMIT
        let t = self.wire().transaction(settings, statements, row);
        let parts = t.parts();
        let mut batch = String::with_capacity(parts.iter().map(|p| p.len() + 2).sum());
        let mut starts = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                batch.push_str(";\n");
            }
            starts.push(batch.len());
            batch.push_str(p);
        }
        // Where statement k of the file starts in the batch.
        let starts = &starts[1 + t.opening.len()..];

        let mut done = 0usize;
        // The history row's RETURNING: the part after BEGIN, the settings
        // and the statements (whose own rows, a SELECT's, come before).
        let history_part = 1 + t.opening.len() + statements.len();
        let mut execution_ms = 0;
        let result = async {
            let stream = self.client.simple_query_raw(&batch).await?;
            futures_util::pin_mut!(stream);
            while let Some(m) = stream.next().await {
                match m? {
                    SimpleQueryMessage::CommandComplete(_) => done += 1,
                    SimpleQueryMessage::Row(r) if done == history_part => {
                        execution_ms = r.get(0).and_then(|v| v.parse().ok()).unwrap_or(0);
                    }
                    _ => {}
                }
            }
            Ok::<_, tokio_postgres::Error>(())
        }
        .await;
        let e = match result {
            Ok(()) => return Ok(execution_ms),
            Err(e) => e,
        };
        let Some(mut error) = db_error(&e, Some(&batch)) else {
            return Err(ExecError::Lost { message: e.to_string() });
        };
        if session_ended(&e, &self.client) {
            // Failover (a read-only server), an admin shutdown: the
            // transaction is gone with its session; reconnect and redo it.
            return Err(ExecError::Lost {
                message: format!("{} (SQLSTATE {})", error.message, error.code),
            });
        }
        // Leave no open transaction behind (a no-op warning if COMMIT ended it).
        let _ = self.client.batch_execute("ROLLBACK").await;
        // Which part failed: `done` parts completed before it (BEGIN, the
        // settings, the statements, the history row, COMMIT).
        let (index, k) = (done, settings.len());
        if index > k && index <= k + statements.len() {
            let (start, len) = (starts[index - k - 1], statements[index - k - 1].len());
            error.offset = error.offset.filter(|&o| o >= start && o <= start + len).map(|o| o - start);
        }
        Err(failed_part(index, k, statements.len(), error))
    }

    async fn execute(&mut self, statement: &str) -> Result<(), ExecError> {
        match self.client.batch_execute(statement).await {
            Ok(()) => Ok(()),
            Err(e) => match db_error(&e, Some(statement)) {
                Some(error) => Err(ExecError::Statement { index: 0, error }),
                None => Err(lost_or_internal(e, "statement")),
            },
        }
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        self.simple(sql, "query").await
    }

    async fn database_exists(&mut self, name: &str) -> Result<bool> {
        Ok(!self
            .simple(&ToolSql::database_exists(name), "looking up the database")
            .await?
            .is_empty())
    }

    fn canceller(&self) -> Option<Canceller> {
        let token = self.client.cancel_token();
        let tls = self.tls.clone();
        Some(Box::new(move || {
            let token = token.clone();
            let tls = tls.clone();
            Box::pin(async move {
                let _ = match tls {
                    Some(tls) => token.cancel_query(tls).await,
                    None => token.cancel_query(tokio_postgres::NoTls).await,
                };
            })
        }))
    }

    async fn close(self: Box<Self>) {
        let Postgres { client, conn, left, .. } = *self;
        drop(client);
        if left {
            // The server goes on with the statement without its client (a
            // process that lives on, a warm Lambda, must not keep the
            // session, or its lock, beyond the statement).
            conn.abort();
            // Awaited, so the socket is closed now (not whenever the
            // runtime next polls the task).
            let _ = conn.await;
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
    }
}
