//! `chatmigrate baseline`: record migrations as applied without running them.
//! `--target V` marks every file up to V, on a database whose history is
//! empty (with rows already there, only with `--allow-existing`: the
//! versions it would mark never ran through chatmigrate); `--from-refinery`
//! imports a refinery history table, checking each file against refinery's
//! own checksum (computed by refinery-core) so nothing drifted is adopted.

use serde_json::json;

use crate::backend::Backend;
use crate::classify;
use crate::cli::BaselineArgs;
use crate::dialect::quote;
use crate::error::{Error, Result};
use crate::history::{Row, Status};
use crate::migration::{self, SplitMigration};
use crate::render::{Done, Outcome};
use crate::runner;

fn row(m: &SplitMigration, backend: &str) -> Row {
    Row::new(m, backend, Status::Applied, m.statements.len(), false)
}

pub async fn run(ctx: &super::Setup, args: &BaselineArgs) -> Result<Outcome> {
    let local = migration::split_all(&crate::placeholders::load(&ctx.cfg)?)?;
    let recorded = if args.from_refinery {
        let table = args.refinery_table.clone();
        runner::with_lock(&ctx.cfg, move |b| Box::pin(import_refinery(b, local, table))).await?
    } else {
        let v = args.target.unwrap_or_default();
        if !local.iter().any(|m| m.version == v) {
            return Err(Error::UnknownTarget {
                flag: "--target",
                target: v,
            });
        }
        let allow = args.allow_existing;
        runner::with_lock(&ctx.cfg, move |b| Box::pin(baseline_to(b, local, v, allow))).await?
    };
    let msg = format!("baseline: recorded {} migration(s) as applied without running them", recorded.len());
    Ok(Outcome::Done(Done::new(msg, json!({"recorded": recorded}))))
}

async fn baseline_to(b: &mut dyn Backend, local: Vec<SplitMigration>, version: i64, allow_existing: bool) -> Result<Vec<i64>> {
    let applied = b.read_history().await?;
    let marks: Vec<&SplitMigration> = local
        .iter()
        // Repeatable migrations are not marked: the next `up` applies them.
        .filter(|m| !m.is_repeatable() && m.version <= version && !applied.iter().any(|r| r.version == m.version))
        .collect();
    if !applied.is_empty() && !marks.is_empty() && !allow_existing {
        // The history says chatmigrate already runs this database: versions
        // it has not applied yet are not "already there" by assumption.
        return Err(Error::BaselineOverHistory {
            version,
            applied: applied.iter().map(|r| r.version).collect(),
            would_mark: marks.iter().map(|m| m.version).collect(),
        });
    }
    let mut done = Vec::new();
    for m in marks {
        b.write_history(&row(m, b.name())).await?;
        b.log_event(
            m.version,
            "baseline",
            None,
            Some(&m.checksum),
            Some(&format!("baseline --target {version}")),
        )
        .await?;
        done.push(m.version);
    }
    Ok(done)
}

async fn import_refinery(b: &mut dyn Backend, local: Vec<SplitMigration>, table: String) -> Result<Vec<i64>> {
    let sql = format!(
        // `r.version`: a bare `version` would sort the text output column.
        "SELECT r.version::text, r.name, r.applied_on, r.checksum FROM {} r ORDER BY r.version",
        quote(&table)
    );
    let rows = b.query(&sql).await.map_err(|e| match e {
        Error::Db { error, .. } if classify::undefined_table(&error.code) => Error::Other(format!(
            "table {table} does not exist: nothing to import (use --refinery-table if it has another name)"
        )),
        other => other,
    })?;
    let applied = b.read_history().await?;
    let mut done = Vec::new();
    for r in rows {
        let s = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let version: i64 = s(0)
            .parse()
            .map_err(|_| Error::Other(format!("{table}: unreadable version `{}`", s(0))))?;
        let m = local
            .iter()
            .find(|m| m.version == version)
            .ok_or_else(|| Error::MissingFile { version, name: s(1) })?;
        // refinery hashes name, version and text with SipHash-1-3.
        let theirs = refinery_core::Migration::unapplied(&format!("V{}__{}", m.version, m.name), &m.sql)
            .map_err(|e| Error::Other(format!("{}: refinery cannot read this migration: {e}", m.path)))?
            .checksum()
            .to_string();
        if m.name != s(1) || theirs != s(3) {
            return Err(Error::ChecksumDrift {
                path: m.path.clone(),
                version,
                applied: format!("refinery:{} ({})", s(3), s(1)),
                file: format!("refinery:{theirs} ({})", m.name),
            });
        }
        if applied.iter().any(|a| a.version == version) {
            continue;
        }
        b.write_history(&row(m, b.name())).await?;
        b.log_event(
            version,
            "import-refinery",
            Some(&format!("refinery:{}", s(3))),
            Some(&m.checksum),
            Some(&format!("applied by refinery on {}", s(2))),
        )
        .await?;
        done.push(version);
    }
    Ok(done)
}
