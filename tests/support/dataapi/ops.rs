//! The six Data API operations on a real PostgreSQL: request checks in the
//! order the service applies them, ExecuteStatement / BatchExecuteStatement
//! with the statement timeout (cancel, or keep running with
//! continueAfterTimeout), result encoding under the response and row size
//! limits, and Begin / Commit / Rollback.

use std::future::Future;
use std::sync::Arc;

use futures_util::TryStreamExt;
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use super::sessions::{rollback_and_close, Session, ABORTED, TERMINATED};
use super::statements::{self, StatementKind, TextParam};
use super::values::{self, ColumnOrigin};
use super::wire::{transaction_id, ApiError, Reply, Request, ResultSetOptions};
use super::{Shared, RESOURCE_ARN, SECRET_ARN};

/// Runs one Data API operation.
pub async fn dispatch(shared: &Arc<Shared>, op: &str, req: &Request) -> Reply {
    let r = match op {
        "Execute" => execute(shared, req).await,
        "BatchExecute" => batch_execute(shared, req).await,
        "BeginTransaction" => begin(shared, req).await,
        "CommitTransaction" => end(shared, req, true).await,
        "RollbackTransaction" => end(shared, req, false).await,
        "ExecuteSql" => Err(ApiError::validation(
            "ExecuteSql isn't supported for Aurora Serverless v2 and provisioned DB clusters. Use ExecuteStatement.",
        )),
        _ => Err(ApiError::new(404, "UnknownOperationException", format!("Unknown operation {op}"))),
    };
    match r {
        Ok(v) => Reply::Ok(v),
        Err(e) => e.into(),
    }
}

fn missing(member: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

/// The resource, the secret, and the members v2 refuses.
fn check_target(req: &Request) -> Result<(), ApiError> {
    let arn = req.resource_arn.as_deref().ok_or_else(|| missing("resourceArn"))?;
    let secret = req.secret_arn.as_deref().ok_or_else(|| missing("secretArn"))?;
    if arn != RESOURCE_ARN {
        if arn.eq_ignore_ascii_case(RESOURCE_ARN) {
            return Err(ApiError::new(
                400,
                "HttpEndpointNotEnabledException",
                format!("HttpEndpoint is not enabled for resource {arn}"),
            ));
        }
        return Err(ApiError::new(
            404,
            "DatabaseNotFoundException",
            format!("DB cluster {arn} not found."),
        ));
    }
    if secret != SECRET_ARN {
        return Err(ApiError::new(
            400,
            "SecretsErrorException",
            "Secrets Manager can't find the specified secret.",
        ));
    }
    if req.schema.is_some() {
        return Err(ApiError::validation("The schema parameter isn't supported"));
    }
    if req.database.as_deref().is_some_and(|d| d.chars().count() > 64) {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'database' failed to satisfy constraint: Member must have length less than or equal to 64",
        ));
    }
    Ok(())
}

fn database(req: &Request) -> &str {
    req.database.as_deref().filter(|d| !d.is_empty()).unwrap_or("postgres")
}

/// Whether a failed statement ends its transaction (errors from PostgreSQL or
/// a lost connection do; result-encoding errors do not).
fn aborts_transaction(e: &ApiError) -> bool {
    e.sqlstate().is_some() || e.status >= 500
}

/// Runs `work` on the call's session (the transaction's, or a fresh connection
/// closed afterwards) within the statement timeout.
async fn run_timed<T, F, Fut>(shared: &Arc<Shared>, req: &Request, continue_after_timeout: bool, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Arc<Session>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    let tx_id = req.transaction_id.clone();
    let session = match &tx_id {
        Some(id) => shared.txs.checkout(id)?,
        None => Session::connect(&shared.pg, database(req)).await?,
    };
    let pid = session.pid;
    let cancel = session.client.cancel_token();
    let shared2 = shared.clone();
    let mut task = tokio::spawn(async move {
        let r = work(session.clone()).await;
        match &tx_id {
            None => session.close().await,
            Some(id) => match &r {
                Err(e) if aborts_transaction(e) => {
                    drop(session);
                    let reason = if e.sqlstate() == Some("57014") { TERMINATED } else { ABORTED };
                    if let Some(s) = shared2.txs.finish(id, Some(reason)) {
                        rollback_and_close(s).await;
                    }
                }
                _ => shared2.txs.checkin(id),
            },
        }
        r
    });
    match tokio::time::timeout(shared.opts.statement_timeout, &mut task).await {
        Ok(joined) => joined.unwrap_or_else(|e| Err(ApiError::internal(format!("statement task failed: {e}")))),
        Err(_) => {
            if !continue_after_timeout {
                // Cancel until the statement has stopped (a cancel that lands between
                // two protocol messages does nothing).
                loop {
                    let _ = cancel.cancel_query(NoTls).await;
                    if tokio::time::timeout(std::time::Duration::from_millis(200), &mut task).await.is_ok() {
                        break;
                    }
                }
            }
            Err(ApiError::statement_timeout(pid.into()))
        }
    }
}

/// What ExecuteStatement returns, built while the rows stream in.
struct ExecJob {
    sql: String,
    params: Vec<TextParam>,
    kind: StatementKind,
    include_metadata: bool,
    options: ResultSetOptions,
    format_json: bool,
    response_limit: usize,
    row_limit: usize,
    insert_counts_zero: bool,
}

fn too_large() -> ApiError {
    ApiError::database_error("Database returned more than the allowed response size limit")
}

impl ExecJob {
    async fn run(self, client: &Client) -> Result<Value, ApiError> {
        let pg = |e: tokio_postgres::Error| ApiError::from_pg(&e);
        let stmt = client.prepare(&self.sql).await.map_err(pg)?;
        let stream = client
            .query_raw(&stmt, self.params.iter().map(|p| p as &dyn ToSql))
            .await
            .map_err(pg)?;
        let mut stream = std::pin::pin!(stream);
        let columns = stmt.columns();
        let mut records = Vec::new();
        let mut size = 0;
        while let Some(row) = stream.try_next().await.map_err(pg)? {
            let raw = values::raw_values(&row);
            if values::row_size(&raw) > self.row_limit {
                return Err(ApiError::database_error("Packet for query is too large"));
            }
            let fields = columns
                .iter()
                .zip(&raw)
                .map(|(c, v)| values::field(c.type_(), *v, &self.options))
                .collect::<Result<Vec<_>, _>>()?;
            let record = Value::Array(fields);
            size += record.to_string().len() + 1;
            if size > self.response_limit {
                return Err(too_large());
            }
            records.push(record);
        }
        let affected = match self.kind {
            StatementKind::Dml => stream.rows_affected().unwrap_or(0),
            StatementKind::Insert if !self.insert_counts_zero => stream.rows_affected().unwrap_or(0),
            _ => 0,
        };
        let mut out = serde_json::Map::new();
        if !columns.is_empty() {
            if self.format_json {
                out.insert("formattedRecords".into(), json!(formatted_records(columns, &records).to_string()));
            } else {
                out.insert("records".into(), Value::Array(records));
            }
            if self.include_metadata && !self.format_json {
                let origins = column_origins(client, columns).await;
                out.insert("columnMetadata".into(), values::column_metadata(columns, &origins));
            }
        }
        out.insert("numberOfRecordsUpdated".into(), json!(affected));
        out.insert("generatedFields".into(), json!([]));
        let out = Value::Object(out);
        if out.to_string().len() > self.response_limit {
            return Err(too_large());
        }
        Ok(out)
    }
}

/// `formatRecordsAs: JSON`: an array of objects keyed by column name.
fn formatted_records(columns: &[tokio_postgres::Column], records: &[Value]) -> Value {
    let rows = records
        .iter()
        .map(|r| {
            let obj: serde_json::Map<String, Value> = columns
                .iter()
                .zip(r.as_array().into_iter().flatten())
                .map(|(c, f)| {
                    let (k, v) = f
                        .as_object()
                        .and_then(|o| o.iter().next())
                        .map(|(k, v)| (k.as_str(), v.clone()))
                        .unwrap();
                    let v = match (k, v) {
                        ("isNull", _) => Value::Null,
                        ("arrayValue", Value::Object(a)) => a.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null),
                        (_, v) => v,
                    };
                    (c.name().to_string(), v)
                })
                .collect();
            Value::Object(obj)
        })
        .collect();
    Value::Array(rows)
}

/// Schema, table and NOT NULL of each result column that comes from a table.
async fn column_origins(client: &Client, columns: &[tokio_postgres::Column]) -> Vec<ColumnOrigin> {
    let mut out = Vec::new();
    for c in columns {
        let origin = match (c.table_oid(), c.column_id()) {
            (Some(t), Some(a)) if t != 0 => client
                .query_opt(
                    "SELECT n.nspname::text, c.relname::text, a.attnotnull FROM pg_attribute a \
                     JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE a.attrelid = $1 AND a.attnum = $2",
                    &[&t, &a],
                )
                .await
                .ok()
                .flatten()
                .map(|r| (r.get(0), r.get(1), r.get(2))),
            _ => None,
        };
        out.push(origin);
    }
    out
}

async fn execute(shared: &Arc<Shared>, req: &Request) -> Result<Value, ApiError> {
    check_target(req)?;
    let sql = req.sql.as_deref().ok_or_else(|| missing("sql"))?;
    let kind = statements::check(sql)?;
    let (sql, params) = statements::bind(sql, req.parameters.as_deref().unwrap_or(&[]))?;
    let job = ExecJob {
        sql,
        params,
        kind,
        include_metadata: req.include_result_metadata.unwrap_or(false),
        options: req.result_set_options.clone().unwrap_or_default(),
        format_json: req.format_records_as.as_deref() == Some("JSON"),
        response_limit: shared.opts.response_limit,
        row_limit: shared.opts.row_limit,
        insert_counts_zero: shared.opts.insert_counts_zero,
    };
    let continue_after = req.continue_after_timeout.unwrap_or(false);
    run_timed(shared, req, continue_after, move |s| async move { job.run(&s.client).await }).await
}

async fn batch_execute(shared: &Arc<Shared>, req: &Request) -> Result<Value, ApiError> {
    check_target(req)?;
    let sql = req.sql.as_deref().ok_or_else(|| missing("sql"))?;
    statements::check(sql)?;
    let sets = req.parameter_sets.clone().unwrap_or_default();
    let runs = if sets.is_empty() {
        vec![statements::bind(sql, &[])?]
    } else {
        sets.iter().map(|set| statements::bind(sql, set)).collect::<Result<Vec<_>, _>>()?
    };
    let n_results = sets.len();
    run_timed(shared, req, false, move |s| async move {
        let pg = |e: tokio_postgres::Error| ApiError::from_pg(&e);
        for (sql, params) in &runs {
            let stream = s
                .client
                .query_raw(sql.as_str(), params.iter().map(|p| p as &dyn ToSql))
                .await
                .map_err(pg)?;
            let mut stream = std::pin::pin!(stream);
            while stream.try_next().await.map_err(pg)?.is_some() {}
        }
        let results: Vec<Value> = (0..n_results).map(|_| json!({"generatedFields": []})).collect();
        Ok(json!({"updateResults": results}))
    })
    .await
}

async fn begin(shared: &Arc<Shared>, req: &Request) -> Result<Value, ApiError> {
    check_target(req)?;
    let session = Session::connect(&shared.pg, database(req)).await?;
    if let Err(e) = session.client.batch_execute("BEGIN").await {
        session.close().await;
        return Err(ApiError::from_pg(&e));
    }
    let id = transaction_id();
    shared.txs.insert(id.clone(), session);
    Ok(json!({"transactionId": id}))
}

async fn end(shared: &Arc<Shared>, req: &Request, commit: bool) -> Result<Value, ApiError> {
    check_target(req)?;
    let id = req.transaction_id.as_deref().ok_or_else(|| missing("transactionId"))?;
    let session = shared.txs.checkout(id)?;
    let result = session.client.batch_execute(if commit { "COMMIT" } else { "ROLLBACK" }).await;
    drop(session);
    if let Some(s) = shared.txs.finish(id, None) {
        s.close().await;
    }
    result.map_err(|e| ApiError::from_pg(&e))?;
    let status = if commit { "Transaction Committed" } else { "Rollback Complete" };
    Ok(json!({"transactionStatus": status}))
}
