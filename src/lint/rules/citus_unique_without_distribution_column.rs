//! `citus-unique-without-distribution-column` (Citus): a PRIMARY KEY or
//! UNIQUE constraint, or a unique index, on a table distributed in the set,
//! without the distribution column. Citus enforces uniqueness per shard, so
//! it refuses such keys — when the key is added to a distributed table, or
//! when a table that already has one is distributed.

use pg_query::NodeEnum;

use crate::capabilities::Property;
use crate::lint::facts::{self, Kind};
use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "citus-unique-without-distribution-column",
    level: Level::Error,
    summary: "PRIMARY KEY / UNIQUE on a distributed table without its distribution column",
    ignorable: true,
    scope: Scope::Having(Property::DistributedTables),
    check,
};

const CONSTRAINT: &str = "Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column (with an equality operator if EXCLUDE).";

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let pos = ctx.pos(i);
        // Keys added to a table that is distributed at this point.
        let mut added: Vec<(String, Vec<String>, bool)> = Vec::new();
        if let NodeEnum::IndexStmt(x) = node {
            if x.unique || x.primary {
                if let Some(rel) = &x.relation {
                    added.push((ast::rel_key(rel), ast::index_columns(x), true));
                }
            }
        }
        for (t, c, col) in facts::constraints_added(node) {
            if c.indexname.is_empty() {
                if let Some(k) = facts::key_of(&t, c, &col) {
                    added.push((t, k.columns, false));
                }
            }
        }
        for (table, cols, index) in added {
            let Kind::Distributed { column, .. } = ctx.facts.kind(&table, pos) else {
                continue;
            };
            if cols.contains(&column) {
                continue;
            }
            let citus = if index {
                "ERROR: creating unique indexes on non-partition columns is currently unsupported".to_string()
            } else {
                format!("ERROR: cannot create constraint on \"{table}\" DETAIL: {CONSTRAINT}")
            };
            out.push(Hit::new(
                i,
                format!("unique key ({}) on {table}, which is distributed by {column}, lacks the distribution column; Citus refuses it with {citus}", cols.join(", ")),
                format!("put the distribution column in the key: ({column}, {}) — each shard can only check the rows it holds", cols.join(", ")),
            ));
        }
        // Distributing a table that already has such a key.
        for call in facts::citus_calls(node) {
            let Some(column) = &call.column else { continue };
            let state = ctx.facts.state(&call.table, pos);
            for (at, key) in state.keys.iter().filter(|(_, k)| !k.columns.contains(column)) {
                let what = if key.primary { "PRIMARY KEY" } else { "unique key" };
                out.push(Hit::new(
                    i,
                    format!(
                        "{}('{}', '{column}'): its {what} {} ({}), from {}, lacks the distribution column {column}; Citus refuses it with ERROR: cannot create constraint on \"{}\" DETAIL: {CONSTRAINT}",
                        call.function,
                        call.table,
                        key.name,
                        key.columns.join(", "),
                        ctx.facts.location(*at),
                        call.table
                    ),
                    format!("make the key include {column} before distributing, e.g. PRIMARY KEY ({column}, {}), or distribute by a column the key has", key.columns.join(", ")),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    const R: &str = "citus-unique-without-distribution-column";

    #[test]
    fn key_without_the_distribution_column() {
        assert_eq!(
            render(R, BackendKind::Citus, &["CREATE TABLE msg (id bigserial PRIMARY KEY, userid text);", "SELECT create_distributed_table('msg', 'userid');"]),
            "V2__m.sql:1:1: error[citus-unique-without-distribution-column]: create_distributed_table('msg', 'userid'): its PRIMARY KEY msg_pkey (id), from V1__m.sql:1:1, lacks the distribution column userid; Citus refuses it with ERROR: cannot create constraint on \"msg\" DETAIL: Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column (with an equality operator if EXCLUDE).
   | SELECT create_distributed_table('msg', 'userid')
   = help: make the key include userid before distributing, e.g. PRIMARY KEY (userid, id), or distribute by a column the key has

"
        );
        let index = render(
            R,
            BackendKind::Citus,
            &[
                "CREATE TABLE m (id bigint, userid text);\nSELECT create_distributed_table('m', 'userid');",
                "CREATE UNIQUE INDEX m_id ON m (id);",
            ],
        );
        assert!(
            index.contains("creating unique indexes on non-partition columns is currently unsupported"),
            "{index}"
        );
    }

    #[test]
    fn the_column_after_alter_distributed_table() {
        let files = |unique: &str| {
            vec![
                "CREATE TABLE logs (tenant bigint, chatid bigint, msg text);\nSELECT create_distributed_table('logs', 'tenant');"
                    .to_string(),
                "SELECT alter_distributed_table('logs', distribution_column := 'chatid');".to_string(),
                format!("-- chatmigrate:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS logs_u ON logs ({unique});"),
            ]
        };
        let lint = |unique: &str| {
            let f = files(unique);
            render(R, BackendKind::Citus, &f.iter().map(String::as_str).collect::<Vec<_>>())
        };
        // Valid on the new column; the old one no longer counts.
        assert_eq!(lint("chatid, msg"), "");
        let old = lint("tenant, msg");
        assert!(
            old.contains("unique key (tenant, msg) on logs, which is distributed by chatid"),
            "{old}"
        );
        // Redistributing by a column the primary key lacks is refused too.
        let pk = render(
            R,
            BackendKind::Citus,
            &[
                "CREATE TABLE m (tenant bigint, id bigint, PRIMARY KEY (tenant, id));\nSELECT create_distributed_table('m', 'tenant');",
                "SELECT alter_distributed_table('m', distribution_column := 'other');",
            ],
        );
        assert!(
            pk.contains("alter_distributed_table('m', 'other'): its PRIMARY KEY m_pkey (tenant, id)"),
            "{pk}"
        );
    }

    #[test]
    fn keys_with_the_column_or_other_backends_are_fine() {
        let ok = [
            "CREATE TABLE msg (id bigserial, userid text, PRIMARY KEY (userid, id));",
            "SELECT create_distributed_table('msg', 'userid');\nCREATE UNIQUE INDEX u ON msg (userid, id);",
        ];
        assert_eq!(render(R, BackendKind::Citus, &ok), "");
        let bad = [
            "CREATE TABLE msg (id bigserial PRIMARY KEY, userid text);",
            "SELECT create_distributed_table('msg', 'userid');",
        ];
        assert_eq!(render(R, BackendKind::Postgres, &bad), "");
    }
}
