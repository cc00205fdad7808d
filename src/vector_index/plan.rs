//! The settings chatmigrate sends around one vector index build, planned
//! from the live database just before the build (earlier migrations of the
//! same run may have filled the table): the table's row estimate, the
//! column's type and dimensions, the server's version and
//! `maintenance_work_mem` ([`super::memory`] turns them into bytes).
//!
//! For each `CREATE INDEX [CONCURRENTLY] ... USING hnsw | ivfflat` of a
//! migration: `maintenance_work_mem` raised to the estimate plus
//! [`super::memory::MARGIN_PERCENT`], capped by `index_build_memory`
//! (`auto`: [`AUTO_CAP_KB`]), never lowered; `max_parallel_maintenance_workers`
//! per `index_build_workers`; a warning when the cap is below the estimate.
//! A setting the migration file makes itself (`SET maintenance_work_mem`)
//! is the file's: chatmigrate leaves it alone.
//!
//! Planned on the direct backend only: through the Data API a session
//! setting does not outlive its call, and on Citus the build of a
//! distributed table runs on the workers, which a session setting of the
//! coordinator does not reach (docs/vector-indexes.md).

use std::collections::HashMap;

use pg_query::NodeEnum;

use super::memory::{self, Hnsw, Ivfflat, VectorType};
use super::statement::{self, CreateIndex, IndexBuild, IndexOptions, Method, ReindexTarget};
use crate::backend::Backend;
use crate::config::Config;
use crate::dialect::ToolSql;
use crate::error::Result;
use crate::migration::SplitMigration;
use crate::value::show_kb;

/// The cap of `index_build_memory = "auto"`: 1 GB, enough for the HNSW
/// graph of about 210,000 rows of `vector(1024)` (m = 16), small enough
/// for any server a migration runs against.
pub const AUTO_CAP_KB: u64 = 1 << 20;

/// What chatmigrate does around one build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildPlan {
    /// Settings to make for the build, as `name = 'value'` (sent as `SET`
    /// before it and `RESET` after it, or `SET LOCAL` in a transaction).
    pub settings: Vec<(String, String)>,
    /// What was estimated and why the settings are what they are, for the
    /// user (a note in the run, a comment in the dry run).
    pub note: String,
    /// The cap is below the estimate: the build will overflow.
    pub warning: Option<String>,
    /// The `maintenance_work_mem` set, kB.
    pub memory_kb: Option<u64>,
    /// How the settings reach the sessions that build.
    pub carrier: Carrier,
}

/// How the settings reach the build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Carrier {
    /// The build runs in chatmigrate's own session: `SET` / `SET LOCAL`.
    #[default]
    Session,
    /// A table Citus manages: the build runs on the workers, over the
    /// coordinator's connections to them, which a session `SET` does not
    /// reach. In a transaction, `SET LOCAL` with
    /// `citus.propagate_set_commands = 'local'` (Citus sends the `SET LOCAL`s
    /// to the workers' transactions). Outside one (`CONCURRENTLY`): the
    /// role's setting in this database (`ALTER ROLE CURRENT_USER IN DATABASE`,
    /// which Citus propagates to the workers) for the build's duration, with
    /// the coordinator's cached worker connections dropped
    /// (`citus.max_cached_conns_per_worker = 0`) so that the build's worker
    /// sessions start after it and take it. `database`: quoted identifier.
    /// `table`: the build's table, quoted; a query of it after the cache is
    /// off closes the cached connections to its workers.
    /// `earlier`: the role's own settings in the database (name, value),
    /// given back after the build instead of a `RESET`.
    Citus {
        database: String,
        table: String,
        earlier: Vec<(String, String)>,
    },
}

impl BuildPlan {
    /// What is sent before the build, as session statements (`local`: in
    /// the migration's transaction, `SET LOCAL`).
    pub fn sets(&self, local: bool) -> Vec<String> {
        let kw = if local { "SET LOCAL" } else { "SET" };
        let plain = self.settings.iter().map(|(n, v)| format!("{kw} {n} = '{v}'"));
        match (&self.carrier, local) {
            (Carrier::Session, _) => plain.collect(),
            (Carrier::Citus { .. }, true) => std::iter::once("SET LOCAL citus.propagate_set_commands = 'local'".to_string())
                .chain(plain)
                .collect(),
            // The coordinator builds the (empty) shell's index itself, in
            // this session: an IVFFlat's lists need memory even there.
            (Carrier::Citus { table, .. }, false) => plain
                .chain([
                    "SET citus.max_cached_conns_per_worker = 0".to_string(),
                    format!("SELECT 1 FROM {table} LIMIT 1"),
                ])
                .collect(),
        }
    }

    /// Settings that outlive the session, as (statement, its undo): sent
    /// before [`Self::sets`], undone after the build, and also when it fails
    /// (outside a transaction only).
    pub fn persistent(&self) -> Vec<(String, String)> {
        match &self.carrier {
            Carrier::Session => Vec::new(),
            Carrier::Citus { database, earlier, .. } => self
                .settings
                .iter()
                .map(|(n, v)| {
                    let role = format!("ALTER ROLE CURRENT_USER IN DATABASE {database}");
                    let undo = match earlier.iter().find(|(e, _)| e == n) {
                        Some((_, old)) => format!("{role} SET {n} = '{}'", old.replace('\'', "''")),
                        None => format!("{role} RESET {n}"),
                    };
                    (format!("{role} SET {n} = '{v}'"), undo)
                })
                .collect(),
        }
    }

    /// The plan for a transport without sessions (the Data API) outside a
    /// transaction: nothing can reach the build, so nothing is sent; when
    /// the build needs more than the server's setting, a warning says so
    /// and what to do instead.
    pub fn unsent(&self) -> BuildPlan {
        let memory = self
            .settings
            .iter()
            .find(|(n, _)| n == "maintenance_work_mem")
            .map(|(_, v)| v.clone());
        let warning = memory.map(|v| {
            format!(
                "the Data API keeps no session setting between calls, so this build runs with the cluster's maintenance_work_mem, below the {v} it needs: pgvector builds the rest of the graph on disk, many times more slowly (and a REINDEX or CREATE INDEX without CONCURRENTLY in a transactional file gets SET LOCAL); raise maintenance_work_mem in the DB cluster parameter group to {v} or more (docs/vector-indexes.md)"
            )
        });
        BuildPlan {
            settings: Vec::new(),
            note: self.note.replacen("; maintenance_work_mem ", "; wanted: maintenance_work_mem ", 1),
            warning: match (&self.warning, warning) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.clone().or(b),
            },
            memory_kb: None,
            carrier: Carrier::Session,
        }
    }

    /// What is sent after the build (outside a transaction), after the
    /// undos of [`Self::persistent`].
    pub fn resets(&self) -> Vec<String> {
        match &self.carrier {
            Carrier::Session => self.settings.iter().map(|(n, _)| format!("RESET {n}")).collect(),
            Carrier::Citus { .. } => self
                .settings
                .iter()
                .map(|(n, _)| format!("RESET {n}"))
                .chain(["RESET citus.max_cached_conns_per_worker".to_string()])
                .collect(),
        }
    }
}

/// The plans of one migration, by statement index.
pub type Plans = HashMap<usize, BuildPlan>;

/// The settings a migration file makes itself (`SET x = ...`, `SET LOCAL`,
/// `RESET x`), by name.
fn file_settings(m: &SplitMigration) -> Vec<String> {
    m.statements
        .iter()
        .filter_map(|s| match &s.node {
            Some(NodeEnum::VariableSetStmt(v)) => Some(v.name.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// What the catalog says about one build's table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFacts {
    pub server_version_num: u32,
    pub maintenance_work_mem_kb: u64,
    pub rows: u64,
    pub heap_blocks: u64,
    /// The indexed column's type name and modifier (`vector`, 1024).
    pub column_type: Option<(String, i32)>,
}

impl TableFacts {
    fn from_row(r: &[Option<String>]) -> Option<TableFacts> {
        let num = |i: usize| r.get(i).cloned().flatten().and_then(|v| v.parse::<i64>().ok());
        Some(TableFacts {
            server_version_num: u32::try_from(num(0)?).ok()?,
            maintenance_work_mem_kb: u64::try_from(num(1)?).ok()?,
            rows: u64::try_from(num(2)?.max(0)).ok()?,
            heap_blocks: u64::try_from(num(3)?.max(0)).ok()?,
            column_type: r.get(4).cloned().flatten().zip(num(5).and_then(|t| i32::try_from(t).ok())),
        })
    }
}

/// Plans one build from what the catalog says. `None` when there is
/// nothing to set: an empty table, an unknown type or dimension, an
/// estimate the server's setting covers, and no workers configured.
pub fn plan_build(c: &CreateIndex, facts: &TableFacts, cap_kb: u64, workers: Option<u32>, file_sets: &[String]) -> Option<BuildPlan> {
    let from_column = facts
        .column_type
        .as_ref()
        .and_then(|(name, typmod)| Some((VectorType::from_type_name(name)?, u32::try_from(*typmod).ok())));
    let vt = c.vector_type().or(from_column.map(|(t, _)| t));
    let dims = c.dims().or(from_column.and_then(|(_, d)| d));
    let mut settings = Vec::new();
    let mut note = String::new();
    let mut warning = None;
    let mut memory_kb = None;
    let memory_is_the_files = file_sets.iter().any(|s| s == "maintenance_work_mem");
    let value_bytes = vt.zip(dims).and_then(|(t, d)| t.value_bytes(d));
    let needed_kb = match (c.method, value_bytes) {
        (_, _) if facts.rows == 0 || memory_is_the_files => None,
        (Method::Hnsw, Some(v)) => Hnsw::new(v, c.options.m(), facts.server_version_num).required_kb_any(facts.rows),
        (Method::Ivfflat, Some(v)) => Some(
            Ivfflat {
                value_bytes: v,
                dims: dims.unwrap_or(0),
                lists: c.options.lists(),
            }
            .required_kb(facts.rows, facts.heap_blocks),
        ),
        (_, None) => None,
    };
    if let Some(needed_kb) = needed_kb {
        let p = memory::plan_memory(needed_kb, facts.maintenance_work_mem_kb, cap_kb);
        let ty = match (vt, dims) {
            (Some(t), Some(d)) => format!("{}({d})", t.name()),
            _ => "vector".into(),
        };
        note = format!(
            "{} build on {}: {} rows estimated of {ty}, the graph needs about {}",
            c.method.name(),
            c.table,
            facts.rows,
            show_kb(needed_kb.div_ceil(1024) * 1024)
        );
        match p.set_kb {
            Some(kb) => {
                memory_kb = Some(kb);
                settings.push(("maintenance_work_mem".to_string(), memory::setting(kb)));
                note += &format!(
                    "; maintenance_work_mem {} for this build (the server's: {})",
                    memory::setting(kb),
                    memory::setting(facts.maintenance_work_mem_kb)
                );
            }
            None => {
                note += &format!(
                    "; the server's maintenance_work_mem ({}) holds it",
                    memory::setting(facts.maintenance_work_mem_kb)
                )
            }
        }
        if p.short {
            warning = Some(shortage(c, facts, &p, cap_kb, value_bytes.unwrap_or(0)));
        }
    }
    if let Some(w) = workers.filter(|_| !file_sets.iter().any(|s| s == "max_parallel_maintenance_workers")) {
        settings.push(("max_parallel_maintenance_workers".to_string(), w.to_string()));
        if !note.is_empty() {
            note += &format!("; {w} parallel maintenance workers (index_build_workers)");
        }
    }
    (!settings.is_empty() || warning.is_some() || !note.is_empty()).then_some(BuildPlan {
        settings,
        note,
        warning,
        memory_kb,
        carrier: Carrier::Session,
    })
}

/// The warning when even the cap is below the estimate.
fn shortage(c: &CreateIndex, facts: &TableFacts, p: &memory::MemoryPlan, cap_kb: u64, value_bytes: u64) -> String {
    let raise = memory::setting(p.wanted_kb);
    match c.method {
        Method::Hnsw => {
            let g = Hnsw::new(value_bytes, c.options.m(), facts.server_version_num);
            let fits = g.tuples_fitting(p.effective_kb, memory::Build::Serial).min(facts.rows);
            let rest = facts.rows - fits;
            format!(
                "the HNSW graph of {} needs about {} of maintenance_work_mem for {} rows, but the build gets {} (index_build_memory caps at {}): pgvector will stop building in memory after about {fits} rows and insert the other {rest} ({}%) one by one into the index on disk, several times more slowly (docs/vector-indexes.md has the measured slowdown); raise index_build_memory to \"{raise}\" or more",
                c.table,
                memory::setting(p.needed_kb.div_ceil(1024) * 1024),
                facts.rows,
                memory::setting(p.effective_kb),
                show_kb(cap_kb),
                rest * 100 / facts.rows.max(1),
            )
        }
        Method::Ivfflat => format!(
            "the IVFFlat build of {} needs about {} of maintenance_work_mem for its k-means, but gets {} (index_build_memory caps at {}): the server will refuse it (\"memory required is ...\"); raise index_build_memory to \"{raise}\" or more",
            c.table,
            memory::setting(p.needed_kb),
            memory::setting(p.effective_kb),
            show_kb(cap_kb),
        ),
    }
}

/// Plans every vector index build of `m` from statement `from` on, reading
/// the catalog once per build (on the direct backend only; elsewhere no
/// plan: see the module docs).
pub async fn read(b: &mut dyn Backend, cfg: &Config, m: &SplitMigration, from: usize) -> Result<Plans> {
    let mut plans = Plans::new();
    let citus = match b.name() {
        // The Data API: SET LOCAL in a transactional file's transaction;
        // outside one only a warning (BuildPlan::unsent).
        "postgres" | "rds-data" => false,
        "citus" => true,
        _ => return Ok(plans),
    };
    let file_sets = file_settings(m);
    let cap_kb = cfg.index_build_memory_kb.unwrap_or(AUTO_CAP_KB);
    for (k, s) in m.statements.iter().enumerate().skip(from) {
        let builds = match s.node.as_ref().and_then(statement::index_build) {
            Some(IndexBuild::Create(c)) => vec![(c, None)],
            Some(IndexBuild::Reindex { target, concurrently }) => reindexed(b, &target, concurrently).await?,
            _ => continue,
        };
        let mut best: Option<BuildPlan> = None;
        for (c, index_type) in builds {
            let rows = b.query(&ToolSql::index_build_plan(&c.table, c.column.as_deref())).await?;
            let Some(mut facts) = rows.first().and_then(|r| TableFacts::from_row(r)) else {
                continue;
            };
            if index_type.is_some() {
                facts.column_type = index_type;
            }
            let mut carrier = Carrier::Session;
            if citus {
                // The shell on the coordinator is empty: a shard's rows count.
                let shards = b.query(&crate::dialect::citus::index_build_shards(&c.table)).await?;
                if let Some(r) = shards.first() {
                    let num = |i: usize| r.get(i).cloned().flatten().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                    facts.rows = num(1);
                    facts.heap_blocks = num(2);
                    carrier = Carrier::Citus {
                        database: r.get(3).cloned().flatten().unwrap_or_default(),
                        table: quoted(&c.table),
                        earlier: r
                            .get(4)
                            .cloned()
                            .flatten()
                            .unwrap_or_default()
                            .lines()
                            .filter_map(|l| l.split_once('=').map(|(n, v)| (n.to_string(), v.to_string())))
                            .collect(),
                    };
                }
            }
            if let Some(mut p) = plan_build(&c, &facts, cap_kb, cfg.index_build_workers, &file_sets) {
                if let Carrier::Citus { .. } = carrier {
                    p.note = p
                        .note
                        .replacen(" rows estimated of ", " rows estimated in the largest shard of ", 1);
                }
                p.carrier = carrier;
                best = Some(match best {
                    None => p,
                    Some(q) => merge(q, p),
                });
            }
        }
        if let Some(p) = best {
            plans.insert(k, p);
        }
    }
    Ok(plans)
}

/// A table key (`t`, `s.t`) as a quoted name.
fn quoted(table: &str) -> String {
    table
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// Two builds of one statement (a `REINDEX TABLE` of a table with two
/// vector indexes, rebuilt one after the other): one setting, the larger;
/// both notes and warnings.
fn merge(a: BuildPlan, b: BuildPlan) -> BuildPlan {
    let join = |x: String, y: String| match (x.is_empty(), y.is_empty()) {
        (true, _) => y,
        (_, true) => x,
        _ => format!("{x}; {y}"),
    };
    let (big, small) = if b.memory_kb > a.memory_kb { (b, a) } else { (a, b) };
    BuildPlan {
        settings: big.settings,
        note: join(small.note, big.note),
        warning: match (small.warning, big.warning) {
            (Some(x), Some(y)) => Some(format!("{x}; {y}")),
            (x, y) => x.or(y),
        },
        memory_kb: big.memory_kb,
        carrier: big.carrier,
    }
}

/// The pgvector indexes a `REINDEX INDEX` / `REINDEX TABLE` rebuilds, from
/// the catalog, as the `CREATE INDEX` that would build each (its options
/// from `pg_class.reloptions`), with the type the index stores (its own
/// attribute: also for an expression index). `REINDEX SCHEMA` / `DATABASE`
/// are not planned (a whole schema's indexes, one after the other).
async fn reindexed(b: &mut dyn Backend, target: &ReindexTarget, concurrently: bool) -> Result<Vec<(CreateIndex, Option<(String, i32)>)>> {
    let sql = match target {
        ReindexTarget::Index(i) => ToolSql::reindex_build_plan(Some(i), None),
        ReindexTarget::Table(t) => ToolSql::reindex_build_plan(None, Some(t)),
        ReindexTarget::Schema(_) | ReindexTarget::Database => return Ok(Vec::new()),
    };
    let rows = b.query(&sql).await?;
    Ok(rows.iter().filter_map(|r| reindexed_index(r, concurrently)).collect())
}

/// One row of dialects/postgres/reindex_build_plan.sql.
fn reindexed_index(r: &[Option<String>], concurrently: bool) -> Option<(CreateIndex, Option<(String, i32)>)> {
    let text = |i: usize| r.get(i).cloned().flatten();
    let index_type = text(4).zip(text(5).and_then(|t| t.parse::<i32>().ok()));
    Some((
        CreateIndex {
            method: Method::from_name(&text(1)?)?,
            name: None,
            table: text(0)?,
            concurrently,
            if_not_exists: false,
            column: text(3),
            cast: None,
            opclass: None,
            options: IndexOptions::from_reloptions(&text(2).unwrap_or_default()),
            partial: text(6).as_deref() == Some("true"),
        },
        index_type,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hnsw(table: &str) -> CreateIndex {
        CreateIndex {
            method: Method::Hnsw,
            name: Some("i".into()),
            table: table.into(),
            concurrently: true,
            if_not_exists: true,
            column: Some("e".into()),
            cast: None,
            opclass: Some("vector_l2_ops".into()),
            options: Default::default(),
            partial: false,
        }
    }

    fn facts(rows: u64, mwm_kb: u64) -> TableFacts {
        TableFacts {
            server_version_num: 180001,
            maintenance_work_mem_kb: mwm_kb,
            rows,
            heap_blocks: rows / 2,
            column_type: Some(("vector".into(), 1024)),
        }
    }

    #[test]
    fn raises_to_the_estimate_with_a_margin() {
        let p = plan_build(&hnsw("t"), &facts(20_000, 65536), AUTO_CAP_KB, None, &[]).unwrap();
        assert_eq!(p.settings.len(), 1);
        let (name, value) = &p.settings[0];
        assert_eq!(name, "maintenance_work_mem");
        // 20,000 rows need about 96 MB; plus 10%, whole MB.
        let mb: u64 = value.trim_end_matches("MB").parse().unwrap();
        assert!((100..=110).contains(&mb), "{value}");
        assert_eq!(p.warning, None);
        assert_eq!(p.sets(false), vec![format!("SET maintenance_work_mem = '{value}'")]);
        assert_eq!(p.sets(true), vec![format!("SET LOCAL maintenance_work_mem = '{value}'")]);
        assert_eq!(p.resets(), vec!["RESET maintenance_work_mem".to_string()]);
        assert!(p.note.contains("20000 rows estimated of vector(1024)"), "{}", p.note);
    }

    #[test]
    fn never_lowers_and_leaves_the_files_setting_alone() {
        let p = plan_build(&hnsw("t"), &facts(2_000, 65536), AUTO_CAP_KB, None, &[]).unwrap();
        assert!(p.settings.is_empty());
        assert!(p.note.contains("the server's maintenance_work_mem (64MB) holds it"), "{}", p.note);
        assert_eq!(
            plan_build(
                &hnsw("t"),
                &facts(20_000, 65536),
                AUTO_CAP_KB,
                None,
                &["maintenance_work_mem".into()]
            ),
            None
        );
        assert_eq!(plan_build(&hnsw("t"), &facts(0, 65536), AUTO_CAP_KB, None, &[]), None);
        let w = plan_build(&hnsw("t"), &facts(0, 65536), AUTO_CAP_KB, Some(4), &[]).unwrap();
        assert_eq!(w.settings, vec![("max_parallel_maintenance_workers".to_string(), "4".to_string())]);
    }

    #[test]
    fn warns_when_the_cap_is_too_small() {
        let p = plan_build(&hnsw("t"), &facts(20_000, 65536), 80 * 1024, Some(2), &[]).unwrap();
        assert_eq!(
            p.settings,
            vec![
                ("maintenance_work_mem".to_string(), "80MB".to_string()),
                ("max_parallel_maintenance_workers".to_string(), "2".to_string())
            ]
        );
        let w = p.warning.unwrap();
        assert!(w.starts_with("the HNSW graph of t needs about 9"), "{w}");
        assert!(w.contains("but the build gets 80MB (index_build_memory caps at 80MB)"), "{w}");
        assert!(w.ends_with("or more"), "{w}");
    }

    #[test]
    fn citus_carries_the_settings_to_the_workers() {
        let mut p = plan_build(&hnsw("t"), &facts(20_000, 65536), AUTO_CAP_KB, Some(2), &[]).unwrap();
        let mwm = p.settings[0].1.clone();
        p.carrier = Carrier::Citus {
            database: "d".into(),
            table: quoted("s.t"),
            earlier: vec![("max_parallel_maintenance_workers".into(), "1".into())],
        };
        assert_eq!(
            p.sets(true),
            vec![
                "SET LOCAL citus.propagate_set_commands = 'local'".to_string(),
                format!("SET LOCAL maintenance_work_mem = '{mwm}'"),
                "SET LOCAL max_parallel_maintenance_workers = '2'".to_string(),
            ]
        );
        assert_eq!(
            p.persistent(),
            vec![
                (
                    format!("ALTER ROLE CURRENT_USER IN DATABASE d SET maintenance_work_mem = '{mwm}'"),
                    "ALTER ROLE CURRENT_USER IN DATABASE d RESET maintenance_work_mem".to_string()
                ),
                (
                    "ALTER ROLE CURRENT_USER IN DATABASE d SET max_parallel_maintenance_workers = '2'".to_string(),
                    "ALTER ROLE CURRENT_USER IN DATABASE d SET max_parallel_maintenance_workers = '1'".to_string()
                ),
            ]
        );
        assert_eq!(
            p.sets(false),
            vec![
                format!("SET maintenance_work_mem = '{mwm}'"),
                "SET max_parallel_maintenance_workers = '2'".to_string(),
                "SET citus.max_cached_conns_per_worker = 0".to_string(),
                "SELECT 1 FROM \"s\".\"t\" LIMIT 1".to_string(),
            ]
        );
        assert_eq!(p.resets().last().unwrap(), "RESET citus.max_cached_conns_per_worker");
    }

    #[test]
    fn without_sessions_nothing_is_sent_and_a_warning_says_what_to_raise() {
        let p = plan_build(&hnsw("t"), &facts(20_000, 65536), AUTO_CAP_KB, None, &[]).unwrap();
        let u = p.unsent();
        assert!(u.settings.is_empty() && u.sets(false).is_empty() && u.resets().is_empty());
        let w = u.warning.unwrap();
        assert!(w.starts_with("the Data API keeps no session setting between calls"), "{w}");
        assert!(w.contains(&format!("parameter group to {} or more", p.settings[0].1)), "{w}");
        // Nothing to raise: no warning.
        let small = plan_build(&hnsw("t"), &facts(2_000, 65536), AUTO_CAP_KB, None, &[]).unwrap();
        assert_eq!(small.unsent().warning, None);
    }

    #[test]
    fn a_reindexed_index_from_the_catalog() {
        let r: Vec<Option<String>> = vec![
            Some("public.t".into()),
            Some("hnsw".into()),
            Some("m=24,ef_construction=100".into()),
            None,
            Some("halfvec".into()),
            Some("3072".into()),
            Some("false".into()),
        ];
        let (c, ty) = reindexed_index(&r, true).unwrap();
        assert_eq!(
            (c.method, c.table.as_str(), c.options.m(), c.column),
            (Method::Hnsw, "public.t", 24, None)
        );
        assert_eq!(c.options.ef_construction, Some(100));
        assert!(c.concurrently && !c.partial);
        assert_eq!(ty, Some(("halfvec".to_string(), 3072)));
        let mut btree = r.clone();
        btree[1] = Some("btree".into());
        assert_eq!(reindexed_index(&btree, false), None);
    }

    #[test]
    fn reads_the_catalog_row() {
        let r: Vec<Option<String>> = ["180001", "65536", "20000", "10000", "vector", "1024"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        assert_eq!(TableFacts::from_row(&r), Some(facts(20_000, 65536)));
        assert_eq!(TableFacts::from_row(&r[..3]), None);
    }
}
