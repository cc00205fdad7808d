//! `chatmigrate down`: revert applied migrations with their undo files
//! (the engine is `runner::down`), or show what it would send with
//! `--dry-run`.

use std::io::Write;
use std::time::Instant;

use serde_json::json;

use crate::cli::DownArgs;
use crate::error::Result;
use crate::render::{self, Done, Outcome, UpOutcome};
use crate::runner::{self, DownOptions, UpReport};

pub async fn run(ctx: &super::Setup, args: &DownArgs, out: &mut dyn Write) -> Result<Outcome> {
    let started = Instant::now();
    let opts = DownOptions {
        target: args.target,
        steps: args.steps.map(|n| n as usize),
        dry_run: args.dry_run,
        handle_signals: true,
    };
    let mut view = render::EventView::new(&ctx.style);
    let report = runner::down(&ctx.cfg, &opts, &mut |ev| {
        let _ = view.event(out, ev);
    })
    .await?;
    if args.dry_run {
        // Rendered as `up --dry-run` renders its scripts.
        return Ok(Outcome::Up(UpOutcome {
            report: UpReport {
                target: report.target,
                dry_run: report.dry_run,
                ..UpReport::default()
            },
            dry_run: true,
            duration_ms: started.elapsed().as_millis() as u64,
        }));
    }
    let message = match report.undone.as_slice() {
        [] => format!("nothing to undo on {}", report.target),
        list => list
            .iter()
            .map(|u| format!("undone V{} {} ({} ms)", u.version, u.name, u.duration_ms))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    Ok(Outcome::Done(Done::new(
        message,
        json!({"target": report.target, "undone": report.undone}),
    )))
}
