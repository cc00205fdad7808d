//! Fault injection: what a test can ask the fake Data API to do instead of
//! (or after) answering normally, which calls a fault matches, how long it
//! stays active, and the AWS error each kind becomes on the wire.

use std::time::{Duration, Instant};

use super::wire::{ApiError, Service};

/// Where the error code travels (the SDK accepts all three; header wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Carrier {
    /// `x-amzn-ErrorType: Name:http://internal.amazon.com/coral/com.amazon.rdsdataservice/`
    /// and a body of `{"message"}` (what the real service sends).
    #[default]
    Header,
    /// `{"code":"Name","message"}` and no header.
    BodyCode,
    /// `{"__type":"com.amazon.rdsdataservice#Name","message"}` and no header.
    BodyType,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 400 DatabaseResumingException "The Aurora DB instance <arn> is resuming after being
    /// auto-paused. Please wait a few seconds and try again."
    Resuming,
    /// 400 ThrottlingException "Rate exceeded".
    Throttling,
    /// 500 InternalServerErrorException.
    Internal,
    /// 503 ServiceUnavailableError.
    ServiceUnavailable,
    /// 504 DatabaseUnavailableException, with no `message` member.
    DatabaseUnavailable,
    /// 502 with a text/html body and no error type (a load balancer in the way).
    Html502,
    /// 400 StatementTimeoutException with a `dbConnectionId`; the SQL is not run
    /// (unless `after_run`, which models a timed-out statement that went on running).
    StatementTimeout,
    /// The call's transaction (if any) is rolled back and forgotten, and the call gets
    /// 404 TransactionNotFoundException "Transaction may be expired.".
    ExpireTransaction,
    /// No response bytes for that long, then 500 InternalServerErrorException.
    Hang(Duration),
    /// 400 UnsupportedResultException.
    UnsupportedResult,
    /// 400 HttpEndpointNotEnabledException.
    HttpEndpointNotEnabled,
    /// 400 InvalidSecretException.
    InvalidSecret,
    /// 400 SecretsErrorException, the "timed out retrieving the secret" case (transient).
    SecretsErrorTimeout,
    /// 400 SecretsErrorException, the "secret wasn't found" case (fatal).
    SecretsErrorNotFound,
    /// 403 AccessDeniedException.
    AccessDenied,
    /// 403 ForbiddenException.
    Forbidden,
    /// 404 DatabaseNotFoundException.
    DatabaseNotFound,
    /// 400 InvalidResourceStateException (e.g. the cluster is being modified).
    InvalidResourceState,
    /// The TCP connection is closed without any response (a network cut).
    CloseConnection,
    /// 400 DatabaseErrorException "Transaction is still running a query": the
    /// answer to a call made while another call on the transaction runs.
    TransactionBusy,
}

/// One injected fault. Build with [`Fault::new`] and the setters.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    /// Only calls of this operation ("Execute", "BatchExecute", "BeginTransaction",
    /// "CommitTransaction", "RollbackTransaction", "ExecuteSql", "GetSecretValue").
    /// None matches every Data API operation but not GetSecretValue.
    pub op: Option<&'static str>,
    /// Only calls whose `sql` contains this text.
    pub sql_contains: Option<String>,
    /// Active for this many matching calls (None: no count limit).
    pub times: Option<usize>,
    /// Active for this long from the first matching call (None: no time limit).
    pub for_duration: Option<Duration>,
    pub carrier: Carrier,
    /// Run the call normally first, then answer with the fault (an ambiguous outcome).
    pub after_run: bool,
}

impl Fault {
    /// A fault on the next matching call: any Data API operation, any SQL, once,
    /// carried in the header, the SQL not run.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            op: None,
            sql_contains: None,
            times: Some(1),
            for_duration: None,
            carrier: Carrier::Header,
            after_run: false,
        }
    }

    pub fn op(mut self, op: &'static str) -> Fault {
        self.op = Some(op);
        self
    }

    pub fn sql_contains(mut self, text: &str) -> Fault {
        self.sql_contains = Some(text.to_string());
        self
    }

    /// Active for `n` matching calls.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = Some(n);
        self
    }

    /// Active for `d` from the first matching call, however many calls that is
    /// (clears the count limit; call `.times(n)` afterwards to have both).
    pub fn for_duration(mut self, d: Duration) -> Fault {
        self.for_duration = Some(d);
        self.times = None;
        self
    }

    /// Active until the server is dropped.
    pub fn always(mut self) -> Fault {
        self.times = None;
        self.for_duration = None;
        self
    }

    pub fn carrier(mut self, c: Carrier) -> Fault {
        self.carrier = c;
        self
    }

    pub fn after_run(mut self) -> Fault {
        self.after_run = true;
        self
    }

    fn matches(&self, op: &str, sql: Option<&str>) -> bool {
        let op_ok = match self.op {
            Some(o) => o == op,
            None => op != "GetSecretValue",
        };
        let sql_ok = match &self.sql_contains {
            Some(s) => sql.is_some_and(|q| q.contains(s.as_str())),
            None => true,
        };
        op_ok && sql_ok
    }
}

/// The queue of faults with their usage so far.
#[derive(Default)]
pub struct Faults {
    active: Vec<(Fault, usize, Option<Instant>)>,
    next_fake_pid: i64,
}

impl Faults {
    pub fn push(&mut self, f: Fault) {
        self.active.push((f, 0, None));
    }

    /// Drops every fault: the server answers normally again.
    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// The first active fault matching this call (counted as used), dropping spent ones.
    pub fn take(&mut self, op: &str, sql: Option<&str>) -> Option<Fault> {
        let now = Instant::now();
        self.active.retain(|(f, used, first)| {
            let count_ok = f.times.is_none_or(|n| *used < n);
            let time_ok = match (f.for_duration, first) {
                (Some(d), Some(t)) => now.duration_since(*t) <= d,
                _ => true,
            };
            count_ok && time_ok
        });
        let (f, used, first) = self.active.iter_mut().find(|(f, _, _)| f.matches(op, sql))?;
        *used += 1;
        first.get_or_insert(now);
        Some(f.clone())
    }

    /// A made-up backend pid for StatementTimeout faults that ran nothing.
    pub fn fake_pid(&mut self) -> i64 {
        self.next_fake_pid += 1;
        40_000 + self.next_fake_pid
    }
}

/// The AWS error a fault kind answers with (None for the kinds that are not an
/// AWS error: Html502, CloseConnection). `arn` is the request's resourceArn.
pub fn fault_error(kind: FaultKind, service: Service, arn: &str, fake_pid: i64) -> Option<ApiError> {
    let sm = service == Service::SecretsManager;
    let e = match kind {
        FaultKind::Resuming => ApiError::new(
            400,
            "DatabaseResumingException",
            format!("The Aurora DB instance {arn} is resuming after being auto-paused. Please wait a few seconds and try again."),
        ),
        FaultKind::Throttling => ApiError::new(400, "ThrottlingException", "Rate exceeded"),
        FaultKind::Internal if sm => ApiError::new(500, "InternalServiceError", "An error occurred on the server side."),
        FaultKind::Internal | FaultKind::Hang(_) => ApiError::internal("An internal error occurred."),
        FaultKind::ServiceUnavailable => ApiError::new(503, "ServiceUnavailableError", "The service is temporarily unavailable."),
        FaultKind::DatabaseUnavailable => ApiError {
            status: 504,
            code: "DatabaseUnavailableException",
            message: None,
            db_connection_id: None,
            pg: None,
        },
        FaultKind::StatementTimeout => ApiError::statement_timeout(fake_pid),
        FaultKind::ExpireTransaction => ApiError::transaction_not_found("Transaction may be expired."),
        FaultKind::UnsupportedResult => ApiError::unsupported_result("The result contains the unsupported data type point."),
        FaultKind::HttpEndpointNotEnabled => ApiError::new(
            400,
            "HttpEndpointNotEnabledException",
            format!("HttpEndpoint is not enabled for resource {arn}"),
        ),
        FaultKind::InvalidSecret => ApiError::new(400, "InvalidSecretException", "The secret used with the request isn't valid."),
        FaultKind::SecretsErrorTimeout => ApiError::new(400, "SecretsErrorException", "Data API timed out retrieving the secret."),
        FaultKind::SecretsErrorNotFound if sm => {
            ApiError::new(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
        }
        FaultKind::SecretsErrorNotFound => ApiError::new(400, "SecretsErrorException", "Secrets Manager can't find the specified secret."),
        FaultKind::AccessDenied => ApiError::new(
            403,
            "AccessDeniedException",
            "You don't have sufficient access to perform this action.",
        ),
        FaultKind::Forbidden => ApiError::new(403, "ForbiddenException", "There are insufficient privileges to make the call."),
        FaultKind::DatabaseNotFound => ApiError::new(404, "DatabaseNotFoundException", "The DB cluster doesn't have a DB instance."),
        FaultKind::InvalidResourceState => ApiError::new(400, "InvalidResourceStateException", "The resource is in an invalid state."),
        FaultKind::TransactionBusy => ApiError::database_error("Transaction is still running a query"),
        FaultKind::Html502 | FaultKind::CloseConnection => return None,
    };
    Some(e)
}
