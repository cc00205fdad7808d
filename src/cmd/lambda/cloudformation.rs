//! CloudFormation custom resource events (docs/deploy.md).
//!
//! `Create` and `Update` run `up`; `Delete` answers SUCCESS at once and never
//! touches the database (nor reads the configuration). Two ways to be
//! called:
//!
//! - **raw**: the resource's `ServiceToken` is this function's ARN. The
//!   function answers CloudFormation itself with a PUT to the pre-signed
//!   `ResponseURL`: `Status`, `PhysicalResourceId` (`chatmigrate:<env>`,
//!   stable per environment), `Reason` (the error and its hint; the whole
//!   body is kept under CloudFormation's 4 KiB) and `Data` (`Applied`,
//!   `Versions`, `Target`, `Environment`). Every failure answers FAILED,
//!   including a malformed event and a panic, and a run cut by the
//!   invocation's deadline too: a raw resource cannot wait for a second
//!   invocation.
//! - **CDK Provider framework** (`ServiceToken` is the framework's): the
//!   function returns `{PhysicalResourceId, Data, IsComplete}` and fails
//!   with a function error; the framework answers CloudFormation. With the
//!   same function as `isCompleteHandler` and the resource property
//!   `AsyncCompletion: "true"`, a run cut by the deadline returns
//!   `IsComplete: false` and the framework invokes it again until `up` has
//!   reached its target (an isComplete call carries the `IsComplete` key
//!   of the previous answer).
//!
//! Resource properties read: `Environment`, `Target`, `CreateDatabase`,
//! `AllowOutOfOrder`, `AsyncCompletion`; any other (a value that changes
//! on every deploy, say) is ignored.

use std::time::{Duration, Instant};

use lambda_runtime::{Context, Diagnostic};
use serde_json::{json, Map, Value};

use super::deadline::Deadline;
use super::http;
use super::invoke::{self, InvocationOutcome};
use super::request::{Command, Invocation};
use crate::cli::Global;
use crate::value::{self, Origin};

/// CloudFormation refuses a response body larger than this.
pub const RESPONSE_LIMIT: usize = 4096;

/// A custom resource event, checked.
#[derive(Debug, Clone)]
struct ResourceEvent {
    request_type: String,
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_id: String,
    physical_id: Option<String>,
    props: Map<String, Value>,
    /// The previous answer's `IsComplete`, when the Provider framework
    /// calls this function as its isComplete handler.
    is_complete: Option<bool>,
}

/// Handles one custom resource event. The `Ok` value is the invocation's
/// answer (raw: the body sent to CloudFormation). `refuse`: a problem of
/// the function itself that fails every request but Delete.
pub async fn handle(
    g: &Global,
    map: Map<String, Value>,
    ctx: &Context,
    deadline: Deadline,
    refuse: Option<String>,
) -> Result<Value, Diagnostic> {
    let event = match parse(&map) {
        Ok(e) => e,
        Err(problem) => return fail(g, &map, ctx, deadline, format!("invalid CloudFormation event: {problem}")).await,
    };
    let provider = is_provider(&map, ctx);
    if let Some(message) = refuse.filter(|_| event.request_type != "Delete") {
        return fail(g, &map, ctx, deadline, message).await;
    }
    eprintln!(
        "chatmigrate: CloudFormation {} of {} ({}) in {}{}",
        event.request_type,
        event.logical_id,
        event.physical_id.as_deref().unwrap_or("new"),
        event.stack_id,
        if provider { ", through the CDK Provider framework" } else { "" }
    );
    let answer = answer(g, &event, provider, deadline).await;
    if provider {
        return answer.map(|r| r.provider_json(&event));
    }
    let body = match answer {
        Ok(r) => r,
        Err(d) => Response::failed(&event, physical_id(g, env_prop(&event).ok().flatten()), &d.error_message, ctx),
    };
    put(&event.response_url, body, ctx, deadline).await
}

/// Fails the request whatever it is (a malformed event, a panic): FAILED
/// to the `ResponseURL` when the event has a usable one, else (and for the
/// Provider framework) a function error.
pub async fn fail(g: &Global, map: &Map<String, Value>, ctx: &Context, deadline: Deadline, reason: String) -> Result<Value, Diagnostic> {
    let str_of = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
    eprintln!("chatmigrate: {reason}");
    if is_provider(map, ctx) {
        return Err(diagnostic("usage", reason));
    }
    // Answer if the event says where: a stack must never wait an hour.
    let Some(url) = str_of("ResponseURL").filter(|u| u.starts_with("https://") || u.starts_with("http://")) else {
        return Err(diagnostic(
            "usage",
            format!("{reason}; the event has no ResponseURL to answer CloudFormation"),
        ));
    };
    let event = ResourceEvent {
        request_type: str_of("RequestType").unwrap_or_default(),
        response_url: url.clone(),
        stack_id: str_of("StackId").unwrap_or_default(),
        request_id: str_of("RequestId").unwrap_or_default(),
        logical_id: str_of("LogicalResourceId").unwrap_or_default(),
        physical_id: str_of("PhysicalResourceId"),
        props: Map::new(),
        is_complete: None,
    };
    let env = map
        .get("ResourceProperties")
        .and_then(|p| p.get("Environment"))
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    let body = Response::failed(&event, physical_id(g, env), &reason, ctx);
    put(&url, body, ctx, deadline).await
}

/// Called by the CDK Provider framework: the `ServiceToken` is another function's.
fn is_provider(map: &Map<String, Value>, ctx: &Context) -> bool {
    map.get("ServiceToken")
        .and_then(Value::as_str)
        .is_some_and(|t| !same_function(t, &ctx.invoked_function_arn))
}

/// The outcome of an event as a response (`Err`: a failure, with the
/// message CloudFormation shows).
async fn answer(g: &Global, e: &ResourceEvent, provider: bool, deadline: Deadline) -> Result<Response, Diagnostic> {
    let bad = |m: String| diagnostic("usage", format!("invalid resource property {m}"));
    let env = env_prop(e).map_err(bad)?;
    let id = physical_id(g, env.clone());
    if e.request_type == "Delete" {
        // The migrations stay: deleting the resource (or rolling back its
        // creation) never touches the database.
        return Ok(Response::success(
            e,
            e.physical_id.clone().unwrap_or(id),
            "deleted the resource; the database is left as it is".into(),
            Map::new(),
        ));
    }
    if e.is_complete == Some(true) {
        // The Provider framework's isComplete call after an onEvent that
        // finished: nothing left to do.
        return Ok(Response::success(e, id, String::new(), Map::new()));
    }
    let flag = |k: &str| -> Result<bool, Diagnostic> {
        match e.props.get(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
            Some(other) => Err(bad(format!("{k} = {other}: expected \"true\" or \"false\""))),
        }
    };
    let target = match e.props.get("Target") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(value::count("Target", Origin::ConfigKey, s, value::VERSION).map_err(|i| bad(i.to_string()))?),
        Some(Value::Number(n)) => {
            let text = n.to_string();
            Some(value::count("Target", Origin::ConfigKey, &text, value::VERSION).map_err(|i| bad(i.to_string()))?)
        }
        Some(other) => return Err(bad(format!("Target = {other}: expected a version number"))),
    };
    let inv = Invocation {
        command: Command::Up { target, dry_run: false },
        env: env.clone(),
        lock_wait: None,
        create_database: flag("CreateDatabase")?,
        allow_out_of_order: flag("AllowOutOfOrder")?,
    };
    let can_wait = provider && (flag("AsyncCompletion")? || e.is_complete.is_some());
    match invoke::run(g, &inv, deadline).await {
        InvocationOutcome::Done { up, .. } => {
            let report = up.unwrap_or_default();
            let versions: Vec<String> = report.applied.iter().map(|a| a.version.to_string()).collect();
            let mut data = Map::new();
            data.insert("Applied".into(), json!(report.applied.len().to_string()));
            data.insert("Versions".into(), json!(versions.join(",")));
            data.insert("Target".into(), json!(report.target));
            data.insert("Environment".into(), json!(env.clone().unwrap_or_default()));
            let reason = match versions.len() {
                0 => format!("nothing to apply: {} is up to date", report.target),
                n => format!("applied {n} migration(s) to {}", report.target),
            };
            Ok(Response::success(e, id, reason, data))
        }
        InvocationOutcome::Incomplete(i) if can_wait => {
            eprintln!("chatmigrate: {}", i.json());
            Ok(Response::incomplete(e, id))
        }
        InvocationOutcome::Incomplete(i) => {
            eprintln!("chatmigrate: {}", i.json());
            let wait = if provider {
                "give the Provider an isCompleteHandler (this function) and the property AsyncCompletion: \"true\" (docs/deploy.md)"
            } else {
                "a resource answered by the function itself cannot wait: use the CDK Provider framework with isCompleteHandler (docs/deploy.md), or deploy again"
            };
            Err(diagnostic("incomplete", format!("{}\nhint: {wait}", i.message())))
        }
        InvocationOutcome::Failed(err) => {
            eprintln!(
                "chatmigrate: {}",
                json!({"ok": false, "error": {"kind": err.kind(), "message": err.to_string(), "hint": err.hint()}})
            );
            let hint = err.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
            Err(diagnostic(err.kind(), format!("{err}{hint}")))
        }
    }
}

fn env_prop(e: &ResourceEvent) -> Result<Option<String>, String> {
    match e.props.get("Environment") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("Environment = {other}: expected an environment name")),
    }
}

/// `chatmigrate:<environment>`: stable for an environment, whatever its
/// database, so an Update never replaces the resource.
fn physical_id(g: &Global, env: Option<String>) -> String {
    let env = env
        .or_else(|| g.env.clone())
        .or_else(|| std::env::var("CHATMIGRATE_ENV").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "default".into());
    format!("chatmigrate:{env}")
}

/// The same function, whatever the qualifier (`:alias`, `:version`) of either ARN.
fn same_function(a: &str, b: &str) -> bool {
    let base = |arn: &str| arn.split(':').take(7).collect::<Vec<_>>().join(":");
    !a.is_empty() && base(a) == base(b)
}

fn parse(map: &Map<String, Value>) -> Result<ResourceEvent, String> {
    let text = |k: &str| -> Result<String, String> {
        match map.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(other) => Err(format!("{k} must be a non-empty string, not {other}")),
            None => Err(format!("{k} is missing")),
        }
    };
    let request_type = text("RequestType")?;
    if !matches!(request_type.as_str(), "Create" | "Update" | "Delete") {
        return Err(format!("RequestType `{request_type}` is not Create, Update or Delete"));
    }
    let response_url = text("ResponseURL")?;
    if !(response_url.starts_with("https://") || response_url.starts_with("http://")) {
        return Err(format!("ResponseURL `{}` is not an http(s) URL", http::redact(&response_url)));
    }
    let physical_id = match map.get("PhysicalResourceId") {
        None if request_type == "Create" => None,
        _ if request_type == "Create" => map.get("PhysicalResourceId").and_then(Value::as_str).map(str::to_string),
        _ => Some(text("PhysicalResourceId")?),
    };
    let props = match map.get("ResourceProperties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(format!("ResourceProperties must be an object, not {other}")),
    };
    Ok(ResourceEvent {
        request_type,
        response_url,
        stack_id: text("StackId")?,
        request_id: text("RequestId")?,
        logical_id: text("LogicalResourceId")?,
        physical_id,
        props,
        is_complete: map.get("IsComplete").and_then(Value::as_bool),
    })
}

fn diagnostic(kind: &str, message: String) -> Diagnostic {
    Diagnostic {
        error_type: format!("chatmigrate.{kind}"),
        error_message: message,
    }
}

/// What goes back to CloudFormation.
#[derive(Debug, Clone)]
struct Response {
    status: &'static str,
    reason: String,
    physical_id: String,
    stack_id: String,
    request_id: String,
    logical_id: String,
    data: Map<String, Value>,
}

impl Response {
    fn success(e: &ResourceEvent, physical_id: String, reason: String, data: Map<String, Value>) -> Response {
        Response {
            status: "SUCCESS",
            reason,
            physical_id,
            stack_id: e.stack_id.clone(),
            request_id: e.request_id.clone(),
            logical_id: e.logical_id.clone(),
            data,
        }
    }

    /// Provider framework only: not done yet, the framework asks again.
    fn incomplete(e: &ResourceEvent, physical_id: String) -> Response {
        Response {
            status: "IN_PROGRESS",
            ..Response::success(e, physical_id, String::new(), Map::new())
        }
    }

    fn failed(e: &ResourceEvent, physical_id: String, message: &str, ctx: &Context) -> Response {
        let logs = &ctx.env_config;
        let see = if logs.log_group.is_empty() {
            String::new()
        } else {
            format!(" (CloudWatch Logs: {} {})", logs.log_group, logs.log_stream)
        };
        Response {
            status: "FAILED",
            reason: format!("{message}{see}"),
            physical_id: e.physical_id.clone().unwrap_or(physical_id),
            ..Response::success(e, String::new(), String::new(), Map::new())
        }
    }

    /// The answer to the Provider framework.
    fn provider_json(&self, e: &ResourceEvent) -> Value {
        let mut v = json!({
            "PhysicalResourceId": self.physical_id,
            "IsComplete": self.status == "SUCCESS",
        });
        if e.request_type == "Delete" {
            v["PhysicalResourceId"] = json!(e.physical_id.clone().unwrap_or_else(|| self.physical_id.clone()));
        }
        if self.status == "SUCCESS" && !self.data.is_empty() {
            v["Data"] = Value::Object(self.data.clone());
        }
        v
    }

    fn json(&self) -> Value {
        json!({
            "Status": self.status,
            "Reason": self.reason,
            "PhysicalResourceId": self.physical_id,
            "StackId": self.stack_id,
            "RequestId": self.request_id,
            "LogicalResourceId": self.logical_id,
            "NoEcho": false,
            "Data": self.data,
        })
    }

    /// The body, under [`RESPONSE_LIMIT`]: a long `Versions` list is
    /// shortened first, then the reason is cut (ending in `…`).
    fn body(&self) -> Vec<u8> {
        let mut r = self.clone();
        let mut body = serde_json::to_vec(&r.json()).unwrap_or_default();
        if body.len() > RESPONSE_LIMIT {
            if let Some(Value::String(v)) = r.data.get("Versions").cloned() {
                let all: Vec<&str> = v.split(',').collect();
                if all.len() > 2 {
                    let short = format!("{}..{} ({} versions)", all[0], all[all.len() - 1], all.len());
                    r.data.insert("Versions".into(), json!(short));
                    body = serde_json::to_vec(&r.json()).unwrap_or_default();
                }
            }
        }
        while body.len() > RESPONSE_LIMIT && !r.reason.is_empty() {
            let excess = body.len() - RESPONSE_LIMIT;
            let keep = r.reason.chars().count().saturating_sub(excess.max(8) + 1);
            r.reason = format!("{}…", r.reason.chars().take(keep).collect::<String>());
            body = serde_json::to_vec(&r.json()).unwrap_or_default();
        }
        body
    }
}

/// PUTs the response to the pre-signed URL (an empty Content-Type, as the
/// URL is signed without one), retrying a failed attempt until the answer
/// is due; the invocation fails when CloudFormation could not be told.
async fn put(url: &str, r: Response, ctx: &Context, deadline: Deadline) -> Result<Value, Diagnostic> {
    let body = r.body();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    eprintln!("chatmigrate: answering CloudFormation at {}: {json}", http::redact(url));
    let last_call = deadline.answer_by.max(Instant::now()) + Duration::from_millis(800);
    let mut wait = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let left = last_call.saturating_duration_since(Instant::now()).max(Duration::from_secs(2));
        let sent = http::send("PUT", url, &[("content-type", "")], body.clone(), left.min(Duration::from_secs(10))).await;
        let problem = match sent {
            Ok((status, _)) if (200..300).contains(&status) => return Ok(json),
            Ok((status, text)) => format!("HTTP {status}: {}", text.trim()),
            Err(e) => e,
        };
        if attempt >= 5 || Instant::now() + wait >= last_call {
            let message = format!(
                "could not answer CloudFormation (request {}) at {} after {attempt} attempt(s): {problem}",
                ctx.request_id,
                http::redact(url)
            );
            eprintln!("chatmigrate: {message}");
            return Err(diagnostic("response", message));
        }
        eprintln!("chatmigrate: answering CloudFormation: attempt {attempt} failed ({problem}); retrying");
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> ResourceEvent {
        ResourceEvent {
            request_type: "Create".into(),
            response_url: "https://example.com/x?sig".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1".into(),
            request_id: "r-1".into(),
            logical_id: "Migrate".into(),
            physical_id: None,
            props: Map::new(),
            is_complete: None,
        }
    }

    #[test]
    fn bodies_stay_under_4_kib() {
        let e = event();
        let mut data = Map::new();
        data.insert(
            "Versions".into(),
            json!((1..3000).map(|v| v.to_string()).collect::<Vec<_>>().join(",")),
        );
        let r = Response::success(&e, "chatmigrate:prod".into(), "x".repeat(10_000), data);
        let body = r.body();
        assert!(body.len() <= RESPONSE_LIMIT, "{}", body.len());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Data"]["Versions"], "1..2999 (2999 versions)");
        assert!(v["Reason"].as_str().unwrap().ends_with('…'));
        // Escaped characters count as they are sent.
        let r = Response::success(&e, "chatmigrate:prod".into(), "\"\n\u{1}é".repeat(3_000), Map::new());
        assert!(r.body().len() <= RESPONSE_LIMIT);
        // A short one is sent whole.
        let r = Response::success(&e, "chatmigrate:prod".into(), "ok".into(), Map::new());
        let v: Value = serde_json::from_slice(&r.body()).unwrap();
        assert_eq!(v["Reason"], "ok");
    }

    #[test]
    fn qualifiers_do_not_matter() {
        let f = "arn:aws:lambda:us-east-1:123456789012:function:migrate";
        assert!(same_function(f, &format!("{f}:live")));
        assert!(same_function(&format!("{f}:3"), f));
        assert!(!same_function(
            f,
            "arn:aws:lambda:us-east-1:123456789012:function:framework-onEvent"
        ));
        assert!(!same_function("", f));
    }

    #[test]
    fn events_are_checked() {
        let ok = json!({"RequestType": "Update", "ResponseURL": "https://s3/x", "StackId": "s", "RequestId": "r",
                        "LogicalResourceId": "L", "PhysicalResourceId": "chatmigrate:prod", "ResourceType": "Custom::Migrate"});
        assert!(parse(ok.as_object().unwrap()).is_ok());
        let mut bad = ok.clone();
        bad["RequestType"] = json!("Upsert");
        assert_eq!(
            parse(bad.as_object().unwrap()).unwrap_err(),
            "RequestType `Upsert` is not Create, Update or Delete"
        );
        let mut bad = ok.clone();
        bad.as_object_mut().unwrap().remove("PhysicalResourceId");
        assert_eq!(parse(bad.as_object().unwrap()).unwrap_err(), "PhysicalResourceId is missing");
        let mut bad = ok;
        bad["ResponseURL"] = json!("ftp://x");
        assert!(parse(bad.as_object().unwrap()).unwrap_err().contains("is not an http(s) URL"));
    }
}
