//! Reads a database's schema into a [`Model`] in a fixed number of catalog
//! queries, whatever the number of tables: `schema_relations.sql` (every
//! relation, with a table's columns, constraints, indexes and triggers
//! nested in it), `schema_objects.sql` (schemas, extensions, types,
//! functions, the search path), and on Citus `schema_distribution.sql`.
//! Each row is one JSON object as text, so the same queries work through
//! every backend (the Data API returns text only). A query whose answer is
//! larger than the Data API's 1 MiB response cap is read again in pages.
//!
//! Left out, always: the system schemas, extension members (`pg_depend`
//! deptype `e`), chatmigrate's own tables (history, log, lease) and the
//! sequences they own, and on Citus its shards' tables and indexes.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::model::*;
use crate::backend::Backend;
use crate::dialect::{ToolSql, Value};
use crate::error::{Error, Result};

macro_rules! sql {
    ($dir:literal, $name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/dialects/", $dir, "/", $name, ".sql"))
    };
}

const RELATIONS: &str = sql!("postgres", "schema_relations");
const OBJECTS: &str = sql!("postgres", "schema_objects");
const DISTRIBUTION: &str = sql!("citus", "schema_distribution");

/// Rows per page once an answer was too large for one response.
const PAGE: u32 = 2000;

/// What one read cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Catalog queries sent (pages included).
    pub queries: usize,
}

/// Reads the schema of the database `b` is connected to. `skip`: the
/// tool's own tables, as quoted qualified names.
pub async fn read(b: &mut dyn Backend, skip: &[String]) -> Result<(Model, Cost)> {
    let mut cost = Cost::default();
    let params = [Value::TextArray(skip.to_vec())];
    let relations = rows(b, RELATIONS, &params, &mut cost).await?;
    let objects = rows(b, OBJECTS, &[], &mut cost).await?;
    let mut model = Model::default();
    read_objects(&mut model, &objects)?;
    let citus = if model.extensions.contains_key("citus") {
        rows(b, DISTRIBUTION, &[], &mut cost).await?
    } else {
        Vec::new()
    };
    read_relations(&mut model, &relations, &citus)?;
    Ok((model, cost))
}

/// All rows of one query (one JSON text per row), paged only when the
/// answer is too large for one response.
async fn rows(b: &mut dyn Backend, template: &str, params: &[Value], cost: &mut Cost) -> Result<Vec<String>> {
    let sql = |limit: Option<u32>, offset: u64| {
        let limit = limit.map(|l| l.to_string()).unwrap_or_else(|| "ALL".into());
        ToolSql::bind(
            strip_comments(template)
                .replace("{limit}", &limit)
                .replace("{offset}", &offset.to_string())
                .trim_end(),
            params,
        )
    };
    let text = |r: Vec<Vec<Option<String>>>| -> Vec<String> { r.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect() };
    cost.queries += 1;
    match b.query(&sql(None, 0)).await {
        Ok(r) => return Ok(text(r)),
        Err(Error::Db { error, .. }) if error.message.contains("size limit") => {}
        Err(e) => return Err(e),
    }
    let mut out = Vec::new();
    let mut page = PAGE;
    loop {
        cost.queries += 1;
        let got = match b.query(&sql(Some(page), out.len() as u64)).await {
            Ok(r) => text(r),
            Err(Error::Db { error, .. }) if error.message.contains("size limit") && page > 1 => {
                page /= 2;
                continue;
            }
            Err(e) => return Err(e),
        };
        let n = got.len();
        out.extend(got);
        if n < page as usize {
            return Ok(out);
        }
    }
}

fn strip_comments(sql: &str) -> String {
    sql.lines().skip_while(|l| l.starts_with("--")).collect::<Vec<_>>().join("\n")
}

fn parse<'a, T: Deserialize<'a>>(what: &str, row: &'a str) -> Result<T> {
    serde_json::from_str(row).map_err(|e| {
        let shown: String = row.chars().take(120).collect();
        Error::Other(format!("unexpected answer from the catalog ({what}): {e}: {shown}"))
    })
}

#[derive(Deserialize)]
struct RawRelation {
    schema: String,
    name: String,
    kind: String,
    unlogged: bool,
    partition_of: Option<String>,
    partition_bound: Option<String>,
    partition_key: Option<String>,
    view: Option<String>,
    sequence: Option<RawSequence>,
    owned_by: Option<String>,
    columns: Option<Vec<Column>>,
    constraints: Option<Vec<RawConstraint>>,
    indexes: Option<Vec<RawIndex>>,
    triggers: Option<Vec<RawTrigger>>,
}

// The catalog's pg_get_*def functions answer NULL for an object dropped
// while the query ran: such an object is left out, not an error.

#[derive(Deserialize)]
struct RawIndex {
    name: String,
    method: String,
    unique: bool,
    valid: bool,
    /// `quote_ident(name)`, as `pg_get_indexdef` writes the name.
    quoted: String,
    definition: Option<String>,
    constraint: Option<String>,
}

/// What follows `CREATE [UNIQUE] INDEX <name> ON ` in an index definition.
fn shape(definition: &str, quoted: &str, unique: bool) -> Option<String> {
    let prefix = format!("CREATE {}INDEX {quoted} ON ", if unique { "UNIQUE " } else { "" });
    definition.strip_prefix(&prefix).map(str::to_string)
}

#[derive(Deserialize)]
struct RawTrigger {
    name: String,
    definition: Option<String>,
}

#[derive(Deserialize)]
struct RawSequence {
    #[serde(rename = "type")]
    data_type: String,
    start: String,
    increment: String,
    min: String,
    max: String,
    cache: String,
    cycle: bool,
}

#[derive(Deserialize)]
struct RawConstraint {
    name: String,
    #[serde(rename = "type")]
    contype: String,
    definition: Option<String>,
    validated: bool,
    columns: Option<Vec<String>>,
    references: Option<String>,
}

#[derive(Deserialize)]
struct RawDistribution {
    schema: String,
    table: String,
    method: String,
    column: Option<String>,
    colocation: i64,
    replication: String,
    shards: Vec<i64>,
}

fn read_relations(model: &mut Model, rows: &[String], citus: &[String]) -> Result<()> {
    let dist: Vec<RawDistribution> = citus.iter().map(|r| parse("distribution", r)).collect::<Result<_>>()?;
    // Citus's shards: `<table>_<shardid>`, and their indexes `<index>_<shardid>`.
    let shard_ids: HashSet<String> = dist.iter().flat_map(|d| d.shards.iter().map(|s| format!("_{s}"))).collect();
    let is_shard = |name: &str| {
        name.rfind('_')
            .is_some_and(|i| name[i + 1..].bytes().all(|b| b.is_ascii_digit()) && shard_ids.contains(&name[i..]))
    };
    for row in rows {
        let r: RawRelation = parse("relations", row)?;
        if is_shard(&r.name) {
            continue;
        }
        let key = format!("{}.{}", r.schema, r.name);
        match r.kind.as_str() {
            "v" | "m" => {
                model.views.insert(
                    key,
                    View {
                        schema: r.schema,
                        name: r.name,
                        materialized: r.kind == "m",
                        definition: r.view.unwrap_or_default(),
                    },
                );
                // A materialized view's indexes are left out of the model.
            }
            "S" => {
                let Some(s) = r.sequence else { continue };
                model.sequences.insert(
                    key,
                    Sequence {
                        schema: r.schema,
                        name: r.name,
                        data_type: s.data_type,
                        start: s.start,
                        increment: s.increment,
                        min: s.min,
                        max: s.max,
                        cache: s.cache,
                        cycle: s.cycle,
                        owned_by: r.owned_by,
                    },
                );
            }
            kind => {
                let constraints = r
                    .constraints
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| !is_shard(&c.name))
                    .filter_map(|c| {
                        let kind = ConstraintKind::from_contype(&c.contype)?;
                        Some((
                            c.name.clone(),
                            Constraint {
                                name: c.name,
                                kind,
                                definition: c.definition?,
                                validated: c.validated,
                                columns: c.columns.unwrap_or_default(),
                                references: c.references,
                            },
                        ))
                    })
                    .collect();
                let indexes = r
                    .indexes
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| !is_shard(&i.name))
                    .filter_map(|i| {
                        let definition = i.definition?;
                        Some((
                            i.name.clone(),
                            Index {
                                shape: shape(&definition, &i.quoted, i.unique)?,
                                name: i.name,
                                method: i.method,
                                unique: i.unique,
                                valid: i.valid,
                                definition,
                                constraint: i.constraint,
                            },
                        ))
                    })
                    .collect();
                let triggers = r
                    .triggers
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|t| {
                        Some((
                            t.name.clone(),
                            Trigger {
                                name: t.name,
                                definition: t.definition?,
                            },
                        ))
                    })
                    .collect();
                let partition_of = match (r.partition_of, r.partition_bound) {
                    (Some(p), Some(b)) => Some(format!("{p} {b}")),
                    (p, _) => p,
                };
                model.tables.insert(
                    key,
                    Table {
                        schema: r.schema,
                        name: r.name,
                        kind: match kind {
                            "p" => "partitioned table",
                            "f" => "foreign table",
                            _ => "table",
                        }
                        .into(),
                        unlogged: r.unlogged,
                        partition_of,
                        partition_key: r.partition_key,
                        columns: r.columns.unwrap_or_default(),
                        constraints,
                        indexes,
                        triggers,
                        distribution: None,
                    },
                );
            }
        }
    }
    // Colocation groups by id, then each table's distribution.
    let mut groups: HashMap<i64, Vec<String>> = HashMap::new();
    for d in &dist {
        if d.method == "h" {
            groups.entry(d.colocation).or_default().push(format!("{}.{}", d.schema, d.table));
        }
    }
    for d in dist {
        let key = format!("{}.{}", d.schema, d.table);
        let Some(t) = model.tables.get_mut(&key) else { continue };
        let method = match (d.method.as_str(), d.replication.as_str()) {
            ("h", _) => "hash",
            ("n", "t") => "reference",
            ("n", _) => "local",
            (other, _) => other,
        };
        let mut colocated: Vec<String> = groups
            .get(&d.colocation)
            .filter(|_| d.method == "h")
            .map(|g| {
                g.iter()
                    .filter(|k| **k != key)
                    .map(|k| k.strip_prefix("public.").unwrap_or(k).to_string())
                    .collect()
            })
            .unwrap_or_default();
        colocated.sort();
        t.distribution = Some(Distribution {
            method: method.into(),
            column: d.column,
            colocated_with: colocated,
        });
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawObject {
    kind: String,
    schema: Option<String>,
    name: Option<String>,
    names: Option<Vec<String>>,
    version: Option<String>,
    #[serde(rename = "type")]
    typtype: Option<String>,
    labels: Option<Vec<String>>,
    attributes: Option<Vec<(String, String)>>,
    base: Option<String>,
    not_null: Option<bool>,
    default: Option<String>,
    checks: Option<Vec<String>>,
    args: Option<String>,
    prokind: Option<String>,
    returns: Option<String>,
    definition: Option<String>,
    hash: Option<String>,
}

fn read_objects(model: &mut Model, rows: &[String]) -> Result<()> {
    for row in rows {
        let o: RawObject = parse("objects", row)?;
        let schema = o.schema.clone().unwrap_or_default();
        let name = o.name.clone().unwrap_or_default();
        match o.kind.as_str() {
            "search_path" => model.search_path = o.names.unwrap_or_default(),
            "schema" => {
                model.schemas.insert(name);
            }
            "extension" => {
                model.extensions.insert(
                    name,
                    Extension {
                        schema,
                        version: o.version.unwrap_or_default(),
                    },
                );
            }
            "type" => {
                let def = match o.typtype.as_deref() {
                    Some("e") => TypeDef::Enum {
                        labels: o.labels.unwrap_or_default(),
                    },
                    Some("c") => TypeDef::Composite {
                        attributes: o.attributes.unwrap_or_default(),
                    },
                    Some("d") => TypeDef::Domain {
                        base: o.base.unwrap_or_default(),
                        not_null: o.not_null.unwrap_or(false),
                        default: o.default,
                        checks: o.checks.unwrap_or_default(),
                    },
                    Some("r") => TypeDef::Range {
                        subtype: o.base.unwrap_or_default(),
                    },
                    _ => continue,
                };
                model.types.insert(format!("{schema}.{name}"), def);
            }
            "function" => {
                let args = o.args.unwrap_or_default();
                let kind = match o.prokind.as_deref() {
                    Some("p") => "procedure",
                    Some("a") => "aggregate",
                    Some("w") => "window",
                    _ => "function",
                };
                model.functions.insert(
                    format!("{schema}.{name}({args})"),
                    Function {
                        schema,
                        name,
                        args,
                        kind: kind.into(),
                        returns: o.returns,
                        definition: o.definition,
                        hash: o.hash.unwrap_or_default(),
                    },
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// The target database as `adopt` and `diff` read it, on one read-only
/// connection: its history, its schema, and on Citus the coordinator's
/// address (for the scratch database's one-node Citus).
#[derive(Debug, Clone)]
pub struct Target {
    pub display: String,
    pub history: Vec<crate::history::Row>,
    pub model: Model,
    pub coordinator: Option<(String, u16)>,
    pub queries: usize,
    /// How long reading the schema took (not the connect).
    pub elapsed: std::time::Duration,
}

/// Reads [`Target`] (nothing is written).
pub async fn read_target(cfg: &crate::config::Config) -> Result<Target> {
    let mut b = crate::backend::connect(cfg, crate::backend::Purpose::READ).await?;
    let r = async {
        let history = b.read_history().await?;
        let started = std::time::Instant::now();
        let (model, cost) = read(&mut *b, &super::scratch::own_tables(cfg)).await?;
        let elapsed = started.elapsed();
        let coordinator = if cfg.backend == crate::config::BackendKind::Citus {
            let sql: String = sql!("citus", "coordinator")
                .lines()
                .filter(|l| !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            b.query(&sql).await?.into_iter().next().and_then(|r| {
                let host = r.first().cloned().flatten()?;
                let port = r.get(1).cloned().flatten()?.parse().ok()?;
                Some((host, port))
            })
        } else {
            None
        };
        Ok::<_, Error>(Target {
            display: b.target(),
            history,
            model,
            coordinator,
            queries: cost.queries,
            elapsed,
        })
    }
    .await;
    b.close().await;
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_shapes() {
        assert_eq!(
            super::shape(
                "CREATE UNIQUE INDEX \"Odd\" ON public.t USING btree (a) WHERE (a > 0)",
                "\"Odd\"",
                true
            )
            .as_deref(),
            Some("public.t USING btree (a) WHERE (a > 0)")
        );
        assert_eq!(
            super::shape("CREATE INDEX i ON ONLY public.p USING btree (a)", "i", false).as_deref(),
            Some("ONLY public.p USING btree (a)")
        );
        assert_eq!(super::shape("CREATE INDEX i ON t", "j", false), None);
    }
}
