//! `chatmigrate lint [PATH...] [--pending]`: run the lint rules (docs/lint.md)
//! and print the findings. Default: every migration of the environment;
//! PATHs: those files or directories, with the environment's set as
//! context; `--pending`: what the target database has not applied, read
//! through the same history path as `status` (nothing is written). Exit 1
//! on error-level findings.

use std::path::{Path, PathBuf};

use crate::cli::LintArgs;
use crate::error::Result;
use crate::migration::{self, Migration, Source, SplitMigration};
use crate::render::Outcome;
use crate::{lint, plan, runner};

pub async fn run(ctx: &super::Setup, args: &LintArgs) -> Result<Outcome> {
    let mut live = None;
    // Undo files given as PATHs, linted after the set as `down` runs them.
    let mut given_undos = Vec::new();
    let (files, targets) = if args.pending {
        let st = runner::load_state(&ctx.cfg).await?;
        let opts = plan::PlanOptions {
            target: None,
            allow_out_of_order: ctx.cfg.allow_out_of_order,
        };
        let plan = plan::plan(&st.local, &st.applied, &opts)?;
        let targets = plan.steps.iter().map(|s| s.index).collect();
        live = Some(plan.steps.iter().map(|s| (s.index, s.resume_from)).collect::<Vec<_>>());
        (st.local, targets)
    } else if args.paths.is_empty() {
        let set = crate::placeholders::load(&ctx.cfg)?;
        let targets = (0..set.len()).collect();
        (set, targets)
    } else {
        let (files, targets, undos) = with_context(&ctx.cfg, &args.paths)?;
        given_undos = undos;
        (files, targets)
    };
    // The targets must parse; the others are context only (a file that
    // does not parse gives no facts).
    let set = migration::split_set(&files, targets.iter().copied())?;
    let mut opts = crate::config::lint_options(&ctx.cfg);
    if let Some(run) = live {
        // With the database: locking hazards are judged by the live sizes, as `up` does.
        opts.live = Some(std::sync::Arc::new(crate::schema::live::for_run(&ctx.cfg, &set, &run).await?));
    }
    let mut report = lint::lint(&set, &targets, &opts);
    if !args.pending && args.paths.is_empty() {
        undo_files(&ctx.cfg, &files, &set, &opts, &mut report)?;
    } else if !given_undos.is_empty() {
        lint_undos(given_undos, &set, &opts, &mut report)?;
    }
    Ok(Outcome::Lint(report))
}

/// The whole set's undo files (`undo.rs`), linted after it, newest first
/// (the order `down` runs them), without `dropping-column-or-table`: an
/// undo is where a table is meant to go.
fn undo_files(
    cfg: &crate::config::Config,
    files: &[Migration],
    set: &[SplitMigration],
    opts: &lint::Options,
    report: &mut lint::Report,
) -> Result<()> {
    let values = crate::placeholders::Values::of(cfg)?;
    let extra = crate::backend::extra_migrations(cfg.backend);
    let undos = crate::undo::load(&cfg.source, extra, files, |m| values.substitute(m))?;
    if undos.is_empty() {
        return Ok(());
    }
    lint_undos(undos, set, opts, report)
}

/// Lints `undos` after `set` (its context), newest first (the order `down`
/// runs them), without `dropping-column-or-table`.
fn lint_undos(mut undos: Vec<Migration>, set: &[SplitMigration], opts: &lint::Options, report: &mut lint::Report) -> Result<()> {
    undos.sort_by_key(|u| std::cmp::Reverse(u.version));
    let undos = migration::split_all(&undos)?;
    let mut all = set.to_vec();
    let first = all.len();
    all.extend(undos);
    let targets: Vec<usize> = (first..all.len()).collect();
    let mut opts = opts.clone();
    opts.exclude.push("dropping-column-or-table".into());
    let r = lint::lint(&all, &targets, &opts);
    report.files += r.files;
    report.findings.extend(r.findings);
    Ok(())
}

/// The files under `paths` as targets, within the environment's set (when
/// it can be read) as context, sorted as `up` runs them (versions, then
/// repeatable migrations); and the undo files given (`*.undo.sql`), read
/// under their migration's version and name.
fn with_context(cfg: &crate::config::Config, paths: &[PathBuf]) -> Result<(Vec<Migration>, Vec<usize>, Vec<Migration>)> {
    let (source, extra) = (&cfg.source, crate::backend::extra_migrations(cfg.backend));
    let values = crate::placeholders::Values::of(cfg)?;
    let mut given = Vec::new();
    let mut undos = Vec::new();
    for p in paths {
        let file_name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if p.is_dir() {
            given.extend(crate::placeholders::load_with(&Source::Dirs(vec![p.clone()]), extra, &values)?);
        } else if crate::undo::is_undo_file(file_name) {
            let shown = p.display().to_string();
            let bytes = std::fs::read(p).map_err(|e| crate::error::Error::Io {
                path: shown.clone(),
                source: e,
            })?;
            let target = format!("{}.sql", file_name.strip_suffix(crate::undo::SUFFIX).unwrap_or(file_name));
            let mut u = Migration::parse(&target, &shown, &bytes).map_err(|e| match e {
                crate::error::Error::BadFileName { .. } => crate::error::Error::Undo {
                    at: shown.clone(),
                    message: "an undo file is named after its migration: V{version}__{name}.undo.sql".into(),
                    hint: "rename it after the migration it reverts, e.g. V3__add_theme_index.undo.sql beside V3__add_theme_index.sql"
                        .into(),
                },
                e => e,
            })?;
            if u.is_repeatable() {
                return Err(crate::error::Error::Undo {
                    at: shown,
                    message: "a repeatable migration has no undo file: `down` reverts versioned migrations only".into(),
                    hint: "remove it; change the R__ file instead (`up` applies it again)".into(),
                });
            }
            values.substitute(&mut u)?;
            undos.push(u);
        } else {
            let mut m = migration::load_file(p)?;
            values.substitute(&mut m)?;
            given.push(m);
        }
    }
    let same = |a: &str, b: &str| match (std::fs::canonicalize(Path::new(a)), std::fs::canonicalize(Path::new(b))) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    };
    let context = crate::placeholders::load_with(source, extra, &values).unwrap_or_default();
    let mut all: Vec<(Migration, bool)> = context
        .into_iter()
        .filter(|m| !given.iter().any(|g| same(&g.path, &m.path)))
        .map(|m| (m, false))
        .collect();
    all.extend(given.into_iter().map(|m| (m, true)));
    all.sort_by(|(a, _), (b, _)| migration::order(a, b));
    let targets = all.iter().enumerate().filter(|(_, (_, t))| *t).map(|(i, _)| i).collect();
    Ok((all.into_iter().map(|(m, _)| m).collect(), targets, undos))
}
