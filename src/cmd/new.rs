//! `chatmigrate new NAME`: create the next migration file (UTC timestamp
//! version by default, `--sequential` for n+1 above every directory of the
//! environment) in the first migration directory. Touches no database.

use std::path::PathBuf;

use serde_json::json;

use crate::cli::NewArgs;
use crate::error::{Error, Result};
use crate::migration::{self, Source};
use crate::render::{Done, Outcome};

pub fn run(ctx: &super::Setup, args: &NewArgs) -> Result<Outcome> {
    let name = &args.name;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        let suggestion: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .collect::<String>()
            .split('_')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        let example = if suggestion.is_empty() {
            "add_user_email".to_string()
        } else {
            suggestion
        };
        return Err(Error::Usage {
            message: format!("new: the name `{name}` may hold only letters, digits and underscores"),
            hint: format!("e.g. `chatmigrate new {example}`: the file is then V<version>__{example}.sql"),
        });
    }
    let dir = match &ctx.cfg.source {
        Source::Dirs(d) if !d.is_empty() => d[0].clone(),
        _ => PathBuf::from("migrations"),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    if args.repeatable {
        return repeatable(&ctx.cfg.source, &dir, name);
    }
    // Every directory of the environment shares one version space (e.g.
    // migrations/ plus a citus-only directory): the new version is above all.
    let dirs = match &ctx.cfg.source {
        Source::Dirs(d) if !d.is_empty() => d.iter().filter(|d| d.is_dir()).cloned().collect(),
        _ => vec![dir.clone()],
    };
    let existing = migration::load(&Source::Dirs(dirs), crate::backend::extra_migrations(ctx.cfg.backend))?;
    let max = existing.iter().max_by_key(|m| m.version);
    let next = match max {
        None => 1,
        Some(m) => m
            .version
            .checked_add(1)
            .ok_or_else(|| Error::NoVersionLeft { path: m.path.clone() })?,
    };
    let version = if args.sequential {
        next
    } else {
        let now = time::OffsetDateTime::now_utc();
        let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]");
        let stamp: i64 = now.format(&fmt).map_err(|e| Error::Other(e.to_string()))?.parse().unwrap_or(0);
        stamp.max(next)
    };
    let path = dir.join(format!("V{version}__{name}.sql"));
    let body = if args.no_transaction {
        "-- chatmigrate:no-transaction\n-- Statements below run one at a time, outside a transaction; keep them re-runnable (IF NOT EXISTS).\n"
    } else {
        "-- Statements below run in one transaction with their history row.\n"
    };
    std::fs::write(&path, body).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let shown = path.display().to_string();
    if args.undo {
        let undo = dir.join(format!("V{version}__{name}{}", crate::undo::SUFFIX));
        let body = format!("-- The undo of V{version}__{name}.sql, run by `chatmigrate down`: revert what it does, in reverse order.\n");
        std::fs::write(&undo, body).map_err(|e| Error::Io {
            path: undo.display().to_string(),
            source: e,
        })?;
        let undo = undo.display().to_string();
        return Ok(Outcome::Done(Done::new(
            format!("created {shown} and {undo}"),
            json!({"path": shown, "undo_path": undo, "version": version}),
        )));
    }
    Ok(Outcome::Done(Done::new(
        format!("created {shown}"),
        json!({"path": shown, "version": version}),
    )))
}

/// `new --repeatable NAME`: `R__NAME.sql` in `dir`, refused when a
/// repeatable migration of that name is in any directory of the set.
fn repeatable(source: &Source, dir: &std::path::Path, name: &str) -> Result<Outcome> {
    let dirs: Vec<PathBuf> = match source {
        Source::Dirs(d) if !d.is_empty() => d.iter().filter(|d| d.is_dir()).cloned().collect(),
        _ => vec![dir.to_path_buf()],
    };
    for d in &dirs {
        let there = d.join(format!("R__{name}.sql"));
        if there.exists() {
            return Err(Error::Usage {
                message: format!("new: {} exists already", there.display()),
                hint: "edit that file: `up` applies a repeatable migration again whenever it changes".into(),
            });
        }
    }
    let path = dir.join(format!("R__{name}.sql"));
    let body = "-- A repeatable migration: applied after the versioned ones, and again whenever this file changes,\n-- in one transaction with its history row. Keep it re-runnable: CREATE OR REPLACE VIEW / FUNCTION.\n";
    std::fs::write(&path, body).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let shown = path.display().to_string();
    Ok(Outcome::Done(Done::new(
        format!("created {shown}"),
        json!({"path": shown, "repeatable": name}),
    )))
}
