//! `chatmigrate lambda`: the real binary served by the fake Lambda Runtime
//! API (lambda_runtime_api.rs) as a function, answering CloudFormation at a
//! local endpoint (cfn_endpoint.rs), against the real PostgreSQL directly
//! and through the Data API test server (dataapi/).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::cfn_endpoint::CfnEndpoint;
use crate::support::dataapi::{DataApiServer, Fault, FaultKind, Options, RESOURCE_ARN, SECRET_ARN};
use crate::support::lambda_runtime_api::{Answer, RuntimeApi, FUNCTION_ARN};
use crate::support::*;

/// A running function: the binary serving one Runtime API; killed on drop.
struct Function {
    child: Child,
    logs: tempfile::TempDir,
}

impl Function {
    /// Starts `chatmigrate lambda` in `cwd` with a clean environment, the
    /// variables Lambda sets, and `env`.
    fn start(api: &RuntimeApi, cwd: &Path, env: &[(&str, &str)]) -> Function {
        Function::start_with(api, cwd, env, &["lambda"], env!("CARGO_BIN_EXE_chatmigrate"))
    }

    fn start_with(api: &RuntimeApi, cwd: &Path, env: &[(&str, &str)], args: &[&str], program: &str) -> Function {
        let logs = tempfile::tempdir().unwrap();
        let mut c = Command::new(program);
        c.args(args).current_dir(cwd);
        for k in crate::support::cli::CLEARED_ENV {
            c.env_remove(k);
        }
        c.env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "chatmigrate")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/chatmigrate")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/30/[$LATEST]0123456789abcdef")
            .env("AWS_REGION", "us-east-1")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(logs.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(logs.path().join("stderr")).unwrap());
        Function {
            child: c.spawn().expect("start chatmigrate lambda"),
            logs,
        }
    }

    /// What the function printed (stdout, then stderr): its CloudWatch log.
    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.logs.path().join(f)).unwrap_or_default();
        format!("{}{}", read("stdout"), read("stderr"))
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A function on the direct backend: `DATABASE_URL` and the migrations directory.
fn direct(api: &RuntimeApi, db: &Db, dir: &Dir, extra: &[(&str, &str)]) -> Function {
    let mut env = vec![
        ("DATABASE_URL", db.url.as_str()),
        ("CHATMIGRATE_MIGRATIONS", dir.path().to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    Function::start(api, dir.path(), &env)
}

const MINUTE: Duration = Duration::from_secs(60);

fn two(dir: &Dir) {
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint PRIMARY KEY);\nINSERT INTO a VALUES (1);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id bigint PRIMARY KEY);\n");
}

/// The CLI's `--format json` output for the same command.
fn cli_json(db: &Db, dir: &Dir, args: &[&str]) -> Value {
    let mut full = vec!["--format", "json"];
    full.extend_from_slice(args);
    let r = cm(db, dir, &full);
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {r:#?}"))
}

/// A raw custom resource event (the function's own ARN as ServiceToken).
fn cfn_event(request: &str, url: &str, props: Value, physical: Option<&str>) -> Value {
    let mut e = json!({
        "RequestType": request,
        "ServiceToken": FUNCTION_ARN,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/app/5b2b9b10-aeb4-11ef-9e1f-0a4b6c1e2f3d",
        "RequestId": format!("req-{request}"),
        "LogicalResourceId": "Migrate",
        "ResourceType": "Custom::Chatmigrate",
        "ResourceProperties": props,
    });
    if let Some(p) = physical {
        e["PhysicalResourceId"] = json!(p);
    }
    e
}

#[test]
fn direct_invocations_answer_with_the_cli_json() {
    let (api, db, dir) = (RuntimeApi::start(), Db::new(), Dir::new());
    two(&dir);
    let f = direct(&api, &db, &dir, &[]);
    // A dry run: the statements, nothing applied; the CLI's document.
    let dry = api.invoke(&json!({"command": "up", "dry_run": true}), MINUTE);
    let dry = dry.response();
    assert_eq!(dry["ok"], true, "{dry}");
    assert!(
        dry["dry_run"].to_string().contains("CREATE TABLE a (id bigint PRIMARY KEY)"),
        "{dry}"
    );
    assert!(db.versions().is_empty());
    let cli_dry = cli_json(&db, &dir, &["up", "--dry-run"]);
    assert_eq!(dry["dry_run"], cli_dry["dry_run"]);
    let up = api.invoke(&json!({"command": "up"}), MINUTE);
    let up = up.response();
    assert_eq!(up["ok"], true, "{up}");
    assert_eq!(db.versions(), vec![1, 2]);
    let versions: Vec<i64> = up["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2]);
    // The same document as the CLI's, key for key (durations aside).
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let db2 = Db::new();
    let cli = cli_json(&db2, &dir, &["up"]);
    assert_eq!(keys(up), keys(&cli));
    assert_eq!(keys(&up["applied"][0]), keys(&cli["applied"][0]));
    // status, verify and lint: identical to the CLI's on the same database.
    for (event, args) in [
        (json!({"command": "status"}), vec!["status"]),
        (json!({"command": "verify"}), vec!["verify"]),
        (json!({"command": "lint"}), vec!["lint"]),
        (json!({"command": "lint", "pending": true}), vec!["lint", "--pending"]),
    ] {
        let answer = api.invoke(&event, MINUTE);
        assert_eq!(answer.response(), &cli_json(&db, &dir, &args), "{event}");
    }
    // A second up: nothing to apply.
    let again = api.invoke(&json!({}), MINUTE);
    assert_eq!(again.response()["applied"], json!([]));
    // The log has each event's line and each JSON document.
    let log = f.log();
    assert!(log.contains("applied V1 a ("), "{log}");
    assert!(log.contains(r#"{"applied":[{"#), "{log}");
}

#[test]
fn a_trigger_invocation_runs_up_of_the_chat_schema_and_fails_the_deploy_on_error() {
    let (api, db, dir) = (RuntimeApi::start(), Db::new(), Dir::new());
    let _f = Function::start(&api, dir.path(), &[("DATABASE_URL", db.url.as_str())]);
    // A CDK Trigger invokes with no payload: `{}`.
    let r = api.invoke(&json!({}), MINUTE);
    assert_eq!(r.response()["ok"], true);
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);

    // A failing migration fails the invocation: the Trigger fails the deploy.
    let (api, db, dir) = (RuntimeApi::start(), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint PRIMARY KEY);\n");
    dir.write("V2__bad.sql", "CREATE TABLE b (id bigint PRIMARY KEY);\nSELECT 1/0;\n");
    let _f = direct(&api, &db, &dir, &[]);
    let (kind, message) = api.invoke(&json!({}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.database");
    let file = dir.shown("V2__bad.sql");
    assert!(
        message.starts_with(&format!("{file}:2:1: version 2 failed: division by zero")),
        "{message}"
    );
    assert!(
        message.contains("\nhint: fix the migration and run `chatmigrate up` again"),
        "{message}"
    );
    assert_eq!(db.versions(), vec![1], "V2 was rolled back");
    assert!(!db.table_exists("b"));
}

#[test]
fn commands_that_find_something_fail_the_invocation() {
    let (api, db, dir) = (RuntimeApi::start(), Db::new(), Dir::new());
    two(&dir);
    let _f = direct(&api, &db, &dir, &[]);
    let (kind, message) = api.invoke(&json!({"command": "status", "exit_code": true}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.pending");
    assert!(message.starts_with("2 migration(s) not applied on "), "{message}");
    assert!(message.ends_with(": V1 a (pending), V2 b (pending)"), "{message}");
    api.invoke(&json!({"command": "up", "target": 1}), MINUTE).response();
    assert_eq!(db.versions(), vec![1]);
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint PRIMARY KEY);\n");
    let (kind, message) = api.invoke(&json!({"command": "verify"}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.drift");
    assert_eq!(message, "drift found: V1 changed");
    dir.write("V3__idx.sql", "CREATE INDEX a_idx ON b (id);\n");
    let (kind, message) = api.invoke(&json!({"command": "lint"}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.lint");
    assert!(message.starts_with("1 lint error(s): "), "{message}");
}

#[test]
fn malformed_direct_events_get_an_error_and_the_function_serves_on() {
    let (api, db, dir) = (RuntimeApi::start(), Db::new(), Dir::new());
    two(&dir);
    let _f = direct(&api, &db, &dir, &[]);
    let (kind, message) = api.invoke(&json!({"command": "up", "taget": 2}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.usage");
    assert!(
        message.starts_with("invalid event: unknown field `taget`, expected one of `command`"),
        "{message}"
    );
    let (kind, message) = api.invoke(&json!({"command": "migrate"}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.usage");
    assert_eq!(
        message,
        "invalid event: unknown command `migrate`; expected one of `up`, `status`, `verify`, `lint`"
    );
    let (_, message) = api.invoke(&json!(["up"]), MINUTE).error();
    assert_eq!(
        message,
        "the event must be a JSON object such as {\"command\": \"up\"}, not an array ([\"up\"])"
    );
    let (_, message) = api.invoke(&json!({"command": "status", "target": 1}), MINUTE).error();
    assert_eq!(message, "invalid event: `target` applies to the command `up` only, not `status`");
    let (kind, message) = api.invoke(&json!({"env": "nope"}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.config");
    assert!(
        message.starts_with("environment `nope` is not defined in chatmigrate.toml (not found)"),
        "{message}"
    );
    // Not JSON at all: the runtime's own error, and the function goes on.
    let id = api.queue_raw(b"up please".to_vec(), MINUTE);
    assert!(matches!(api.answer(&id, MINUTE), Answer::Error { .. }));
    assert!(db.versions().is_empty(), "nothing ran");
    api.invoke(&json!({"command": "up"}), MINUTE).response();
    assert_eq!(db.versions(), vec![1, 2]);
}

#[test]
fn cloudformation_create_update_delete() {
    let (api, cfn, db, dir) = (RuntimeApi::start(), CfnEndpoint::start(), Db::new(), Dir::new());
    let mig = Dir::new();
    two(&mig);
    dir.write(
        "chatmigrate.toml",
        format!("[environments.prod]\nmigrations = [\"{}\"]\n", mig.path().display()),
    );
    let f = Function::start(&api, dir.path(), &[("DATABASE_URL", db.url.as_str())]);
    let props = json!({"ServiceToken": FUNCTION_ARN, "Environment": "prod", "Deployed": "2026-11-30T10:00:00Z"});

    // Create: up, SUCCESS with the data.
    let r = api.invoke(&cfn_event("Create", &cfn.url("create"), props.clone(), None), MINUTE);
    let put = cfn.wait("create", Duration::from_secs(5));
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.content_type.as_deref(),
        Some(""),
        "the pre-signed URL is signed without a Content-Type"
    );
    let body = put.json();
    assert_eq!(r.response(), &body, "the invocation answers with what it sent");
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "chatmigrate:prod");
    assert_eq!(
        body["StackId"],
        "arn:aws:cloudformation:us-east-1:123456789012:stack/app/5b2b9b10-aeb4-11ef-9e1f-0a4b6c1e2f3d"
    );
    assert_eq!(body["RequestId"], "req-Create");
    assert_eq!(body["LogicalResourceId"], "Migrate");
    assert_eq!(
        body["Data"],
        json!({"Applied": "2", "Versions": "1,2", "Target": db_target(&db), "Environment": "prod"})
    );
    assert_eq!(db.versions(), vec![1, 2]);

    // Update (a new file, and a property that changes every deploy): the new one only.
    mig.write("V3__c.sql", "CREATE TABLE c (id bigint);\n");
    let mut p2 = props.clone();
    p2["Deployed"] = json!("2026-11-30T11:00:00Z");
    let mut update = cfn_event("Update", &cfn.url("update"), p2, Some("chatmigrate:prod"));
    update["OldResourceProperties"] = props.clone();
    api.invoke(&update, MINUTE).response();
    let body = cfn.wait("update", Duration::from_secs(5)).json();
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "chatmigrate:prod", "stable: no replacement");
    assert_eq!(body["Data"]["Applied"], "1");
    assert_eq!(body["Data"]["Versions"], "3");
    assert_eq!(db.versions(), vec![1, 2, 3]);

    // Delete: SUCCESS without reading the configuration or the database.
    std::fs::write(dir.path().join("chatmigrate.toml"), "this is not TOML [").unwrap();
    api.invoke(&cfn_event("Delete", &cfn.url("delete"), props, Some("chatmigrate:prod")), MINUTE)
        .response();
    let body = cfn.wait("delete", Duration::from_secs(5)).json();
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "chatmigrate:prod");
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert!(
        f.log().contains("chatmigrate: CloudFormation Delete of Migrate (chatmigrate:prod)"),
        "{}",
        f.log()
    );
}

fn db_target(db: &Db) -> String {
    let rest = db.url.split_once("://").unwrap().1;
    let (userinfo, hostpart) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let hostport = hostpart.split('/').next().unwrap();
    format!("{user}@{hostport}/{}", db.name)
}

#[test]
fn cloudformation_failures_answer_failed_with_the_reason() {
    let (api, cfn, db, dir) = (RuntimeApi::start(), CfnEndpoint::start(), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    // An error message of 10,000 characters: the body still fits in 4 KiB.
    dir.write(
        "V2__bad.sql",
        "CREATE TABLE b (id bigint);\nDO $$ BEGIN RAISE EXCEPTION 'too long: %', repeat('x', 10000); END $$;\n",
    );
    let _f = direct(&api, &db, &dir, &[]);
    let started = Instant::now();
    api.invoke(&cfn_event("Create", &cfn.url("c1"), json!({}), None), MINUTE).response();
    let put = cfn.wait("c1", Duration::from_secs(5));
    println!(
        "CloudFormation FAILED on a failing migration: answered in {} ms",
        started.elapsed().as_millis()
    );
    assert!(put.body.len() <= 4096, "{} bytes", put.body.len());
    let body = put.json();
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], "chatmigrate:default");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("{}:2:1: version 2 failed: too long: xxx", dir.shown("V2__bad.sql"))),
        "{reason}"
    );
    assert!(reason.ends_with('…'), "{reason}");
    assert_eq!(db.versions(), vec![1]);

    // A short one keeps its hint and names the log.
    dir.write("V2__bad.sql", "SELECT 1/0;\n");
    api.invoke(&cfn_event("Update", &cfn.url("u1"), json!({}), Some("chatmigrate:default")), MINUTE)
        .response();
    let body = cfn.wait("u1", Duration::from_secs(5)).json();
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.contains("division by zero (SQLSTATE 22012)\nhint: fix the migration and run `chatmigrate up` again"),
        "{reason}"
    );
    assert!(
        reason.ends_with(" (CloudWatch Logs: /aws/lambda/chatmigrate 2026/11/30/[$LATEST]0123456789abcdef)"),
        "{reason}"
    );

    // Malformed events: FAILED where a ResponseURL is given, an error otherwise.
    let mut bad = cfn_event("Upsert", &cfn.url("bad"), json!({}), None);
    api.invoke(&bad, MINUTE).response();
    let body = cfn.wait("bad", Duration::from_secs(5)).json();
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(
        body["Reason"].as_str().unwrap().split(" (CloudWatch").next().unwrap(),
        "invalid CloudFormation event: RequestType `Upsert` is not Create, Update or Delete"
    );
    assert_eq!(body["RequestId"], "req-Upsert");
    bad["RequestType"] = json!("Create");
    bad.as_object_mut().unwrap().remove("ResponseURL");
    let (kind, message) = api.invoke(&bad, MINUTE).error();
    assert_eq!(kind, "chatmigrate.usage");
    assert_eq!(
        message,
        "invalid CloudFormation event: ResponseURL is missing; the event has no ResponseURL to answer CloudFormation"
    );
    let bad_target = cfn_event("Create", &cfn.url("t"), json!({"Target": "twelve"}), None);
    api.invoke(&bad_target, MINUTE).response();
    let body = cfn.wait("t", Duration::from_secs(5)).json();
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid resource property Target `twelve` "),
        "{body}"
    );

    // S3 answers 503 twice: the PUT is retried.
    cfn.fail_next(2);
    api.invoke(&cfn_event("Delete", &cfn.url("d"), json!({}), Some("chatmigrate:default")), MINUTE)
        .response();
    assert_eq!(cfn.wait("d", Duration::from_secs(5)).json()["Status"], "SUCCESS");
}

#[test]
fn a_panic_answers_failed() {
    let (api, cfn, db, dir) = (RuntimeApi::start(), CfnEndpoint::start(), Db::new(), Dir::new());
    two(&dir);
    let _f = direct(&api, &db, &dir, &[("CHATMIGRATE_TEST_PANIC", "lambda")]);
    api.invoke(&cfn_event("Create", &cfn.url("p"), json!({}), None), MINUTE).response();
    let body = cfn.wait("p", Duration::from_secs(5)).json();
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with("internal error while answering a Lambda invocation: test panic in the Lambda handler"),
        "{reason}"
    );
    let (kind, message) = api.invoke(&json!({}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.internal");
    assert!(message.contains("(this is a bug in chatmigrate)"), "{message}");
    assert!(db.versions().is_empty());
}

#[test]
fn the_provider_framework_gets_json_and_waits_for_is_complete() {
    let (api, db, dir) = (RuntimeApi::start(), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    dir.write("V2__slow.sql", "CREATE TABLE slow (id bigint);\nSELECT pg_sleep(3);\n");
    let _f = direct(&api, &db, &dir, &[("CHATMIGRATE_LAMBDA_MARGIN", "500ms")]);
    let provider = |request: &str, props: Value| {
        let mut e = cfn_event(
            request,
            "https://cloudformation-custom-resource-response.example/x?sig",
            props,
            None,
        );
        e["ServiceToken"] = json!("arn:aws:lambda:us-east-1:123456789012:function:app-Provider-framework-onEvent");
        e
    };
    // onEvent without AsyncCompletion: an `up` cut by the deadline fails.
    let (kind, message) = api.invoke(&provider("Create", json!({})), Duration::from_millis(2500)).error();
    assert_eq!(kind, "chatmigrate.incomplete");
    assert!(message.contains("remaining: V2 slow"), "{message}");
    assert!(message.contains("hint: give the Provider an isCompleteHandler"), "{message}");
    assert_eq!(db.versions(), vec![1]);
    assert!(!db.table_exists("slow"), "V2 was rolled back");
    // With AsyncCompletion: IsComplete false, no data.
    let r = api.invoke(&provider("Create", json!({"AsyncCompletion": "true"})), Duration::from_millis(2500));
    assert_eq!(
        r.response(),
        &json!({"PhysicalResourceId": "chatmigrate:default", "IsComplete": false})
    );
    // The isComplete call (the previous answer merged in) with more time: done.
    let mut again = provider("Create", json!({"AsyncCompletion": "true"}));
    again["PhysicalResourceId"] = json!("chatmigrate:default");
    again["IsComplete"] = json!(false);
    let r = api.invoke(&again, MINUTE);
    let r = r.response();
    assert_eq!(r["IsComplete"], true, "{r}");
    assert_eq!(r["Data"]["Versions"], "2");
    assert_eq!(db.versions(), vec![1, 2]);
    // Delete keeps the physical id.
    let mut delete = provider("Delete", json!({}));
    delete["PhysicalResourceId"] = json!("chatmigrate:default");
    assert_eq!(
        api.invoke(&delete, MINUTE).response(),
        &json!({"PhysicalResourceId": "chatmigrate:default", "IsComplete": true})
    );
}

#[test]
fn a_transactional_migration_cut_by_the_deadline_is_rolled_back() {
    let (api, cfn, db, dir) = (RuntimeApi::start(), CfnEndpoint::start(), Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    dir.write("V2__slow.sql", "CREATE TABLE slow (id bigint);\nSELECT pg_sleep(4);\n");
    dir.write("V3__c.sql", "CREATE TABLE c (id bigint);\n");
    let _f = direct(&api, &db, &dir, &[("CHATMIGRATE_LAMBDA_MARGIN", "1s")]);
    let started = Instant::now();
    let r = api.invoke(&json!({"command": "up"}), Duration::from_secs(3));
    let answered = started.elapsed();
    assert!(answered < Duration::from_secs(3), "answered after the deadline: {answered:?}");
    let (kind, message) = r.error();
    assert_eq!(kind, "chatmigrate.incomplete");
    assert!(
        message.starts_with("incomplete: stopped at the invocation's deadline on "),
        "{message}"
    );
    assert!(
        message.contains(
            ": 1 applied in this invocation; V2 slow was rolled back; 1 later migration(s) not started; remaining: V2 slow, V3 c"
        ),
        "{message}"
    );
    assert_eq!(db.versions(), vec![1]);
    assert!(!db.table_exists("slow"));
    // A raw custom resource cannot wait: FAILED, with what remains.
    api.invoke(
        &cfn_event("Update", &cfn.url("u"), json!({}), Some("chatmigrate:default")),
        Duration::from_secs(3),
    )
    .response();
    let body = cfn.wait("u", Duration::from_secs(5)).json();
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("remaining: V2 slow, V3 c\nhint: a resource answered by the function itself cannot wait"),
        "{body}"
    );
    // The next invocation with time enough finishes.
    api.invoke(&json!({"command": "up"}), MINUTE).response();
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

/// A Data API server and a config pointing the function at it.
struct Aurora {
    server: DataApiServer,
    conf: Dir,
}

impl Aurora {
    fn start() -> Aurora {
        Aurora::start_with(Options::default(), "")
    }

    /// With these server options and more keys for the environment.
    fn start_with(options: Options, more: &str) -> Aurora {
        let a = Aurora {
            server: DataApiServer::start(&server_url(), options),
            conf: Dir::new(),
        };
        // Only the endpoint and region in the file; the rest from the
        // variables a Lambda function is given.
        a.conf.write(
            "chatmigrate.toml",
            format!(
                "[environments.aurora]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\nresume_timeout = \"20s\"\n{more}",
                a.server.endpoint()
            ),
        );
        a
    }

    fn function(&self, api: &RuntimeApi, db: &str, migrations: Option<&Dir>, extra: &[(&str, &str)]) -> Function {
        let mut env = vec![
            ("CHATMIGRATE_ENV", "aurora"),
            ("CHATMIGRATE_RESOURCE_ARN", RESOURCE_ARN),
            ("CHATMIGRATE_SECRET_ARN", SECRET_ARN),
            ("CHATMIGRATE_DATABASE", db),
        ];
        if let Some(m) = migrations {
            env.push(("CHATMIGRATE_MIGRATIONS", m.path().to_str().unwrap()));
        }
        env.extend_from_slice(&AWS_ENV);
        env.extend_from_slice(extra);
        Function::start(api, self.conf.path(), &env)
    }

    /// How many statements starting with `start` were executed (the
    /// catalog probes that quote one do not count).
    fn sent(&self, start: &str) -> usize {
        self.server
            .calls_of("Execute")
            .iter()
            .filter(|c| c.sql.as_deref().is_some_and(|s| s.trim_start().starts_with(start)))
            .count()
    }
}

#[test]
fn a_long_build_left_running_at_the_deadline_is_awaited_by_the_next_invocation() {
    let (api, aurora, db, dir) = (RuntimeApi::start(), Aurora::start(), Db::new(), Dir::new());
    // Each row's key takes 0.75 s: the build takes about 3 s.
    dir.write(
        "V1__t.sql",
        "CREATE TABLE t (x int);\nINSERT INTO t SELECT generate_series(1, 4);\n\
         CREATE FUNCTION slow_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM pg_sleep(0.75); RETURN i; END $$;\n",
    );
    dir.write(
        "V2__build.sql",
        "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_slow ON t (slow_key(x));\n",
    );
    dir.write("V3__after.sql", "CREATE TABLE after_build (id bigint);\n");
    let f = aurora.function(&api, &db.name, Some(&dir), &[("CHATMIGRATE_LAMBDA_MARGIN", "1s")]);
    let started = Instant::now();
    let r = api.invoke(&json!({"command": "up"}), Duration::from_millis(3000));
    assert!(started.elapsed() < Duration::from_millis(3000), "answered after the deadline");
    let (kind, message) = r.error();
    assert_eq!(kind, "chatmigrate.incomplete", "{message}");
    assert!(message.contains("V2 build stopped after statement 0 of 1 (recorded as partial; `up` resumes it); 1 later migration(s) not started; remaining: V2 build, V3 after"), "{message}");
    assert_eq!(db.history(), vec![(1, "applied".into(), 3), (2, "partial".into(), 0)]);
    // The build goes on on the server.
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND state = 'active'"),
        "1"
    );
    // The next invocation waits for it, never sends it again, and finishes.
    let r = api.invoke(&json!({"command": "up"}), MINUTE);
    let r = r.response();
    let versions: Vec<i64> = r["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 3], "{r}");
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert_eq!(aurora.sent("CREATE INDEX CONCURRENTLY"), 1, "built once: {}", f.log());
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_slow'::regclass"),
        "t"
    );
}

/// A Data API transaction whose statement outlives the answer is abandoned:
/// never committed (the Data API rolls it back when idle), and its lease
/// is no longer renewed, so the next invocation in the same warm process
/// takes the lock once the lease expires and applies the migration.
#[test]
fn an_abandoned_data_api_transaction_leaves_no_lease_behind_in_a_warm_function() {
    let options = Options {
        transaction_idle_timeout: Duration::from_secs(2),
        ..Options::default()
    };
    let (api, db, dir) = (RuntimeApi::start(), Db::new(), Dir::new());
    let aurora = Aurora::start_with(options, "lease_ttl = \"2s\"\nlock_wait = \"20s\"\n");
    dir.write("V1__a.sql", "CREATE TABLE a (id bigint);\n");
    dir.write("V2__slow.sql", "CREATE TABLE slow (id bigint);\nSELECT pg_sleep(4);\n");
    let f = aurora.function(&api, &db.name, Some(&dir), &[("CHATMIGRATE_LAMBDA_MARGIN", "1s")]);
    let started = Instant::now();
    let (kind, message) = api.invoke(&json!({"command": "up"}), Duration::from_secs(3)).error();
    assert!(started.elapsed() < Duration::from_secs(3), "answered after the deadline");
    assert_eq!(kind, "chatmigrate.incomplete", "{message}");
    assert!(
        message.contains("; V2 slow was still running (a transaction not committed is rolled back by the server); remaining: V2 slow"),
        "{message}"
    );
    assert_eq!(db.versions(), vec![1]);
    // The same process, the next invocation: the lease expires, the
    // abandoned transaction is rolled back, V2 runs once more and commits.
    let r = api.invoke(&json!({"command": "up"}), MINUTE);
    let r = r.response();
    assert_eq!(r["applied"][0]["version"], 2, "{r}\n{}", f.log());
    assert_eq!(db.versions(), vec![1, 2]);
    assert!(db.table_exists("slow"));
}

#[test]
fn aurora_resuming_during_the_invocation_is_ridden_out() {
    let (api, aurora, db, dir) = (RuntimeApi::start(), Aurora::start(), Db::new(), Dir::new());
    two(&dir);
    // Resuming for 3 s: longer than the second after which a wait is shown.
    aurora
        .server
        .fault(Fault::new(FaultKind::Resuming).for_duration(Duration::from_secs(3)));
    let f = aurora.function(&api, &db.name, Some(&dir), &[]);
    let r = api.invoke(&json!({"command": "up"}), MINUTE);
    assert_eq!(r.response()["ok"], true);
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(db.scalar("SELECT count(*) FROM a"), "1", "V1 ran once");
    assert!(aurora.server.calls().iter().any(|c| c.outcome == "DatabaseResumingException"));
    assert!(f.log().contains("waiting for Aurora to resume: "), "{}", f.log());
}

#[test]
fn cloudformation_create_through_the_data_api_rides_out_a_resume() {
    let (api, cfn, aurora, db, dir) = (RuntimeApi::start(), CfnEndpoint::start(), Aurora::start(), Db::new(), Dir::new());
    two(&dir);
    // The cluster is paused: the first 3 s of calls answer DatabaseResumingException.
    aurora
        .server
        .fault(Fault::new(FaultKind::Resuming).for_duration(Duration::from_secs(3)));
    let f = aurora.function(&api, &db.name, Some(&dir), &[]);
    let started = Instant::now();
    api.invoke(
        &cfn_event("Create", &cfn.url("create"), json!({"Environment": "aurora"}), None),
        MINUTE,
    )
    .response();
    let body = cfn.wait("create", Duration::from_secs(5)).json();
    println!(
        "CloudFormation Create through the Data API with a 3 s resume: answered in {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(body["Status"], "SUCCESS", "{body}\n{}", f.log());
    assert_eq!(body["PhysicalResourceId"], "chatmigrate:aurora");
    assert_eq!(body["Data"]["Versions"], "1,2");
    assert_eq!(body["Data"]["Target"], format!("rds-data:chat/{}", db.name));
    assert_eq!(db.versions(), vec![1, 2]);
    assert_eq!(db.scalar("SELECT count(*) FROM a"), "1", "V1 ran once");
    assert!(f.log().contains("waiting for Aurora to resume: "), "{}", f.log());
}

#[test]
fn cloudformation_gets_failed_before_the_deadline_when_aurora_never_resumes() {
    let (api, cfn, aurora, db, dir) = (RuntimeApi::start(), CfnEndpoint::start(), Aurora::start(), Db::new(), Dir::new());
    two(&dir);
    aurora
        .server
        .fault(Fault::new(FaultKind::Resuming).for_duration(Duration::from_secs(600)));
    let _f = aurora.function(&api, &db.name, Some(&dir), &[]);
    let started = Instant::now();
    let time = Duration::from_secs(5);
    api.invoke(&cfn_event("Create", &cfn.url("c"), json!({}), None), time).response();
    let put = cfn.wait("c", Duration::from_secs(1));
    let answered = started.elapsed();
    println!(
        "CloudFormation FAILED while Aurora never resumes, 5 s invocation: answered after {} ms",
        answered.as_millis()
    );
    assert!(answered < time, "answered after the deadline: {answered:?}");
    let body = put.json();
    assert_eq!(body["Status"], "FAILED");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "incomplete: stopped at the invocation's deadline on rds-data:chat/{}: 0 applied in this invocation; it was still waiting for ",
            db.name
        )),
        "{reason}"
    );
    assert!(
        reason.contains("\nhint: a resource answered by the function itself cannot wait"),
        "{reason}"
    );
    assert!(db.versions().is_empty());
}

#[test]
fn data_api_calls_for_the_chat_schema_equal_the_cli_s() {
    // The CLI, on a database of its own.
    let cli = Aurora::start();
    let name = Db::fresh_name();
    let conf = cli.conf.path().join("chatmigrate.toml");
    let mut env: Vec<(&str, &str)> = vec![
        ("CHATMIGRATE_RESOURCE_ARN", RESOURCE_ARN),
        ("CHATMIGRATE_SECRET_ARN", SECRET_ARN),
        ("CHATMIGRATE_DATABASE", &name),
    ];
    env.extend_from_slice(&AWS_ENV);
    run_in(
        cli.conf.path(),
        &["--config", conf.to_str().unwrap(), "--env", "aurora", "up", "--create-database"],
        &env,
    )
    .assert_ok();
    let _cli_db = Db::adopt(&name);
    // The handler, on another.
    let (api, lambda) = (RuntimeApi::start(), Aurora::start());
    let name2 = Db::fresh_name();
    let _f = lambda.function(&api, &name2, None, &[]);
    api.invoke(&json!({"command": "up", "create_database": true}), MINUTE).response();
    let db2 = Db::adopt(&name2);
    assert_eq!(db2.versions(), vec![1, 2, 3, 4]);
    let ops = |s: &DataApiServer| s.calls().iter().map(|c| c.op.clone()).collect::<Vec<_>>();
    assert_eq!(ops(&lambda.server), ops(&cli.server));
    println!(
        "Data API calls for the chat schema: CLI {}, Lambda handler {}",
        cli.server.calls().len(),
        lambda.server.calls().len()
    );
    assert_eq!(lambda.server.calls().len(), 34);
}

#[test]
fn init_errors_and_starting_outside_lambda() {
    // The Lambda environment without its function variables: an init error.
    let api = RuntimeApi::start();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chatmigrate"))
        .arg("lambda")
        .current_dir(tmp.path())
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (kind, body) = api.init_error(Duration::from_secs(5)).expect("an init error");
    assert_eq!(kind, "chatmigrate.init");
    assert_eq!(
        body["errorMessage"],
        "the Lambda environment is incomplete: AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_VERSION not set (AWS Lambda sets them for every function)"
    );
    // Outside Lambda: a usage error, also as `bootstrap`.
    let bootstrap = tmp.path().join("bootstrap");
    std::fs::copy(env!("CARGO_BIN_EXE_chatmigrate"), &bootstrap).unwrap();
    for (program, args) in [
        (env!("CARGO_BIN_EXE_chatmigrate"), vec!["lambda"]),
        (bootstrap.to_str().unwrap(), vec![]),
    ] {
        let out = Command::new(program)
            .args(&args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: AWS_LAMBDA_RUNTIME_API is not set: `chatmigrate lambda` serves the AWS Lambda Runtime API, inside AWS Lambda\nhint: deploy the binary as `bootstrap`"),
            "{stderr}"
        );
    }
    // `bootstrap` in Lambda serves, and a bad margin fails each invocation.
    let api = RuntimeApi::start();
    let db = Db::new();
    let _f = Function::start_with(
        &api,
        tmp.path(),
        &[("DATABASE_URL", db.url.as_str()), ("CHATMIGRATE_LAMBDA_MARGIN", "20min")],
        &[],
        bootstrap.to_str().unwrap(),
    );
    let (kind, message) = api.invoke(&json!({}), MINUTE).error();
    assert_eq!(kind, "chatmigrate.usage");
    assert!(
        message.starts_with("CHATMIGRATE_LAMBDA_MARGIN `20min` is out of range (0s to 15min)"),
        "{message}"
    );
    assert!(db.versions().is_empty());
    // Any name, no arguments, inside Lambda (a container image's entry point): it serves.
    let api = RuntimeApi::start();
    let _f = Function::start_with(
        &api,
        tmp.path(),
        &[("DATABASE_URL", db.url.as_str())],
        &[],
        env!("CARGO_BIN_EXE_chatmigrate"),
    );
    assert_eq!(api.invoke(&json!({}), MINUTE).response()["ok"], true);
    assert_eq!(db.versions(), vec![1, 2, 3, 4]);
}

/// The time from starting the function until it asks for its first
/// invocation. `CHATMIGRATE_TEST_BOOTSTRAP=target/lambda/x86_64/bootstrap`
/// measures the packaged release binary instead of the test build.
#[test]
fn cold_start_until_the_first_next_request() {
    let api = RuntimeApi::start();
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = std::env::var("CHATMIGRATE_TEST_BOOTSTRAP").ok();
    let started = Instant::now();
    let _f = match &bootstrap {
        Some(b) => Function::start_with(&api, tmp.path(), &[], &[], b),
        None => Function::start(&api, tmp.path(), &[]),
    };
    let first = api
        .first_next(Duration::from_secs(10))
        .expect("the function asks for an invocation");
    let cold = first.duration_since(started);
    println!(
        "cold start until the first /next ({}): {} ms",
        bootstrap.as_deref().unwrap_or("test build"),
        cold.as_millis()
    );
    assert!(cold < Duration::from_secs(1), "{cold:?}");
}
