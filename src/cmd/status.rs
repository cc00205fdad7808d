//! `chatmigrate status`: every version with its state; `--exit-code` makes
//! anything not applied exit 1.

use crate::cli::StatusArgs;
use crate::error::Result;
use crate::plan::{self, State};
use crate::{migration, report, runner};

pub async fn run(ctx: &super::Ctx, args: &StatusArgs) -> Result<i32> {
    let local = migration::load(&ctx.cfg.source)?;
    let (applied, missing_db, target) = runner::read_state(&ctx.cfg).await?;
    let entries = plan::status(&local, &applied);
    let _ = report::status(&ctx.style, &mut std::io::stdout().lock(), &target, missing_db, &entries);
    let unsettled = entries.iter().any(|e| e.state != State::Applied);
    Ok(if args.exit_code && unsettled { 1 } else { 0 })
}
