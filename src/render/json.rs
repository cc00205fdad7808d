//! JSON: one document on stdout per command, its outcome's serialisation
//! (keys sorted), and for an error `{"ok": false, "error": {...}}`.

use std::io::{self, Write};

use serde_json::json;

use super::outcome::{lint_json, Outcome};
use crate::error::Error;

pub(super) fn outcome(out: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    if let Outcome::Verify(v) = o {
        if v.unreadable.is_some() {
            // The command fails with that error: its JSON is the error's.
            return Ok(());
        }
    }
    let v = serde_json::to_value(o).map_err(io::Error::other)?;
    writeln!(out, "{v}")
}

/// The JSON error object: `{"ok":false,"error":{"kind",...}}` (a lint
/// refusal with its report under `"lint"`, existing objects under
/// `"objects"`).
pub(super) fn error(out: &mut dyn Write, e: &Error) -> io::Result<()> {
    let mut v = json!({"ok": false, "error": {"kind": e.kind(), "message": e.to_string(), "hint": e.hint()}});
    if let Error::Lint(report) = e {
        v["lint"] = lint_json(report);
    }
    if let Error::ObjectsExist { objects, .. } = e {
        v["objects"] = objects
            .iter()
            .map(|o| json!({"kind": o.kind, "name": o.name, "table": o.table, "location": o.location.to_string(), "version": o.version}))
            .collect();
    }
    writeln!(out, "{v}")
}
