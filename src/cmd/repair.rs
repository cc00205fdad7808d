//! `chatmigrate repair`: accept the current checksum of applied files that
//! changed, and delete failed rows so the migration runs again from its first
//! statement. Each repair is written to the history log with who and when.

use serde_json::json;

use crate::error::Result;
use crate::history::Status;
use crate::{migration, report, runner};

pub async fn run(ctx: &super::Ctx) -> Result<i32> {
    let local = migration::load(&ctx.cfg.source, ctx.cfg.backend)?;
    let (checksums, cleared) = runner::with_lock(&ctx.cfg, move |b| {
        Box::pin(async move {
            let mut checksums = Vec::new();
            let mut cleared = Vec::new();
            for r in b.read_history().await? {
                let Some(m) = local.iter().find(|m| m.version == r.version) else {
                    continue;
                };
                if r.status == Status::Applied && r.checksum != m.checksum {
                    b.set_checksum(r.version, &m.checksum).await?;
                    b.log_event(r.version, "repair-checksum", Some(&r.checksum), Some(&m.checksum), None)
                        .await?;
                    checksums.push(r.version);
                } else if r.status == Status::Failed {
                    b.delete_history(r.version).await?;
                    b.log_event(r.version, "clear-failed", Some(&r.checksum), None, r.error.as_deref())
                        .await?;
                    cleared.push(r.version);
                }
            }
            Ok((checksums, cleared))
        })
    })
    .await?;
    let msg = if checksums.is_empty() && cleared.is_empty() {
        "repair: nothing to repair".to_string()
    } else {
        format!(
            "repair: accepted {} changed checksum(s), cleared {} failed row(s)",
            checksums.len(),
            cleared.len()
        )
    };
    report::done(
        &ctx.style,
        &mut std::io::stdout().lock(),
        &msg,
        json!({"checksums": checksums, "cleared": cleared}),
    )?;
    Ok(0)
}
