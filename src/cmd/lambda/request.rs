//! What an invocation asks for, read from its event:
//!
//! - a CloudFormation custom resource event (it has `RequestType`,
//!   `ResponseURL`, `StackId` or `LogicalResourceId`), handled in
//!   `cloudformation.rs`;
//! - anything else that is a JSON object is a direct invocation:
//!   `{"command": "up", "env": "prod", "target": 12, "dry_run": false}`.
//!   Every field may be left out (`{}`, what a CDK Trigger sends, runs `up`);
//!   an unknown field or a field the command does not take is an error, as
//!   an unknown flag is.

use serde::Deserialize;
use serde_json::Value;

/// One invocation, classified.
#[derive(Debug)]
pub enum Request {
    CloudFormation(serde_json::Map<String, Value>),
    Direct(Invocation),
}

/// The command to run and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Up { target: Option<i64>, dry_run: bool },
    Status { exit_code: bool },
    Verify,
    Lint { pending: bool },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Up { .. } => "up",
            Command::Status { .. } => "status",
            Command::Verify => "verify",
            Command::Lint { .. } => "lint",
        }
    }
}

/// A command with the settings an invocation may give (the CLI's flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    pub env: Option<String>,
    pub lock_wait: Option<String>,
    pub create_database: bool,
    pub allow_out_of_order: bool,
}

impl Invocation {
    /// `up` with the function's defaults.
    #[cfg(test)]
    pub fn up() -> Invocation {
        Invocation {
            command: Command::Up {
                target: None,
                dry_run: false,
            },
            env: None,
            lock_wait: None,
            create_database: false,
            allow_out_of_order: false,
        }
    }
}

/// The direct invocation as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Direct {
    command: Option<String>,
    env: Option<String>,
    target: Option<i64>,
    dry_run: Option<bool>,
    create_database: Option<bool>,
    allow_out_of_order: Option<bool>,
    lock_wait: Option<String>,
    exit_code: Option<bool>,
    pending: Option<bool>,
}

/// Classifies an event; `Err` is the one line that says what is wrong.
pub fn classify(payload: Value) -> Result<Request, String> {
    let map = match payload {
        Value::Object(map) => map,
        // An invocation without a payload.
        Value::Null => serde_json::Map::new(),
        other => {
            return Err(format!(
                "the event must be a JSON object such as {{\"command\": \"up\"}}, not {}",
                kind_of(&other)
            ))
        }
    };
    if ["RequestType", "ResponseURL", "StackId", "LogicalResourceId"]
        .iter()
        .any(|k| map.contains_key(*k))
    {
        return Ok(Request::CloudFormation(map));
    }
    let d: Direct = serde_json::from_value(Value::Object(map)).map_err(|e| format!("invalid event: {e}"))?;
    direct(d).map(Request::Direct)
}

fn direct(d: Direct) -> Result<Invocation, String> {
    let name = d.command.as_deref().unwrap_or("up");
    let only = |field: &str, given: bool, command: &str| -> Result<(), String> {
        match given {
            true => Err(format!(
                "invalid event: `{field}` applies to the command `{command}` only, not `{name}`"
            )),
            false => Ok(()),
        }
    };
    let is_up = name == "up";
    if !is_up {
        only("target", d.target.is_some(), "up")?;
        only("dry_run", d.dry_run.is_some(), "up")?;
        only("create_database", d.create_database.is_some(), "up")?;
        only("allow_out_of_order", d.allow_out_of_order.is_some(), "up")?;
        only("lock_wait", d.lock_wait.is_some(), "up")?;
    }
    if name != "status" {
        only("exit_code", d.exit_code.is_some(), "status")?;
    }
    if name != "lint" {
        only("pending", d.pending.is_some(), "lint")?;
    }
    let command = match name {
        "up" => Command::Up {
            target: d.target,
            dry_run: d.dry_run.unwrap_or(false),
        },
        "status" => Command::Status {
            exit_code: d.exit_code.unwrap_or(false),
        },
        "verify" => Command::Verify,
        "lint" => Command::Lint {
            pending: d.pending.unwrap_or(false),
        },
        other => {
            return Err(format!(
                "invalid event: unknown command `{other}`; expected one of `up`, `status`, `verify`, `lint`"
            ))
        }
    };
    Ok(Invocation {
        command,
        env: d.env,
        lock_wait: d.lock_wait,
        create_database: d.create_database.unwrap_or(false),
        allow_out_of_order: d.allow_out_of_order.unwrap_or(false),
    })
}

fn kind_of(v: &Value) -> String {
    let text = v.to_string();
    let shown = if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    };
    let kind = match v {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        _ => "a value",
    };
    format!("{kind} ({shown})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn direct_of(v: Value) -> Result<Invocation, String> {
        match classify(v)? {
            Request::Direct(i) => Ok(i),
            Request::CloudFormation(_) => panic!("classified as CloudFormation"),
        }
    }

    #[test]
    fn empty_and_null_events_run_up() {
        assert_eq!(direct_of(json!({})).unwrap(), Invocation::up());
        assert_eq!(direct_of(Value::Null).unwrap(), Invocation::up());
    }

    #[test]
    fn fields() {
        let i = direct_of(json!({"command": "up", "env": "prod", "target": 12, "dry_run": true})).unwrap();
        assert_eq!(i.env.as_deref(), Some("prod"));
        assert_eq!(
            i.command,
            Command::Up {
                target: Some(12),
                dry_run: true
            }
        );
        assert_eq!(
            direct_of(json!({"command": "status", "exit_code": true})).unwrap().command,
            Command::Status { exit_code: true }
        );
        assert_eq!(
            direct_of(json!({"command": "lint", "pending": true})).unwrap().command,
            Command::Lint { pending: true }
        );
    }

    #[test]
    fn mistakes_are_named() {
        let e = direct_of(json!({"command": "up", "taget": 12})).unwrap_err();
        assert!(e.starts_with("invalid event: unknown field `taget`"), "{e}");
        let e = direct_of(json!({"command": "status", "target": 12})).unwrap_err();
        assert_eq!(e, "invalid event: `target` applies to the command `up` only, not `status`");
        let e = direct_of(json!({"command": "migrate"})).unwrap_err();
        assert!(e.contains("unknown command `migrate`"), "{e}");
        let e = direct_of(json!({"target": "12"})).unwrap_err();
        assert!(e.contains("invalid type: string \"12\""), "{e}");
        let e = direct_of(json!([1, 2])).unwrap_err();
        assert!(e.contains("not an array ([1,2])"), "{e}");
    }

    #[test]
    fn cloudformation_events_are_recognised() {
        assert!(matches!(
            classify(json!({"RequestType": "Create", "ResponseURL": "http://x"})).unwrap(),
            Request::CloudFormation(_)
        ));
        assert!(matches!(
            classify(json!({"StackId": "arn:..."})).unwrap(),
            Request::CloudFormation(_)
        ));
    }
}
