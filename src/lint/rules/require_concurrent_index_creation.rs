//! `require-concurrent-index-creation`: CREATE INDEX without CONCURRENTLY on
//! a table that this migration did not create. A plain build holds a SHARE
//! lock on the table until it ends: reads go on, every write waits.
//! (pgvector's HNSW / IVFFlat builds have their own rule,
//! `pgvector-index-concurrently`.)

use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};
use crate::sql;

pub static RULE: Rule = Rule {
    id: "require-concurrent-index-creation",
    level: Level::Error,
    summary: "CREATE INDEX without CONCURRENTLY on an existing table blocks its writes",
    ignorable: true,
    scope: Scope::All,
    check,
};

/// The CONCURRENTLY, IF NOT EXISTS form of an index build, as help; with
/// `first` (a distributed table's distribution column, which a unique
/// index on it must hold) as its first column.
pub fn concurrent_help(node: &NodeEnum, first: Option<&str>) -> String {
    let mut n = node.clone();
    if let NodeEnum::IndexStmt(i) = &mut n {
        i.concurrent = true;
        i.if_not_exists = !i.idxname.is_empty();
        if let Some(column) = first {
            let elem = pg_query::protobuf::IndexElem {
                name: column.to_string(),
                ordering: pg_query::protobuf::SortByDir::SortbyDefault as i32,
                nulls_ordering: pg_query::protobuf::SortByNulls::SortbyNullsDefault as i32,
                ..Default::default()
            };
            let node = pg_query::protobuf::Node {
                node: Some(NodeEnum::IndexElem(Box::new(elem))),
            };
            i.index_params.insert(0, node);
        }
    }
    let sql = sql::deparse(&n).unwrap_or_default();
    format!("build it CONCURRENTLY (writes go on), in a migration of its own that starts with `-- chatmigrate:no-transaction`:\n  {sql};")
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let NodeEnum::IndexStmt(x) = node else { continue };
        let Some(rel) = &x.relation else { continue };
        let table = ast::rel_key(rel);
        if x.concurrent || ast::vector_method(x).is_some() || ctx.new_table(&table, i) || !ctx.large_table(&table) {
            continue;
        }
        // A unique index on a distributed table must hold its distribution
        // column: show one that Citus builds.
        let first = x
            .unique
            .then(|| ctx.facts.unique_columns(&table, ctx.pos(i), &ast::index_columns(x)))
            .flatten()
            .map(|c| c[0].clone());
        out.push(Hit::new(
            i,
            format!(
                "CREATE INDEX without CONCURRENTLY locks table {table} against writes (SHARE lock) until the build ends; {}",
                ctx.why_large(&table)
            ),
            concurrent_help(node, first.as_deref()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn index_on_an_existing_table() {
        assert_eq!(
            pg("require-concurrent-index-creation", "CREATE INDEX idx_t_a ON t (a);\n"),
            "V1__m.sql:1:1: error[require-concurrent-index-creation]: CREATE INDEX without CONCURRENTLY locks table t against writes (SHARE lock) until the build ends; it was not created in this migration, so it may hold rows
   | CREATE INDEX idx_t_a ON t (a)
   = help: build it CONCURRENTLY (writes go on), in a migration of its own that starts with `-- chatmigrate:no-transaction`:
             CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_t_a ON t USING btree (a);

"
        );
    }

    #[test]
    fn new_table_or_concurrently_is_fine() {
        let r = "require-concurrent-index-creation";
        assert_eq!(pg(r, "CREATE TABLE t (a int);\nCREATE INDEX idx_t_a ON t (a);\n"), "");
        assert_eq!(
            pg(
                r,
                "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_t_a ON t (a);\n"
            ),
            ""
        );
    }
}
