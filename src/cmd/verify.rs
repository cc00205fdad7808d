//! `chatmigrate verify`: parse every file, compare checksums and names with
//! the history, and run the error-level lint rules on the files not yet
//! applied (what `up` would refuse; an applied file cannot change without
//! drift); changes nothing. Both are reported, drift first. Exit 1 on drift
//! (changed, renamed or missing) or on error-level findings, as `lint` exits
//! 1 on them; exit 2 when it cannot run (a file that does not parse, no
//! connection).

use std::io::Write;

use serde_json::json;

use crate::error::Result;
use crate::migration::short_checksum;
use crate::plan::{self, Entry, State};
use crate::{lint, migration, report, runner};

pub async fn run(ctx: &super::Ctx) -> Result<i32> {
    let mut local = migration::load(&ctx.cfg.source, ctx.cfg.backend)?;
    // A file that does not parse is reported after the drift.
    let mut unreadable = None;
    for m in local.iter_mut() {
        if let Err(e) = m.prepare() {
            unreadable.get_or_insert(e);
        }
    }
    let (applied, _, target, _) = runner::read_state(&ctx.cfg).await?;
    let entries = plan::status(&local, &applied);
    let drift: Vec<&Entry> = entries.iter().filter(|e| e.state.is_drift()).collect();
    let findings = match &unreadable {
        Some(_) => None,
        None => {
            let unapplied: Vec<usize> = entries
                .iter()
                .filter(|e| matches!(e.state, State::Pending | State::Partial | State::Failed))
                .filter_map(|e| local.iter().position(|m| m.version == e.version))
                .collect();
            let opts = lint::Options {
                errors_only: true,
                ..lint::Options::for_config(&ctx.cfg)
            };
            Some(lint::lint(&local, &unapplied, &opts))
        }
    };
    let lint_errors = findings.as_ref().map_or(0, |r| r.errors());
    let mut out = std::io::stdout().lock();
    if ctx.style.json {
        if let Some(e) = unreadable {
            return Err(e);
        }
        let message = match (drift.is_empty(), lint_errors) {
            (true, 0) => format!("verified {} file(s) against {target}: no drift", local.len()),
            (false, 0) => "drift found".to_string(),
            (true, _) => "lint errors in files not applied yet".to_string(),
            (false, _) => "drift found; lint errors in files not applied yet".to_string(),
        };
        let mut v = json!({"drift": drift});
        if let Some(r) = &findings {
            v["lint"] = report::lint_json(r);
        }
        let _ = report::done(&ctx.style, &mut out, &message, v);
    } else {
        if drift.is_empty() {
            let msg = format!("verified {} file(s) against {target}: no drift", local.len());
            let _ = report::done(&ctx.style, &mut out, &msg, json!({}));
        } else {
            for e in &drift {
                let _ = writeln!(out, "{}", drift_line(e));
            }
            let _ = writeln!(
                out,
                "{} drifted migration(s) on {target}; accept changed or renamed files with `chatmigrate repair`",
                drift.len()
            );
        }
        if let Some(r) = findings.as_ref().filter(|r| !r.findings.is_empty()) {
            let _ = writeln!(out);
            let _ = report::lint(&ctx.style, &mut out, r);
        }
        if let Some(e) = unreadable {
            return Err(e);
        }
    }
    Ok(if drift.is_empty() && lint_errors == 0 { 0 } else { 1 })
}

/// One drifted migration, as `verify` prints it.
fn drift_line(e: &Entry) -> String {
    let path = e.path.as_deref().unwrap_or("?");
    let applied_name = e.applied_name.as_deref().unwrap_or("?");
    match e.state {
        State::Changed if applied_name != e.name => format!(
            "changed: V{} {} ({path}): applied {} as `{applied_name}` but the file has {} and is named `{}`",
            e.version,
            e.name,
            short_checksum(e.applied_checksum.as_deref().unwrap_or("?")),
            short_checksum(e.file_checksum.as_deref().unwrap_or("?")),
            e.name
        ),
        State::Changed => format!(
            "changed: V{} {} ({path}): applied {} but the file has {}",
            e.version,
            e.name,
            short_checksum(e.applied_checksum.as_deref().unwrap_or("?")),
            short_checksum(e.file_checksum.as_deref().unwrap_or("?"))
        ),
        State::Renamed => format!(
            "renamed: V{} {} ({path}): applied as `{applied_name}`; the file is named `{}` (same checksum)",
            e.version, e.name, e.name
        ),
        _ => format!("missing: V{} {} is applied but no file has this version", e.version, e.name),
    }
}
