//! Tests of the fake Data API server itself (tests/support/dataapi), driven
//! by the real aws-sdk-rdsdata client (retries off) against the real test
//! PostgreSQL: typed results, one statement per call, sessions and
//! transactions, the timeouts, the size limits, every fault on every carrier,
//! and GetSecretValue.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_rdsdata::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rdsdata::operation::execute_statement::{ExecuteStatementError, ExecuteStatementOutput};
use aws_sdk_rdsdata::types::{ArrayValue, Field};
use aws_sdk_rdsdata::Client;

use crate::support::dataapi::{
    Carrier, DataApiServer, Fault, FaultKind, MissingDatabase, Options, SqlErrors, RESOURCE_ARN, SECRET_ARN, TEST_ACCESS_KEY_ID,
};
use crate::support::{server_url, wait_until, Db};

type ExecResult = Result<ExecuteStatementOutput, SdkError<ExecuteStatementError, aws_sdk_rdsdata::config::http::HttpResponse>>;

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs blocking test helpers (which start their own runtime) from inside an async block.
fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

fn server() -> DataApiServer {
    DataApiServer::start(&server_url(), Options::default())
}

fn server_with(f: impl FnOnce(&mut Options)) -> DataApiServer {
    let mut opts = Options::default();
    f(&mut opts);
    DataApiServer::start(&server_url(), opts)
}

fn stmt(client: &Client, db: &str, sql: &str) -> aws_sdk_rdsdata::operation::execute_statement::builders::ExecuteStatementFluentBuilder {
    client
        .execute_statement()
        .resource_arn(RESOURCE_ARN)
        .secret_arn(SECRET_ARN)
        .database(db)
        .sql(sql)
}

async fn exec(client: &Client, db: &str, sql: &str) -> ExecResult {
    stmt(client, db, sql).send().await
}

async fn exec_tx(client: &Client, db: &str, tx: &str, sql: &str) -> ExecResult {
    stmt(client, db, sql).transaction_id(tx).send().await
}

async fn begin(client: &Client, db: &str) -> String {
    let out = client
        .begin_transaction()
        .resource_arn(RESOURCE_ARN)
        .secret_arn(SECRET_ARN)
        .database(db)
        .send()
        .await
        .expect("begin");
    out.transaction_id().unwrap().to_string()
}

async fn commit(client: &Client, tx: &str) -> String {
    let out = client
        .commit_transaction()
        .resource_arn(RESOURCE_ARN)
        .secret_arn(SECRET_ARN)
        .transaction_id(tx)
        .send()
        .await
        .expect("commit");
    out.transaction_status().unwrap().to_string()
}

async fn rollback(client: &Client, tx: &str) -> String {
    let out = client
        .rollback_transaction()
        .resource_arn(RESOURCE_ARN)
        .secret_arn(SECRET_ARN)
        .transaction_id(tx)
        .send()
        .await
        .expect("rollback");
    out.transaction_status().unwrap().to_string()
}

/// The modelled variant the SDK decoded, or "other".
fn variant(e: &ExecuteStatementError) -> &'static str {
    match e {
        ExecuteStatementError::AccessDeniedException(_) => "AccessDeniedException",
        ExecuteStatementError::BadRequestException(_) => "BadRequestException",
        ExecuteStatementError::DatabaseErrorException(_) => "DatabaseErrorException",
        ExecuteStatementError::DatabaseNotFoundException(_) => "DatabaseNotFoundException",
        ExecuteStatementError::DatabaseResumingException(_) => "DatabaseResumingException",
        ExecuteStatementError::DatabaseUnavailableException(_) => "DatabaseUnavailableException",
        ExecuteStatementError::ForbiddenException(_) => "ForbiddenException",
        ExecuteStatementError::HttpEndpointNotEnabledException(_) => "HttpEndpointNotEnabledException",
        ExecuteStatementError::InternalServerErrorException(_) => "InternalServerErrorException",
        ExecuteStatementError::InvalidResourceStateException(_) => "InvalidResourceStateException",
        ExecuteStatementError::InvalidSecretException(_) => "InvalidSecretException",
        ExecuteStatementError::SecretsErrorException(_) => "SecretsErrorException",
        ExecuteStatementError::ServiceUnavailableError(_) => "ServiceUnavailableError",
        ExecuteStatementError::StatementTimeoutException(_) => "StatementTimeoutException",
        ExecuteStatementError::TransactionNotFoundException(_) => "TransactionNotFoundException",
        ExecuteStatementError::UnsupportedResultException(_) => "UnsupportedResultException",
        _ => "other",
    }
}

fn status<E>(e: &SdkError<E, aws_sdk_rdsdata::config::http::HttpResponse>) -> u16 {
    match e {
        SdkError::ServiceError(se) => se.raw().status().as_u16(),
        _ => 0,
    }
}

fn service_err(r: ExecResult) -> (u16, ExecuteStatementError) {
    let e = r.expect_err("expected an error");
    (status(&e), e.into_service_error())
}

#[test]
fn dataapi_select_decodes_typed_fields() {
    let db = Db::new();
    let s = server();
    let client = s.client();
    block_on(async {
        let sql = "SELECT 1::int2 AS a, 2::int4 AS b, 9000000000::int8 AS c, true AS d, 1.5::float8 AS e, 2.5::float4 AS f, \
                   'txt'::text AS g, 'v'::varchar(5) AS h, 12.340::numeric(6,3) AS i, '0e3c1f9a-7b2d-4c5e-8f60-123456789abc'::uuid AS j, \
                   '{\"a\": 1}'::jsonb AS k, '2024-02-29'::date AS l, '13:14:15.5'::time AS m, \
                   '2024-01-02 03:04:05.123456'::timestamp AS n, '2024-01-02 03:04:05+00'::timestamptz AS o, \
                   '\\xdeadbeef'::bytea AS p, NULL::text AS q, ARRAY[1,NULL,3] AS r, ARRAY['x','y'] AS s, 'c'::\"char\" AS t, \
                   (-0.0012)::numeric AS u, 'infinity'::timestamp AS v";
        let out = stmt(&client, "postgres", sql).include_result_metadata(true).send().await.unwrap();
        let row = &out.records()[0];
        let expect = [
            Field::LongValue(1),
            Field::LongValue(2),
            Field::LongValue(9_000_000_000),
            Field::BooleanValue(true),
            Field::DoubleValue(1.5),
            Field::DoubleValue(2.5),
            Field::StringValue("txt".into()),
            Field::StringValue("v".into()),
            Field::StringValue("12.340".into()),
            Field::StringValue("0e3c1f9a-7b2d-4c5e-8f60-123456789abc".into()),
            Field::StringValue("{\"a\": 1}".into()),
            Field::StringValue("2024-02-29".into()),
            Field::StringValue("13:14:15.5".into()),
            Field::StringValue("2024-01-02 03:04:05.123456".into()),
            Field::StringValue("2024-01-02 03:04:05".into()),
            Field::BlobValue(aws_sdk_rdsdata::primitives::Blob::new(vec![0xde, 0xad, 0xbe, 0xef])),
            Field::IsNull(true),
            Field::ArrayValue(ArrayValue::LongValues(vec![Some(1), None, Some(3)])),
            Field::ArrayValue(ArrayValue::StringValues(vec![Some("x".into()), Some("y".into())])),
            Field::StringValue("c".into()),
            Field::StringValue("-0.0012".into()),
            Field::StringValue("infinity".into()),
        ];
        assert_eq!(row.len(), expect.len());
        for (i, (got, want)) in row.iter().zip(&expect).enumerate() {
            assert_eq!(got, want, "column {i}");
        }
        let meta = out.column_metadata();
        assert_eq!(meta.len(), expect.len());
        assert_eq!(meta[0].name(), Some("a"));
        assert_eq!(meta[0].type_name(), Some("int2"));
        assert_eq!(meta[2].r#type(), -5);
        assert_eq!(meta[8].precision(), 6);
        assert_eq!(meta[8].scale(), 3);
        assert_eq!(out.number_of_records_updated(), 0);
        assert!(out.generated_fields().is_empty());

        // Without includeResultMetadata there is none.
        let out = exec(&client, "postgres", "SELECT 1").await.unwrap();
        assert!(out.column_metadata().is_empty());

        // Types the Data API cannot return.
        for sql in ["SELECT point(1,2)", "SELECT 1::money", "SELECT ARRAY[[1,2],[3,4]]"] {
            let (st, e) = service_err(exec(&client, "postgres", sql).await);
            assert_eq!((st, variant(&e)), (400, "UnsupportedResultException"), "{sql}");
        }
        exec(&client, &db.name, "CREATE EXTENSION vector").await.unwrap();
        let (st, e) = service_err(exec(&client, &db.name, "SELECT '[1,2,3]'::vector").await);
        assert_eq!((st, variant(&e)), (400, "UnsupportedResultException"));
        let out = exec(&client, &db.name, "SELECT '[1,2,3]'::vector::text").await.unwrap();
        assert_eq!(out.records()[0][0], Field::StringValue("[1,2,3]".into()));

        // resultSetOptions.
        let out = stmt(&client, "postgres", "SELECT 7::int8, 2.5::numeric")
            .result_set_options(
                aws_sdk_rdsdata::types::ResultSetOptions::builder()
                    .long_return_type(aws_sdk_rdsdata::types::LongReturnType::String)
                    .decimal_return_type(aws_sdk_rdsdata::types::DecimalReturnType::DoubleOrLong)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(out.records()[0], vec![Field::StringValue("7".into()), Field::DoubleValue(2.5)]);

        // formatRecordsAs JSON.
        let out = stmt(&client, "postgres", "SELECT 1 AS n, 'a' AS s, NULL::int AS z")
            .format_records_as(aws_sdk_rdsdata::types::RecordsFormatType::Json)
            .send()
            .await
            .unwrap();
        assert_eq!(out.formatted_records(), Some(r#"[{"n":1,"s":"a","z":null}]"#));
        assert!(out.records().is_empty());
    });
}

#[test]
fn dataapi_ddl_and_dml_round_trip_with_parameters() {
    let db = Db::new();
    let s = server();
    let client = s.client();
    block_on(async {
        let out = exec(
            &client,
            &db.name,
            "CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL, at timestamptz);",
        )
        .await
        .unwrap();
        assert_eq!(out.number_of_records_updated(), 0);
        assert!(out.records().is_empty());
        let out = exec(
            &client,
            &db.name,
            "INSERT INTO t VALUES (1, 'a', now()), (2, 'b', NULL), (3, 'c', NULL)",
        )
        .await
        .unwrap();
        assert_eq!(out.number_of_records_updated(), 3);
        let out = exec(&client, &db.name, "UPDATE t SET name = upper(name) WHERE id >= 2 RETURNING id")
            .await
            .unwrap();
        assert_eq!(out.number_of_records_updated(), 2);
        assert_eq!(out.records().len(), 2);

        use aws_sdk_rdsdata::types::SqlParameter;
        let p = |name: &str, v: Field| SqlParameter::builder().name(name).value(v).build();
        let out = stmt(
            &client,
            &db.name,
            "INSERT INTO t (id, name) VALUES (:id, :name) RETURNING id, name, ':id'",
        )
        .parameters(p("id", Field::LongValue(4)))
        .parameters(p("name", Field::StringValue("it's".into())))
        .send()
        .await
        .unwrap();
        assert_eq!(
            out.records()[0],
            vec![
                Field::LongValue(4),
                Field::StringValue("it's".into()),
                Field::StringValue(":id".into())
            ]
        );
        let out = stmt(&client, &db.name, "SELECT id, name FROM t WHERE id > :min ORDER BY id")
            .parameters(p("min", Field::LongValue(1)))
            .include_result_metadata(true)
            .send()
            .await
            .unwrap();
        let names: Vec<_> = out.records().iter().map(|r| r[1].clone()).collect();
        assert_eq!(
            names,
            ["B", "C", "it's"].map(|n| Field::StringValue(n.into())).to_vec(),
            "rows: {:?}",
            out.records()
        );
        let meta = &out.column_metadata()[1];
        assert_eq!(
            (meta.table_name(), meta.schema_name(), meta.nullable()),
            (Some("t"), Some("public"), 0)
        );
    });
    assert_eq!(db.scalar("SELECT count(*) FROM t"), "4");
}

#[test]
fn dataapi_refuses_multistatements_schema_and_long_sql() {
    let db = Db::new();
    let s = server();
    let client = s.client();
    block_on(async {
        let e = exec(&client, &db.name, "CREATE TABLE a (x int); CREATE TABLE b (x int)")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ValidationException"));
        assert_eq!(e.message(), Some("Multistatements aren't supported."));
        let e = exec(&client, &db.name, "CREATE TABLE c (x int); INSERT INTO c VALUES ('a;b')")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ValidationException"));

        let e = stmt(&client, &db.name, "SELECT 1").schema("public").send().await.unwrap_err();
        assert_eq!(e.code(), Some("ValidationException"));
        assert_eq!(e.message(), Some("The schema parameter isn't supported"));

        let long = format!("SELECT 1 --{}", "x".repeat(65_537 - 11));
        assert_eq!(long.len(), 65_537);
        let e = exec(&client, &db.name, &long).await.unwrap_err();
        assert_eq!(e.code(), Some("ValidationException"));
        exec(&client, &db.name, &long[..65_536])
            .await
            .expect("65,536 characters are allowed");

        // A single statement with a trailing ';' and a DO block with inner ';' are fine.
        exec(&client, &db.name, "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;").await.unwrap();
    });
    assert!(!db.table_exists("a") && !db.table_exists("b") && !db.table_exists("c"));
    let calls = s.calls();
    assert!(calls[2].had_schema);
    assert_eq!(calls[2].outcome, "ValidationException");
    assert!(calls.iter().all(|c| c.access_key_id.as_deref() == Some(TEST_ACCESS_KEY_ID)));
}

#[test]
fn dataapi_transactions_commit_and_rollback() {
    let db = Db::new();
    db.exec("CREATE TABLE t (x int)");
    let s = server();
    let client = s.client();
    block_on(async {
        let tx = begin(&client, &db.name).await;
        assert!(tx.len() <= 192);
        exec_tx(&client, &db.name, &tx, "INSERT INTO t VALUES (1)").await.unwrap();
        assert_eq!(off(|| db.scalar("SELECT count(*) FROM t")), "0", "not visible before commit");
        let out = exec_tx(&client, &db.name, &tx, "SELECT count(*) FROM t").await.unwrap();
        assert_eq!(out.records()[0][0], Field::LongValue(1));
        assert_eq!(commit(&client, &tx).await, "Transaction Committed");
        assert_eq!(off(|| db.scalar("SELECT count(*) FROM t")), "1");

        let tx2 = begin(&client, &db.name).await;
        assert_ne!(tx, tx2);
        exec_tx(&client, &db.name, &tx2, "INSERT INTO t VALUES (2)").await.unwrap();
        exec_tx(&client, &db.name, &tx2, "CREATE TABLE u (y int)").await.unwrap();
        assert_eq!(rollback(&client, &tx2).await, "Rollback Complete");
        assert_eq!(off(|| db.scalar("SELECT count(*) FROM t")), "1");
        assert!(!off(|| db.table_exists("u")));

        // An ended transaction, or one never begun, is not found.
        let e = exec_tx(&client, &db.name, &tx, "SELECT 1").await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_transaction_not_found_exception());
        assert_eq!(e.message(), Some("The transaction ID wasn't found."));
        assert_eq!(status(&e), 404);
        let e = client
            .commit_transaction()
            .resource_arn(RESOURCE_ARN)
            .secret_arn(SECRET_ARN)
            .transaction_id("nope")
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_transaction_not_found_exception());

        // An SQL error ends the transaction: the failing call gets the SQL error,
        // the next one TransactionNotFoundException.
        let tx3 = begin(&client, &db.name).await;
        exec_tx(&client, &db.name, &tx3, "INSERT INTO t VALUES (3)").await.unwrap();
        let (_, e) = service_err(exec_tx(&client, &db.name, &tx3, "SELECT 1/0").await);
        assert!(e.is_database_error_exception());
        assert!(e.message().unwrap().ends_with("SQLState: 22012"), "{:?}", e.message());
        let e = exec_tx(&client, &db.name, &tx3, "SELECT 1").await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_transaction_not_found_exception());
        assert_eq!(
            e.message(),
            Some("Transaction has been aborted due to an error from a previous call.")
        );
    });
    assert_eq!(db.scalar("SELECT count(*) FROM t"), "1");
    wait_until(5, "transactions closed", || s.open_transactions() == 0);
}

#[test]
fn dataapi_session_state_does_not_persist_outside_a_transaction() {
    let db = Db::new();
    let s = server();
    let client = s.client();
    block_on(async {
        exec(&client, &db.name, "SET application_name = 'sticky'").await.unwrap();
        let out = exec(&client, &db.name, "SHOW application_name").await.unwrap();
        assert_eq!(out.records()[0][0], Field::StringValue("dataapi-test-server".into()));

        exec(&client, &db.name, "CREATE TEMP TABLE tmp (x int)").await.unwrap();
        let e = exec(&client, &db.name, "SELECT * FROM tmp").await.unwrap_err();
        assert!(e.message().unwrap().contains("SQLState: 42P01"));

        let out = exec(&client, &db.name, "SELECT pg_try_advisory_lock(42)").await.unwrap();
        assert_eq!(out.records()[0][0], Field::BooleanValue(true));
        // The session that took it is gone, so the lock is free again (once
        // its backend has exited, which trails the closed socket a little).
        let mut free = false;
        for _ in 0..100 {
            let out = exec(&client, &db.name, "SELECT pg_try_advisory_lock(42)").await.unwrap();
            if out.records()[0][0] == Field::BooleanValue(true) {
                free = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(free, "the lock outlived the call's session");

        // Inside a transaction the session is kept.
        let tx = begin(&client, &db.name).await;
        exec_tx(&client, &db.name, &tx, "SET application_name = 'sticky'").await.unwrap();
        let out = exec_tx(&client, &db.name, &tx, "SHOW application_name").await.unwrap();
        assert_eq!(out.records()[0][0], Field::StringValue("sticky".into()));
        commit(&client, &tx).await;
    });
}

#[test]
fn dataapi_idle_transaction_expires_and_releases_its_locks() {
    let db = Db::new();
    let s = server_with(|o| o.transaction_idle_timeout = Duration::from_millis(500));
    let client = s.client();
    block_on(async {
        // Time inside a call does not count as idle.
        let tx = begin(&client, &db.name).await;
        exec_tx(&client, &db.name, &tx, "SELECT pg_advisory_xact_lock(7), pg_sleep(0.8)")
            .await
            .unwrap();
        exec_tx(&client, &db.name, &tx, "SELECT 1")
            .await
            .expect("still alive right after a long call");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let e = exec_tx(&client, &db.name, &tx, "SELECT 1").await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_transaction_not_found_exception());
        assert_eq!(e.message(), Some("Transaction may be expired."));
        let e = client
            .commit_transaction()
            .resource_arn(RESOURCE_ARN)
            .secret_arn(SECRET_ARN)
            .transaction_id(&tx)
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_transaction_not_found_exception());
    });
    wait_until(5, "the expired transaction's lock to go", || {
        db.scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND d.datname = current_database()",
        ) == "0"
    });
    assert_eq!(s.open_transactions(), 0);
}

#[test]
fn dataapi_concurrent_call_on_one_transaction_is_refused() {
    let db = Db::new();
    let s = server();
    let client = s.client();
    block_on(async {
        let tx = begin(&client, &db.name).await;
        let slow = exec_tx(&client, &db.name, &tx, "SELECT pg_sleep(0.6)");
        let second = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            exec_tx(&client, &db.name, &tx, "SELECT 1").await
        };
        let (slow, second) = tokio::join!(slow, second);
        slow.expect("the first call completes");
        let (st, e) = service_err(second);
        assert_eq!((st, variant(&e)), (400, "DatabaseErrorException"));
        assert_eq!(e.message(), Some("Transaction is still running a query"));
        // The refused call did not end the transaction.
        exec_tx(&client, &db.name, &tx, "SELECT 1").await.unwrap();
        assert_eq!(commit(&client, &tx).await, "Transaction Committed");
    });
}

#[test]
fn dataapi_statement_timeout_with_and_without_continue_after_timeout() {
    let db = Db::new();
    let s = server_with(|o| o.statement_timeout = Duration::from_millis(300));
    let client = s.client();
    block_on(async {
        let started = Instant::now();
        let r = stmt(&client, &db.name, "CREATE TABLE kept AS SELECT 1 AS s FROM pg_sleep(1)")
            .continue_after_timeout(true)
            .send()
            .await;
        assert!(started.elapsed() < Duration::from_millis(900));
        let (st, e) = service_err(r);
        assert_eq!(st, 400);
        let ExecuteStatementError::StatementTimeoutException(t) = &e else {
            panic!("{e:?}")
        };
        let pid = t.db_connection_id;
        assert!(pid > 0);
        assert!(!off(|| db.table_exists("kept")), "still running");
        off(|| wait_until(5, "the statement to finish in the background", || db.table_exists("kept")));
        off(|| {
            wait_until(5, "its connection to close", || {
                db.scalar(&format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")) == "0"
            })
        });

        let e = exec(&client, &db.name, "CREATE TABLE dropped AS SELECT 1 AS s FROM pg_sleep(1)")
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_statement_timeout_exception());
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(!off(|| db.table_exists("dropped")), "the statement was cancelled");

        // In a transaction, a cancelled statement ends the transaction.
        let tx = begin(&client, &db.name).await;
        let e = exec_tx(&client, &db.name, &tx, "SELECT pg_sleep(1)").await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_statement_timeout_exception());
        let e = exec_tx(&client, &db.name, &tx, "SELECT 1").await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_transaction_not_found_exception());
    });
    assert!(s.calls()[0].continue_after_timeout);
}

#[test]
fn dataapi_sql_errors_carry_the_sqlstate() {
    let db = Db::new();
    let s = server();
    let client = s.client();
    block_on(async {
        let (st, e) = service_err(exec(&client, &db.name, "SELECT * FROM missing_table").await);
        assert_eq!((st, variant(&e)), (400, "DatabaseErrorException"));
        assert_eq!(
            e.message(),
            Some("ERROR: relation \"missing_table\" does not exist\n  Position: 15; SQLState: 42P01")
        );
        let e = exec(&client, &db.name, "SELEC 1").await.unwrap_err();
        assert!(e.message().unwrap().ends_with("SQLState: 42601"), "{:?}", e.message());
        let e = exec(&client, "no_such_database_here", "SELECT 1").await.unwrap_err();
        assert!(e.message().unwrap().ends_with("SQLState: 3D000"), "{:?}", e.message());
    });
}

/// The spellings of other implementations, one server instance each
/// (`Options::sql_errors`): the same PostgreSQL error, and a SQL error still
/// ends the transaction whatever its spelling.
#[test]
fn dataapi_sql_error_spellings() {
    let db = Db::new();
    for (spelling, code, message, missing) in [
        (
            SqlErrors::Aws,
            "DatabaseErrorException",
            "ERROR: relation \"missing_table\" does not exist\n  Position: 15; SQLState: 42P01",
            "FATAL: database \"no_such_database_here\" does not exist; SQLState: 3D000",
        ),
        (
            SqlErrors::NoSqlState,
            "DatabaseErrorException",
            "ERROR: relation \"missing_table\" does not exist\n  Position: 15",
            "FATAL: database \"no_such_database_here\" does not exist",
        ),
        (
            SqlErrors::BadRequest,
            "BadRequestException",
            "relation \"missing_table\" does not exist",
            "database \"no_such_database_here\" does not exist",
        ),
        (
            SqlErrors::BadRequestJdbc,
            "BadRequestException",
            "Database error code: 0. Message: ERROR: relation \"missing_table\" does not exist\n  Position: 15",
            "Database error code: 0. Message: FATAL: database \"no_such_database_here\" does not exist",
        ),
    ] {
        let s = server_with(|o| o.sql_errors = spelling);
        let client = s.client();
        block_on(async {
            let (st, e) = service_err(exec(&client, &db.name, "SELECT * FROM missing_table").await);
            assert_eq!((st, variant(&e), e.message()), (400, code, Some(message)), "{spelling:?}");
            let (st, e) = service_err(exec(&client, "no_such_database_here", "SELECT 1").await);
            assert_eq!((st, variant(&e), e.message()), (400, code, Some(missing)), "{spelling:?}");
            let tx = begin(&client, &db.name).await;
            let (_, e) = service_err(exec_tx(&client, &db.name, &tx, "SELECT 1/0").await);
            assert_eq!(variant(&e), code, "{spelling:?}");
            let (st, e) = service_err(exec_tx(&client, &db.name, &tx, "SELECT 1").await);
            assert_eq!(
                (st, variant(&e), e.message()),
                (
                    404,
                    "TransactionNotFoundException",
                    Some("Transaction has been aborted due to an error from a previous call.")
                ),
                "{spelling:?}"
            );
        });
        assert_eq!(s.calls()[0].outcome, code);
    }
}

/// `Options::missing_database`: a request for a database that does not
/// exist, answered as HTTP 500, BadRequestException or
/// DatabaseNotFoundException, on ExecuteStatement and BeginTransaction; a
/// statement's own 3D000 (DROP DATABASE) stays a SQL error.
#[test]
fn dataapi_missing_database_answers() {
    let db = Db::new();
    for (answer, http, code) in [
        (MissingDatabase::Http500, 500, "InternalServerErrorException"),
        (MissingDatabase::BadRequest, 400, "BadRequestException"),
        (MissingDatabase::DatabaseNotFound, 404, "DatabaseNotFoundException"),
    ] {
        let s = server_with(|o| o.missing_database = answer);
        let client = s.client();
        block_on(async {
            let (st, e) = service_err(exec(&client, "no_such_database_here", "SELECT 1").await);
            assert_eq!(
                (st, variant(&e), e.message()),
                (http, code, Some("database \"no_such_database_here\" does not exist")),
                "{answer:?}"
            );
            let e = client
                .begin_transaction()
                .resource_arn(RESOURCE_ARN)
                .secret_arn(SECRET_ARN)
                .database("no_such_database_here")
                .send()
                .await
                .unwrap_err();
            assert_eq!((status(&e), e.code()), (http, Some(code)), "{answer:?}");
            let (st, e) = service_err(exec(&client, &db.name, "DROP DATABASE no_such_database_here").await);
            assert_eq!((st, variant(&e)), (400, "DatabaseErrorException"), "{answer:?}");
            assert!(e.message().unwrap().ends_with("SQLState: 3D000"), "{:?}", e.message());
        });
    }
}

/// `Options::insert_counts_zero`: every INSERT reports 0 records updated (as
/// data-api-local does), RETURNING rows still come back; other DML counts.
#[test]
fn dataapi_insert_counts_zero() {
    let db = Db::new();
    db.exec("CREATE TABLE t (id int PRIMARY KEY, n int)");
    let s = server_with(|o| o.insert_counts_zero = true);
    let client = s.client();
    block_on(async {
        let out = exec(&client, &db.name, "INSERT INTO t VALUES (1, 0), (2, 0)").await.unwrap();
        assert_eq!(out.number_of_records_updated(), 0);
        let out = exec(&client, &db.name, "INSERT INTO t VALUES (3, 0) RETURNING id").await.unwrap();
        assert_eq!((out.number_of_records_updated(), out.records().len()), (0, 1));
        let out = exec(
            &client,
            &db.name,
            "INSERT INTO t VALUES (3, 1) ON CONFLICT (id) DO UPDATE SET n = excluded.n",
        )
        .await
        .unwrap();
        assert_eq!(out.number_of_records_updated(), 0);
        let out = exec(&client, &db.name, "UPDATE t SET n = n + 1").await.unwrap();
        assert_eq!(out.number_of_records_updated(), 3);
        let out = exec(&client, &db.name, "DELETE FROM t WHERE id = 1").await.unwrap();
        assert_eq!(out.number_of_records_updated(), 1);
    });
    assert_eq!(db.scalar("SELECT string_agg(id || ':' || n, ',' ORDER BY id) FROM t"), "2:1,3:2");
}

#[test]
fn dataapi_non_transactional_ddl_works() {
    let db = Db::new();
    let created = Db::fresh_name();
    let s = server();
    let client = s.client();
    block_on(async {
        exec(&client, &db.name, "CREATE TABLE t (x int)").await.unwrap();
        exec(&client, &db.name, "CREATE INDEX CONCURRENTLY t_x ON t (x)").await.unwrap();
        exec(&client, &db.name, &format!("CREATE DATABASE {created}")).await.unwrap();
        // Not inside a transaction, as in PostgreSQL.
        let tx = begin(&client, &db.name).await;
        let e = exec_tx(&client, &db.name, &tx, "CREATE INDEX CONCURRENTLY t_x2 ON t (x)")
            .await
            .unwrap_err();
        assert!(e.message().unwrap().ends_with("SQLState: 25001"), "{:?}", e.message());
    });
    assert_eq!(db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass"), "t");
    let _created = Db::adopt(&created);
}

#[test]
fn dataapi_response_and_row_limits() {
    let s = server();
    let client = s.client();
    block_on(async {
        let e = exec(&client, "postgres", "SELECT repeat('x', 70000)").await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_database_error_exception());
        assert_eq!(e.message(), Some("Packet for query is too large"));
        let e = exec(&client, "postgres", "SELECT repeat('x', 60000) FROM generate_series(1, 20)")
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_database_error_exception());
        assert_eq!(e.message(), Some("Database returned more than the allowed response size limit"));
        let out = exec(&client, "postgres", "SELECT repeat('x', 60000) FROM generate_series(1, 15)")
            .await
            .unwrap();
        assert_eq!(out.records().len(), 15);
    });
}

#[test]
fn dataapi_wrong_targets_and_execute_sql() {
    let s = server();
    let client = s.client();
    block_on(async {
        let e = client
            .execute_statement()
            .resource_arn("arn:aws:rds:us-east-1:123456789012:cluster:other")
            .secret_arn(SECRET_ARN)
            .sql("SELECT 1")
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_database_not_found_exception());
        let e = client
            .execute_statement()
            .resource_arn(RESOURCE_ARN.to_uppercase())
            .secret_arn(SECRET_ARN)
            .sql("SELECT 1")
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_http_endpoint_not_enabled_exception());
        let e = client
            .execute_statement()
            .resource_arn(RESOURCE_ARN)
            .secret_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:other-XyZ123")
            .sql("SELECT 1")
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_secrets_error_exception());
        #[allow(deprecated)]
        let e = client
            .execute_sql()
            .db_cluster_or_instance_arn(RESOURCE_ARN)
            .aws_secret_store_arn(SECRET_ARN)
            .sql_statements("SELECT 1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ValidationException"));

        // BatchExecute runs the statement once per parameter set.
        let out = client
            .batch_execute_statement()
            .resource_arn(RESOURCE_ARN)
            .secret_arn(SECRET_ARN)
            .sql("SELECT :n::int")
            .parameter_sets(vec![aws_sdk_rdsdata::types::SqlParameter::builder()
                .name("n")
                .value(Field::LongValue(1))
                .build()])
            .parameter_sets(vec![aws_sdk_rdsdata::types::SqlParameter::builder()
                .name("n")
                .value(Field::LongValue(2))
                .build()])
            .send()
            .await
            .unwrap();
        assert_eq!(out.update_results().len(), 2);
    });
}

/// (kind, HTTP status, error code) for every fault that is an AWS error.
fn aws_error_faults() -> Vec<(FaultKind, u16, &'static str)> {
    vec![
        (FaultKind::Resuming, 400, "DatabaseResumingException"),
        (FaultKind::Throttling, 400, "ThrottlingException"),
        (FaultKind::Internal, 500, "InternalServerErrorException"),
        (FaultKind::ServiceUnavailable, 503, "ServiceUnavailableError"),
        (FaultKind::DatabaseUnavailable, 504, "DatabaseUnavailableException"),
        (FaultKind::StatementTimeout, 400, "StatementTimeoutException"),
        (FaultKind::ExpireTransaction, 404, "TransactionNotFoundException"),
        (FaultKind::UnsupportedResult, 400, "UnsupportedResultException"),
        (FaultKind::HttpEndpointNotEnabled, 400, "HttpEndpointNotEnabledException"),
        (FaultKind::InvalidSecret, 400, "InvalidSecretException"),
        (FaultKind::SecretsErrorTimeout, 400, "SecretsErrorException"),
        (FaultKind::SecretsErrorNotFound, 400, "SecretsErrorException"),
        (FaultKind::AccessDenied, 403, "AccessDeniedException"),
        (FaultKind::Forbidden, 403, "ForbiddenException"),
        (FaultKind::DatabaseNotFound, 404, "DatabaseNotFoundException"),
        (FaultKind::InvalidResourceState, 400, "InvalidResourceStateException"),
        (FaultKind::Hang(Duration::from_millis(50)), 500, "InternalServerErrorException"),
    ]
}

#[test]
fn dataapi_every_fault_on_every_carrier_is_recognised_by_the_sdk() {
    let s = server();
    let client = s.client();
    block_on(async {
        for carrier in [Carrier::Header, Carrier::BodyCode, Carrier::BodyType] {
            for (kind, want_status, want_code) in aws_error_faults() {
                s.fault(Fault::new(kind).carrier(carrier));
                let (st, e) = service_err(exec(&client, "postgres", "SELECT 1").await);
                let what = format!("{kind:?} on {carrier:?}");
                assert_eq!(st, want_status, "{what}");
                assert_eq!(e.code(), Some(want_code), "{what}");
                let modelled = !matches!(kind, FaultKind::Throttling);
                assert_eq!(variant(&e) == want_code, modelled, "{what}: {e:?}");
                match kind {
                    FaultKind::DatabaseUnavailable => assert_eq!(e.message(), None, "{what}"),
                    FaultKind::Resuming => assert_eq!(
                        e.message(),
                        Some(
                            format!("The Aurora DB instance {RESOURCE_ARN} is resuming after being auto-paused. Please wait a few seconds and try again.")
                                .as_str()
                        )
                    ),
                    FaultKind::StatementTimeout => {
                        let ExecuteStatementError::StatementTimeoutException(t) = &e else { unreachable!() };
                        assert!(t.db_connection_id > 0);
                    }
                    _ => assert!(e.message().is_some(), "{what}"),
                }
                exec(&client, "postgres", "SELECT 1").await.expect("the fault was used up");
            }
        }
        assert!(s.calls_of("Execute").iter().any(|c| c.outcome == "DatabaseResumingException"));

        // The resuming fault on BeginTransaction (a modelled error there too).
        s.fault(Fault::new(FaultKind::Resuming).op("BeginTransaction"));
        exec(&client, "postgres", "SELECT 1").await.expect("Execute does not match");
        let e = client
            .begin_transaction()
            .resource_arn(RESOURCE_ARN)
            .secret_arn(SECRET_ARN)
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_database_resuming_exception());

        // An HTML 502 from a proxy: no error code at all.
        s.fault(Fault::new(FaultKind::Html502));
        let e = exec(&client, "postgres", "SELECT 1").await.unwrap_err();
        assert_eq!((status(&e), e.code()), (502, None));

        // A cut connection.
        s.fault(Fault::new(FaultKind::CloseConnection));
        let e = exec(&client, "postgres", "SELECT 1").await.unwrap_err();
        assert!(!matches!(e, SdkError::ServiceError(_)), "{e:?}");
        assert_eq!(s.calls().last().unwrap().outcome, "ConnectionClosed");
    });
}

#[test]
fn dataapi_fault_count_duration_filters_and_after_run() {
    let db = Db::new();
    db.exec("CREATE TABLE t (x int)");
    let s = server();
    let client = s.client();
    block_on(async {
        s.fault(Fault::new(FaultKind::Resuming).times(3));
        for _ in 0..3 {
            let e = exec(&client, &db.name, "SELECT 1").await.unwrap_err();
            assert!(e.as_service_error().unwrap().is_database_resuming_exception());
        }
        exec(&client, &db.name, "SELECT 1").await.unwrap();

        s.fault(Fault::new(FaultKind::Throttling).for_duration(Duration::from_millis(400)));
        let started = Instant::now();
        let mut refused = 0;
        while exec(&client, &db.name, "SELECT 1").await.is_err() {
            refused += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert!(refused >= 3, "{refused}");

        // Filters: only INSERTs, only on Execute.
        s.fault(Fault::new(FaultKind::Internal).sql_contains("INSERT").op("Execute"));
        exec(&client, &db.name, "SELECT 1").await.unwrap();
        let e = exec(&client, &db.name, "INSERT INTO t VALUES (1)").await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_internal_server_error_exception());
        assert_eq!(off(|| db.scalar("SELECT count(*) FROM t")), "0", "the SQL did not run");

        // after_run: the INSERT ran, the caller sees a 504 (an ambiguous outcome).
        s.fault(Fault::new(FaultKind::DatabaseUnavailable).after_run());
        let e = exec(&client, &db.name, "INSERT INTO t VALUES (2)").await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_database_unavailable_exception());
        assert_eq!(off(|| db.scalar("SELECT count(*) FROM t")), "1");

        // StatementTimeout after the statement ran (continueAfterTimeout-style).
        s.fault(Fault::new(FaultKind::StatementTimeout).after_run().sql_contains("CREATE"));
        let e = stmt(&client, &db.name, "CREATE TABLE later (x int)")
            .continue_after_timeout(true)
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_statement_timeout_exception());
        assert!(off(|| db.table_exists("later")));

        // ExpireTransaction ends the transaction for real.
        let tx = begin(&client, &db.name).await;
        exec_tx(&client, &db.name, &tx, "INSERT INTO t VALUES (3)").await.unwrap();
        s.fault(Fault::new(FaultKind::ExpireTransaction).op("CommitTransaction"));
        let e = client
            .commit_transaction()
            .resource_arn(RESOURCE_ARN)
            .secret_arn(SECRET_ARN)
            .transaction_id(&tx)
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_transaction_not_found_exception());
        assert_eq!(e.message(), Some("Transaction may be expired."));
        assert_eq!(off(|| db.scalar("SELECT count(*) FROM t")), "1");

        // A hang does not hold up other requests.
        s.fault(Fault::new(FaultKind::Hang(Duration::from_millis(800))).sql_contains("hang"));
        let started = Instant::now();
        let hung = exec(&client, &db.name, "SELECT 'hang'");
        let other = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let r = exec(&client, &db.name, "SELECT 1").await;
            (r, started.elapsed())
        };
        let (hung, (other, other_done)) = tokio::join!(hung, other);
        other.unwrap();
        assert!(other_done < Duration::from_millis(700), "{other_done:?}");
        assert!(started.elapsed() >= Duration::from_millis(800));
        assert_eq!(status(&hung.unwrap_err()), 500);
    });
}

#[test]
fn dataapi_hang_trips_the_sdk_attempt_timeout() {
    let s = server();
    let client = Client::from_conf(
        s.client_config()
            .timeout_config(
                aws_sdk_rdsdata::config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build(),
    );
    s.fault(Fault::new(FaultKind::Hang(Duration::from_secs(2))));
    block_on(async {
        let started = Instant::now();
        let e = exec(&client, "postgres", "SELECT 1").await.unwrap_err();
        assert!(matches!(e, SdkError::TimeoutError(_)), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    });
}

#[test]
fn dataapi_get_secret_value() {
    let s = server();
    let body = format!(r#"{{"SecretId":"{SECRET_ARN}"}}"#);
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "secretsmanager.GetSecretValue"),
    ];
    let (st, _, text) = s.raw_post("/", &headers, &body);
    assert_eq!(st, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ARN"], SECRET_ARN);
    assert_eq!(v["VersionStages"][0], "AWSCURRENT");
    assert!(v["CreatedDate"].is_number());
    let secret: serde_json::Value = serde_json::from_str(v["SecretString"].as_str().unwrap()).unwrap();
    assert_eq!(secret["username"], "postgres");
    assert_eq!(secret["password"], crate::support::server_password());

    s.set_secret(r#"{"username":"u","password":"p"}"#);
    let (_, _, text) = s.raw_post("/", &headers, r#"{"SecretId":"chat"}"#);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["SecretString"], r#"{"username":"u","password":"p"}"#);

    let (st, hdrs, text) = s.raw_post("/", &headers, r#"{"SecretId":"other"}"#);
    assert_eq!(st, 400);
    assert!(
        hdrs.iter()
            .any(|(k, v)| k == "x-amzn-errortype" && v.starts_with("ResourceNotFoundException")),
        "{hdrs:?}"
    );
    assert!(text.contains("can't find the specified secret"));

    // With the real Secrets Manager client, and a fault on that operation.
    s.fault(Fault::new(FaultKind::Internal).op("GetSecretValue").carrier(Carrier::BodyType));
    block_on(async {
        use aws_sdk_secretsmanager::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(s.endpoint())
            .credentials_provider(Credentials::new("AKIDSM", "SECRET", None, None, "static"))
            .retry_config(RetryConfig::disabled())
            .http_client(http)
            .build();
        let sm = aws_sdk_secretsmanager::Client::from_conf(conf);
        let e = sm.get_secret_value().secret_id(SECRET_ARN).send().await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_internal_service_error(), "{e:?}");
        let out = sm.get_secret_value().secret_id(SECRET_ARN).send().await.unwrap();
        assert_eq!(out.secret_string(), Some(r#"{"username":"u","password":"p"}"#));
        assert!(out.created_date().is_some());
        let e = sm.get_secret_value().secret_id("nope").send().await.unwrap_err();
        assert!(e.as_service_error().unwrap().is_resource_not_found_exception());
    });
    let calls = s.calls_of("GetSecretValue");
    assert_eq!(calls.len(), 6);
    assert_eq!(calls[3].outcome, "InternalServiceError");
    assert_eq!(calls[4].access_key_id.as_deref(), Some("AKIDSM"));
    assert_eq!(calls[0].access_key_id, None);
}
