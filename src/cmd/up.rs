//! `chatmigrate up`: apply pending migrations (or show them with --dry-run).

use std::io::Write;
use std::time::Instant;

use crate::cli::UpArgs;
use crate::error::Result;
use crate::render::{self, Outcome, UpOutcome};
use crate::runner::{self, UpOptions};

/// Runs `up`, its progress rendered to `out` as it happens.
pub async fn run(ctx: &super::Ctx, args: &UpArgs, out: &mut dyn Write) -> Result<Outcome> {
    let started = Instant::now();
    let opts = UpOptions {
        target: args.target,
        dry_run: args.dry_run,
        handle_signals: true,
        stop_before: None,
    };
    let style = ctx.style;
    let report = runner::up(&ctx.cfg, &opts, &mut |ev| {
        let _ = render::event(&style, out, ev);
    })
    .await?;
    Ok(Outcome::Up(UpOutcome {
        report,
        dry_run: args.dry_run,
        duration_ms: started.elapsed().as_millis() as u64,
    }))
}
