//! `chatmigrate up`: apply pending migrations (or show them with --dry-run).

use std::io::Write;
use std::time::Instant;

use crate::cli::UpArgs;
use crate::config::Config;
use crate::error::Result;
use crate::render::{self, Outcome, Style, UpOutcome};
use crate::runner::{self, UpOptions};

/// Runs `up`, its progress rendered to `out` as it happens.
pub async fn run(ctx: &super::Setup, args: &UpArgs, out: &mut dyn Write) -> Result<Outcome> {
    apply(&ctx.cfg, &ctx.style, args.target, args.dry_run, out).await
}

/// `up` on `cfg` (also what `database reset` runs after the drop).
pub async fn apply(cfg: &Config, style: &Style, target: Option<i64>, dry_run: bool, out: &mut dyn Write) -> Result<Outcome> {
    let started = Instant::now();
    let opts = UpOptions {
        target,
        dry_run,
        handle_signals: true,
        stop_before: None,
    };
    let mut view = render::EventView::new(style);
    let report = runner::up(cfg, &opts, &mut |ev| {
        let _ = view.event(out, ev);
    })
    .await?;
    Ok(Outcome::Up(UpOutcome {
        report,
        dry_run,
        duration_ms: started.elapsed().as_millis() as u64,
    }))
}
