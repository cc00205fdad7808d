//! `up` on an adopt fix (a file with `-- chatmigrate:adopt-fix`, written by
//! `chatmigrate adopt --write-fix`): it runs alone, under the migration
//! lock, after the same gate as any migration (lint with the live sizes,
//! objects that exist already), statement by statement (it builds indexes
//! CONCURRENTLY), and is recorded in the history log (`adopt-fix`, with its
//! checksum), not as a history row: the history stays empty, so
//! `chatmigrate adopt` can then record the migrations it adopts. A fix whose
//! checksum the log already holds is not run again.

use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Backend, ExecError};
use crate::config::Config;
use crate::dialect::{quote, ToolSql, Value};
use crate::error::{Error, Result};
use crate::lint;
use crate::migration::{Migration, SplitMigration, TxMode};
use crate::runner::{Applied, DryStep, Event, Line, UpOptions, UpReport};
use crate::sql;

use super::script::invalid_index_check;
use super::walk::drop_invalid_index;

const LOG_FIND: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/dialects/postgres/log_find.sql"));

/// Whether the set holds an adopt fix (then `up` runs [`up`] instead).
pub fn is_fix(local: &[Migration]) -> bool {
    local.iter().any(|m| m.directives.adopt_fix)
}

/// Runs the adopt fix of `local` (which must hold it alone) on the
/// connection `first` (what `up` connected with).
pub async fn up(
    cfg: &Config,
    local: &[Migration],
    opts: &UpOptions,
    events: &mut dyn FnMut(&Event),
    first: Result<Box<dyn Backend>>,
) -> Result<UpReport> {
    let alone = local.len() == 1;
    if !alone {
        if let Ok(b) = first {
            b.close().await;
        }
        let fix = local
            .iter()
            .find(|m| m.directives.adopt_fix)
            .map(|m| m.path.clone())
            .unwrap_or_default();
        let dir = std::path::Path::new(&fix)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| ".".into());
        return Err(Error::Schema {
            kind: "plan",
            message: format!(
                "{fix} is an adopt fix (-- chatmigrate:adopt-fix) and runs alone, but the migration set holds {} file(s)",
                local.len()
            ),
            hint: format!("keep the fix in a directory of its own and run it alone: chatmigrate up --migrations {dir}"),
        });
    }
    let m = local[0].split()?;
    let mut b = first?;
    let r = run(&mut *b, cfg, &m, opts, events).await;
    let unlocked = b.unlock().await;
    b.close().await;
    let report = r?;
    unlocked?;
    Ok(report)
}

async fn run(b: &mut dyn Backend, cfg: &Config, m: &SplitMigration, opts: &UpOptions, events: &mut dyn FnMut(&Event)) -> Result<UpReport> {
    events(&Event::Connected {
        target: b.target(),
        backend: b.name(),
        capabilities: b.capabilities(),
        facts: b.facts(),
    });
    let mut report = UpReport {
        target: b.target(),
        ..UpReport::default()
    };
    let caps = b.capabilities();
    if opts.dry_run {
        gate(b, cfg, std::slice::from_ref(m)).await?;
        let mut lines = Vec::new();
        for s in &m.statements {
            lines.push(if !caps.session_state && is_session_setting(s) {
                Line::Comment(format!(
                    "skipped on {} (a session setting does not outlive one call): {}",
                    b.name(),
                    s.sql
                ))
            } else {
                Line::Sent(s.sql.clone())
            });
        }
        lines.push(Line::Comment(format!(
            "recorded in the history log: action 'adopt-fix', checksum {}",
            m.checksum
        )));
        report.dry_run.push(DryStep {
            version: m.version,
            kind: crate::plan::Kind::Versioned,
            name: m.name.clone(),
            transaction: TxMode::NoTransaction,
            lines,
            notes: vec!["an adopt fix runs alone and is recorded in the history log, not as a migration".into()],
        });
        return Ok(report);
    }
    b.lock(cfg.lock_wait).await?;
    b.ensure_history().await?;
    let log = {
        let q = |t: String| match &cfg.history.schema {
            Some(s) => format!("{}.{}", quote(s), quote(&t)),
            None => quote(&t),
        };
        q(format!("{}_log", cfg.history.table))
    };
    let find = ToolSql::bind(
        LOG_FIND
            .lines()
            .skip_while(|l| l.starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("{log}", &log)
            .trim_end(),
        &[Value::Text(m.checksum.clone())],
    );
    if let Some(row) = b.query(&find).await?.into_iter().next() {
        let when = row.first().cloned().flatten().unwrap_or_default();
        let who = row.get(1).cloned().flatten().unwrap_or_default();
        events(&Event::Note {
            version: m.version,
            message: format!(
                "the adopt fix {} was applied on {when} by {who} (history log); it is not run again",
                m.path
            ),
        });
        return Ok(report);
    }
    gate(b, cfg, std::slice::from_ref(m)).await?;
    events(&Event::Applying {
        version: m.version,
        name: m.name.clone(),
    });
    let started = Instant::now();
    let total = m.statements.len();
    for (i, s) in m.statements.iter().enumerate() {
        if !caps.session_state && is_session_setting(s) {
            events(&Event::SkippedSessionSetting {
                version: m.version,
                statement: s.excerpt(),
            });
            continue;
        }
        if let Some((name, schema)) = sql::concurrent_index(s) {
            // A build of this fix that failed before left an INVALID index
            // (on Citus: or a shard index not valid).
            let found = b.query(&invalid_index_check(&name, schema.as_deref(), b.name())).await?;
            if let Some(qualified) = found.first().and_then(|r| r.first().cloned().flatten()) {
                drop_invalid_index(b, m, qualified, events).await?;
            }
        }
        match b.execute(&s.sql).await {
            Ok(()) => {}
            Err(ExecError::Statement { error, .. }) => {
                let location = m.location(i, error.offset.unwrap_or(0));
                return Err(Error::Schema {
                    kind: "database",
                    message: format!(
                        "{location}: the adopt fix failed at statement {} of {total} ({} before it ran): {error}",
                        i + 1,
                        i
                    ),
                    hint: "nothing of the fix is recorded: fix the cause, then let `chatmigrate adopt --write-fix FILE` write what is still to do, and apply that".into(),
                });
            }
            Err(e) => return Err(e.into_error(&format!("{} statement {}", m.path, i + 1))),
        }
    }
    b.log_event(
        m.version,
        "adopt-fix",
        None,
        Some(&m.checksum),
        Some(&format!("{} ({total} statements)", m.path)),
    )
    .await?;
    let a = Applied {
        version: m.version,
        kind: crate::plan::Kind::Versioned,
        name: m.name.clone(),
        transaction: TxMode::NoTransaction,
        statements: total,
        resumed_from: 0,
        out_of_order: false,
        duration_ms: started.elapsed().as_millis() as u64,
        answer_lost: false,
    };
    events(&Event::Applied(a.clone()));
    report.applied.push(a);
    Ok(report)
}

/// The gate every migration passes: objects that exist already, then the
/// error-level lint rules with the live sizes.
async fn gate(b: &mut dyn Backend, cfg: &Config, set: &[SplitMigration]) -> Result<()> {
    let read = crate::schema::live::read(b, cfg, set, &[(0, 0)]).await?;
    crate::schema::live::refuse(&b.target(), read.existing)?;
    let opts = lint::Options {
        live: Some(Arc::new(read.live)),
        ..crate::config::lint_options(cfg)
    };
    lint::gate(set, &[0], &opts)
}

fn is_session_setting(s: &sql::Statement) -> bool {
    matches!(&s.node, Some(pg_query::NodeEnum::VariableSetStmt(v)) if !v.is_local)
}
