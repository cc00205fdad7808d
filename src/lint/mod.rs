//! The linter: rules over parsed migrations, one file per rule in `rules/`,
//! registered in the one list [`RULES`] (docs/lint.md, `docs/rules/<id>.md`).
//!
//! A rule sees one migration through a [`Ctx`]: its statements (libpg_query
//! parse trees), the [`Facts`] of the whole migration set (which tables exist,
//! their columns, keys, and Citus distribution at each statement), the
//! backend kind and its capabilities. It returns [`Hit`]s; the engine turns
//! them into [`Finding`]s with `file:line:col` and the statement excerpt, and
//! applies `-- chatmigrate:ignore <rule> -- <reason>` comments (above a
//! statement, or at the top of the file) and the environment's
//! `lint_include` / `lint_exclude` lists. An ignore that suppressed nothing
//! is reported by the rule `unused-ignore`.
//!
//! `chatmigrate lint` runs every enabled rule; `up` runs the error-level ones
//! on the migrations it is about to apply, after reading the history and
//! before it takes the lock or writes anything, and refuses with the same
//! report. `verify` runs the error-level ones on every file.

pub mod ast;
pub mod facts;
pub mod live;
pub mod rules;

use crate::capabilities::{Capabilities, Property};
use crate::error::{Error, Location};
pub use crate::findings::{Finding, Level, Report};
use crate::migration::{Ignore, Migration, SplitMigration};
use crate::settings::BackendKind;
pub use facts::{Facts, Pos};

/// Which environments a rule runs in by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every backend.
    All,
    /// Only environments whose backend has this property (others may
    /// `lint_include` it).
    Having(Property),
}

/// What a rule reports: a statement of the migration (and a byte offset into
/// it), or a line of the file (ignore comments), with the message and help.
#[derive(Debug, Clone)]
pub struct Hit {
    pub statement: usize,
    pub offset: usize,
    /// A 1-based line of the file instead of a statement.
    pub line: Option<usize>,
    pub message: String,
    pub help: String,
}

impl Hit {
    pub fn new(statement: usize, message: impl Into<String>, help: impl Into<String>) -> Hit {
        Hit {
            statement,
            offset: 0,
            line: None,
            message: message.into(),
            help: help.into(),
        }
    }

    /// Points at a parse-tree location (a byte offset in the file, as
    /// libpg_query reports it) inside the statement.
    pub fn at(mut self, ctx: &Ctx<'_>, location: i32) -> Hit {
        if let Some(s) = ctx.migration.statements.get(self.statement) {
            let at = usize::try_from(location).unwrap_or(0);
            if (s.start..s.end).contains(&at) {
                self.offset = at - s.start;
            }
        }
        self
    }

    /// Points at a line of the file instead of a statement.
    pub fn on_line(line: usize, message: impl Into<String>, help: impl Into<String>) -> Hit {
        Hit {
            line: Some(line),
            ..Hit::new(0, message, help)
        }
    }
}

/// A rule: a stable kebab-case id, a default level, where it applies, and a
/// check over one migration.
pub struct Rule {
    pub id: &'static str,
    pub level: Level,
    pub summary: &'static str,
    /// Whether an ignore comment or `lint_exclude` may silence it (not for
    /// what the server would refuse anyway).
    pub ignorable: bool,
    pub scope: Scope,
    pub check: fn(&Ctx<'_>, &mut Vec<Hit>),
}

/// What a rule sees.
pub struct Ctx<'a> {
    pub migration: &'a SplitMigration,
    /// The migration's index in the set (for [`Pos`]).
    pub position: usize,
    pub facts: &'a Facts<'a>,
    pub backend: BackendKind,
    pub caps: Capabilities,
    /// How each ignore comment of the migration fared (for `unused-ignore`,
    /// which runs last).
    pub ignores: &'a [IgnoreUse<'a>],
    /// Citus: this migration's transaction is opened in parallel
    /// multi-shard mode (the environment's mode, or the file's
    /// `-- chatmigrate:citus-parallel`), unless the file sets
    /// `citus.multi_shard_modify_mode` itself.
    pub citus_parallel: bool,
    /// What the live database says about the run's tables (`None`: lint
    /// without a database, conservative).
    pub live: Option<&'a live::Live>,
    /// Linting the undo files `down` is about to run ([`Options::undo`]).
    pub undo: bool,
}

impl Ctx<'_> {
    /// The position of statement `i` of this migration in the set.
    pub fn pos(&self, statement: usize) -> Pos {
        Pos {
            migration: self.position,
            statement,
        }
    }

    /// The statements with their parse trees.
    pub fn statements(&self) -> impl Iterator<Item = (usize, &pg_query::NodeEnum)> {
        self.migration
            .statements
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.node.as_ref()?)))
    }

    /// Whether `table` was created earlier in this migration (an empty
    /// table: its locks hurt nobody). With the live database: also a table
    /// that does not exist yet, or that a migration earlier in this run
    /// creates.
    pub fn new_table(&self, table: &str, statement: usize) -> bool {
        let pos = self.pos(statement);
        if self.facts.created_in_migration(table, pos) {
            return true;
        }
        match self.live {
            None => false,
            Some(live) => live.missing(table) || self.facts.created_at(table, pos).is_some_and(|c| live.run.contains(&c.migration)),
        }
    }

    /// Whether a lock held on `table` while a statement works through its
    /// rows hurts: always without the live database; with it, only above
    /// the threshold (or of unknown size). Asked after [`Ctx::new_table`].
    pub fn large_table(&self, table: &str) -> bool {
        self.live.is_none_or(|l| l.large(table))
    }

    /// Whether `table` may hold a row (for statements that fail on any row).
    pub fn holds_rows(&self, table: &str) -> bool {
        self.live.is_none_or(|l| l.holds_rows(table))
    }

    /// Why a lock on `table` hurts, as a clause: without the live database
    /// "it was not created in this migration, so it may hold rows", with it
    /// the table's estimated rows and size.
    pub fn why_large(&self, table: &str) -> String {
        match self.live {
            None => "it was not created in this migration, so it may hold rows".into(),
            Some(l) => l.why_large(table),
        }
    }

    /// `""` without the live database; `"; table t holds about ..."` with it,
    /// for a message that names the lock.
    pub fn size_note(&self, table: &str) -> String {
        match self.live {
            None => String::new(),
            Some(l) => format!("; {}", l.why_large(table)),
        }
    }

    /// Every `ALTER COLUMN ... TYPE` on a table not created in this
    /// migration, with the column's type before it (if the set tells).
    pub fn column_retypes(&self) -> Vec<Retype> {
        let mut out = Vec::new();
        for (i, node) in self.statements() {
            let Some((table, _, cmds)) = ast::alter_cmds(node) else { continue };
            if self.new_table(&table, i) {
                continue;
            }
            let state = self.facts.state(&table, self.pos(i));
            for cmd in cmds
                .into_iter()
                .filter(|c| ast::cmd_is(c, pg_query::protobuf::AlterTableType::AtAlterColumnType))
            {
                let Some(new) = ast::cmd_column(cmd).and_then(|c| c.type_name.as_ref()).map(ast::Type::of) else {
                    continue;
                };
                out.push(Retype {
                    statement: i,
                    table: table.clone(),
                    column: cmd.name.clone(),
                    old: state.column(&cmd.name).cloned(),
                    new,
                });
            }
        }
        out
    }
}

/// One column type change, from [`Ctx::column_retypes`].
pub struct Retype {
    pub statement: usize,
    pub table: String,
    pub column: String,
    pub old: Option<ast::Type>,
    pub new: ast::Type,
}

/// One rule id of one ignore comment, and whether it suppressed something.
#[derive(Debug, Clone)]
pub struct IgnoreUse<'a> {
    pub ignore: &'a Ignore,
    pub rule: &'a str,
    pub status: IgnoreStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreStatus {
    Used,
    /// The rule ran on this file and reported nothing the comment covers.
    Unused,
    /// No rule has this id.
    Unknown,
    /// The rule cannot be ignored.
    NotIgnorable,
    /// The rule did not run here (another backend's, or excluded).
    NotRun,
}

/// Every rule, in reporting order; `unused-ignore` last (it reads what the
/// others suppressed). Adding a rule: a file in `rules/`, one line here, a
/// page in `docs/rules/<id>.md`.
pub static RULES: &[&Rule] = &[
    // Transactions.
    &rules::transaction_incompatible::RULE,
    &rules::transaction_nesting::RULE,
    &rules::prefer_robust_stmts::RULE,
    // PostgreSQL locking and compatibility.
    &rules::require_concurrent_index_creation::RULE,
    &rules::require_concurrent_index_deletion::RULE,
    &rules::constraint_missing_not_valid::RULE,
    &rules::disallowed_unique_constraint::RULE,
    &rules::adding_not_nullable_field::RULE,
    &rules::adding_field_with_default::RULE,
    &rules::changing_column_type::RULE,
    &rules::renaming_column_or_table::RULE,
    &rules::dropping_column_or_table::RULE,
    &rules::prefer_bigint_key::RULE,
    &rules::prefer_timestamptz::RULE,
    &rules::ban_char_field::RULE,
    &rules::identifier_too_long::RULE,
    // pgvector.
    &rules::pgvector_index_concurrently::RULE,
    &rules::pgvector_hnsw_build_memory::RULE,
    &rules::pgvector_index_dimensions::RULE,
    &rules::pgvector_explicit_opclass::RULE,
    &rules::pgvector_dimension_change::RULE,
    // Citus.
    &rules::citus_unique_without_distribution_column::RULE,
    &rules::citus_foreign_key_to_distributed::RULE,
    &rules::citus_foreign_key_not_colocated::RULE,
    &rules::citus_distribution_column_change::RULE,
    &rules::citus_parallel_operation::RULE,
    // The RDS Data API.
    &rules::data_api_statement_too_long::RULE,
    &rules::data_api_session_setting::RULE,
    &rules::data_api_temp_table::RULE,
    // The seed's naming rule.
    &rules::naming_convention::RULE,
    // Last: reads what the others suppressed.
    &rules::unused_ignore::RULE,
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

/// The statements the run loop opens a transactional migration with, after
/// `BEGIN` (the backend's prelude, e.g. Citus's `SET LOCAL
/// citus.multi_shard_modify_mode`): the rules read them like the file's own.
#[derive(Clone)]
pub struct Prelude(pub std::sync::Arc<PreludeFn>);

/// See [`Prelude`].
pub type PreludeFn = dyn Fn(&Migration) -> Vec<String> + Send + Sync;

impl std::fmt::Debug for Prelude {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prelude(..)")
    }
}

/// Which rules run, and for which backend.
#[derive(Debug, Clone)]
pub struct Options {
    pub backend: BackendKind,
    /// Rules turned on outside their scope (e.g. the Citus rules for a
    /// plain PostgreSQL environment that mirrors a Citus production).
    pub include: Vec<String>,
    /// Rules turned off (never the non-ignorable ones).
    pub exclude: Vec<String>,
    /// Only error-level rules (the gate of `up` and `verify`).
    pub errors_only: bool,
    /// What the environment's backend can do.
    pub capabilities: Capabilities,
    /// The statements the run opens each transactional migration with.
    pub prelude: Prelude,
    /// The live database's tables (`up`, `lint --pending`, `verify`);
    /// `None` keeps the conservative verdicts of `lint`.
    pub live: Option<std::sync::Arc<live::Live>>,
    /// The undo files `down` is about to run, with the live sizes: a rule
    /// in [`UNDO_ERRORS`] is an error there, on a table that holds rows.
    pub undo: bool,
}

/// Rules whose findings are errors in the undo files `down` is about to
/// run (the gate, with the live sizes): a `DROP INDEX` without
/// CONCURRENTLY on a table with rows blocks every query on it while the
/// operator is already backing out a bad deploy.
pub const UNDO_ERRORS: &[&str] = &["require-concurrent-index-deletion"];

impl Options {
    /// The level of `rule`'s findings with these options.
    pub fn level(&self, rule: &Rule) -> Level {
        match self.undo && UNDO_ERRORS.contains(&rule.id) {
            true => Level::Error,
            false => rule.level,
        }
    }

    /// Whether `rule` runs with these options.
    pub fn enabled(&self, rule: &Rule) -> bool {
        let id = rule.id.to_string();
        if self.errors_only && self.level(rule) != Level::Error {
            return false;
        }
        if rule.ignorable && self.exclude.contains(&id) {
            return false;
        }
        match rule.scope {
            Scope::All => true,
            Scope::Having(p) => p.of(&self.capabilities) || self.include.contains(&id),
        }
    }
}

/// Checks the ids of `lint_include` / `lint_exclude` (for config.rs).
pub fn check_rule_list(key: &str, ids: &[String], excluding: bool) -> Result<(), String> {
    for id in ids {
        match rule(id) {
            None => return Err(format!("{key}: no rule has the id `{id}` (the rules: docs/lint.md)")),
            Some(r) if excluding && !r.ignorable => {
                return Err(format!(
                    "{key}: `{id}` cannot be excluded: the server would refuse the statement anyway"
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Lints the migrations of `set` at the indices `targets`; the whole set
/// (split into statements) gives the context. Files of the set
/// that did not parse only give no facts.
pub fn lint(set: &[SplitMigration], targets: &[usize], opts: &Options) -> Report {
    let facts = Facts::build(set);
    let caps = opts.capabilities;
    let enabled: Vec<&Rule> = RULES.iter().copied().filter(|r| opts.enabled(r)).collect();
    let mut report = Report {
        files: targets.len(),
        rules: enabled.iter().map(|r| r.id).collect(),
        ..Report::default()
    };
    for &position in targets {
        let first = report.findings.len();
        let m = &set[position];
        let ignores: Vec<&Ignore> = m.ignores().collect();
        // The mode the run loop opens the transaction with: the statements
        // it sends first, read like the file's own.
        let citus_parallel = (opts.prelude.0)(m)
            .iter()
            .filter_map(|s| crate::sql::split("prelude", s).ok())
            .flatten()
            .filter_map(|s| s.node)
            .any(|n| rules::citus_parallel_operation::sets_parallel(&n) == Some(true));
        let mut uses: Vec<IgnoreUse<'_>> = ignores
            .iter()
            .flat_map(|ig| {
                ig.rules.iter().map(|id| {
                    let status = match rule(id) {
                        None => IgnoreStatus::Unknown,
                        Some(r) if !r.ignorable => IgnoreStatus::NotIgnorable,
                        Some(r) if !enabled.iter().any(|e| e.id == r.id) => IgnoreStatus::NotRun,
                        Some(_) => IgnoreStatus::Unused,
                    };
                    IgnoreUse {
                        ignore: ig,
                        rule: id,
                        status,
                    }
                })
            })
            .collect();
        for rule in &enabled {
            let mut hits = Vec::new();
            let ctx = Ctx {
                migration: m,
                position,
                facts: &facts,
                backend: opts.backend,
                caps,
                ignores: &uses,
                citus_parallel,
                live: opts.live.as_deref(),
                undo: opts.undo,
            };
            (rule.check)(&ctx, &mut hits);
            for hit in hits {
                let covering = uses.iter_mut().filter(|u| {
                    u.rule == rule.id
                        && u.status != IgnoreStatus::NotIgnorable
                        && hit.line.is_none()
                        && u.ignore.statement.is_none_or(|s| s == hit.statement)
                });
                let mut suppressed = false;
                for u in covering {
                    u.status = IgnoreStatus::Used;
                    suppressed = true;
                }
                if !suppressed {
                    let mut f = finding(m, rule, hit);
                    f.level = opts.level(rule);
                    report.findings.push(f);
                }
            }
        }
        // In file order; findings on one spot stay in registry order.
        report.findings[first..].sort_by_key(|f| (f.location.line, f.location.col));
    }
    report
}

fn finding(m: &SplitMigration, rule: &Rule, hit: Hit) -> Finding {
    let (location, excerpt) = match hit.line {
        Some(line) => (
            Location {
                path: m.path.clone(),
                line,
                col: 1,
            },
            m.sql.lines().nth(line.saturating_sub(1)).unwrap_or("").trim().to_string(),
        ),
        None => (
            m.location(hit.statement, hit.offset),
            m.statements.get(hit.statement).map(|s| s.excerpt()).unwrap_or_default(),
        ),
    };
    Finding {
        rule: rule.id,
        level: rule.level,
        location,
        excerpt,
        message: hit.message,
        help: hit.help,
        ignorable: rule.ignorable,
    }
}

/// The gate of `up` (pending migrations) and `verify` (every file): runs the
/// error-level rules and refuses with the report when any fires.
pub fn gate(set: &[SplitMigration], targets: &[usize], opts: &Options) -> Result<(), Error> {
    let opts = Options {
        errors_only: true,
        ..opts.clone()
    };
    let report = lint(set, targets, &opts);
    if report.findings.is_empty() {
        Ok(())
    } else {
        Err(Error::Lint(Box::new(report)))
    }
}

/// Test support: lint SQL files as one set, render each finding the way
/// `chatmigrate lint` prints it.
#[cfg(test)]
pub mod testing {
    use super::*;

    /// Lints `files` (V1, V2, ... in order) for `backend`; every file is a target.
    pub fn lint_files(backend: BackendKind, files: &[&str]) -> Report {
        let set: Vec<SplitMigration> = files
            .iter()
            .enumerate()
            .map(|(i, sql)| {
                let name = format!("V{}__m.sql", i + 1);
                crate::migration::Migration::parse(&name, &name, sql.as_bytes())
                    .unwrap()
                    .split()
                    .unwrap()
            })
            .collect();
        let targets: Vec<usize> = (0..set.len()).collect();
        lint(
            &set,
            &targets,
            &crate::config::lint_options(&{
                let mut cfg = crate::settings::Config::from_url("postgres://localhost/x").unwrap();
                cfg.backend = backend;
                cfg
            }),
        )
    }

    /// The findings of `rule` only, rendered as text.
    pub fn render(rule: &str, backend: BackendKind, files: &[&str]) -> String {
        let mut r = lint_files(backend, files);
        r.findings.retain(|f| f.rule == rule);
        let mut out = Vec::new();
        crate::render::lint_findings(&mut out, &r.findings, false).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// `render` for plain PostgreSQL and one file.
    pub fn pg(rule: &str, sql: &str) -> String {
        render(rule, BackendKind::Postgres, &[sql])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(backend: BackendKind) -> Report {
        // With the placeholders substituted (V3 and V4 hold `${embedding_dimensions}`).
        let mut cfg = crate::settings::Config::from_url("postgres://localhost/x").unwrap();
        cfg.backend = backend;
        let set = crate::migration::split_all(&crate::placeholders::load(&cfg).unwrap()).unwrap();
        let targets: Vec<usize> = (0..set.len()).collect();
        let opts = Options {
            backend,
            include: Vec::new(),
            exclude: Vec::new(),
            errors_only: false,
            ..crate::config::lint_options(&{
                let mut cfg = crate::settings::Config::from_url("postgres://localhost/x").unwrap();
                cfg.backend = backend;
                cfg
            })
        };
        lint(&set, &targets, &opts)
    }

    /// The shipped chat schema passes every rule of every backend (V4 sets
    /// no memory of its own: chatmigrate plans its build).
    #[test]
    fn shipped_schema_passes() {
        for backend in [BackendKind::Postgres, BackendKind::Citus, BackendKind::RdsData] {
            let r = shipped(backend);
            assert!(r.findings.is_empty(), "{backend:?}: {:#?}", r.findings);
        }
    }

    /// Every rule has a kebab-case id, a page in docs/rules/, and a line in
    /// docs/lint.md; ids are unique.
    #[test]
    fn every_rule_is_documented() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let index = std::fs::read_to_string(root.join("docs/lint.md")).unwrap();
        let mut ids = std::collections::HashSet::new();
        for r in RULES {
            assert!(ids.insert(r.id), "duplicate id {}", r.id);
            assert!(
                r.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                r.id
            );
            let page = std::fs::read_to_string(root.join(format!("docs/rules/{}.md", r.id)))
                .unwrap_or_else(|_| panic!("docs/rules/{}.md is missing", r.id));
            assert!(page.starts_with(&format!("# {}\n", r.id)), "docs/rules/{}.md: title", r.id);
            for section in ["## Problem", "## Lock taken", "## Safer alternative", "## When to ignore"] {
                assert!(page.contains(section), "docs/rules/{}.md lacks {section}", r.id);
            }
            let level = format!("**Level:** {}", r.level.as_str());
            assert!(page.contains(&level), "docs/rules/{}.md: {level}", r.id);
            assert!(
                index.contains(&format!("[`{}`](rules/{}.md)", r.id, r.id)),
                "docs/lint.md does not list {}",
                r.id
            );
        }
    }
}
