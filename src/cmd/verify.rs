//! `chatmigrate verify`: parse every file, compare checksums with the
//! history, and run the error-level lint rules on the files not yet applied
//! (what `up` would refuse; an applied file cannot change without drift);
//! changes nothing. Exit 1 on drift (changed or missing files).

use serde_json::json;

use crate::error::Result;
use crate::plan::{self, State};
use crate::{lint, migration, report, runner};

pub async fn run(ctx: &super::Ctx) -> Result<i32> {
    let mut local = migration::load(&ctx.cfg.source, ctx.cfg.backend)?;
    for m in local.iter_mut() {
        m.prepare()?;
    }
    let (applied, _, target, _) = runner::read_state(&ctx.cfg).await?;
    let entries = plan::status(&local, &applied);
    let unapplied: Vec<usize> = entries
        .iter()
        .filter(|e| matches!(e.state, State::Pending | State::Partial | State::Failed))
        .filter_map(|e| local.iter().position(|m| m.version == e.version))
        .collect();
    lint::gate(&local, &unapplied, &lint::Options::for_config(&ctx.cfg))?;
    let drift: Vec<_> = entries
        .iter()
        .filter(|e| matches!(e.state, State::Changed | State::Missing))
        .collect();
    let mut out = std::io::stdout().lock();
    if drift.is_empty() {
        let msg = format!("verified {} file(s) against {target}: no drift", local.len());
        let _ = report::done(&ctx.style, &mut out, &msg, json!({"drift": []}));
        return Ok(0);
    }
    if ctx.style.json {
        let _ = report::done(&ctx.style, &mut out, "drift found", json!({"drift": drift}));
    } else {
        for e in &drift {
            let _ = match e.state {
                State::Changed => writeln_out(
                    &mut out,
                    &format!(
                        "changed: V{} {} ({}): applied {} but the file has {}",
                        e.version,
                        e.name,
                        e.path.as_deref().unwrap_or("?"),
                        e.applied_checksum.as_deref().unwrap_or("?"),
                        e.file_checksum.as_deref().unwrap_or("?")
                    ),
                ),
                _ => writeln_out(
                    &mut out,
                    &format!("missing: V{} {} is applied but no file has this version", e.version, e.name),
                ),
            };
        }
        let _ = writeln_out(
            &mut out,
            &format!(
                "{} drifted migration(s) on {target}; accept changed files with `chatmigrate repair`",
                drift.len()
            ),
        );
    }
    Ok(1)
}

fn writeln_out(out: &mut dyn std::io::Write, line: &str) -> std::io::Result<()> {
    writeln!(out, "{line}")
}
