//! `lint --format sarif`: one SARIF 2.1.0 log (pretty-printed) for GitHub
//! code scanning or any SARIF viewer: the rules that have results, with
//! their summary and help page, and one result per finding at its file,
//! line and column. Pinned by tests/fixtures/lint-formats/.

use std::io::{self, Write};

use serde_json::json;

use super::outcome::Outcome;
use crate::lint;

/// The SARIF log of a lint run; any other outcome (never asked for:
/// `cmd::formats` refuses it) as its JSON document.
pub(super) fn outcome(out: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    match o {
        Outcome::Lint(r) => log(out, r),
        o => super::json::outcome(out, o),
    }
}

/// Where lint documents its rules, for this version (SARIF's help links).
fn docs_url(page: &str) -> String {
    format!("https://docs.rs/crate/chatmigrate/{}/source/docs/{page}", env!("CARGO_PKG_VERSION"))
}

/// `lint --format sarif`: one SARIF 2.1.0 log (pretty-printed): the rules
/// that have results, with their summary and help page, and one result per
/// finding at its file, line and column (tests/fixtures/lint-formats/).
fn log(out: &mut dyn Write, r: &lint::Report) -> io::Result<()> {
    let mut rules: Vec<serde_json::Value> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    let mut results = Vec::new();
    for f in &r.findings {
        let index = match ids.iter().position(|id| *id == f.rule) {
            Some(i) => i,
            None => {
                let summary = lint::RULES.iter().find(|rule| rule.id == f.rule).map_or("", |rule| rule.summary);
                rules.push(json!({
                    "id": f.rule,
                    "shortDescription": {"text": summary},
                    "helpUri": docs_url(&format!("rules/{}.md", f.rule)),
                    "defaultConfiguration": {"level": f.level.as_str()},
                }));
                ids.push(f.rule);
                ids.len() - 1
            }
        };
        let path = super::ci_path(&f.location.path);
        let artifact = if path.starts_with('/') {
            json!({"uri": format!("file://{}", uri_escape(&path))})
        } else {
            json!({"uri": uri_escape(&path), "uriBaseId": "%SRCROOT%"})
        };
        results.push(json!({
            "ruleId": f.rule,
            "ruleIndex": index,
            "level": f.level.as_str(),
            "message": {"text": format!("{}\n\nhelp: {}", f.message, f.help)},
            "locations": [{"physicalLocation": {
                "artifactLocation": artifact,
                "region": {
                    "startLine": f.location.line,
                    "startColumn": f.location.col,
                    "snippet": {"text": f.excerpt},
                },
            }}],
        }));
    }
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "chatmigrate",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": docs_url("lint.md"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let text = serde_json::to_string_pretty(&log).map_err(io::Error::other)?;
    writeln!(out, "{text}")
}

/// A path as a URI reference: unreserved characters and `/` as they are,
/// every other byte percent-encoded.
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
