//! `chatmigrate up`: apply pending migrations (or show them with --dry-run).

use std::time::Instant;

use crate::cli::UpArgs;
use crate::error::Result;
use crate::report;
use crate::runner::{self, UpOptions};

pub async fn run(ctx: &super::Ctx, args: &UpArgs) -> Result<i32> {
    let started = Instant::now();
    let opts = UpOptions {
        target: args.target,
        dry_run: args.dry_run,
        handle_signals: true,
        stop_before: None,
    };
    let stdout = std::io::stdout();
    let style = ctx.style;
    let r = runner::up(&ctx.cfg, &opts, &mut |ev| {
        let _ = report::up_event(&style, &mut stdout.lock(), ev);
    })
    .await?;
    let _ = report::up_report(&style, &mut stdout.lock(), &r, args.dry_run, started.elapsed().as_millis() as u64);
    Ok(0)
}
