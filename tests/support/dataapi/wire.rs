//! The wire shapes of the fake Data API: the JSON request members AWS's
//! restJson1 model names (camelCase), the error value every failure becomes,
//! how an error is carried (header / body `code` / body `__type`), the
//! HTTP reply built from all that, base64, and the id generators.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::{json, Value};

use super::faults::Carrier;
use super::{MissingDatabase, Options, SqlErrors};

/// The members of every Data API request this server reads (one struct for
/// all operations: each operation reads the members it has).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub resource_arn: Option<String>,
    pub secret_arn: Option<String>,
    pub sql: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub parameters: Option<Vec<SqlParameter>>,
    pub parameter_sets: Option<Vec<Vec<SqlParameter>>>,
    pub transaction_id: Option<String>,
    pub include_result_metadata: Option<bool>,
    pub continue_after_timeout: Option<bool>,
    pub result_set_options: Option<ResultSetOptions>,
    pub format_records_as: Option<String>,
}

/// One `:name` parameter: `{"name", "value": <Field>, "typeHint"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqlParameter {
    pub name: Option<String>,
    pub value: Option<Value>,
    pub type_hint: Option<String>,
}

/// `resultSetOptions`: how DECIMAL and BIGINT values come back.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultSetOptions {
    /// `STRING` (default) or `DOUBLE_OR_LONG`.
    pub decimal_return_type: Option<String>,
    /// `LONG` (default) or `STRING`.
    pub long_return_type: Option<String>,
}

/// Which service a reply speaks for (error namespaces differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    RdsData,
    SecretsManager,
}

impl Service {
    fn coral_url(self) -> &'static str {
        match self {
            Service::RdsData => "http://internal.amazon.com/coral/com.amazon.rdsdataservice/",
            Service::SecretsManager => "http://internal.amazon.com/coral/com.amazonaws.secretsmanager/",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Service::RdsData => "com.amazon.rdsdataservice",
            Service::SecretsManager => "com.amazonaws.secretsmanager",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Service::RdsData => "application/json",
            Service::SecretsManager => "application/x-amz-json-1.1",
        }
    }
}

/// An AWS error: HTTP status, error code, optional message and, for
/// StatementTimeoutException, the `dbConnectionId` member. An error that
/// PostgreSQL raised keeps it in `pg`, so that [`ApiError::respell`] can
/// spell it the way the server's [`Options`] ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: Option<String>,
    pub db_connection_id: Option<i64>,
    pub pg: Option<Box<PgText>>,
}

/// A PostgreSQL error behind an [`ApiError`].
#[derive(Debug, Clone, PartialEq)]
pub struct PgText {
    /// `ERROR` or `FATAL`.
    pub severity: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the statement.
    pub position: Option<u32>,
    pub code: String,
    /// Raised while connecting to the request's database (where a missing
    /// database shows up), not by a statement.
    pub connecting: bool,
}

impl PgText {
    /// The JDBC text: `ERROR: <message>[\n  Detail: ..][\n  Hint: ..][\n  Position: n]`.
    fn jdbc(&self) -> String {
        let mut m = format!("{}: {}", self.severity, self.message);
        if let Some(d) = &self.detail {
            m.push_str(&format!("\n  Detail: {d}"));
        }
        if let Some(h) = &self.hint {
            m.push_str(&format!("\n  Hint: {h}"));
        }
        if let Some(p) = self.position {
            m.push_str(&format!("\n  Position: {p}"));
        }
        m
    }
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: Some(message.into()),
            db_connection_id: None,
            pg: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "ValidationException", message)
    }

    pub fn database_error(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "DatabaseErrorException", message)
    }

    pub fn transaction_not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "TransactionNotFoundException", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalServerErrorException", message)
    }

    pub fn unsupported_result(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "UnsupportedResultException", message)
    }

    pub fn statement_timeout(db_connection_id: i64) -> ApiError {
        ApiError {
            status: 400,
            code: "StatementTimeoutException",
            message: Some("The execution of the SQL statement timed out.".into()),
            db_connection_id: Some(db_connection_id),
            pg: None,
        }
    }

    /// A PostgreSQL error in the JDBC-style text the real service is assumed
    /// to return:
    /// `ERROR: <message>[\n  Detail: ..][\n  Hint: ..][\n  Position: n]; SQLState: <code>`.
    pub fn from_pg(e: &tokio_postgres::Error) -> ApiError {
        match e.as_db_error() {
            Some(db) => ApiError::sql(PgText {
                severity: db.severity().to_string(),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
                position: match db.position() {
                    Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                    _ => None,
                },
                code: db.code().code().to_string(),
                connecting: false,
            }),
            None if e.is_closed() => ApiError::internal(format!("The database connection was lost: {e}")),
            None => ApiError::database_error(format!("{e}")),
        }
    }

    /// A SQL error with the given text, as [`ApiError::from_pg`] makes it.
    pub fn sql(pg: PgText) -> ApiError {
        let mut e = ApiError::database_error(format!("{}; SQLState: {}", pg.jdbc(), pg.code));
        e.pg = Some(Box::new(pg));
        e
    }

    /// An `ERROR` with `message` and `code`, not from PostgreSQL itself.
    pub fn sql_error(message: impl Into<String>, code: &str) -> ApiError {
        ApiError::sql(PgText {
            severity: "ERROR".into(),
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
            code: code.into(),
            connecting: false,
        })
    }

    /// Marks a PostgreSQL error as raised while connecting to the database.
    pub fn connecting(mut self) -> ApiError {
        if let Some(pg) = &mut self.pg {
            pg.connecting = true;
        }
        self
    }

    /// The SQLSTATE of an error PostgreSQL raised.
    pub fn sqlstate(&self) -> Option<&str> {
        self.pg.as_ref().map(|p| p.code.as_str())
    }

    /// The error as the implementation `opts` describes answers it (AWS's
    /// spelling is what [`ApiError::from_pg`] makes); errors that PostgreSQL
    /// did not raise stay as they are.
    pub fn respell(self, opts: &Options) -> ApiError {
        let Some(pg) = self.pg.clone() else { return self };
        let with = |status: u16, code: &'static str, message: String| ApiError {
            status,
            code,
            message: Some(message),
            db_connection_id: None,
            pg: Some(pg.clone()),
        };
        if pg.connecting && pg.code == "3D000" {
            match opts.missing_database {
                MissingDatabase::SqlError => {}
                MissingDatabase::Http500 => return with(500, "InternalServerErrorException", pg.message.clone()),
                MissingDatabase::BadRequest => return with(400, "BadRequestException", pg.message.clone()),
                MissingDatabase::DatabaseNotFound => return with(404, "DatabaseNotFoundException", pg.message.clone()),
            }
        }
        match opts.sql_errors {
            SqlErrors::Aws => self,
            SqlErrors::NoSqlState => with(400, "DatabaseErrorException", pg.jdbc()),
            SqlErrors::BadRequest => with(400, "BadRequestException", pg.message.clone()),
            SqlErrors::BadRequestJdbc => with(
                400,
                "BadRequestException",
                format!("Database error code: 0. Message: {}", pg.jdbc()),
            ),
        }
    }
}

/// What the server answers.
#[derive(Debug)]
pub enum Reply {
    /// 200 with a JSON body.
    Ok(Value),
    /// An AWS error on the given carrier.
    Err(ApiError, Carrier),
    /// 502 with an HTML body and no error type (a proxy in the way).
    Html502,
    /// Close the TCP connection without a response.
    Close,
}

impl Reply {
    /// The `Call::outcome` for this reply.
    pub fn outcome(&self) -> String {
        match self {
            Reply::Ok(_) => "ok".into(),
            Reply::Err(e, _) => e.code.into(),
            Reply::Html502 => "Html502".into(),
            Reply::Close => "ConnectionClosed".into(),
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::Err(e, Carrier::Header)
    }
}

/// A rendered HTTP reply: status, headers, body (None = close the connection).
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub close: bool,
}

/// Renders a reply the way `service` puts it on the wire.
pub fn render(reply: Reply, service: Service) -> HttpReply {
    let request_id = request_id();
    match reply {
        Reply::Ok(v) => HttpReply {
            status: 200,
            headers: vec![("content-type", service.content_type().into()), ("x-amzn-RequestId", request_id)],
            body: serde_json::to_vec(&v).unwrap(),
            close: false,
        },
        Reply::Html502 => HttpReply {
            status: 502,
            headers: vec![("content-type", "text/html".into())],
            body: b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n".to_vec(),
            close: false,
        },
        Reply::Close => HttpReply {
            status: 500,
            headers: vec![],
            body: vec![],
            close: true,
        },
        Reply::Err(e, carrier) => {
            let message_key = if service == Service::SecretsManager { "Message" } else { "message" };
            let mut body = serde_json::Map::new();
            let mut headers = vec![("content-type", service.content_type().into()), ("x-amzn-RequestId", request_id)];
            match carrier {
                Carrier::Header => headers.push(("x-amzn-ErrorType", format!("{}:{}", e.code, service.coral_url()))),
                Carrier::BodyCode => {
                    body.insert("code".into(), json!(e.code));
                }
                Carrier::BodyType => {
                    body.insert("__type".into(), json!(format!("{}#{}", service.namespace(), e.code)));
                }
            }
            if let Some(m) = e.message {
                body.insert(message_key.into(), json!(m));
            }
            if let Some(id) = e.db_connection_id {
                body.insert("dbConnectionId".into(), json!(id));
            }
            HttpReply {
                status: e.status,
                headers,
                body: serde_json::to_vec(&Value::Object(body)).unwrap(),
                close: false,
            }
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// 64 unpredictable bits (std's randomly keyed SipHash over a counter).
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A request id in the usual 8-4-4-4-12 form.
pub fn request_id() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// A transaction id: base64-looking, 184 characters (AWS allows up to 192).
pub fn transaction_id() -> String {
    let bytes: Vec<u8> = (0..17).flat_map(|_| random_u64().to_be_bytes()).take(138).collect();
    base64_encode(&bytes)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (how smithy JSON carries blobs).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); None if malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0, 255, 128]] {
            assert_eq!(base64_decode(&base64_encode(s)).unwrap(), s);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert!(transaction_id().len() <= 192);
    }
}
