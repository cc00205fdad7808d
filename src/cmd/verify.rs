//! `chatmigrate verify`: parse every file, compare checksums and names with
//! the history, and run the error-level lint rules on the files not yet
//! applied (what `up` would refuse; an applied file cannot change without
//! drift); changes nothing. Both are reported, drift first. Exit 1 on drift
//! (changed, renamed or missing) or on error-level findings, as `lint` exits
//! 1 on them; exit 2 when it cannot run (a file that does not parse, no
//! connection).

use crate::error::Result;
use crate::migration::SplitMigration;
use crate::plan::{self, State};
use crate::render::{Outcome, VerifyOutcome};
use crate::{lint, runner};

pub async fn run(ctx: &super::Setup) -> Result<Outcome> {
    let files = crate::placeholders::load(&ctx.cfg)?;
    // A file that does not parse is reported after the drift.
    let mut unreadable = None;
    let local: Vec<SplitMigration> = files
        .iter()
        .map(|m| {
            m.split().unwrap_or_else(|e| {
                unreadable.get_or_insert(e);
                SplitMigration::unparsed(m)
            })
        })
        .collect();
    let (applied, _, target, _, _) = runner::read_state(&ctx.cfg).await?;
    let entries = plan::status(&files, &applied);
    let lint = match &unreadable {
        Some(_) => None,
        None => {
            let live_run: Vec<(usize, usize)> = entries
                .iter()
                .filter(|e| matches!(e.state, State::Pending | State::Partial | State::Failed | State::Outdated))
                .filter_map(|e| local.iter().position(|m| m.version == e.version && m.name == e.name))
                .map(|p| (p, 0))
                .collect();
            // Locking hazards judged by the live sizes, as `up` does.
            let live = crate::schema::live::for_run(&ctx.cfg, &local, &live_run).await?;
            let unapplied: Vec<usize> = entries
                .iter()
                .filter(|e| matches!(e.state, State::Pending | State::Partial | State::Failed | State::Outdated))
                .filter_map(|e| local.iter().position(|m| m.version == e.version && m.name == e.name))
                .collect();
            let opts = lint::Options {
                errors_only: true,
                live: Some(std::sync::Arc::new(live)),
                ..crate::config::lint_options(&ctx.cfg)
            };
            Some(lint::lint(&local, &unapplied, &opts))
        }
    };
    Ok(Outcome::Verify(VerifyOutcome {
        target,
        files: local.len(),
        drift: entries.into_iter().filter(|e| e.state.is_drift()).collect(),
        lint,
        unreadable: unreadable.map(Box::new),
    }))
}
