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
        with_context(&ctx.cfg, &args.paths)?
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
    let mut undos = crate::undo::load(&cfg.source, extra, files, |m| values.substitute(m))?;
    if undos.is_empty() {
        return Ok(());
    }
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
/// it can be read) as context, all sorted by version.
fn with_context(cfg: &crate::config::Config, paths: &[PathBuf]) -> Result<(Vec<Migration>, Vec<usize>)> {
    let (source, extra) = (&cfg.source, crate::backend::extra_migrations(cfg.backend));
    let values = crate::placeholders::Values::of(cfg)?;
    let mut given = Vec::new();
    for p in paths {
        if p.is_dir() {
            given.extend(crate::placeholders::load_with(&Source::Dirs(vec![p.clone()]), extra, &values)?);
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
    all.sort_by_key(|(m, _)| m.version);
    let targets = all.iter().enumerate().filter(|(_, (_, t))| *t).map(|(i, _)| i).collect();
    Ok((all.into_iter().map(|(m, _)| m).collect(), targets))
}
