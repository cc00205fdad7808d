//! `chatmigrate lambda` (and the same binary named `bootstrap`): serves the
//! AWS Lambda Runtime API through the `lambda_runtime` crate, one
//! invocation at a time (docs/deploy.md).
//!
//! - A direct invocation (`request.rs`) runs `up`, `status`, `verify` or
//!   `lint` (`invoke.rs`) and answers with the JSON `--format json` prints.
//!   Where the CLI would exit non-zero, the invocation fails instead (a
//!   function error, so a CDK Trigger or a Step Functions task fails):
//!   `errorType` is `chatmigrate.<kind>` (the JSON error kind, or `drift`,
//!   `lint`, `pending` for "found something"), `errorMessage` the error and
//!   its hint. An `up` cut by the deadline fails with
//!   `chatmigrate.incomplete` and what remains.
//! - A CloudFormation custom resource event is handled in
//!   `cloudformation.rs`.
//!
//! The deadline (`deadline.rs`) comes from the invocation; the
//! configuration is resolved for each invocation, as the CLI resolves it
//! (an invocation may name its environment). A panic in an invocation is
//! caught: the invocation fails (CloudFormation: FAILED), the function
//! serves the next one. The Runtime API's init error is posted only when
//! the Lambda environment itself is incomplete; every other problem
//! (a bad config file, a bad margin) is the answer to each invocation, so
//! that CloudFormation always gets one.

mod cloudformation;
mod deadline;
mod http;
mod invoke;
mod request;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

use self::deadline::Deadline;
use self::invoke::InvocationOutcome;
use self::request::{Command, Request};
use crate::cli::{Global, LambdaArgs};
use crate::error::{self, Error, Result};
use crate::value::{self, Origin};

/// The Runtime API's environment; `AWS_LAMBDA_RUNTIME_API` says where it is.
const LAMBDA_ENV: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// What every invocation shares.
struct Handler {
    global: Global,
    /// `--margin`: a bad value is the answer to every invocation.
    margin: std::result::Result<Duration, Error>,
}

/// Serves invocations until Lambda ends the process.
pub async fn serve(g: &Global, a: &LambdaArgs) -> Result<i32> {
    let started = Instant::now();
    let Some(api) = std::env::var("AWS_LAMBDA_RUNTIME_API").ok().filter(|v| !v.is_empty()) else {
        return Err(Error::Usage {
            message: "AWS_LAMBDA_RUNTIME_API is not set: `chatmigrate lambda` serves the AWS Lambda Runtime API, inside AWS Lambda".into(),
            hint: "deploy the binary as `bootstrap` on the provided.al2023 runtime (docs/deploy.md); to migrate from here, run `chatmigrate up`".into(),
        });
    };
    let missing: Vec<&str> = LAMBDA_ENV.iter().copied().filter(|k| std::env::var_os(k).is_none()).collect();
    if !missing.is_empty() {
        let message = format!(
            "the Lambda environment is incomplete: {} not set (AWS Lambda sets them for every function)",
            missing.join(", ")
        );
        init_error(&api, &message).await;
        return Err(Error::Usage {
            message,
            hint: "run the function in AWS Lambda or in the Lambda runtime interface emulator, which set them".into(),
        });
    }
    let margin = match &a.margin {
        None => Ok(deadline::DEFAULT_MARGIN),
        Some(m) => value::duration("CHATMIGRATE_LAMBDA_MARGIN", Origin::EnvVar, m, value::LAMBDA_MARGIN).map_err(Error::from),
    };
    let handler = Arc::new(Handler {
        global: clone_global(g),
        margin,
    });
    eprintln!(
        "chatmigrate {}: serving the Lambda Runtime API at {api} (ready in {} ms)",
        env!("CARGO_PKG_VERSION"),
        started.elapsed().as_millis()
    );
    let service = lambda_runtime::service_fn(move |event: LambdaEvent<Value>| {
        let h = handler.clone();
        async move { h.handle(event).await }
    });
    lambda_runtime::run(service)
        .await
        .map_err(|e| Error::Other(format!("the Lambda Runtime API at {api}: {e}")))?;
    Ok(0)
}

impl Handler {
    /// One invocation, with any panic caught and answered.
    async fn handle(&self, event: LambdaEvent<Value>) -> std::result::Result<Value, Diagnostic> {
        let LambdaEvent { payload, context } = event;
        // A bad margin fails every invocation (but a CloudFormation Delete).
        let (margin, refuse) = match &self.margin {
            Ok(m) => (*m, None),
            Err(e) => (
                deadline::DEFAULT_MARGIN,
                Some(format!("{e}{}", e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default())),
            ),
        };
        let deadline = Deadline::new(context.deadline, margin);
        eprintln!(
            "chatmigrate: invocation {} ({} s before the deadline)",
            context.request_id,
            deadline.remaining.as_secs()
        );
        let event = payload.clone();
        let work = std::panic::AssertUnwindSafe(self.dispatch(payload, &context, deadline, refuse)).catch_unwind();
        match work.await {
            Ok(answer) => answer,
            Err(panic) => {
                let e = error::internal(Some("answering a Lambda invocation".into()), panic.as_ref());
                let message = format!("{e}{}", e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default());
                if let Ok(Request::CloudFormation(map)) = request::classify(event) {
                    return cloudformation::fail(&self.global, &map, &context, deadline, message).await;
                }
                eprintln!("chatmigrate: {message}");
                Err(Diagnostic {
                    error_type: format!("chatmigrate.{}", e.kind()),
                    error_message: message,
                })
            }
        }
    }

    async fn dispatch(
        &self,
        payload: Value,
        context: &lambda_runtime::Context,
        deadline: Deadline,
        refuse: Option<String>,
    ) -> std::result::Result<Value, Diagnostic> {
        // A failpoint for the test of the panic catch (debug builds only).
        #[cfg(debug_assertions)]
        if std::env::var_os("CHATMIGRATE_TEST_PANIC").is_some_and(|v| v == "lambda") {
            panic!("test panic in the Lambda handler");
        }
        let usage = |message: String| {
            eprintln!("chatmigrate: {message}");
            Err(Diagnostic {
                error_type: "chatmigrate.usage".into(),
                error_message: message,
            })
        };
        match request::classify(payload) {
            Err(message) => usage(message),
            Ok(Request::CloudFormation(map)) => cloudformation::handle(&self.global, map, context, deadline, refuse).await,
            Ok(Request::Direct(_)) if refuse.is_some() => usage(refuse.unwrap_or_default()),
            Ok(Request::Direct(inv)) => {
                eprintln!("chatmigrate: {} {}", inv.command.name(), json!({"env": inv.env}));
                let outcome = invoke::run(&self.global, &inv, deadline).await;
                answer(&inv.command, outcome)
            }
        }
    }
}

/// A direct invocation's answer: the JSON, or a function error where the
/// CLI exits non-zero. The JSON is logged either way.
fn answer(command: &Command, outcome: InvocationOutcome) -> std::result::Result<Value, Diagnostic> {
    let fail = |kind: &str, message: String| Diagnostic {
        error_type: format!("chatmigrate.{kind}"),
        error_message: message,
    };
    match outcome {
        InvocationOutcome::Done { json, code: 0, .. } => {
            println!("{json}");
            Ok(json)
        }
        InvocationOutcome::Done { json, .. } => {
            println!("{json}");
            let (kind, message) = found(command, &json);
            Err(fail(kind, message))
        }
        InvocationOutcome::Incomplete(i) => {
            println!("{}", i.json());
            Err(fail("incomplete", format!("{}\nhint: {}", i.message(), i.hint())))
        }
        InvocationOutcome::Failed(e) => {
            // The JSON error object, as `--format json` prints it (a lint
            // refusal with its report), to the log.
            crate::render::error_json(&mut std::io::stdout().lock(), &e);
            let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
            Err(fail(e.kind(), format!("{e}{hint}")))
        }
    }
}

/// What a command that ran and "found something" (exit 1) reports.
fn found(command: &Command, json: &Value) -> (&'static str, String) {
    let findings = |lint: &Value| -> Vec<String> {
        lint["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["level"] == "error")
            .map(|f| {
                format!(
                    "{}:{}:{}: {}",
                    f["path"].as_str().unwrap_or("?"),
                    f["line"],
                    f["column"],
                    f["rule"].as_str().unwrap_or("?")
                )
            })
            .collect()
    };
    match command {
        Command::Status { .. } => {
            let unsettled: Vec<String> = json["migrations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["state"] != "applied")
                .map(|m| {
                    format!(
                        "V{} {} ({})",
                        m["version"],
                        m["name"].as_str().unwrap_or("?"),
                        m["state"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            (
                "pending",
                format!(
                    "{} migration(s) not applied on {}: {}",
                    unsettled.len(),
                    json["target"].as_str().unwrap_or("?"),
                    unsettled.join(", ")
                ),
            )
        }
        Command::Verify => {
            let drift = json["drift"].as_array().map_or(0, Vec::len);
            let lint = findings(&json["lint"]);
            let kind = if drift > 0 { "drift" } else { "lint" };
            let mut message = json["message"].as_str().unwrap_or("verify found problems").to_string();
            if drift > 0 {
                let list: Vec<String> = json["drift"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| format!("V{} {}", d["version"], d["state"].as_str().unwrap_or("?")))
                    .collect();
                message = format!("{message}: {}", list.join(", "));
            }
            if !lint.is_empty() {
                message = format!("{message}; lint errors: {}", lint.join(", "));
            }
            (kind, message)
        }
        _ => {
            let lint = findings(json);
            ("lint", format!("{} lint error(s): {}", lint.len(), lint.join(", ")))
        }
    }
}

/// Posts an init error to the Runtime API (the function cannot serve).
async fn init_error(api: &str, message: &str) {
    let body = json!({"errorType": "chatmigrate.init", "errorMessage": message}).to_string();
    let url = format!("http://{api}/2018-06-01/runtime/init/error");
    let headers = [
        ("content-type", "application/json"),
        ("lambda-runtime-function-error-type", "chatmigrate.init"),
    ];
    if let Err(e) = http::send("POST", &url, &headers, body.into_bytes(), Duration::from_secs(5)).await {
        eprintln!("chatmigrate: could not report the init error: {e}");
    }
}

fn clone_global(g: &Global) -> Global {
    Global {
        env: g.env.clone(),
        database_url: g.database_url.clone(),
        migrations: g.migrations.clone(),
        placeholders: g.placeholders.clone(),
        config: g.config.clone(),
        verbose: g.verbose,
        quiet: g.quiet,
        color: g.color,
        format: g.format,
    }
}
