//! The Data API as other implementations answer it (issue 11, point 3):
//! the contract story (contract.rs) through the real binary once per variant
//! of the test server (dataapi `Options`: SQL errors without the SQLSTATE
//! suffix or as BadRequestException, a missing database as HTTP 500,
//! BadRequestException or DatabaseNotFoundException, `numberOfRecordsUpdated`
//! 0 for INSERT), each on a database of its own and with the same
//! expectations as every backend; the races of concurrent runners in every
//! spelling; then the bad answers one by one: a missing database without
//! `--create-database`, and an `endpoint_url` where no Data API answers.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::backends::DataApi;
use crate::support::cli::{command, spawn};
use crate::support::dataapi::{DataApiServer, MissingDatabase, Options, SqlErrors, RESOURCE_ARN, SECRET_ARN};
use crate::support::*;

/// Writes a config for environment `aurora` (database `db`, the given
/// `endpoint_url`) into `conf` and runs the binary with `args`.
fn run(conf: &Dir, endpoint: &str, db: &str, migrations: Option<&Dir>, args: &[&str]) -> Run {
    let path = write_config(conf, endpoint, db);
    let mut full = vec!["--config", path.to_str().unwrap(), "--env", "aurora"];
    if let Some(m) = migrations {
        full.extend(["--migrations", m.path().to_str().unwrap()]);
    }
    full.extend_from_slice(args);
    run_in(conf.path(), &full, &AWS_ENV)
}

fn write_config(conf: &Dir, endpoint: &str, db: &str) -> std::path::PathBuf {
    conf.write(
        "chatmigrate.toml",
        format!(
            "[environments.aurora]\nbackend = \"rds-data\"\nresource_arn = \"{RESOURCE_ARN}\"\nsecret_arn = \"{SECRET_ARN}\"\n\
             database = \"{db}\"\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\nresume_timeout = \"20s\"\n"
        ),
    )
}

/// Starts `up` in the background with the config `write_config` wrote.
fn spawn_up(conf: &Dir, migrations: &Dir, extra: &[&str]) -> std::process::Child {
    let config = conf.shown("chatmigrate.toml");
    let mut args = vec![
        "--config",
        &config,
        "--env",
        "aurora",
        "--migrations",
        migrations.path().to_str().unwrap(),
        "up",
    ];
    args.extend_from_slice(extra);
    spawn(command(conf.path(), &args, &AWS_ENV))
}

/// A migrations directory holding the shipped chat schema (V1-V4).
fn chat_schema() -> Dir {
    let dir = Dir::new();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for f in std::fs::read_dir(shipped).unwrap() {
        let f = f.unwrap();
        dir.write(f.file_name().to_str().unwrap(), std::fs::read(f.path()).unwrap());
    }
    dir
}

/// The contract story (contract.rs) once per variant, each on a server and
/// a database of its own, with the same expectations as every backend.
/// The default variant (AWS's spelling) is `contract::story_on_the_data_api`.
macro_rules! variants {
    ($($name:ident: $opts:expr;)*) => {
        $(
            #[test]
            fn $name() {
                crate::contract::story(&DataApi($opts));
            }
        )*
    };
}

fn with(f: impl FnOnce(&mut Options)) -> Options {
    let mut o = Options::default();
    f(&mut o);
    o
}

variants! {
    story_sql_errors_without_sqlstate: with(|o| o.sql_errors = SqlErrors::NoSqlState);
    story_sql_errors_as_bad_request: with(|o| o.sql_errors = SqlErrors::BadRequest);
    story_sql_errors_as_bad_request_jdbc: with(|o| o.sql_errors = SqlErrors::BadRequestJdbc);
    story_missing_database_as_http_500: with(|o| o.missing_database = MissingDatabase::Http500);
    story_missing_database_as_bad_request: with(|o| {
        o.sql_errors = SqlErrors::BadRequest;
        o.missing_database = MissingDatabase::BadRequest;
    });
    story_missing_database_as_database_not_found: with(|o| {
        o.sql_errors = SqlErrors::NoSqlState;
        o.missing_database = MissingDatabase::DatabaseNotFound;
    });
    story_insert_counts_zero: with(|o| o.insert_counts_zero = true);
}

/// Two runners at once on a database without chatmigrate's tables: both
/// race to create the lease table (42P07, 42710 or 23505 for the loser, read
/// from the text where the answer has no code), then the lease lets one
/// apply and the other finds nothing left; every migration once, both exit
/// 0, in every spelling.
#[test]
fn two_runners_race_to_create_the_lease_table_in_every_spelling() {
    for spelling in [
        SqlErrors::Aws,
        SqlErrors::NoSqlState,
        SqlErrors::BadRequest,
        SqlErrors::BadRequestJdbc,
    ] {
        let server = DataApiServer::start(&server_url(), with(|o| o.sql_errors = spelling));
        let (conf, dir, db) = (Dir::new(), Dir::new(), Db::new());
        write_config(&conf, &server.endpoint(), &db.name);
        for v in 1..=5 {
            dir.write(
                &format!("V{v}__m{v}.sql"),
                format!("CREATE TABLE m{v} (id int);\nSELECT pg_sleep(0.1);\n"),
            );
        }
        let runs: Vec<Run> = [spawn_up(&conf, &dir, &[]), spawn_up(&conf, &dir, &[])]
            .into_iter()
            .map(finish)
            .collect();
        let mut applied = Vec::new();
        for r in &runs {
            r.assert_ok();
            applied.extend(r.stdout.lines().filter(|l| l.starts_with("applied V")).map(str::to_string));
        }
        applied.sort();
        assert_eq!(applied.len(), 5, "{spelling:?}: V1-V5 once each: {applied:#?}");
        assert_eq!(db.versions(), (1..=5).collect::<Vec<_>>(), "{spelling:?}");
    }
}

/// Runners that create the same new database at once: the losers of the
/// race meet "already exists" (42P04), a unique violation (23505) or a busy
/// template (55006) from CREATE DATABASE, in every spelling, and go on.
#[test]
fn concurrent_create_database_in_every_spelling() {
    for spelling in [
        SqlErrors::Aws,
        SqlErrors::NoSqlState,
        SqlErrors::BadRequest,
        SqlErrors::BadRequestJdbc,
    ] {
        let server = DataApiServer::start(
            &server_url(),
            with(|o| {
                o.sql_errors = spelling;
                o.missing_database = MissingDatabase::Http500;
            }),
        );
        let (conf, dir, name) = (Dir::new(), chat_schema(), Db::fresh_name());
        write_config(&conf, &server.endpoint(), &name);
        let spawn = || spawn_up(&conf, &dir, &["--create-database"]);
        let runs: Vec<Run> = [spawn(), spawn(), spawn()].into_iter().map(finish).collect();
        let db = Db::adopt(&name);
        for r in &runs {
            r.assert_ok();
        }
        assert_eq!(db.versions(), vec![1, 2, 3, 4], "{spelling:?}");
        let creates = server
            .calls_of("Execute")
            .iter()
            .filter(|c| c.sql.as_deref().is_some_and(|s| s.starts_with("CREATE DATABASE")))
            .count();
        eprintln!("{spelling:?}: {creates} CREATE DATABASE call(s) from 3 runners");
    }
}

/// Without `--create-database`, a missing database is said at once in every
/// carrier: exit 2, the hint, one call, no "waiting to resume", nothing
/// created.
#[test]
fn a_missing_database_is_reported_at_once_in_every_carrier() {
    for (label, opts) in [
        ("aws", Options::default()),
        ("no sqlstate", with(|o| o.sql_errors = SqlErrors::NoSqlState)),
        ("bad request", with(|o| o.sql_errors = SqlErrors::BadRequest)),
        ("bad request jdbc", with(|o| o.sql_errors = SqlErrors::BadRequestJdbc)),
        ("http 500", with(|o| o.missing_database = MissingDatabase::Http500)),
        ("bad request", with(|o| o.missing_database = MissingDatabase::BadRequest)),
        (
            "database not found",
            with(|o| o.missing_database = MissingDatabase::DatabaseNotFound),
        ),
    ] {
        let server = DataApiServer::start(&server_url(), opts);
        let (conf, name) = (Dir::new(), Db::fresh_name());
        for cmd in ["up", "baseline"] {
            let start = Instant::now();
            let args: &[&str] = if cmd == "up" { &["up"] } else { &["baseline", "--target", "1"] };
            let r = run(&conf, &server.endpoint(), &name, None, args);
            r.assert_error(&format!("database `{name}` does not exist on rds-data:chat/{name}"));
            assert_eq!(r.hint(), "hint: create it with `chatmigrate up --create-database`", "{label}");
            assert!(!r.stderr.contains("waiting for"), "{label}: {}", r.stderr);
            assert!(start.elapsed() < Duration::from_secs(5), "{label}: {:?}", start.elapsed());
            eprintln!("missing database, {label}: `{cmd}` stopped after {:?}", start.elapsed());
        }
        // status reads a missing database as "everything pending".
        let r = run(&conf, &server.endpoint(), &name, None, &["status"]);
        r.assert_ok();
        assert!(
            r.stdout.starts_with(&format!(
                "database does not exist yet on rds-data:chat/{name}: every migration is pending\n"
            )),
            "{label}: {}",
            r.stdout
        );
        assert_eq!(server.calls().len(), 3, "{label}: one probe per run, no retries");
        let exists = query_url(&server_url(), &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"));
        assert!(exists.is_empty(), "{label}: nothing created");
    }
}

/// A server that answers every request with `status` and an HTML page (a
/// web server or proxy where the Data API was expected). Returns its port.
fn html_server(status: &'static str) -> u16 {
    http_server(status, "text/html", format!("<html><body><h1>{status}</h1></body></html>"))
}

/// An HTTP server answering every request with `status` and this body.
fn http_server(status: &'static str, content_type: &'static str, body: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let body = body.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                while let Ok(n) = s.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0usize);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A wrong `endpoint_url` is a configuration error after a short bounded
/// retry (5 attempts in about a second), naming the key and the URL, with
/// the hint, without a Rust debug dump, and with nothing applied.
#[test]
fn a_wrong_endpoint_url_is_a_configuration_error_within_seconds() {
    let db = Db::new();
    let server = DataApiServer::start(&server_url(), Options::default());
    let plain = server.endpoint();
    let pg_port = server_url().parse::<tokio_postgres::Config>().unwrap().get_ports()[0];
    let refused = format!("http://127.0.0.1:{}", closed_port());
    let not_found = format!("http://127.0.0.1:{}", html_server("404 Not Found"));
    let html_200 = format!("http://127.0.0.1:{}", html_server("200 OK"));
    let empty_json = format!("http://127.0.0.1:{}", http_server("200 OK", "application/json", "{}".into()));
    let bad_gateway = format!("http://127.0.0.1:{}", html_server("502 Bad Gateway"));
    let tls_to_plain = plain.replace("http://", "https://");
    let postgres = format!("http://127.0.0.1:{pg_port}");
    for (url, last) in [
        (&refused, "tcp connect error: Connection refused (os error 111)"),
        (&not_found, "POST /Execute answered HTTP 404 without an AWS error code"),
        (&html_200, "POST /Execute answered HTTP 200 with a body that is not the Data API's"),
        (
            &empty_json,
            "POST /Execute answered without the probe's row (the connect-time probe's answer has no row of its columns)",
        ),
        (&bad_gateway, "POST /Execute answered HTTP 502 without an AWS error code"),
        (
            &tls_to_plain,
            "TLS handshake failed: received corrupt message of type InvalidContentType",
        ),
        (&postgres, "connection closed before message completed"),
    ] {
        let conf = Dir::new();
        let start = Instant::now();
        let r = run(&conf, url, &db.name, None, &["up"]);
        let took = start.elapsed();
        r.assert_error(&format!(
            "endpoint_url {url} does not answer as an RDS Data API (5 attempt(s); last: {last})"
        ));
        assert_eq!(
            r.hint(),
            "hint: check endpoint_url (scheme, host and port of the Data API or its emulator), or remove it to use AWS's regional endpoint https://rds-data.us-east-1.amazonaws.com"
        );
        assert!(took < Duration::from_secs(5), "{url}: {took:?}");
        eprintln!("endpoint_url {url}: stopped after {took:?}");
        for dump in ["DispatchFailure", "ConnectorError", "source:", "Some("] {
            assert!(!r.stderr.contains(dump), "{url}: {}", r.stderr);
        }
        assert!(!db.table_exists("chatmigrate_history"), "{url}: nothing written");
        // JSON: the same line, kind "config".
        let r = run(&conf, url, &db.name, None, &["up", "--format", "json"]);
        assert_eq!(r.code, 2);
        let j: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
        assert_eq!(j["error"]["kind"], "config", "{j}");
    }
    assert!(server.calls().is_empty(), "the TLS attempts never reached the server as requests");
}
