//! `chatmigrate diff [--exit-code] [--dev-url URL]`: drift between the live
//! schema and the schema of the applied history (the applied files,
//! applied in the history's order to a scratch database): an index made
//! by hand in the console, a dropped column, a changed default, a table
//! outside the migrations. Changes nothing. `status` stays cheap (no
//! scratch database); this is the command for drift.

use serde_json::json;

use crate::cli::DiffArgs;
use crate::config::Secret;
use crate::error::{Error, Result};
use crate::migration::{self, SplitMigration};
use crate::plan::{self, State};
use crate::render::{Outcome, SchemaOutcome};
use crate::schema::{diff, introspect, scratch};

pub async fn run(ctx: &super::Setup, args: &DiffArgs) -> Result<Outcome> {
    let mut cfg = ctx.cfg.clone();
    if let Some(u) = &args.dev_url {
        cfg.dev_url = Some(Secret::new(u.clone()));
    }
    let files = crate::placeholders::load(&cfg)?;
    let local = migration::split_all(&files)?;
    let live = introspect::read_target(&cfg).await?;
    let entries = plan::status(&files, &live.history);
    // The expected schema is made from the files that ran: they must be there, unchanged and whole.
    if let Some(e) = entries.iter().find(|e| {
        matches!(
            e.state,
            State::Changed | State::Missing | State::Partial | State::Failed | State::Outdated
        )
    }) {
        let (why, hint) = match e.state {
            State::Changed | State::Outdated => (
                "was applied with another text than its file has now",
                "restore the applied file, or accept it with `chatmigrate repair` (`chatmigrate verify` lists the drift)",
            ),
            State::Missing => (
                "is applied but no file has this version",
                "restore the file, or point --migrations at the directory that has it",
            ),
            _ => (
                "did not finish (partial or failed)",
                "finish it with `chatmigrate up`, or clear it with `chatmigrate repair`",
            ),
        };
        return Err(Error::Schema {
            kind: "plan",
            message: format!(
                "diff: {} {why}, so the schema of the applied migrations is not known",
                migration::label(e.version, &e.name)
            ),
            hint: hint.into(),
        });
    }
    // In the order they were applied (out-of-order rows included).
    let mut applied: Vec<&crate::history::Row> = live.history.iter().collect();
    applied.sort_by(|a, b| (&a.applied_at, a.version).cmp(&(&b.applied_at, b.version)));
    let set: Vec<SplitMigration> = applied
        .iter()
        .filter_map(|r| {
            local
                .iter()
                .find(|m| m.version == r.version && (!r.is_repeatable() || m.name == r.name))
                .cloned()
        })
        .collect();
    let expected = scratch::expected(&cfg, &set, live.coordinator.clone()).await?;
    let diffs = diff::compare(&expected.model, &live.model);
    let mut sorted = set.clone();
    sorted.sort_by_key(|m| m.version);
    let range = super::adopt::versions(&sorted);
    let what = if set.is_empty() {
        "an empty database (no migration is applied)".to_string()
    } else {
        format!("its {} applied migration(s) ({range})", set.len())
    };
    let message = if diffs.is_empty() {
        format!("no drift: {} has the schema of {what}", live.display)
    } else {
        format!(
            "drift: {} differs from the schema of {what}: {} difference(s)",
            live.display,
            diffs.len()
        )
    };
    Ok(Outcome::Schema(SchemaOutcome {
        message,
        data: json!({
            "target": live.display,
            "applied": sorted.iter().map(|m| m.version).collect::<Vec<_>>(),
            "drift": !diffs.is_empty(),
            "differences": diffs,
            "scratch": expected.scratch,
            "introspection": {
                "live": {"queries": live.queries, "ms": live.elapsed.as_millis() as u64},
                "expected": {"queries": expected.queries, "ms": expected.elapsed.as_millis() as u64},
            },
        }),
        exit_code: i32::from(args.exit_code && !diffs.is_empty()),
        differences: diffs,
        after: Vec::new(),
        quiet_ok: false,
    }))
}
