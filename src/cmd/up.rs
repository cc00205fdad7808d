//! `chatmigrate up`: apply pending migrations (or show them with --dry-run).

use std::time::Instant;

use crate::cli::UpArgs;
use crate::config::Config;
use crate::error::Result;
use crate::report::{self, Style};
use crate::runner::{self, UpOptions};

pub async fn run(ctx: &super::Ctx, args: &UpArgs) -> Result<i32> {
    apply(&ctx.cfg, &ctx.style, args.target, args.dry_run).await
}

/// Runs `up` on `cfg` and prints what happens (also for `database reset`).
pub async fn apply(cfg: &Config, style: &Style, target: Option<i64>, dry_run: bool) -> Result<i32> {
    let started = Instant::now();
    let opts = UpOptions {
        target,
        dry_run,
        handle_signals: true,
    };
    let stdout = std::io::stdout();
    let r = runner::up(cfg, &opts, &mut |ev| {
        let _ = report::up_event(style, &mut stdout.lock(), ev);
    })
    .await?;
    let _ = report::up_report(style, &mut stdout.lock(), &r, dry_run, started.elapsed().as_millis() as u64);
    Ok(0)
}
