//! What each command returns: plain data, serialisable (its `Serialize` is
//! the command's JSON document), rendered by `text.rs` or `json.rs`. The
//! exit code follows from it ([`Outcome::exit_code`]).

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Error;
use crate::lint;
use crate::plan::{Entry, State};
use crate::runner::UpReport;

/// A command's result.
pub enum Outcome {
    Up(UpOutcome),
    Status(StatusOutcome),
    Verify(VerifyOutcome),
    Lint(lint::Report),
    /// `baseline`, `repair`, `new`: one line, and the data behind it.
    Done(Done),
    /// `adopt`, `diff`: the database's schema compared with the migrations'.
    Schema(SchemaOutcome),
}

impl Outcome {
    /// 0, or 1 when the command ran and found something: anything not
    /// applied (`status --exit-code`), drift or lint errors (`verify`),
    /// error-level findings (`lint`).
    pub fn exit_code(&self) -> i32 {
        let found = match self {
            Outcome::Up(_) | Outcome::Done(_) => false,
            Outcome::Status(s) => s.exit_code && s.entries.iter().any(|e| e.state != State::Applied),
            Outcome::Verify(v) => !v.drift.is_empty() || v.lint_errors() > 0,
            Outcome::Lint(r) => r.errors() > 0,
            Outcome::Schema(s) => return s.exit_code,
        };
        i32::from(found)
    }
}

/// `up`: what it applied, or with `--dry-run` the scripts.
pub struct UpOutcome {
    pub report: UpReport,
    pub dry_run: bool,
    /// The whole command's time.
    pub duration_ms: u64,
}

/// `status`: every version with its state.
pub struct StatusOutcome {
    pub target: String,
    pub database_missing: bool,
    /// The backend's lines about the server (Citus: release and workers).
    pub facts: Vec<(String, String)>,
    pub entries: Vec<Entry>,
    /// `--exit-code`: anything not applied exits 1.
    pub exit_code: bool,
    /// `-v`: the placeholder values the files were read with.
    pub placeholders: Vec<crate::placeholders::Shown>,
}

/// `verify`: the drift, then the lint errors of the files not applied yet.
pub struct VerifyOutcome {
    pub target: String,
    /// How many files were read.
    pub files: usize,
    pub drift: Vec<Entry>,
    /// `None` when a file does not parse (`unreadable`).
    pub lint: Option<lint::Report>,
    /// A file that does not parse: reported after the drift (the command
    /// then fails with it).
    pub unreadable: Option<Box<Error>>,
}

impl VerifyOutcome {
    fn lint_errors(&self) -> usize {
        self.lint.as_ref().map_or(0, |r| r.errors())
    }

    /// The one-line verdict.
    pub fn message(&self) -> String {
        match (self.drift.is_empty(), self.lint_errors()) {
            (true, 0) => format!("verified {} file(s) against {}: no drift", self.files, self.target),
            (false, 0) => "drift found".to_string(),
            (true, _) => "lint errors in files not applied yet".to_string(),
            (false, _) => "drift found; lint errors in files not applied yet".to_string(),
        }
    }
}

/// `adopt` and `diff`: a verdict, the differences found, and what to do next.
pub struct SchemaOutcome {
    pub message: String,
    pub differences: Vec<crate::schema::diff::Difference>,
    /// Lines after the differences (adopt: where its fix was written, or
    /// how to write one).
    pub after: Vec<String>,
    /// The JSON document's fields (besides `ok` and `message`).
    pub data: Value,
    /// A plain success (adopt recorded the files): nothing with --quiet.
    pub quiet_ok: bool,
    pub exit_code: i32,
}

/// One line for people, and for JSON the data behind it (an object).
pub struct Done {
    pub message: String,
    pub data: Value,
}

impl Done {
    pub fn new(message: impl Into<String>, data: Value) -> Done {
        Done {
            message: message.into(),
            data,
        }
    }
}

/// `{"ok": true, ...fields}`, from a JSON object.
fn ok_object<S: Serializer>(s: S, fields: Value) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    map.serialize_entry("ok", &true)?;
    if let Value::Object(fields) = fields {
        for (k, v) in fields {
            if k != "ok" {
                map.serialize_entry(&k, &v)?;
            }
        }
    }
    map.end()
}

/// The JSON document of a lint run (docs/lint.md; a test pins its shape).
pub(super) fn lint_json(r: &lint::Report) -> Value {
    let findings: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule,
                "level": f.level,
                "path": f.location.path,
                "line": f.location.line,
                "column": f.location.col,
                "excerpt": f.excerpt,
                "message": f.message,
                "help": f.help,
            })
        })
        .collect();
    json!({
        "format": 1,
        "files": r.files,
        "rules": r.rules,
        "summary": {"errors": r.errors(), "warnings": r.warnings()},
        "findings": findings,
    })
}

/// Counts per state, in a fixed order.
pub(super) fn summary(entries: &[Entry]) -> Vec<(State, usize)> {
    [
        State::Applied,
        State::Pending,
        State::Changed,
        State::Renamed,
        State::Missing,
        State::Partial,
        State::Failed,
        State::Outdated,
        State::Undoing,
    ]
    .into_iter()
    .map(|s| (s, entries.iter().filter(|e| e.state == s).count()))
    .filter(|(_, n)| *n > 0)
    .collect()
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Outcome::Up(u) => {
                let mut v = serde_json::to_value(&u.report).map_err(serde::ser::Error::custom)?;
                v["dry_run"] = if u.dry_run { v["dry_run"].take() } else { Value::Null };
                v["duration_ms"] = json!(u.duration_ms);
                ok_object(s, v)
            }
            Outcome::Status(st) => {
                let counts: serde_json::Map<String, Value> = summary(&st.entries)
                    .into_iter()
                    .map(|(state, n)| (state.as_str().to_string(), json!(n)))
                    .collect();
                let mut v = json!({
                    "target": st.target,
                    "database_exists": !st.database_missing,
                    "migrations": st.entries,
                    "summary": counts,
                });
                if !st.facts.is_empty() {
                    let server: serde_json::Map<String, Value> = st.facts.iter().map(|(k, val)| (k.clone(), json!(val))).collect();
                    v["server"] = json!(server);
                }
                if !st.placeholders.is_empty() {
                    v["placeholders"] = json!(st.placeholders);
                }
                ok_object(s, v)
            }
            Outcome::Verify(vo) => {
                let mut v = json!({"drift": vo.drift, "message": vo.message()});
                if let Some(r) = &vo.lint {
                    v["lint"] = lint_json(r);
                }
                ok_object(s, v)
            }
            Outcome::Lint(r) => ok_object(s, lint_json(r)),
            Outcome::Schema(so) => {
                let mut v = so.data.clone();
                v["message"] = json!(so.message);
                ok_object(s, v)
            }
            Outcome::Done(d) => {
                let mut v = d.data.clone();
                if !v.is_object() {
                    v = json!({});
                }
                v["message"] = json!(d.message);
                ok_object(s, v)
            }
        }
    }
}
