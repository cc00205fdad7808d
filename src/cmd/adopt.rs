//! `chatmigrate adopt [--target V] [--write-fix FILE] [--dev-url URL]`:
//! bring a database made without chatmigrate (by hand, by refinery, sqlx,
//! Flyway, ...) under it. Compares the live schema with the schema that the
//! migrations up to V make on a scratch database; if they match, records
//! V1..V as applied (history rows and log entries, as `baseline` does); if
//! not, records nothing, prints the differences and exits 1, and with
//! `--write-fix` writes an adopt fix (docs/adopt.md).

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::AdoptArgs;
use crate::config::{Config, Secret};
use crate::error::{Error, Result};
use crate::history::{Row, Status};
use crate::migration::{self, Migration, Source, SplitMigration};
use crate::render::{Outcome, SchemaOutcome};
use crate::runner;
use crate::schema::{diff, fix, introspect, objects, scratch};

pub async fn run(ctx: &super::Setup, args: &AdoptArgs) -> Result<Outcome> {
    let mut cfg = ctx.cfg.clone();
    if let Some(u) = &args.dev_url {
        cfg.dev_url = Some(Secret::new(u.clone()));
    }
    if let Some(f) = &args.write_fix {
        check_fix_path(&cfg, f)?;
    }
    let local = migration::split_all(&crate::placeholders::load(&cfg)?)?;
    let live = introspect::read_target(&cfg).await?;
    if !live.history.is_empty() {
        let versions: Vec<String> = live.history.iter().take(10).map(|r| format!("V{}", r.version)).collect();
        return Err(Error::Schema {
            kind: "plan",
            message: format!(
                "adopt: {} is managed by chatmigrate already: its history holds {} row(s) ({}{})",
                live.display,
                live.history.len(),
                versions.join(", "),
                if live.history.len() > 10 { ", ..." } else { "" }
            ),
            hint: "`chatmigrate diff` compares its schema with the applied migrations; `chatmigrate status` lists them".into(),
        });
    }
    let version = match args.target {
        Some(v) => {
            if !local.iter().any(|m| m.version == v) {
                return Err(Error::UnknownTarget {
                    flag: "--target",
                    target: v,
                });
            }
            v
        }
        None => objects::default_version(&local, &live.model).ok_or_else(|| match objects::partly_there(&local, &live.model) {
            None => Error::Schema {
                kind: "plan",
                message: format!(
                    "adopt: none of the objects the migrations create exist in {}: there is nothing to adopt",
                    live.display
                ),
                hint: "run `chatmigrate up` to apply the migrations, or pass --target V to compare with the schema of the migrations up to V"
                    .into(),
            },
            Some((v, c)) => Error::Schema {
                kind: "plan",
                message: format!(
                    "adopt: no migration has all the objects it creates in {}: V{v} creates {}, which it lacks",
                    live.display,
                    c.display()
                ),
                hint: "pass --target V to compare with the schema of the migrations up to V (with --write-fix FILE, a migration that makes what is missing)"
                    .into(),
            },
        })?,
    };
    // The repeatable migrations come with the newest version only, as `up`
    // applies them (after every versioned one).
    let newest = local.iter().filter(|m| !m.is_repeatable()).map(|m| m.version).max();
    let upto: Vec<SplitMigration> = local
        .iter()
        .filter(|m| match m.is_repeatable() {
            true => newest == Some(version),
            false => m.version <= version,
        })
        .cloned()
        .collect();
    let expected = scratch::expected(&cfg, &upto, live.coordinator.clone()).await?;
    let diffs = diff::compare(&expected.model, &live.model);
    let range = versions(&upto);
    let cost = json!({
        "live": {"queries": live.queries, "ms": live.elapsed.as_millis() as u64},
        "expected": {"queries": expected.queries, "ms": expected.elapsed.as_millis() as u64},
    });
    if diffs.is_empty() {
        let recorded = runner::with_lock(&cfg, |b| {
            let upto = upto.clone();
            Box::pin(async move {
                // Another runner may have started to manage it meanwhile.
                let applied = b.read_history().await?;
                if !applied.is_empty() {
                    return Err(Error::Schema {
                        kind: "plan",
                        message: "adopt: the history got rows while the schemas were compared; nothing was recorded".into(),
                        hint: "run `chatmigrate status` to see what another run applied".into(),
                    });
                }
                let mut done = Vec::new();
                if upto.iter().any(|m| m.is_repeatable()) {
                    b.ensure_repeatables().await?;
                }
                for m in &upto {
                    b.write_history(&Row::new(m, b.name(), Status::Applied, m.statements.len(), false))
                        .await?;
                    b.log_event(
                        m.version,
                        "adopt",
                        None,
                        Some(&m.checksum),
                        Some(&format!("adopt --target {version}: the schema matched ({})", m.label())),
                    )
                    .await?;
                    if !m.is_repeatable() {
                        done.push(m.version);
                    }
                }
                Ok(done)
            })
        })
        .await?;
        let message = format!(
            "adopt: the schema of {} matches the migrations {range}; recorded {} migration(s) as applied without running them",
            live.display,
            recorded.len()
        );
        return Ok(Outcome::Schema(SchemaOutcome {
            message,
            differences: Vec::new(),
            after: Vec::new(),
            data: json!({"target": live.display, "version": version, "matched": true, "recorded": recorded, "differences": [], "scratch": expected.scratch, "introspection": cost}),
            quiet_ok: true,
            exit_code: 0,
        }));
    }
    let written = match &args.write_fix {
        Some(path) => Some(write_fix(
            &cfg,
            path,
            &diffs,
            &expected.model,
            &live.model,
            &live.display,
            &range,
            version,
        )?),
        None => None,
    };
    let message = format!(
        "adopt: the schema of {} differs from the migrations {range} ({} difference(s)); nothing was recorded",
        live.display,
        diffs.len()
    );
    let fix = written
        .as_ref()
        .map(|(p, f)| json!({"path": p.display().to_string(), "statements": f.statements, "not_expressed": f.not_expressed}));
    let after = match &written {
        Some((path, f)) => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            format!(
                "wrote {}: {} statement(s){}; review it, apply it with `chatmigrate up --migrations {}`, then run `chatmigrate adopt --target {version}` again",
                path.display(),
                f.statements,
                if f.not_expressed.is_empty() {
                    String::new()
                } else {
                    format!(", {} difference(s) left to do by hand (listed at its top)", f.not_expressed.len())
                },
                dir.display()
            )
        }
        None => format!(
            "to write a migration that turns the database's schema into the expected one: chatmigrate adopt --target {version} --write-fix adopt/V1__adopt_fix.sql"
        ),
    };
    Ok(Outcome::Schema(SchemaOutcome {
        message,
        data: json!({"target": live.display, "version": version, "matched": false, "recorded": [], "differences": diffs, "scratch": expected.scratch, "fix": fix, "introspection": cost}),
        differences: diffs,
        after: vec![after],
        quiet_ok: false,
        exit_code: 1,
    }))
}

/// `V1..V4`, `V3`, or `V1, V5, V7`.
pub fn versions(set: &[SplitMigration]) -> String {
    let versioned: Vec<&SplitMigration> = set.iter().filter(|m| !m.is_repeatable()).collect();
    let repeatables = set.len() - versioned.len();
    let range = versions_of(&versioned);
    match repeatables {
        0 => range,
        n => format!("{range} and {n} repeatable(s)"),
    }
}

fn versions_of(set: &[&SplitMigration]) -> String {
    match set {
        [] => "(none)".into(),
        [one] => format!("V{}", one.version),
        [first, .., last] if set.windows(2).all(|w| w[1].version == w[0].version + 1) => format!("V{}..V{}", first.version, last.version),
        _ => set.iter().map(|m| format!("V{}", m.version)).collect::<Vec<_>>().join(", "),
    }
}

/// Refused before anything runs: a name that is not a migration file name,
/// a file of the migration set, or an existing file that is no adopt fix.
fn check_fix_path(cfg: &Config, path: &Path) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let bad = |why: String| Error::Schema {
        kind: "usage",
        message: format!("--write-fix {}: {why}", path.display()),
        hint: "name a file of its own directory, e.g. --write-fix adopt/V1__adopt_fix.sql".into(),
    };
    if let Err(e) = Migration::parse(name, &path.display().to_string(), b"SELECT 1;") {
        return Err(bad(format!("not a migration file name ({e})")));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Source::Dirs(dirs) = &cfg.source {
        let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        };
        if dirs.iter().any(|d| same(d, dir)) {
            return Err(bad(format!(
                "{} is a migration directory of this environment; an adopt fix runs alone",
                dir.display()
            )));
        }
    }
    if path.exists() {
        let text = std::fs::read(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let is_fix = Migration::parse(name, &path.display().to_string(), &text).is_ok_and(|m| m.directives.adopt_fix);
        if !is_fix {
            return Err(bad("the file exists and is not an adopt fix: it is not overwritten".into()));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_fix(
    _cfg: &Config,
    path: &PathBuf,
    diffs: &[diff::Difference],
    expected: &crate::schema::model::Model,
    live: &crate::schema::model::Model,
    target: &str,
    range: &str,
    version: i64,
) -> Result<(PathBuf, fix::Fix)> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let now = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default();
    let header = vec![
        format!("Written by `chatmigrate adopt --write-fix` on {now} for {target}:"),
        format!("it turns the database's schema into the one migrations {range} make."),
        "Review it, then apply it alone (it runs statement by statement and is".to_string(),
        "recorded in the history log as `adopt-fix`, not as a migration):".to_string(),
        format!("  chatmigrate up --migrations {}", dir.display()),
        "and record the migrations:".to_string(),
        format!("  chatmigrate adopt --target {version}"),
    ];
    let f = fix::write(diffs, expected, live, &header);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // The file must load as the migration `up` will run.
    Migration::parse(name, &path.display().to_string(), f.text.as_bytes())
        .and_then(|m| m.split())
        .map_err(|e| Error::Internal {
            context: Some("writing the adopt fix".into()),
            message: e.to_string(),
        })?;
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    std::fs::write(path, &f.text).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    Ok((path.clone(), f))
}
