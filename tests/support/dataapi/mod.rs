//! A fake AWS RDS Data API for the integration tests: it speaks AWS's real
//! wire protocol (restJson1, the `x-amzn-ErrorType` error shape) to the real
//! `aws-sdk-rdsdata` client and runs the SQL on the real test PostgreSQL.
//!
//! What it reproduces (see shared/reference/aws-data-api-and-aurora.md §1):
//! - the operations `POST /Execute`, `/BatchExecute`, `/BeginTransaction`,
//!   `/CommitTransaction`, `/RollbackTransaction` (and `/ExecuteSql`, always
//!   refused as on Serverless v2), plus Secrets Manager's `GetSecretValue` on
//!   the same port;
//! - one statement per call ("Multistatements aren't supported."), no `schema`,
//!   `sql` ≤ 65,536 characters, `:name` parameters;
//! - sessions: a fresh PostgreSQL connection per call outside a transaction
//!   (so SET, session advisory locks and temp tables do not carry over), one
//!   pinned connection per transaction, "Transaction is still running a query"
//!   for concurrent calls, a transaction ended by any SQL error, and the idle
//!   expiry (`Options::transaction_idle_timeout`, AWS: 3 minutes);
//! - the statement timeout (AWS: 45 s) with `continueAfterTimeout`;
//! - typed `Field`s, `columnMetadata`, UnsupportedResultException, the 1 MiB
//!   response and 64 KB row limits, SQL errors as DatabaseErrorException
//!   `ERROR: ..\n  Position: n; SQLState: XXXXX`;
//! - the ways other implementations answer, one server instance each
//!   ([`Options`]): SQL errors without the `; SQLState:` suffix or as
//!   BadRequestException ([`SqlErrors`]), a missing database as HTTP 500,
//!   BadRequestException or DatabaseNotFoundException ([`MissingDatabase`]),
//!   `numberOfRecordsUpdated` 0 for INSERT (`Options::insert_counts_zero`);
//! - injected faults ([`Fault`]): every error of the service's error table, on
//!   any of the three carriers the SDK reads, a hang, an HTML 502 and a cut
//!   connection, before or after the SQL ran.
//!
//! The server runs on its own thread and tokio runtime, so sync tests that
//! spawn the chatmigrate binary can use it:
//!
//! ```ignore
//! let server = DataApiServer::start(&common::server_url(), Options::default());
//! server.fault(Fault::new(FaultKind::Resuming).times(3));
//! // point the binary at server.endpoint() with RESOURCE_ARN / SECRET_ARN ...
//! assert_eq!(server.calls()[0].outcome, "DatabaseResumingException");
//! ```
//!
//! Not reproduced: SigV4 signatures are not verified (the access key id is
//! only recorded); the secret is not used to log in (PostgreSQL is reached
//! with the credentials of the server URL); transactions have no 24 h cap.
//!
//! Choices where AWS's behaviour is not documented (reference §8):
//! - an unknown resourceArn is 404 DatabaseNotFoundException, one that differs
//!   from [`RESOURCE_ARN`] only in letter case is HttpEndpointNotEnabledException,
//!   an unknown secretArn is SecretsErrorException;
//! - in a transaction, a statement that times out without continueAfterTimeout
//!   is cancelled and ends the transaction ("One previous call resulted in a
//!   termination of your transaction."); with continueAfterTimeout the
//!   transaction stays busy ("still running a query") until the statement ends;
//! - errors from PostgreSQL end a transaction, result errors
//!   (UnsupportedResultException, the size limits) do not;
//! - BatchExecute outside a transaction runs each parameter set in autocommit;
//! - values: timestamps print like PostgreSQL (`2024-01-02 03:04:05.5`,
//!   timestamptz in UTC), `void` is `stringValue ""`, NULL array elements are
//!   JSON nulls; interval, money, geometric, network, range and extension
//!   types (pgvector) are UnsupportedResultException;
//! - `numberOfRecordsUpdated` is the row count for INSERT / UPDATE / DELETE /
//!   MERGE (with or without RETURNING) and 0 for everything else;
//! - a missing database is PostgreSQL's connect error, 3D000, spelled as
//!   any SQL error (`MissingDatabase::SqlError`).

mod faults;
mod ops;
mod secrets;
mod server;
mod sessions;
mod statements;
mod values;
mod wire;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use faults::{Carrier, Fault, FaultKind};

/// The cluster the server answers for (any other ARN is refused).
pub const RESOURCE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:cluster:chat";
/// The one secret the server knows.
pub const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:chat-AbCdEf";
/// The access key id of [`DataApiServer::client`].
pub const TEST_ACCESS_KEY_ID: &str = "AKIDTEST";

/// Limits of the emulated service.
#[derive(Debug, Clone)]
pub struct Options {
    /// A statement running longer gets StatementTimeoutException (AWS: 45 s).
    pub statement_timeout: Duration,
    /// A transaction without a call for this long is rolled back (AWS: 3 min).
    pub transaction_idle_timeout: Duration,
    /// Largest response body (AWS: 1 MiB).
    pub response_limit: usize,
    /// Largest result row, in bytes of values (AWS: 64 KB).
    pub row_limit: usize,
    /// How a SQL error is spelled.
    pub sql_errors: SqlErrors,
    /// How a request for a database that does not exist is answered.
    pub missing_database: MissingDatabase,
    /// `numberOfRecordsUpdated` is 0 for every INSERT (also with ON CONFLICT
    /// or RETURNING), as data-api-local reports it; UPDATE, DELETE and MERGE
    /// still count. AWS counts inserted rows.
    pub insert_counts_zero: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            statement_timeout: Duration::from_secs(45),
            transaction_idle_timeout: Duration::from_secs(180),
            response_limit: 1024 * 1024,
            row_limit: 64 * 1024,
            sql_errors: SqlErrors::Aws,
            missing_database: MissingDatabase::SqlError,
            insert_counts_zero: false,
        }
    }
}

/// How the server spells an error PostgreSQL raised (`relation "nope" does
/// not exist`, 42P01, at character 15). AWS does not document its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqlErrors {
    /// What AWS is believed to send: 400 DatabaseErrorException
    /// `ERROR: relation "nope" does not exist\n  Position: 15; SQLState: 42P01`
    /// (the JDBC text, with `Detail:` and `Hint:` lines when PostgreSQL gave them).
    #[default]
    Aws,
    /// The same without the `; SQLState: XXXXX` suffix.
    NoSqlState,
    /// 400 BadRequestException (deprecated in the model; the v1-era Data API
    /// and data-api-local use it) with PostgreSQL's bare message:
    /// `relation "nope" does not exist` (node-postgres's `error.message`:
    /// no severity, position, detail or code).
    BadRequest,
    /// 400 BadRequestException with the JDBC wrapper of koxudaxi/local-data-api:
    /// `Database error code: 0. Message: ERROR: relation "nope" does not exist\n  Position: 15`.
    BadRequestJdbc,
}

/// How a request whose `database` does not exist is answered (PostgreSQL
/// refuses the connection with 3D000 `database "x" does not exist`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingDatabase {
    /// As any SQL error, in the [`SqlErrors`] spelling
    /// (`FATAL: database "x" does not exist; SQLState: 3D000` for AWS's).
    #[default]
    SqlError,
    /// 500 InternalServerErrorException `database "x" does not exist`.
    Http500,
    /// 400 BadRequestException `database "x" does not exist`.
    BadRequest,
    /// 404 DatabaseNotFoundException `database "x" does not exist` (AWS uses
    /// the code for a cluster without a writer instance; emulators for a
    /// missing database).
    DatabaseNotFound,
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// "Execute", "BatchExecute", "BeginTransaction", "CommitTransaction",
    /// "RollbackTransaction", "ExecuteSql" or "GetSecretValue".
    pub op: String,
    pub sql: Option<String>,
    pub transaction_id: Option<String>,
    pub database: Option<String>,
    pub continue_after_timeout: bool,
    /// The request had a `schema` member.
    pub had_schema: bool,
    /// From the SigV4 `Authorization: ... Credential=AKID/...` header.
    pub access_key_id: Option<String>,
    /// "ok", the error code returned, "Html502", "ConnectionClosed", or
    /// "pending" while the call is still running.
    pub outcome: String,
}

impl Call {
    fn new(op: &str, access_key_id: Option<String>) -> Call {
        Call {
            op: op.to_string(),
            sql: None,
            transaction_id: None,
            database: None,
            continue_after_timeout: false,
            had_schema: false,
            access_key_id,
            outcome: "pending".into(),
        }
    }
}

/// State shared by the server's tasks.
struct Shared {
    opts: Options,
    pg: tokio_postgres::Config,
    faults: Mutex<faults::Faults>,
    calls: Mutex<Vec<Call>>,
    secret: Mutex<String>,
    /// A rotation: after this many GetSecretValue answers, the secret becomes this.
    rotation: Mutex<Option<(usize, String)>>,
    txs: Arc<sessions::Transactions>,
}

impl Shared {
    fn log(&self, call: Call) -> usize {
        let mut calls = self.calls.lock().unwrap();
        calls.push(call);
        calls.len() - 1
    }

    fn set_outcome(&self, idx: usize, outcome: String) {
        self.calls.lock().unwrap()[idx].outcome = outcome;
    }
}

/// The running server; dropping it stops it and closes every PostgreSQL session.
pub struct DataApiServer {
    shared: Arc<Shared>,
    port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DataApiServer {
    /// Starts a server on 127.0.0.1 (a free port) that runs SQL on the PostgreSQL
    /// at `pg_server_url` (CHATMIGRATE_TEST_PG_URL); a request's `database`
    /// member picks the database (default "postgres").
    pub fn start(pg_server_url: &str, opts: Options) -> DataApiServer {
        let pg: tokio_postgres::Config = pg_server_url.parse().expect("a postgres:// URL");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            secret: Mutex::new(default_secret(&pg)),
            rotation: Mutex::default(),
            opts,
            pg,
            faults: Mutex::default(),
            calls: Mutex::default(),
            txs: Arc::default(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dataapi-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("dataapi-worker")
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    server::serve(listener, s2, rx).await;
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .unwrap();
        DataApiServer {
            shared,
            port,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment keys that reach `database` through this server
    /// (`backend = "rds-data"`, the ARNs, the region, `endpoint_url`), for
    /// an `[environments.x]` table of a test's chatmigrate.toml.
    pub fn environment(&self, database: &str) -> String {
        format!(
            "backend = \"rds-data\"\nresource_arn = \"{RESOURCE_ARN}\"\nsecret_arn = \"{SECRET_ARN}\"\n\
             database = \"{database}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n",
            self.endpoint()
        )
    }

    /// Queues a fault; several may be active, the first that matches a call wins.
    pub fn fault(&self, f: Fault) {
        self.shared.faults.lock().unwrap().push(f);
    }

    /// Drops every queued fault (the cluster has resumed, say).
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The calls of one operation.
    pub fn calls_of(&self, op: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.op == op).collect()
    }

    /// The SecretString GetSecretValue returns for SECRET_ARN. The default is the
    /// RDS secret JSON for the test server: username, password, engine, host,
    /// port, dbname "postgres".
    pub fn set_secret(&self, json: &str) {
        *self.shared.secret.lock().unwrap() = json.to_string();
    }

    /// Rotates the secret to `json` once GetSecretValue has answered `after` times.
    pub fn rotate_secret_after(&self, after: usize, json: &str) {
        *self.shared.rotation.lock().unwrap() = Some((after, json.to_string()));
    }

    /// How many Data API transactions are open.
    pub fn open_transactions(&self) -> usize {
        self.shared.txs.count()
    }

    /// An aws-sdk-rdsdata client for this server: static credentials
    /// TEST_ACCESS_KEY_ID, us-east-1, SDK retries disabled, 60 s attempt timeout.
    pub fn client(&self) -> aws_sdk_rdsdata::Client {
        aws_sdk_rdsdata::Client::from_conf(self.client_config().build())
    }

    /// The configuration behind [`DataApiServer::client`], to adjust (e.g. timeouts).
    pub fn client_config(&self) -> aws_sdk_rdsdata::config::Builder {
        use aws_sdk_rdsdata::config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Credentials, Region};
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        aws_sdk_rdsdata::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(TEST_ACCESS_KEY_ID, "SECRET", None, None, "static"))
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(60)).build())
            .http_client(http)
    }

    /// Sends one raw HTTP/1.1 POST and returns (status, lower-cased headers, body).
    pub fn raw_post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Vec<(String, String)>, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, body.to_string())
    }
}

impl Drop for DataApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The RDS secret JSON for the PostgreSQL at `pg`.
fn default_secret(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    serde_json::json!({
        "username": pg.get_user().unwrap_or("postgres"),
        "password": String::from_utf8_lossy(pg.get_password().unwrap_or_default()),
        "engine": "postgres",
        "host": host,
        "port": pg.get_ports().first().copied().unwrap_or(5432),
        "dbname": "postgres",
        "dbClusterIdentifier": "chat",
    })
    .to_string()
}
