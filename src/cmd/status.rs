//! `chatmigrate status`: every version with its state, and what the backend
//! knows about the server (Citus: release, workers); `--exit-code` makes
//! anything not applied exit 1.

use crate::cli::StatusArgs;
use crate::error::Result;
use crate::plan;
use crate::render::{Outcome, StatusOutcome};
use crate::runner;

pub async fn run(ctx: &super::Setup, args: &StatusArgs) -> Result<Outcome> {
    let st = runner::load_state(&ctx.cfg).await?;
    let mut entries = plan::status(&st.local, &st.applied);
    plan::mark_undoing(&mut entries, &st.undoing);
    Ok(Outcome::Status(StatusOutcome {
        entries,
        target: st.target,
        database_missing: st.database_missing,
        facts: st.facts,
        exit_code: args.exit_code,
        placeholders: match ctx.style.verbose {
            true => crate::placeholders::Values::of(&ctx.cfg)?.shown(),
            false => Vec::new(),
        },
    }))
}
