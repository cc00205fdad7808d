//! The AWS RDS Data API transport (`aws-sdk-rdsdata`).
//!
//! - One statement per `ExecuteStatement` (AWS rejects multi-statement SQL),
//!   never the `schema` parameter, never `ExecuteSql`; statements arrive
//!   split, without trailing semicolons, and at most 65,536 characters (the
//!   runner refuses longer ones at load time).
//! - A transactional migration is BeginTransaction → ExecuteStatement
//!   (transactionId) per statement → the history row → CommitTransaction,
//!   one call in flight at a time. While chatmigrate backs off inside a
//!   transaction it sends `SELECT 1` every `transaction_keepalive`, so the
//!   Data API's 3-minute idle limit never ends it.
//! - Statements outside a transaction run with `continueAfterTimeout`; a
//!   `StatementTimeoutException` comes back as "still running" and the
//!   runner polls the server for completion.
//! - No session survives between calls, so this runner holds the migration
//!   lock (the lease row every transport shares, `lock.rs`) with an expiry
//!   renewed by a heartbeat; every history row is written only while the
//!   lease is live (`lease_fence.sql`, checked through `RETURNING`), and
//!   each migration transaction holds the lease row `FOR KEY SHARE` from its
//!   first call, which also carries its settings (`lease_guard.sql`).
//! - The wake-up probe (`dialects/postgres/probe.sql`: replica, read-only
//!   session, whether the history table exists) and every retry go through
//!   `retry.rs`.
//!   Tool-owned queries return text only and page their results (1 MiB cap).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_rdsdata::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rdsdata::operation::execute_statement::{ExecuteStatementError, ExecuteStatementOutput};
use aws_sdk_rdsdata::types::Field;
use aws_sdk_rdsdata::Client;

use super::lock::{self, Taker};
use super::wire::Wire;
use super::{sqlstate, Backend, Canceller, Capabilities, ExecError, LockKind, Purpose, Session};
use crate::classify;
use crate::dialect::{ToolSql, Value};
use crate::error::{DbError, Error, Result};
use crate::history::Row;
use crate::retry::{self, Backoff, Class, GaveUp, Policy, Progress};
use crate::settings::Config;
use crate::sql::char_pos_to_byte;

/// The code of a probe that found a replica where the run writes (retried as
/// a failover; never an AWS code).
const REPLICA: &str = "replica";

/// Rows per page when reading history (far below the 1 MiB response cap;
/// halved if the Data API still says the response is too large).
const PAGE: u32 = 500;

/// One call per statement; a lease row; no session between calls; AWS's
/// 65,536-character statement limit.
pub const CAPABILITIES: Capabilities = Capabilities {
    distributed_tables: false,
    pipelined_transactions: false,
    lock: LockKind::LeaseRow,
    session_state: false,
    statements_die_with_connection: false,
    max_statement_chars: Some(65_536),
    group_commit: true,
};

/// `[environments.<name>.rds-data]`: this backend's own settings, in its
/// own table (docs/config.reference.toml). The flat keys `resource_arn`,
/// `lease_ttl` and `transaction_keepalive` are aliases; config loading
/// folds this table into them. The AWS settings the direct backend shares
/// (`secret_arn`, `region`, `profile`, `endpoint_url`, `request_timeout`)
/// stay in the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub resource_arn: Option<String>,
    #[serde(default, deserialize_with = "crate::value::duration_text")]
    pub lease_ttl: Option<String>,
    #[serde(default, deserialize_with = "crate::value::duration_text")]
    pub transaction_keepalive: Option<String>,
}

/// The `rds-data` backend in the registry ([`super::BACKENDS`]).
pub static DEF: super::BackendDef = super::BackendDef {
    kind: crate::settings::BackendKind::RdsData,
    name: "rds-data",
    capabilities: CAPABILITIES,
    target: |cfg| {
        let arn = cfg.aws.resource_arn.as_deref().unwrap_or("");
        let cluster = arn.rsplit(':').next().unwrap_or(arn);
        format!("rds-data:{cluster}/{}", cfg.pg.dbname)
    },
    unreachable_hint: |_| {
        "check that the cluster is available (RDS console: status, capacity) and that resource_arn and secret_arn name it; raise --timeout to wait longer".into()
    },
    extra_migrations: &[],
    prelude: super::no_prelude,
    connect: |cfg, purpose| Box::pin(async move { Ok(Box::new(RdsData::connect(cfg, None, purpose).await?) as Box<dyn Backend>) }),
    connect_maintenance: |cfg, purpose| {
        Box::pin(async move { Ok(Box::new(RdsData::connect(cfg, Some(cfg.maintenance_db.as_str()), purpose).await?) as Box<dyn Backend>) })
    },
};

pub struct RdsData {
    client: Client,
    resource_arn: String,
    secret_arn: String,
    database: String,
    dialect: ToolSql,
    target: String,
    endpoint: Endpoint,
    policy: Policy,
    progress: Progress,
    lease_ttl: Duration,
    keepalive: Duration,
    /// Who this runner is, recorded in the lease (`lock::holder_text`).
    holder: String,
    /// This run's lease owner id.
    owner: String,
    /// The lease table is set up (`lease_setup.sql` ran in this run).
    lease_ready: bool,
    /// Lost races between first runners creating the lease table.
    setup_races: u32,
    /// Set while this runner holds the lease.
    lease: Option<Lease>,
    /// Set by the canceller (SIGINT/SIGTERM): roll back before the next statement.
    cancelled: Arc<AtomicBool>,
    /// What the wake-up probe read.
    session: Session,
}

struct Lease {
    owner: String,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    /// A run dropped without `unlock` (a Lambda invocation abandoned at its
    /// deadline) stops renewing: the lease expires after `lease_ttl`, even
    /// while the process lives on to serve the next invocation.
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Where the Data API calls go, to name it when nothing there answers as one.
struct Endpoint {
    /// `endpoint_url`, `AWS_ENDPOINT_URL`, or "AWS's regional endpoint".
    setting: &'static str,
    url: String,
    /// AWS's regional endpoint, for the hint.
    regional: String,
}

impl Endpoint {
    fn new(cfg: &Config, sdk: &aws_config::SdkConfig) -> Endpoint {
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "<region>".into());
        let regional = format!("https://rds-data.{region}.amazonaws.com");
        let (setting, url) = match (&cfg.aws.endpoint_url, sdk.endpoint_url()) {
            (Some(u), _) => ("endpoint_url", u.clone()),
            (None, Some(u)) => ("AWS_ENDPOINT_URL", u.to_string()),
            (None, None) => ("AWS's regional endpoint", regional.clone()),
        };
        Endpoint {
            setting,
            url: crate::settings::redact_url(&url),
            regional,
        }
    }

    fn error(&self, attempts: u32, last: String) -> Error {
        let hint = match self.setting {
            "endpoint_url" => format!(
                "check endpoint_url (scheme, host and port of the Data API or its emulator), or remove it to use AWS's regional endpoint {}",
                self.regional
            ),
            "AWS_ENDPOINT_URL" => format!(
                "check AWS_ENDPOINT_URL (or the profile's endpoint_url), or unset it to use AWS's regional endpoint {}",
                self.regional
            ),
            _ => "check the network path to AWS from here (a VPC without a NAT gateway needs an rds-data interface endpoint: set endpoint_url to it) and the region".into(),
        };
        Error::DataApiEndpoint {
            setting: self.setting.into(),
            url: self.url.clone(),
            attempts,
            last,
            hint,
        }
    }
}

/// One failed call, reduced to what classification needs.
#[derive(Debug, Clone)]
struct CallError {
    code: String,
    message: String,
    /// `dbConnectionId` of a StatementTimeoutException.
    connection_id: Option<i64>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

fn call_error<E>(e: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>, connection_id: Option<i64>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            CallError {
                code: se.err().code().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}")),
                message: se.err().message().unwrap_or("").to_string(),
                connection_id,
            }
        }
        _ => CallError {
            code: super::aws::non_service_code(&e),
            message: super::aws::error_line(&e),
            connection_id: None,
        },
    }
}

/// Whether re-sending a call can change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// Reads, the probe, BeginTransaction, a statement inside a transaction
    /// that will not be committed by this call.
    Idempotent,
    /// A statement outside a transaction, CommitTransaction.
    Once,
    /// The wake-up probe: a StatementTimeoutException means "still waking".
    Probe,
}

/// Retries of the wake-up probe when the endpoint does not answer as a Data
/// API: 5 attempts within about 1.5 s (backoff 100 ms doubling). AWS's
/// endpoints do not reboot; a wrong `endpoint_url` does not get better.
const ENDPOINT_RETRIES: u32 = 4;

fn classify(e: &CallError, call: Call) -> (Class, &'static str, String) {
    let cause = e.code.clone();
    // Said in words by some implementations (an HTTP 500, BadRequestException,
    // DatabaseNotFoundException): never worth waiting for.
    if names_missing_database(e) {
        return (Class::Fatal, "the Data API", cause);
    }
    if call == Call::Probe && endpoint_failure(e) {
        // A connect that timed out already waited 10 s.
        let retries = if e.code == "connect timeout" { 0 } else { ENDPOINT_RETRIES };
        return (Class::Bounded(retries), "the Data API endpoint to answer", cause);
    }
    let class = match e.code.as_str() {
        "DatabaseResumingException" => return (Class::Resuming, "Aurora to resume", cause),
        "StatementTimeoutException" if call == Call::Probe => return (Class::Resuming, "Aurora to resume", cause),
        "ThrottlingException" | "ThrottledException" | "TooManyRequestsException" => {
            return (Class::Transient, "throttling to pass", cause)
        }
        "DatabaseErrorException" if e.message.contains("Transaction is still running a query") => Class::Transient,
        "SecretsErrorException" if e.message.to_ascii_lowercase().contains("timed out") => Class::Bounded(2),
        "InvalidResourceStateException" => Class::Bounded(3),
        // Whether a non-idempotent statement ran is unknown (reference §8).
        "DatabaseUnavailableException"
        | "InternalServerErrorException"
        | "ServiceUnavailableError"
        | "timeout"
        | "connect timeout"
        | "io"
        | "dispatch"
        | "response" => Class::Ambiguous,
        c if c.starts_with("HTTP 5") => Class::Ambiguous,
        _ => Class::Fatal,
    };
    match (class, call) {
        // Nothing changes if an idempotent call happened twice.
        (Class::Ambiguous, Call::Idempotent | Call::Probe) => (Class::Transient, "the Data API to answer", cause),
        (c, _) => (c, "the Data API", cause),
    }
}

/// Whether the error says that the database does not exist: SQLSTATE 3D000
/// in its text, or PostgreSQL's `database "x" does not exist`, whatever the
/// error code (DatabaseErrorException, BadRequestException, an HTTP 500).
/// A `DatabaseNotFoundException` counts only with that text: AWS uses the
/// code for a cluster without a writer instance (docs/backends.md).
fn names_missing_database(e: &CallError) -> bool {
    !e.message.is_empty() && classify::undefined_database(&sql_error(&e.message, None).code)
}

/// An answer from something that is not a Data API, or no answer at all:
/// refused, DNS, TLS, a cut connection, a body the SDK cannot read, or an
/// HTTP status without an AWS error code (a 404 page, an HTML 502).
fn endpoint_failure(e: &CallError) -> bool {
    matches!(
        e.code.as_str(),
        "io" | "dispatch" | "response" | "connect timeout" | PROBE_UNREADABLE
    ) || e.code.starts_with("HTTP ")
}

/// The probe's answer had no row of the probe's columns (e.g. an HTTP 200
/// with `{}`): whatever answered is not a Data API.
const PROBE_UNREADABLE: &str = "probe";

/// Reads a SQL error that the Data API (or an emulator) sent as text into a
/// [`DbError`]; the position, if any, is mapped to a byte offset in `sql`.
///
/// Accepted spellings (docs/backends.md, "SQL errors"):
/// - the JDBC text AWS is believed to send:
///   `ERROR: msg\n  Detail: ..\n  Hint: ..\n  Position: 15; SQLState: 42P01`;
/// - the same without the `; SQLState: XXXXX` suffix;
/// - the bare server message (`relation "x" does not exist`, data-api-local);
/// - a JDBC wrapper, `Database error code: 0. Message: ERROR: ..` (local-data-api).
///
/// Without a SQLSTATE in the text, the message says which one it is
/// ([`sqlstate::from_message`]); a message it does not know keeps an empty
/// code and is shown in full, with every line it carried.
fn sql_error(message: &str, sql: Option<&str>) -> DbError {
    let (body, code) = split_sqlstate(message);
    let mut lines = body.lines();
    let first = strip_wrappers(lines.next().unwrap_or(""));
    let mut err = DbError {
        fix: None,
        code: code
            .or_else(|| sqlstate::from_message(first).map(str::to_string))
            .unwrap_or_default(),
        message: first.to_string(),
        detail: None,
        hint: None,
        offset: None,
    };
    let mut other = Vec::new();
    for l in lines {
        let l = l.trim();
        if let Some(d) = l.strip_prefix("Detail: ") {
            err.detail = Some(d.to_string());
        } else if let Some(h) = l.strip_prefix("Hint: ") {
            err.hint = Some(h.to_string());
        } else if let Some(p) = l.strip_prefix("Position: ") {
            let p = p.trim_end_matches(';').trim();
            if let (Ok(p), Some(sql)) = (p.parse::<usize>(), sql) {
                err.offset = Some(char_pos_to_byte(sql, p));
            }
        } else if !l.is_empty() {
            // `Where: ...` and anything else: kept, never dropped.
            other.push(l);
        }
    }
    if !other.is_empty() {
        err.message = format!("{}; {}", err.message, other.join("; "));
    }
    err
}

/// Splits a trailing `; SQLState: XXXXX` (or ` (SQLSTATE XXXXX)`) off a
/// message: (the rest, the code).
fn split_sqlstate(message: &str) -> (&str, Option<String>) {
    let Some(at) = message.to_ascii_lowercase().rfind("sqlstate") else {
        return (message, None);
    };
    let after = message[at + "sqlstate".len()..].trim_start_matches([':', ' ']);
    let code: String = after.chars().take(5).collect();
    let tail = after.get(5..).unwrap_or("x");
    let is_code = code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !is_code || !tail.trim_matches([')', '.', ';', ' ', '\n']).is_empty() {
        return (message, None);
    }
    (message[..at].trim_end_matches(['(', ';', ' ', '\n']), Some(code))
}

/// The server's message without the wrappers around it: a JDBC `Database
/// error code: N. Message: ` and the severity (`ERROR: `, `FATAL: `).
fn strip_wrappers(line: &str) -> &str {
    let mut line = line.trim();
    loop {
        let before = line;
        if let Some(rest) = line.strip_prefix("Database error code: ") {
            if let Some((_, m)) = rest.split_once(". Message: ") {
                line = m.trim_start();
            }
        }
        for severity in ["ERROR:", "FATAL:", "PANIC:"] {
            if let Some(rest) = line.strip_prefix(severity) {
                line = rest.trim_start();
            }
        }
        if line == before {
            return line;
        }
    }
}

/// The records of a result, every value as text (`None` for NULL).
fn text_rows(out: &ExecuteStatementOutput) -> Vec<Vec<Option<String>>> {
    out.records()
        .iter()
        .map(|r| {
            r.iter()
                .map(|f| match f {
                    Field::IsNull(_) => None,
                    Field::StringValue(s) => Some(s.clone()),
                    Field::LongValue(v) => Some(v.to_string()),
                    Field::DoubleValue(v) => Some(v.to_string()),
                    Field::BooleanValue(b) => Some(if *b { "t" } else { "f" }.to_string()),
                    _ => Some(String::new()),
                })
                .collect()
        })
        .collect()
}

impl RdsData {
    /// Builds the client and wakes the cluster with the idempotent
    /// connect-time probe (`probe.sql`, retried while Aurora resumes, within
    /// `resume_timeout`), which also tells a replica (waited for where
    /// `purpose` writes) and a read-only session (refused) and whether the
    /// history table exists.
    pub async fn connect(cfg: &Config, dbname: Option<&str>, purpose: Purpose) -> Result<RdsData> {
        let sdk = super::aws::sdk_config(cfg).await?;
        let database = dbname.unwrap_or(&cfg.pg.dbname).to_string();
        let arn = cfg.aws.resource_arn.clone().unwrap_or_default();
        let cluster = arn.rsplit(':').next().unwrap_or(&arn).to_string();
        let mut b = RdsData {
            client: Client::new(&sdk),
            resource_arn: arn,
            secret_arn: cfg.aws.secret_arn.clone().unwrap_or_default(),
            target: format!("rds-data:{cluster}/{database}"),
            endpoint: Endpoint::new(cfg, &sdk),
            dialect: ToolSql::new(&cfg.history, &database),
            database,
            policy: Policy::resume(cfg.resume_timeout),
            progress: cfg.progress.clone(),
            lease_ttl: cfg.aws.lease_ttl,
            keepalive: cfg.aws.transaction_keepalive,
            holder: lock::holder_text(&cfg.pg.application_name, "rds-data"),
            owner: lock::owner_id(),
            lease_ready: false,
            setup_races: 0,
            lease: None,
            cancelled: Arc::new(AtomicBool::new(false)),
            session: Session::default(),
        };
        let probe = b.dialect.probe(&[]);
        let policy = b.policy.clone().pending("the Data API to answer");
        let r = retry::retry(
            &policy,
            &b.progress,
            |_| async {
                let out = b.once(&probe, None, false).await?;
                let session = text_rows(&out).first().map(|r| Session::from_row(r)).transpose();
                match session {
                    Ok(Some(s)) => match s.check(purpose, &b.target) {
                        Err(Error::Replica { .. }) => Err(CallError {
                            code: REPLICA.into(),
                            message: "the server is a replica in recovery".into(),
                            connection_id: None,
                        }),
                        _ => Ok(s),
                    },
                    _ => Err(CallError {
                        code: PROBE_UNREADABLE.into(),
                        message: "the connect-time probe's answer has no row of its columns".into(),
                        connection_id: None,
                    }),
                }
            },
            |e| match e.code.as_str() {
                REPLICA => (Class::Transient, "a writer", e.message.clone()),
                _ => classify(e, Call::Probe),
            },
        )
        .await;
        match r {
            Ok(session) => {
                session.check(purpose, &b.target)?;
                b.session = session;
                Ok(b)
            }
            Err(g) if g.error.code == REPLICA => Err(Error::Replica {
                target: b.target.clone(),
                waited: Some(b.policy.deadline.as_secs()),
            }),
            Err(g) => Err(b.connect_error(g)),
        }
    }

    fn connect_error(&self, g: GaveUp<CallError>) -> Error {
        let e = g.error;
        if names_missing_database(&e) {
            return Error::DatabaseMissing {
                name: self.database.clone(),
                target: self.target.clone(),
            };
        }
        if endpoint_failure(&e) && g.exhausted {
            let last = match e.code.as_str() {
                c if c.starts_with("HTTP 2") => format!("POST /Execute answered {c} with a body that is not the Data API's"),
                c if c.starts_with("HTTP ") => format!("POST /Execute answered {c} without an AWS error code"),
                PROBE_UNREADABLE => format!("POST /Execute answered without the probe's row ({})", e.message),
                "connect timeout" => format!("no connection within 10 s ({})", e.message),
                _ => e.message,
            };
            return self.endpoint.error(g.attempts, last);
        }
        if g.exhausted && matches!(g.class, Class::Resuming | Class::Transient) {
            return Error::ResumeTimeout {
                target: self.target.clone(),
                secs: self.policy.deadline.as_secs(),
                attempts: g.attempts,
                last: e.to_string(),
            };
        }
        Error::Aws {
            context: format!("connecting to {} through the Data API", self.target),
            code: e.code,
            message: e.message,
        }
    }

    /// One ExecuteStatement, no retries.
    async fn once(&self, sql: &str, tx: Option<&str>, continue_after_timeout: bool) -> Result<ExecuteStatementOutput, CallError> {
        let mut req = self
            .client
            .execute_statement()
            .resource_arn(&self.resource_arn)
            .secret_arn(&self.secret_arn)
            .database(&self.database)
            .sql(sql);
        if let Some(t) = tx {
            req = req.transaction_id(t);
        }
        if continue_after_timeout {
            req = req.continue_after_timeout(true);
        }
        req.send().await.map_err(|e| {
            let id = match &e {
                SdkError::ServiceError(se) => match se.err() {
                    ExecuteStatementError::StatementTimeoutException(t) => Some(t.db_connection_id()),
                    _ => None,
                },
                _ => None,
            };
            call_error(e, id)
        })
    }

    /// ExecuteStatement with the retry policy for its kind of call.
    async fn call(&self, sql: &str, tx: Option<&str>, kind: Call) -> Result<ExecuteStatementOutput, GaveUp<CallError>> {
        let continue_after_timeout = tx.is_none() && kind == Call::Once;
        retry::retry(
            &self.policy,
            &self.progress,
            |_| self.once(sql, tx, continue_after_timeout),
            |e| classify(e, kind),
        )
        .await
    }

    /// A statement inside transaction `tx`: retried only when the request
    /// was refused (throttling, resuming); while backing off, `SELECT 1`
    /// keeps the transaction from reaching the Data API's idle limit.
    async fn call_in_tx(&self, sql: &str, tx: &str) -> Result<ExecuteStatementOutput, GaveUp<CallError>> {
        let start = Instant::now();
        let mut backoff = Backoff::new(self.policy.first, self.policy.cap);
        let mut last_call;
        for attempt in 1.. {
            // Each attempt is itself a call on the transaction.
            last_call = Instant::now();
            let e = match self.once(sql, Some(tx), false).await {
                Ok(o) => return Ok(o),
                Err(e) => e,
            };
            let (class, what, cause) = classify(&e, Call::Once);
            let delay = backoff.delay();
            let retryable = matches!(class, Class::Resuming | Class::Transient);
            if !retryable || start.elapsed() + delay > self.policy.deadline {
                return Err(GaveUp {
                    error: e,
                    class,
                    attempts: attempt,
                    elapsed: start.elapsed(),
                    exhausted: retryable,
                });
            }
            self.progress.report(&retry::Waiting {
                what: what.into(),
                elapsed: start.elapsed(),
                attempts: attempt,
                cause,
            });
            let until = Instant::now() + delay;
            while Instant::now() < until {
                let next_keepalive = last_call + self.keepalive;
                tokio::time::sleep_until(until.min(next_keepalive).into()).await;
                if Instant::now() >= next_keepalive {
                    let _ = self.once("SELECT 1", Some(tx), false).await;
                    last_call = Instant::now();
                }
            }
        }
        unreachable!("the loop returns")
    }

    async fn begin(&self) -> Result<String, ExecError> {
        let r = retry::retry(
            &self.policy,
            &self.progress,
            |_| async {
                self.client
                    .begin_transaction()
                    .resource_arn(&self.resource_arn)
                    .secret_arn(&self.secret_arn)
                    .database(&self.database)
                    .send()
                    .await
                    .map_err(|e| call_error(e, None))
            },
            // A BeginTransaction that happened twice leaves an unused
            // transaction that the Data API rolls back after 3 minutes.
            |e| classify(e, Call::Idempotent),
        )
        .await;
        match r {
            Ok(o) => o.transaction_id().map(str::to_string).ok_or_else(|| ExecError::Lost {
                message: "BeginTransaction returned no transactionId".into(),
            }),
            Err(g) => Err(self.transport_error(g, "BeginTransaction")),
        }
    }

    async fn rollback(&self, tx: &str) {
        let _ = self
            .client
            .rollback_transaction()
            .resource_arn(&self.resource_arn)
            .secret_arn(&self.secret_arn)
            .transaction_id(tx)
            .send()
            .await;
    }

    async fn commit(&self, tx: &str) -> Result<(), ExecError> {
        let r = self
            .client
            .commit_transaction()
            .resource_arn(&self.resource_arn)
            .secret_arn(&self.secret_arn)
            .transaction_id(tx)
            .send()
            .await
            .map_err(|e| call_error(e, None));
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code == "TransactionNotFoundException" || e.code == "NotFoundException" => Err(ExecError::RolledBack {
                retry: e.message.contains("expired"),
                message: e.to_string(),
            }),
            Err(e) => match classify(&e, Call::Once).0 {
                // The COMMIT may or may not have happened: the runner reads
                // the history (the row was written in this transaction).
                Class::Ambiguous | Class::Transient | Class::Resuming => Err(ExecError::Lost { message: e.to_string() }),
                _ => Err(ExecError::transport(Error::Aws {
                    context: "CommitTransaction".into(),
                    code: e.code,
                    message: e.message,
                })),
            },
        }
    }

    /// A failed call that is not an SQL error, as the runner sees it.
    fn transport_error(&self, g: GaveUp<CallError>, context: &str) -> ExecError {
        let e = g.error;
        match (g.class, g.exhausted) {
            (Class::Ambiguous, _) => ExecError::Lost { message: e.to_string() },
            (Class::Resuming | Class::Transient, true) => ExecError::transport(Error::ResumeTimeout {
                target: self.target.clone(),
                secs: self.policy.deadline.as_secs(),
                attempts: g.attempts,
                last: e.to_string(),
            }),
            _ => ExecError::transport(Error::Aws {
                context: format!("{context} on {}", self.target),
                code: e.code,
                message: e.message,
            }),
        }
    }

    /// A failed statement: SQL error, still running, rolled back, or transport.
    fn statement_error(&self, g: GaveUp<CallError>, index: usize, sql: &str) -> ExecError {
        match g.error.code.as_str() {
            "DatabaseErrorException" | "BadRequestException" => ExecError::Statement {
                index,
                error: sql_error(&g.error.message, Some(sql)),
            },
            "StatementTimeoutException" => ExecError::StillRunning {
                connection_id: g.error.connection_id.unwrap_or(0),
            },
            "TransactionNotFoundException" => ExecError::RolledBack {
                retry: g.error.message.contains("expired"),
                message: g.error.to_string(),
            },
            // The statement ran, but its result has a type the Data API
            // cannot return (vector, point, ...): a failure of the statement.
            "UnsupportedResultException" => ExecError::Statement {
                index,
                error: DbError {
                    fix: None,
                    code: "0A000".into(),
                    message: format!("the Data API cannot return this statement's result ({})", g.error.message),
                    detail: None,
                    hint: Some(
                        "cast the value to text (`::text`), or return something the Data API can carry, e.g. `SELECT count(*) FROM (...) s`"
                            .into(),
                    ),
                    offset: None,
                },
            },
            _ => self.transport_error(g, "ExecuteStatement"),
        }
    }

    fn check_lease(&self) -> Result<()> {
        match &self.lease {
            Some(l) if l.lost.load(Ordering::SeqCst) => Err(Error::LeaseLost {
                message: format!("it was not renewed within lease_ttl ({} s)", self.lease_ttl.as_secs()),
            }),
            _ => Ok(()),
        }
    }

    /// Every history row, a page per call: all columns, or (`for_plan`)
    /// those `up` plans with.
    async fn history_rows(&mut self, for_plan: bool) -> Result<Vec<Row>> {
        if !self.session.history_exists {
            // The probe found no history table: nothing applied, and no call
            // that would fail (and log an ERROR) on a new database.
            return Ok(Vec::new());
        }
        let mut rows = Vec::new();
        let mut after = i64::MIN;
        let mut page = PAGE;
        let mut repeatables = self.session.repeatables_exist;
        loop {
            let mut sql = match for_plan {
                true => self.dialect.select_history_for_plan(after, Some(page)),
                false => self.dialect.select_history(after, Some(page)),
            };
            if repeatables {
                // The repeatable migrations (few) come with the first page,
                // in the same call: the same columns, version 0.
                sql = format!("({sql})\nUNION ALL\n({})", self.dialect.select_repeatables(for_plan));
            }
            let out = match self.tool(&sql, "reading the history table", Call::Idempotent).await {
                Ok(o) => o,
                Err(Error::Db { error, .. }) if classify::undefined_table(&error.code) => return Ok(Vec::new()),
                // The 1 MiB response cap: smaller pages.
                Err(Error::Db { error, .. }) if error.message.contains("size limit") && page > 1 => {
                    page /= 2;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let got = text_rows(&out);
            let read = if for_plan { Row::from_plan_text } else { Row::from_text };
            let mut n = 0;
            let mut last = None;
            for r in got {
                let row = read(r)?;
                if !row.is_repeatable() {
                    n += 1;
                    last = Some(row.version);
                }
                rows.push(row);
            }
            repeatables = false;
            match last {
                Some(v) if n as u32 == page => after = v,
                _ => break,
            }
        }
        Ok(rows)
    }

    /// How this runner writes a transaction and a history row: fenced by
    /// its lease while it holds one, with the settings folded into the
    /// transaction's first call (`backend::wire`, which dry-run renders too).
    fn wire<'a>(&'a self, owner: &'a Option<Value>) -> Wire<'a> {
        Wire {
            dialect: &self.dialect,
            lock: CAPABILITIES.lock,
            owner: owner.as_ref(),
        }
    }

    /// The lease owner whose live lease fences this runner's writes.
    fn owner(&self) -> Option<Value> {
        self.lease.as_ref().map(|l| Value::Text(l.owner.clone()))
    }

    /// Runs tool-owned SQL outside a transaction (idempotent or not).
    async fn tool(&self, sql: &str, context: &str, kind: Call) -> Result<ExecuteStatementOutput> {
        self.call(sql, None, kind).await.map_err(|g| match g.error.code.as_str() {
            "DatabaseErrorException" | "BadRequestException" => Error::Db {
                context: context.to_string(),
                error: Box::new(sql_error(&g.error.message, Some(sql))),
            },
            _ => match self.transport_error(g, context) {
                ExecError::Transport(e) => *e,
                other => other.into_error(context),
            },
        })
    }
}

#[async_trait]
impl Taker for RdsData {
    /// The lease setup (first attempt of a run: one call), then the lease.
    async fn try_take(&mut self) -> Result<bool> {
        if !self.lease_ready {
            match self
                .tool(&self.dialect.setup_lease(), "setting up the lease table", Call::Idempotent)
                .await
            {
                Ok(_) => self.lease_ready = true,
                Err(e) if lock::setup_race(&e) && self.setup_races < 5 => {
                    self.setup_races += 1;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        let sql = self.dialect.acquire_lease(&self.owner, &self.holder, Some(self.lease_ttl));
        // Re-sending it by the same owner changes nothing more.
        let out = self.tool(&sql, "taking the migration lease", Call::Idempotent).await?;
        let (_, took, row) = lock::acquired(&text_rows(&out));
        if !row {
            // Removed by a runner of an older release: put it back.
            self.lease_ready = false;
        }
        Ok(took)
    }

    async fn holder(&mut self) -> String {
        match self.tool(&self.dialect.lease_holder(), "lock holder", Call::Idempotent).await {
            Ok(out) => text_rows(&out).first().map(|r| lock::describe(r)).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

#[async_trait]
impl Backend for RdsData {
    fn name(&self) -> &'static str {
        "rds-data"
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    async fn lock(&mut self, wait: Duration) -> Result<()> {
        if self.lease.is_some() {
            return Ok(());
        }
        let progress = self.progress.clone();
        lock::poll(wait, &progress, self).await?;
        let owner = self.owner.clone();
        // Heartbeat: renew every third of the lease; a lease not renewed
        // in time is marked lost and nothing more is written.
        let lost = Arc::new(AtomicBool::new(false));
        let (client, renew, ttl) = (
            self.client.clone(),
            self.dialect.renew_lease(&owner, self.lease_ttl),
            self.lease_ttl,
        );
        let (arn, secret, db, flag) = (
            self.resource_arn.clone(),
            self.secret_arn.clone(),
            self.database.clone(),
            lost.clone(),
        );
        let heartbeat = tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(ttl / 3).await;
                let r = client
                    .execute_statement()
                    .resource_arn(&arn)
                    .secret_arn(&secret)
                    .database(&db)
                    .sql(&renew)
                    .send()
                    .await;
                match r {
                    Ok(o) if !o.records().is_empty() => renewed = Instant::now(),
                    Ok(_) => {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(_) if renewed.elapsed() >= ttl => {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(_) => {}
                }
            }
        });
        self.lease = Some(Lease { owner, lost, heartbeat });
        Ok(())
    }

    async fn unlock(&mut self) -> Result<()> {
        if let Some(l) = self.lease.take() {
            l.heartbeat.abort();
            self.tool(
                &self.dialect.release_lease(&l.owner, false),
                "releasing the migration lease",
                Call::Idempotent,
            )
            .await?;
        }
        Ok(())
    }

    async fn ensure_history(&mut self) -> Result<()> {
        for sql in self.dialect.create_history() {
            // The Data API takes one statement per call.
            for s in crate::sql::split("dialects/postgres/history_create.sql", &sql)? {
                self.tool(&s.sql, "creating the history table", Call::Idempotent).await?;
            }
        }
        self.session.history_exists = true;
        Ok(())
    }

    async fn ensure_repeatables(&mut self) -> Result<()> {
        if !self.session.repeatables_exist {
            let sql = self.dialect.create_repeatables();
            self.tool(&sql, "creating the table of repeatable migrations", Call::Idempotent)
                .await?;
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
        self.check_lease()?;
        let owner = self.owner();
        let sql = self.wire(&owner).history(row, Value::Int(row.execution_ms));
        let out = self.tool(&sql, "writing the history table", Call::Idempotent).await?;
        // The fenced upsert returns the version it wrote (RETURNING): every
        // implementation returns records, while numberOfRecordsUpdated for an
        // INSERT is not reported the same way everywhere.
        if self.lease.is_some() && out.records().is_empty() {
            return Err(Error::LeaseLost {
                message: "another runner holds it now; the history row was not written".into(),
            });
        }
        Ok(())
    }

    async fn accept_file(&mut self, version: i64, name: &str, checksum: &str) -> Result<()> {
        self.tool(
            &self.dialect.accept_file(version, name, checksum),
            "updating a history row",
            Call::Idempotent,
        )
        .await
        .map(drop)
    }

    async fn delete_history(&mut self, version: i64) -> Result<()> {
        self.tool(&self.dialect.delete_history(version), "deleting a history row", Call::Idempotent)
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
        self.tool(&sql, "writing the history log", Call::Once).await.map(drop)
    }

    async fn run_transaction(&mut self, settings: &[String], statements: &[&str], row: &Row) -> Result<i64, ExecError> {
        self.check_lease().map_err(ExecError::transport)?;
        self.cancelled.store(false, Ordering::SeqCst);
        // The first call carries the settings and holds the lease row `FOR
        // KEY SHARE` until the transaction ends (no row back: the lease was
        // lost); without a lease (not under the lock) only the settings, and
        // no call at all without them.
        let owner = self.owner();
        let t = self.wire(&owner).transaction(settings, statements, row);
        let tx = self.begin().await?;
        if let Some(first) = t.opening.first() {
            match self.call_in_tx(first, &tx).await {
                Ok(out) if self.lease.is_some() && out.records().is_empty() => {
                    self.rollback(&tx).await;
                    return Err(ExecError::transport(Error::LeaseLost {
                        message: "another runner holds it now; nothing of this migration ran".into(),
                    }));
                }
                Ok(_) => {}
                Err(g) => {
                    let e = self.statement_error(g, 0, first);
                    self.rollback(&tx).await;
                    return Err(match e {
                        // A setting the server refused: reported on the first statement.
                        ExecError::Statement { mut error, .. } => {
                            error.offset = None;
                            ExecError::Statement { index: 0, error }
                        }
                        ExecError::Lost { message } => ExecError::RolledBack { message, retry: true },
                        other => other,
                    });
                }
            }
        }
        for (i, s) in t.statements.iter().enumerate() {
            if self.cancelled.load(Ordering::SeqCst) {
                self.rollback(&tx).await;
                return Err(ExecError::Statement {
                    index: i,
                    error: DbError {
                        fix: None,
                        code: "57014".into(),
                        message: "canceling statement due to user request".into(),
                        detail: None,
                        hint: None,
                        offset: None,
                    },
                });
            }
            if let Err(g) = self.call_in_tx(s, &tx).await {
                let e = self.statement_error(g, i, s);
                self.rollback(&tx).await;
                return Err(match e {
                    // Nothing was committed: the migration can start over.
                    ExecError::Lost { message } => ExecError::RolledBack { message, retry: true },
                    ExecError::StillRunning { .. } => ExecError::RolledBack {
                        message: format!("statement {} ran past the Data API's statement timeout", i + 1),
                        retry: false,
                    },
                    other => other,
                });
            }
        }
        let history = &t.history;
        let execution_ms = match self.call_in_tx(history, &tx).await {
            Ok(out) if self.lease.is_some() && out.records().is_empty() => {
                self.rollback(&tx).await;
                return Err(ExecError::transport(Error::LeaseLost {
                    message: "another runner holds it now; this migration was rolled back".into(),
                }));
            }
            Ok(out) => text_rows(&out)
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            Err(g) => {
                let e = self.statement_error(g, statements.len(), history);
                self.rollback(&tx).await;
                return Err(match e {
                    ExecError::Statement { error, .. } => ExecError::Internal {
                        context: "writing the history row",
                        error,
                    },
                    ExecError::Lost { message } => ExecError::RolledBack { message, retry: true },
                    other => other,
                });
            }
        };
        self.commit(&tx).await.map(|()| execution_ms)
    }

    async fn execute(&mut self, statement: &str) -> Result<(), ExecError> {
        self.check_lease().map_err(ExecError::transport)?;
        match self.call(statement, None, Call::Once).await {
            Ok(_) => Ok(()),
            Err(g) => Err(self.statement_error(g, 0, statement)),
        }
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        Ok(text_rows(&self.tool(sql, "query", Call::Idempotent).await?))
    }

    async fn database_exists(&mut self, name: &str) -> Result<bool> {
        Ok(!self.query(&ToolSql::database_exists(name)).await?.is_empty())
    }

    fn canceller(&self) -> Option<Canceller> {
        // The Data API cannot cancel a statement: stop before the next one
        // and roll back.
        let flag = self.cancelled.clone();
        Some(Box::new(move || {
            flag.store(true, Ordering::SeqCst);
            Box::pin(async {})
        }))
    }

    async fn close(mut self: Box<Self>) {
        if let Some(l) = self.lease.take() {
            l.heartbeat.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_errors_from_the_data_api() {
        let e = sql_error(
            "ERROR: relation \"nope\" does not exist\n  Position: 15; SQLState: 42P01",
            Some("SELECT * FROM nope"),
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.offset),
            ("42P01", "relation \"nope\" does not exist", Some(14))
        );
        let e = sql_error("FATAL: database \"x\" does not exist; SQLState: 3D000", None);
        assert_eq!((e.code.as_str(), e.message.as_str()), ("3D000", "database \"x\" does not exist"));
        let e = sql_error("something odd", None);
        assert_eq!((e.code.as_str(), e.message.as_str()), ("", "something odd"));
        assert_eq!(e.to_string(), "something odd");
    }

    /// The same PostgreSQL error in every spelling an implementation sends
    /// (tests/integration/dataapi `SqlErrors`): the same DbError, the
    /// position only where the text has one.
    #[test]
    fn every_spelling_of_a_sql_error_reads_the_same() {
        let sql = Some("INSERT INTO nope VALUES (1)");
        let want = |e: &DbError, offset| {
            assert_eq!(
                (e.code.as_str(), e.message.as_str(), e.offset),
                ("42P01", "relation \"nope\" does not exist", offset),
                "{e:?}"
            )
        };
        for (text, offset) in [
            ("ERROR: relation \"nope\" does not exist\n  Position: 13; SQLState: 42P01", Some(12)),
            ("ERROR: relation \"nope\" does not exist\n  Position: 13", Some(12)),
            ("relation \"nope\" does not exist", None),
            (
                "Database error code: 0. Message: ERROR: relation \"nope\" does not exist\n  Position: 13",
                Some(12),
            ),
            ("ERROR: relation \"nope\" does not exist (SQLSTATE 42P01)", None),
        ] {
            want(&sql_error(text, sql), offset);
        }
        // A suffix wins over the text; detail and hint are read either way.
        let e = sql_error(
            "ERROR: duplicate key value violates unique constraint \"t_pkey\"\n  Detail: Key (id)=(1) already exists.",
            None,
        );
        assert_eq!(
            e.to_string(),
            "duplicate key value violates unique constraint \"t_pkey\"; DETAIL: Key (id)=(1) already exists. (SQLSTATE 23505)"
        );
        let e = sql_error(
            "ERROR: boom 1\n  Where: PL/pgSQL function inline_code_block line 1 at RAISE; SQLState: P0001",
            None,
        );
        assert_eq!(
            e.to_string(),
            "boom 1; Where: PL/pgSQL function inline_code_block line 1 at RAISE (SQLSTATE P0001)"
        );
        // Unknown text: shown in full, no code invented.
        let e = sql_error("Database error code: 0. Message: already exists.", None);
        assert_eq!((e.code.as_str(), e.to_string().as_str()), ("", "already exists."));
        let e = sql_error("the cluster said: no\nsecond line", None);
        assert_eq!(e.to_string(), "the cluster said: no; second line");
        // The codes the engine acts on, from text alone.
        for (text, code) in [
            ("cannot execute CREATE TABLE in a read-only transaction", "25006"),
            ("ERROR: permission denied for schema public", "42501"),
            ("database \"x\" already exists", "42P04"),
            ("schema \"s\" already exists", "42P06"),
            ("relation \"chatmigrate_history_lease\" already exists", "42P07"),
            ("type \"chatmigrate_history_lease\" already exists", "42710"),
            ("source database \"template1\" is being accessed by other users", "55006"),
            ("canceling statement due to lock timeout", "55P03"),
            ("schema \"app\" does not exist", "3F000"),
        ] {
            assert_eq!(sql_error(text, None).code, code, "{text}");
        }
    }

    #[test]
    fn a_missing_database_in_any_carrier() {
        let e = |code: &str, message: &str| CallError {
            code: code.into(),
            message: message.into(),
            connection_id: None,
        };
        for missing in [
            e("DatabaseErrorException", "FATAL: database \"x\" does not exist; SQLState: 3D000"),
            e("DatabaseErrorException", "FATAL: database \"x\" does not exist"),
            e("BadRequestException", "database \"x\" does not exist"),
            e("InternalServerErrorException", "database \"x\" does not exist"),
            e("DatabaseNotFoundException", "database \"x\" does not exist"),
            e("HTTP 500", "Database \"x\" does not exist."),
        ] {
            assert!(names_missing_database(&missing), "{missing}");
            assert_eq!(classify(&missing, Call::Probe).0, Class::Fatal, "{missing}");
        }
        // AWS's own meaning of DatabaseNotFoundException: the cluster.
        for other in [
            e("DatabaseNotFoundException", "The DB cluster doesn't have a DB instance."),
            e(
                "DatabaseNotFoundException",
                "DB cluster arn:aws:rds:us-east-1:1:cluster:x not found.",
            ),
            e("InternalServerErrorException", "An internal error occurred."),
            e(
                "DatabaseResumingException",
                "The Aurora DB instance x is resuming after being auto-paused.",
            ),
        ] {
            assert!(!names_missing_database(&other), "{other}");
        }
        assert_eq!(
            classify(&e("InternalServerErrorException", "An internal error occurred."), Call::Probe).0,
            Class::Transient
        );
    }

    #[test]
    fn an_endpoint_that_is_not_a_data_api_gets_a_short_bounded_retry_on_the_probe() {
        let e = |code: &str| CallError {
            code: code.into(),
            message: String::new(),
            connection_id: None,
        };
        for code in ["io", "dispatch", "response", "HTTP 404", "HTTP 200", "HTTP 502"] {
            assert_eq!(classify(&e(code), Call::Probe).0, Class::Bounded(ENDPOINT_RETRIES), "{code}");
        }
        assert_eq!(classify(&e("connect timeout"), Call::Probe).0, Class::Bounded(0));
        // A request timeout on the probe is the Data API being slow: resume budget.
        assert_eq!(classify(&e("timeout"), Call::Probe).0, Class::Transient);
        // After the probe, the old rules: never re-send what may have run.
        assert_eq!(classify(&e("io"), Call::Once).0, Class::Ambiguous);
        assert_eq!(classify(&e("HTTP 502"), Call::Idempotent).0, Class::Transient);
    }

    #[test]
    fn classification() {
        let e = |code: &str, message: &str| CallError {
            code: code.into(),
            message: message.into(),
            connection_id: None,
        };
        assert_eq!(classify(&e("DatabaseResumingException", ""), Call::Once).0, Class::Resuming);
        assert_eq!(classify(&e("StatementTimeoutException", ""), Call::Probe).0, Class::Resuming);
        assert_eq!(classify(&e("StatementTimeoutException", ""), Call::Once).0, Class::Fatal);
        assert_eq!(classify(&e("ThrottlingException", ""), Call::Once).0, Class::Transient);
        assert_eq!(classify(&e("HTTP 502", ""), Call::Once).0, Class::Ambiguous);
        assert_eq!(
            classify(&e("InternalServerErrorException", ""), Call::Idempotent).0,
            Class::Transient
        );
        assert_eq!(classify(&e("DatabaseUnavailableException", ""), Call::Once).0, Class::Ambiguous);
        assert_eq!(
            classify(&e("SecretsErrorException", "Data API timed out retrieving the secret"), Call::Once).0,
            Class::Bounded(2)
        );
        assert_eq!(classify(&e("HttpEndpointNotEnabledException", ""), Call::Probe).0, Class::Fatal);
    }
}
