//! The gate's look at the live database, in one query per run
//! (`dialects/postgres/live_tables.sql`): the size of every table the
//! pending migrations touch (for the locking rules, [`crate::lint::live`])
//! and whether the objects they create without `IF NOT EXISTS` exist
//! already (a hand-made database: `up` refuses before anything runs and
//! points to `chatmigrate adopt`).

use std::collections::{BTreeSet, HashMap};

use crate::backend::Backend;
use crate::config::{BackendKind, Config};
use crate::dialect::{quote, ToolSql, Value};
use crate::error::{Error, ExistingObject, Result};
use crate::lint::ast;
use crate::lint::live::{Live, Size, Thresholds};
use crate::migration::SplitMigration;

use super::objects;

const LIVE_TABLES: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/dialects/postgres/live_tables.sql"));
const CITUS_SIZES: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/dialects/citus/live_sizes.sql"));

/// The thresholds of the environment (`lint_large_table_rows`, `lint_large_table_mb`).
pub fn thresholds(cfg: &Config) -> Thresholds {
    Thresholds {
        rows: cfg.large_table_rows,
        bytes: cfg.large_table_mb.saturating_mul(1024 * 1024),
    }
}

/// Every table key the statements of `run` name (any table reference).
fn table_keys(set: &[SplitMigration], run: &[usize]) -> Vec<String> {
    let mut keys = BTreeSet::new();
    // The tables of the indexes a DROP INDEX names, as the set made them
    // (built only when the run drops one).
    let mut facts = None;
    for &p in run {
        for s in &set[p].statements {
            let Some(node) = &s.node else { continue };
            if let pg_query::NodeEnum::DropStmt(d) = node {
                if d.remove_type == pg_query::protobuf::ObjectType::ObjectIndex as i32 {
                    let facts = facts.get_or_insert_with(|| crate::lint::Facts::build(set));
                    for name in ast::drop_keys(d) {
                        let bare = name.rsplit('.').next().unwrap_or(&name);
                        if let Some(t) = facts.index_table(bare) {
                            keys.insert(t.to_string());
                        }
                    }
                }
            }
            for (n, ..) in node.nodes() {
                if let pg_query::NodeRef::RangeVar(r) = n {
                    if !r.relname.is_empty() {
                        keys.insert(ast::rel_key(r));
                    }
                }
            }
        }
    }
    keys.into_iter().collect()
}

/// What the catalog said for a run.
pub struct Read {
    /// The sizes of the run's tables.
    pub live: Live,
    /// The objects the run creates that exist already.
    pub existing: Vec<ExistingObject>,
    /// The history table exists now (read in the same query; `false` when
    /// nothing needed a query): a runner creates it under the lock before
    /// it applies anything, so while it is missing no other runner has
    /// made the objects found.
    pub history_exists: bool,
}

/// The history table's quoted name, qualified when it has a schema (as the
/// connect-time probe looks it up).
fn history_name(cfg: &Config) -> String {
    match &cfg.history.schema {
        Some(s) => format!("{}.{}", quote(s), quote(&cfg.history.table)),
        None => quote(&cfg.history.table),
    }
}

/// What the catalog says for the run `run` (positions in `set`, split into
/// statements, each with the first statement that runs): the tables'
/// sizes, the objects that would collide, and whether the history table
/// exists.
pub async fn read(b: &mut dyn Backend, cfg: &Config, set: &[SplitMigration], run: &[(usize, usize)]) -> Result<Read> {
    let positions: Vec<usize> = run.iter().map(|r| r.0).collect();
    let keys = table_keys(set, &positions);
    let candidates = objects::to_check(set, run);
    let mut live = Live {
        tables: HashMap::new(),
        thresholds: thresholds(cfg),
        run: positions,
        empty_database: false,
    };
    if keys.is_empty() && candidates.is_empty() {
        return Ok(Read {
            live,
            existing: Vec::new(),
            history_exists: false,
        });
    }
    let history = history_name(cfg);
    let (kinds, names): (Vec<String>, Vec<String>) = candidates
        .iter()
        .map(|(_, c)| {
            let (k, n) = c.catalog();
            (k.to_string(), n)
        })
        .chain([("relation".to_string(), history.clone())])
        .unzip();
    // On Citus the shards are measured on the workers: when one cannot be
    // reached, the distributed tables' sizes are unknown (the gate treats
    // them as large) and the run goes on to meet the node failure where a
    // migration needs the node, with the hint that names it.
    let (rows, unreachable) = match b.query(&sql(Sizes::of(cfg.backend), &keys, &kinds, &names)).await {
        Err(Error::Db { error, .. }) if cfg.backend == BackendKind::Citus && error.code.starts_with("08") => {
            let why = format!(
                "a Citus worker did not answer: {}",
                error.message.lines().next().unwrap_or_default()
            );
            (b.query(&sql(Sizes::CoordinatorOnly, &keys, &kinds, &names)).await?, Some(why))
        }
        other => (other?, None),
    };
    let mut found: BTreeSet<(String, String)> = BTreeSet::new();
    for r in rows {
        let f = |i: usize| r.get(i).cloned().flatten();
        match f(0).as_deref() {
            Some("table") => {
                let Some(key) = f(1) else { continue };
                let size = if f(2).as_deref() != Some("true") {
                    Size::Missing
                } else {
                    let num = |i: usize| f(i).and_then(|v| v.parse::<i64>().ok());
                    match (num(4), num(6), num(7)) {
                        (Some(rows), Some(bytes), Some(heap_bytes)) => Size::Measured {
                            rows,
                            estimated: f(5).as_deref() == Some("true"),
                            bytes,
                            heap_bytes,
                        },
                        _ => Size::Unknown(match f(3).as_deref() {
                            Some("r" | "p") if unreachable.is_some() => unreachable.clone().unwrap_or_default(),
                            Some("v") => "a view".into(),
                            Some("f") => "a foreign table".into(),
                            Some(k) => format!("relkind {k}"),
                            None => "not in pg_class".into(),
                        }),
                    }
                };
                live.tables.insert(key, size);
            }
            Some("object") => {
                if let (Some(k), Some(n)) = (f(1), f(2)) {
                    found.insert((k, n));
                }
            }
            _ => {}
        }
    }
    let existing = candidates
        .into_iter()
        .filter(|(_, c)| {
            let (k, n) = c.catalog();
            found.contains(&(k.to_string(), n))
        })
        .map(|(p, c)| {
            let m = &set[p];
            ExistingObject {
                kind: c.kind.as_str(),
                name: c.shown_name(),
                table: c.table.clone(),
                location: m.location(c.statement, 0),
                version: m.version,
            }
        })
        .collect();
    Ok(Read {
        live,
        existing,
        history_exists: found.contains(&("relation".to_string(), history)),
    })
}

/// The live sizes for `lint --pending` and `verify`, on a connection of
/// their own (nothing is written): a database that does not exist yet is
/// empty, and every table is new there.
pub async fn for_run(cfg: &Config, set: &[SplitMigration], run: &[(usize, usize)]) -> Result<Live> {
    let positions: Vec<usize> = run.iter().map(|r| r.0).collect();
    if run.is_empty() {
        return Ok(Live::empty(thresholds(cfg), positions));
    }
    match crate::backend::connect(cfg, crate::backend::Purpose::READ).await {
        Ok(mut b) => {
            let r = read(&mut *b, cfg, set, run).await;
            b.close().await;
            Ok(r?.live)
        }
        Err(Error::DatabaseMissing { .. }) => Ok(Live::empty(thresholds(cfg), positions)),
        Err(e) => Err(e),
    }
}

/// How the query measures a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sizes {
    /// `pg_relation_size` / `pg_total_relation_size`.
    Local,
    /// Citus: a distributed or reference table's shards, on the workers.
    Citus,
    /// Citus with a worker unreachable: a distributed or reference table's
    /// size is NULL (unknown), a local table is measured as usual.
    CoordinatorOnly,
}

impl Sizes {
    fn of(backend: BackendKind) -> Sizes {
        match backend {
            BackendKind::Citus => Sizes::Citus,
            _ => Sizes::Local,
        }
    }
}

/// The query for `keys` and the objects (`kinds`, `names`).
fn sql(sizes: Sizes, keys: &[String], kinds: &[String], names: &[String]) -> String {
    let body: String = LIVE_TABLES
        .lines()
        .skip_while(|l| l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let citus = |i: usize| {
        CITUS_SIZES
            .lines()
            .filter(|l| !l.starts_with("--"))
            .nth(i)
            .unwrap_or_default()
            .to_string()
    };
    let (heap, total) = match sizes {
        Sizes::Citus => (citus(0), citus(1)),
        Sizes::CoordinatorOnly => (citus(2), citus(3)),
        Sizes::Local => ("pg_relation_size(l.oid)".to_string(), "pg_total_relation_size(l.oid)".to_string()),
    };
    ToolSql::bind(
        &body.replace("{heap}", &heap).replace("{total}", &total),
        &[
            Value::TextArray(keys.to_vec()),
            Value::TextArray(kinds.to_vec()),
            Value::TextArray(names.to_vec()),
        ],
    )
}

/// `up`'s refusal when objects exist already: nothing has been sent.
pub fn refuse(target: &str, existing: Vec<ExistingObject>) -> Result<()> {
    if existing.is_empty() {
        return Ok(());
    }
    Err(Error::ObjectsExist {
        target: target.to_string(),
        objects: existing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_query_with_every_key() {
        let q = sql(Sizes::Local, &["t".into(), "app.u".into()], &["relation".into()], &["\"t\"".into()]);
        assert!(q.contains("unnest(ARRAY['t', 'app.u']::text[]::text[])"), "{q}");
        assert!(q.contains("ELSE pg_total_relation_size(l.oid) END AS total"), "{q}");
        assert!(!q.contains("{heap}") && !q.contains("{total}") && !q.starts_with("--"), "{q}");
        let c = sql(Sizes::Citus, &[], &[], &[]);
        assert!(c.contains("citus_total_relation_size(l.oid)"), "{c}");
        let o = sql(Sizes::CoordinatorOnly, &[], &[], &[]);
        assert!(
            !o.contains("citus_") && o.contains("THEN NULL ELSE pg_total_relation_size(l.oid)"),
            "{o}"
        );
    }
}
