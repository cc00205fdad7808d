//! `chatmigrate status`: every version with its state, and what the backend
//! knows about the server (Citus: release, workers); `--exit-code` makes
//! anything not applied exit 1.

use crate::cli::StatusArgs;
use crate::error::Result;
use crate::plan::{self, State};
use crate::{report, runner};

pub async fn run(ctx: &super::Ctx, args: &StatusArgs) -> Result<i32> {
    let st = runner::load_state(&ctx.cfg).await?;
    let entries = plan::status(&st.local, &st.applied);
    // One write for the whole table, not one per line.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = report::status(&ctx.style, &mut out, &st.target, st.database_missing, &st.facts, &entries);
    let _ = std::io::Write::flush(&mut out);
    let unsettled = entries.iter().any(|e| e.state != State::Applied);
    Ok(if args.exit_code && unsettled { 1 } else { 0 })
}
