//! `chatmigrate repair`: accept the current checksum and name of applied
//! files that were edited or renamed, and delete failed rows so the
//! migration runs again from its first statement. Each repair is written to
//! the history log with who and when.

use serde_json::json;

use crate::dialect::ToolSql;
use crate::error::Result;
use crate::history::Status;
use crate::render::{Done, Outcome};
use crate::runner;

pub async fn run(ctx: &super::Setup) -> Result<Outcome> {
    let local = crate::placeholders::load(&ctx.cfg)?;
    let cfg = ctx.cfg.clone();
    let (checksums, renamed, cleared, forgotten) = runner::with_lock(&ctx.cfg, move |b| {
        Box::pin(async move {
            let mut checksums = Vec::new();
            let mut renamed = Vec::new();
            let mut cleared = Vec::new();
            let mut forgotten = Vec::new();
            for r in b.read_history().await? {
                if r.is_repeatable() {
                    // A repeatable migration whose file is gone: its row goes
                    // (an outdated one is left to `up`, which applies it).
                    if !local.iter().any(|m| m.is_repeatable() && m.name == r.name) {
                        b.query(&ToolSql::new(&cfg.history, &cfg.pg.dbname).delete_repeatable(&r.name))
                            .await?;
                        let detail = format!("R__{}: no file is in the set", r.name);
                        b.log_event(r.version, "repair-missing-repeatable", Some(&r.checksum), None, Some(&detail))
                            .await?;
                        forgotten.push(r.name.clone());
                    }
                    continue;
                }
                let Some(m) = local.iter().find(|m| m.version == r.version) else {
                    continue;
                };
                if r.status == Status::Applied && (!m.checksum_matches(&r.checksum) || r.name != m.name) {
                    b.accept_file(r.version, &m.name, &m.checksum).await?;
                    if !m.checksum_matches(&r.checksum) {
                        b.log_event(r.version, "repair-checksum", Some(&r.checksum), Some(&m.checksum), None)
                            .await?;
                        checksums.push(r.version);
                    }
                    if r.name != m.name {
                        let detail = format!("renamed from `{}` to `{}` ({})", r.name, m.name, m.path);
                        b.log_event(r.version, "repair-name", Some(&r.checksum), Some(&m.checksum), Some(&detail))
                            .await?;
                        renamed.push(r.version);
                    }
                } else if r.status == Status::Failed {
                    b.delete_history(r.version).await?;
                    b.log_event(r.version, "clear-failed", Some(&r.checksum), None, r.error.as_deref())
                        .await?;
                    cleared.push(r.version);
                }
            }
            Ok((checksums, renamed, cleared, forgotten))
        })
    })
    .await?;
    let msg = if checksums.is_empty() && renamed.is_empty() && cleared.is_empty() && forgotten.is_empty() {
        "repair: nothing to repair".to_string()
    } else {
        let mut parts = vec![format!("accepted {} changed checksum(s)", checksums.len())];
        if !renamed.is_empty() {
            parts.push(format!("{} new name(s)", renamed.len()));
        }
        parts.push(format!("cleared {} failed row(s)", cleared.len()));
        if !forgotten.is_empty() {
            parts.push(format!("removed {} repeatable row(s) without a file", forgotten.len()));
        }
        format!("repair: {}", parts.join(", "))
    };
    Ok(Outcome::Done(Done::new(
        msg,
        json!({"checksums": checksums, "renamed": renamed, "cleared": cleared, "repeatables_removed": forgotten}),
    )))
}
