//! `pgvector-index-concurrently`: an HNSW or IVFFlat index built without
//! CONCURRENTLY on a table this migration did not create. Vector index
//! builds take minutes to hours on real data, and a plain build blocks
//! every write to the table for all of it.

use pg_query::NodeEnum;

use crate::lint::rules::require_concurrent_index_creation::concurrent_help;
use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "pgvector-index-concurrently",
    level: Level::Error,
    summary: "HNSW / IVFFlat index without CONCURRENTLY on an existing table blocks its writes for the whole build",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let NodeEnum::IndexStmt(x) = node else { continue };
        let (Some(method), Some(rel)) = (ast::vector_method(x), &x.relation) else {
            continue;
        };
        let table = ast::rel_key(rel);
        if x.concurrent || ctx.new_table(&table, i) || !ctx.large_table(&table) {
            continue;
        }
        out.push(Hit::new(
            i,
            format!("{method} index built without CONCURRENTLY on existing table {table}: writes to {table} wait for the whole build, which takes minutes to hours on a real vector table{}", ctx.size_note(&table)),
            format!("{}\n  (chatmigrate plans the build's maintenance_work_mem: docs/vector-indexes.md)", concurrent_help(node, None)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn hnsw_without_concurrently() {
        assert_eq!(
            pg("pgvector-index-concurrently", "SET LOCAL maintenance_work_mem = '1GB';\nCREATE INDEX idx_v ON st_chat_history_vector_table USING hnsw (chat_vector vector_l2_ops);\n"),
            "V1__m.sql:2:1: error[pgvector-index-concurrently]: HNSW index built without CONCURRENTLY on existing table st_chat_history_vector_table: writes to st_chat_history_vector_table wait for the whole build, which takes minutes to hours on a real vector table
   | CREATE INDEX idx_v ON st_chat_history_vector_table USING hnsw (chat_v...
   = help: build it CONCURRENTLY (writes go on), in a migration of its own that starts with `-- chatmigrate:no-transaction`:
             CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_v ON st_chat_history_vector_table USING hnsw (chat_vector vector_l2_ops);
             (chatmigrate plans the build's maintenance_work_mem: docs/vector-indexes.md)

"
        );
    }

    #[test]
    fn concurrently_or_new_table_is_fine() {
        let r = "pgvector-index-concurrently";
        assert_eq!(
            pg(
                r,
                "CREATE TABLE v (e vector(3));\nCREATE INDEX i ON v USING hnsw (e vector_l2_ops);\n"
            ),
            ""
        );
        assert_eq!(
            pg(
                r,
                "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON v USING ivfflat (e vector_l2_ops);\n"
            ),
            ""
        );
    }
}
