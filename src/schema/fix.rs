//! `adopt --write-fix FILE`: a migration that turns the live schema into
//! the expected one, for the differences it can express safely, in the
//! forms the lint asks for: indexes built and dropped `CONCURRENTLY`
//! (so the file is `-- chatmigrate:no-transaction`), a new primary key or
//! unique constraint built as a unique index first and attached with
//! `USING INDEX`, CHECK and FOREIGN KEY constraints added `NOT VALID` and
//! validated by a later statement, `SET NOT NULL` proven by a validated
//! CHECK first. What it cannot express safely (a column's type, a dropped
//! column's data, a distribution) is said in a comment, never guessed.
//!
//! The file carries `-- chatmigrate:adopt-fix`: `up` runs it alone and
//! records it in the history log, not as a migration (docs/adopt.md).

use super::diff::{type_text, Change, Difference, Object};
use super::model::*;
use super::render;

/// A written fix.
#[derive(Debug, Clone, Default)]
pub struct Fix {
    pub text: String,
    /// SQL statements in it.
    pub statements: usize,
    /// The differences it leaves to a person, one line each.
    pub not_expressed: Vec<String>,
}

/// Builds the fix for `diffs` (from [`super::diff::compare`]).
pub fn write(diffs: &[Difference], expected: &Model, live: &Model, header: &[String]) -> Fix {
    let mut phases: Vec<Vec<String>> = vec![Vec::new(); 10];
    let mut left: Vec<String> = Vec::new();
    let mut steps = |phase: usize, d: &Difference, sql: Vec<String>| {
        let mut block = format!("-- {}\n", render::line(d));
        for s in sql {
            block.push_str(&s);
            block.push_str(";\n");
        }
        phases[phase].push(block);
    };
    for d in diffs {
        match plan(d, expected, live) {
            Ok((phase, sql)) => steps(phase, d, sql),
            Err(why) => left.push(format!("{} ({why})", render::line(d))),
        }
    }
    let owned = ownership(diffs, expected);
    if !owned.is_empty() {
        phases[9].push(format!(
            "-- sequences owned by their columns\n{}",
            owned.iter().map(|s| format!("{s};\n")).collect::<String>()
        ));
    }
    let mut body = String::new();
    for block in phases.into_iter().flatten() {
        body.push('\n');
        body.push_str(&block);
    }
    let mut text = String::from("-- chatmigrate:no-transaction\n-- chatmigrate:adopt-fix\n");
    if needs_ignore(&body) {
        // ADD CONSTRAINT and CREATE TYPE have no IF NOT EXISTS; a fix is not
        // resumed anyway: it is written again for what is left.
        text.push_str(IGNORE);
    }
    text.push_str("--\n");
    for h in header {
        text.push_str(&format!("-- {h}\n").replace("-- \n", "--\n"));
    }
    if !left.is_empty() {
        text.push_str("--\n-- Not expressed here (do it by hand or in a migration of its own, then run `chatmigrate adopt` again):\n");
        for l in &left {
            text.push_str(&format!("--   {l}\n"));
        }
    }
    text.push_str(&body);
    let mut statements = crate::sql::split("fix", &text).map(|v| v.len()).unwrap_or(0);
    if statements == 0 {
        // A migration must hold SQL: a no-op that says so.
        text.push_str("\n-- Nothing here can be fixed by SQL alone (see above).\nSELECT 1;\n");
        statements = 1;
    }
    Fix {
        text,
        statements,
        not_expressed: left,
    }
}

/// The file-wide ignore of a fix whose statements cannot all run twice.
const IGNORE: &str = "-- chatmigrate:ignore prefer-robust-stmts -- an adopt fix is not resumed: if it stops, `chatmigrate adopt --write-fix` writes what is left\n";

/// Whether `prefer-robust-stmts` finds something in these statements.
fn needs_ignore(body: &str) -> bool {
    let text = format!("-- chatmigrate:no-transaction\n{body}\nSELECT 1;\n");
    let Ok(m) = crate::migration::Migration::parse("V1__fix.sql", "fix", text.as_bytes()).and_then(|m| m.split()) else {
        return false;
    };
    let Some(rule) = crate::lint::rule("prefer-robust-stmts") else {
        return false;
    };
    let facts = crate::lint::Facts::build(std::slice::from_ref(&m));
    let ctx = crate::lint::Ctx {
        migration: &m,
        position: 0,
        facts: &facts,
        backend: crate::config::BackendKind::Postgres,
        caps: crate::backend::capabilities_of(crate::config::BackendKind::Postgres),
        ignores: &[],
        citus_parallel: false,
        live: None,
        undo: false,
    };
    let mut hits = Vec::new();
    (rule.check)(&ctx, &mut hits);
    !hits.is_empty()
}

fn q(s: &str) -> String {
    crate::lint::ast::ident(s)
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A name with a suffix, within PostgreSQL's 63 bytes.
fn suffixed(name: &str, suffix: &str) -> String {
    let mut base = name.to_string();
    while base.len() + suffix.len() > 63 {
        base.pop();
    }
    format!("{base}{suffix}")
}

/// `CREATE [UNIQUE] INDEX name ON ...` → the CONCURRENTLY, IF NOT EXISTS
/// form under `new_name`.
fn concurrently(definition: &str, name: &str, new_name: &str) -> String {
    let (unique, rest) = match definition.strip_prefix("CREATE UNIQUE INDEX ") {
        Some(r) => ("UNIQUE ", r),
        None => ("", definition.strip_prefix("CREATE INDEX ").unwrap_or(definition)),
    };
    let rest = rest.strip_prefix(&q(name)).unwrap_or(rest);
    format!("CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {}{rest}", q(new_name))
}

/// The statements for one difference and the phase they run in, or why
/// it is left to a person. Phases: 0 extensions, schemas, types,
/// sequences; 1 dropping foreign keys; 2 dropping and renaming other
/// constraints; 3 tables and columns; 4 SET NOT NULL; 5 primary keys and
/// unique constraints; 6 CHECK and FOREIGN KEY; 7 indexes; 8 views and
/// functions; 9 triggers and sequence ownership.
fn plan(d: &Difference, expected: &Model, live: &Model) -> Result<(usize, Vec<String>), String> {
    let schema = d.schema.clone().unwrap_or_else(|| "public".into());
    let tkey = d.table.as_ref().map(|t| format!("{schema}.{t}"));
    let et = tkey.as_ref().and_then(|k| expected.tables.get(k));
    let lt = tkey.as_ref().and_then(|k| live.tables.get(k));
    let table_sql = || sql_name(&schema, d.table.as_deref().unwrap_or(&d.name));
    use Change::*;
    use Object as O;
    Ok(match (d.object, d.change) {
        (O::Extension, Missing) => {
            let e = expected.extensions.get(&d.name).ok_or("no definition")?;
            (0, vec![format!("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}", q(&d.name), q(&e.schema))])
        }
        (O::Extension, Changed) if d.attribute.as_deref() == Some("version") => (
            0,
            vec![format!(
                "ALTER EXTENSION {} UPDATE TO {}",
                q(&d.name),
                literal(d.expected.as_deref().unwrap_or(""))
            )],
        ),
        (O::Schema, Missing) => (0, vec![format!("CREATE SCHEMA IF NOT EXISTS {}", q(&d.name))]),
        (O::Type, Missing) => {
            let t = expected.types.get(&format!("{schema}.{}", d.name)).ok_or("no definition")?;
            let name = sql_name(&schema, &d.name);
            (
                0,
                vec![match t {
                    TypeDef::Domain { .. } => format!("CREATE {}", type_text(t).replacen("DOMAIN AS", &format!("DOMAIN {name} AS"), 1)),
                    TypeDef::Enum { .. } => format!("CREATE TYPE {name} AS {}", type_text(t)),
                    TypeDef::Composite { .. } => format!("CREATE TYPE {name} AS {}", type_text(t)),
                    TypeDef::Range { subtype } => format!("CREATE TYPE {name} AS RANGE (SUBTYPE = {subtype})"),
                }],
            )
        }
        (O::Type, Changed) => {
            let key = format!("{schema}.{}", d.name);
            match (expected.types.get(&key), live.types.get(&key)) {
                (Some(TypeDef::Enum { labels: e }), Some(TypeDef::Enum { labels: l })) if l.iter().all(|x| e.contains(x)) => {
                    // Only labels to add: ALTER TYPE ... ADD VALUE, in place.
                    let mut sql = Vec::new();
                    for (i, label) in e.iter().enumerate().filter(|(_, x)| !l.contains(x)) {
                        let at = match i {
                            0 => e.get(1).filter(|n| l.contains(n)).map(|n| format!(" BEFORE {}", literal(n))),
                            _ => Some(format!(" AFTER {}", literal(&e[i - 1]))),
                        };
                        sql.push(format!(
                            "ALTER TYPE {} ADD VALUE IF NOT EXISTS {}{}",
                            sql_name(&schema, &d.name),
                            literal(label),
                            at.unwrap_or_default()
                        ));
                    }
                    (0, sql)
                }
                _ => return Err("a type is changed by recreating it and every column that uses it".into()),
            }
        }
        (O::Sequence, Missing) => {
            let s = expected.sequences.get(&format!("{schema}.{}", d.name)).ok_or("no definition")?;
            let sql = vec![format!(
                "CREATE SEQUENCE IF NOT EXISTS {} AS {} INCREMENT {} MINVALUE {} MAXVALUE {} START {} CACHE {}{}",
                sql_name(&schema, &d.name),
                s.data_type,
                s.increment,
                s.min,
                s.max,
                s.start,
                s.cache,
                if s.cycle { " CYCLE" } else { "" }
            )];
            // Owned by its column once the table exists: see `ownership`.
            (0, sql)
        }
        (O::Sequence, Changed) => {
            let s = expected.sequences.get(&format!("{schema}.{}", d.name)).ok_or("no definition")?;
            let mut sql = vec![format!(
                "ALTER SEQUENCE {} AS {} INCREMENT {} MINVALUE {} MAXVALUE {} CACHE {}{}",
                sql_name(&schema, &d.name),
                s.data_type,
                s.increment,
                s.min,
                s.max,
                s.cache,
                if s.cycle { " CYCLE" } else { " NO CYCLE" }
            )];
            if let Some(o) = &s.owned_by {
                sql.push(format!("ALTER SEQUENCE {} OWNED BY {o}", sql_name(&schema, &d.name)));
            }
            (9, sql)
        }
        (O::Table, Missing) => {
            let t = expected.tables.get(&format!("{schema}.{}", d.name)).ok_or("no definition")?;
            if t.partition_of.is_some() {
                return Err("a partition is created with its parent's bounds; create it by hand".into());
            }
            // Columns, then the constraints under their own names.
            let mut parts: Vec<String> = t.columns.iter().map(Column::sql).collect();
            parts.extend(t.constraints.values().map(|c| format!("CONSTRAINT {} {}", q(&c.name), c.definition)));
            let mut sql = vec![format!(
                "CREATE {}TABLE IF NOT EXISTS {} ({}){}",
                if t.unlogged { "UNLOGGED " } else { "" },
                t.sql_name(),
                parts.join(", "),
                t.partition_key.as_ref().map(|k| format!(" PARTITION BY {k}")).unwrap_or_default()
            )];
            for i in t.indexes.values().filter(|i| i.constraint.is_none()) {
                sql.push(concurrently(&i.definition, &i.name, &i.name));
            }
            for tr in t.triggers.values() {
                sql.push(tr.definition.clone());
            }
            (3, sql)
        }
        (O::Column, Missing) => {
            let c = et.and_then(|t| t.column(&d.name)).ok_or("no definition")?;
            if c.not_null && c.default.is_none() && c.identity.is_none() && c.generated.is_none() {
                let nullable = Column {
                    not_null: false,
                    ..c.clone()
                };
                return Ok((
                    3,
                    vec![
                        format!("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}", table_sql(), nullable.sql()),
                        format!(
                            "-- then fill {} in every row and run: ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                            q(&c.name),
                            table_sql(),
                            q(&c.name)
                        ),
                    ]
                    .into_iter()
                    .filter(|s| !s.starts_with("--"))
                    .collect(),
                ));
            }
            (3, vec![format!("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}", table_sql(), c.sql())])
        }
        (O::Column, Changed) => {
            let col = q(&d.name);
            match d.attribute.as_deref() {
                Some("default") => match d.expected.as_deref() {
                    Some("none") | None => (3, vec![format!("ALTER TABLE {} ALTER COLUMN {col} DROP DEFAULT", table_sql())]),
                    Some(v) => (3, vec![format!("ALTER TABLE {} ALTER COLUMN {col} SET DEFAULT {v}", table_sql())]),
                },
                Some("not_null") if d.expected.as_deref() == Some("false") => {
                    (3, vec![format!("ALTER TABLE {} ALTER COLUMN {col} DROP NOT NULL", table_sql())])
                }
                Some("not_null") => {
                    let check = q(&suffixed(&format!("{}_{}", d.table.as_deref().unwrap_or(""), d.name), "_not_null_chk"));
                    let t = table_sql();
                    (
                        4,
                        vec![
                            format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID"),
                            format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}"),
                            format!("ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL"),
                            format!("ALTER TABLE {t} DROP CONSTRAINT {check}"),
                        ],
                    )
                }
                Some("type") => return Err("changing a column's type rewrites the table under an ACCESS EXCLUSIVE lock; see docs/rules/changing-column-type.md".into()),
                Some(a) => return Err(format!("a column's {a} is changed by recreating the column")),
                None => return Err("unknown attribute".into()),
            }
        }
        (O::Column, Extra) => return Err("its data would be lost: drop it in a migration of its own once nothing uses it".into()),
        (O::Table, Extra) => return Err("its rows would be lost: drop it in a migration of its own, or keep it outside the migrations".into()),
        (O::Table, Changed) => return Err("the kind, persistence or partitioning of a table is changed by recreating it".into()),
        (O::Constraint, Extra) => {
            let c = lt.and_then(|t| t.constraints.get(&d.name)).ok_or("no definition")?;
            let phase = if c.kind == ConstraintKind::ForeignKey { 1 } else { 2 };
            (phase, vec![format!("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}", table_sql(), q(&d.name))])
        }
        (O::Constraint, Renamed) => (
            2,
            vec![format!(
                "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                table_sql(),
                q(d.live_name.as_deref().unwrap_or("")),
                q(&d.name)
            )],
        ),
        (O::Constraint, Missing) | (O::Constraint, Changed) => {
            let c = et.and_then(|t| t.constraints.get(&d.name)).ok_or("no definition")?;
            let t = table_sql();
            let name = q(&d.name);
            let changed = d.change == Changed;
            if d.attribute.as_deref() == Some("validated") {
                return Ok((6, vec![format!("ALTER TABLE {t} VALIDATE CONSTRAINT {name}")]));
            }
            match c.kind {
                ConstraintKind::PrimaryKey | ConstraintKind::Unique => {
                    let index = et
                        .and_then(|t| t.indexes.values().find(|i| i.constraint.as_deref() == Some(&c.name)))
                        .ok_or("no index definition")?;
                    let what = if c.kind == ConstraintKind::PrimaryKey { "PRIMARY KEY" } else { "UNIQUE" };
                    let building = if changed { suffixed(&d.name, "_new") } else { d.name.clone() };
                    let mut sql = vec![concurrently(&index.definition, &index.name, &building)];
                    let attach = format!("ADD CONSTRAINT {name} {what} USING INDEX {}", q(&building));
                    if changed {
                        sql.push(format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {name}, {attach}"));
                    } else {
                        sql.push(format!("ALTER TABLE {t} {attach}"));
                    }
                    (5, sql)
                }
                ConstraintKind::Check | ConstraintKind::ForeignKey => {
                    let add = format!("ADD CONSTRAINT {name} {} NOT VALID", c.definition);
                    let first = if changed {
                        format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {name}, {add}")
                    } else {
                        format!("ALTER TABLE {t} {add}")
                    };
                    (6, vec![first, format!("ALTER TABLE {t} VALIDATE CONSTRAINT {name}")])
                }
                ConstraintKind::Exclusion => {
                    return Err("an exclusion constraint builds its index under an ACCESS EXCLUSIVE lock".into())
                }
            }
        }
        (O::Index, Renamed) => (
            7,
            vec![format!(
                "ALTER INDEX IF EXISTS {} RENAME TO {}",
                sql_name(&schema, d.live_name.as_deref().unwrap_or("")),
                q(&d.name)
            )],
        ),
        (O::Index, Extra) => (7, vec![format!("DROP INDEX CONCURRENTLY IF EXISTS {}", sql_name(&schema, &d.name))]),
        (O::Index, Missing) => {
            let i = et.and_then(|t| t.indexes.get(&d.name)).ok_or("no definition")?;
            (7, vector_memory(i, vec![concurrently(&i.definition, &i.name, &i.name)]))
        }
        (O::Index, Changed) => {
            let i = et.and_then(|t| t.indexes.get(&d.name)).ok_or("no definition")?;
            if d.attribute.as_deref() == Some("valid") {
                return Ok((
                    7,
                    vector_memory(
                        i,
                        vec![
                            format!("DROP INDEX CONCURRENTLY IF EXISTS {}", sql_name(&schema, &d.name)),
                            concurrently(&i.definition, &i.name, &i.name),
                        ],
                    ),
                ));
            }
            let building = suffixed(&d.name, "_new");
            (
                7,
                vector_memory(
                    i,
                    vec![
                        concurrently(&i.definition, &i.name, &building),
                        format!("DROP INDEX CONCURRENTLY IF EXISTS {}", sql_name(&schema, &d.name)),
                        format!("ALTER INDEX {} RENAME TO {}", sql_name(&schema, &building), q(&d.name)),
                    ],
                ),
            )
        }
        (O::View, Missing) | (O::View, Changed) => {
            let v = expected.views.get(&format!("{schema}.{}", d.name)).ok_or("no definition")?;
            (8, vec![format!("CREATE OR REPLACE VIEW {} AS\n{}", sql_name(&schema, &d.name), v.definition.trim_end_matches(';'))])
        }
        (O::MaterializedView, Missing) => {
            let v = expected.views.get(&format!("{schema}.{}", d.name)).ok_or("no definition")?;
            (
                8,
                vec![format!(
                    "CREATE MATERIALIZED VIEW IF NOT EXISTS {} AS\n{}",
                    sql_name(&schema, &d.name),
                    v.definition.trim_end_matches(';')
                )],
            )
        }
        (O::Function, Missing) | (O::Function, Changed) => {
            let key = format!("{schema}.{}", d.name);
            let f = expected.functions.get(&key).ok_or("no definition")?;
            let def = f.definition.clone().ok_or("an aggregate is created with CREATE AGGREGATE by hand")?;
            (8, vec![def.trim_end().to_string()])
        }
        (O::Trigger, Missing) => {
            let t = et.and_then(|t| t.triggers.get(&d.name)).ok_or("no definition")?;
            (9, vec![t.definition.clone()])
        }
        (O::Trigger, Changed) => {
            let t = et.and_then(|t| t.triggers.get(&d.name)).ok_or("no definition")?;
            (
                9,
                vec![
                    format!("DROP TRIGGER IF EXISTS {} ON {}", q(&d.name), table_sql()),
                    t.definition.clone(),
                ],
            )
        }
        (O::Trigger, Extra) => (9, vec![format!("DROP TRIGGER IF EXISTS {} ON {}", q(&d.name), table_sql())]),
        (O::Distribution, _) => return Err("distributing a table moves its rows: use create_distributed_table or undistribute_table in a migration of its own (docs/citus.md)".into()),
        (_, Extra) => return Err("the migrations do not make it; drop it by hand if nothing uses it".into()),
        _ => return Err("not expressible as a safe statement".into()),
    })
}

/// An HNSW / IVFFlat build gets more maintenance_work_mem, as V4 does.
fn vector_memory(i: &Index, mut sql: Vec<String>) -> Vec<String> {
    if matches!(i.method.as_str(), "hnsw" | "ivfflat") && sql.iter().any(|s| s.starts_with("CREATE")) {
        sql.insert(0, "SET maintenance_work_mem = '256MB'".into());
        sql.push("RESET maintenance_work_mem".into());
    }
    sql
}

/// Sequences owned by a column, set once their table exists.
fn ownership(diffs: &[Difference], expected: &Model) -> Vec<String> {
    diffs
        .iter()
        .filter(|d| d.object == Object::Sequence && d.change == Change::Missing)
        .filter_map(|d| {
            let schema = d.schema.as_deref().unwrap_or("public");
            let s = expected.sequences.get(&format!("{schema}.{}", d.name))?;
            let o = s.owned_by.as_ref()?;
            Some(format!("ALTER SEQUENCE {} OWNED BY {o}", sql_name(schema, &d.name)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_forms() {
        assert_eq!(
            concurrently(
                "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (userid, primarykey)",
                "t_pkey",
                "t_pkey_new"
            ),
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_pkey_new ON public.t USING btree (userid, primarykey)"
        );
        assert_eq!(
            concurrently("CREATE INDEX \"Odd\" ON public.t USING gin (doc)", "Odd", "Odd"),
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"Odd\" ON public.t USING gin (doc)"
        );
        assert_eq!(suffixed(&"x".repeat(63), "_new").len(), 63);
    }
}
