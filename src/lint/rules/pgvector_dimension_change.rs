//! `pgvector-dimension-change`: `ALTER COLUMN ... TYPE vector(n)` (or
//! halfvec / bit / sparsevec) on an existing table. It rewrites the table
//! under an ACCESS EXCLUSIVE lock, fails on any stored vector of another
//! dimension ("expected n dimensions, not m"), and rebuilds every index on
//! the column (HNSW: hours) inside that lock.

use crate::lint::{Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "pgvector-dimension-change",
    level: Level::Error,
    summary: "changing a vector column's type or dimension rewrites the table and rebuilds its vector indexes",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for r in ctx.column_retypes() {
        let (table, col, old, new) = (&r.table, &r.column, r.old.as_ref(), &r.new);
        if (new.vector().is_none() && old.is_none_or(|o| o.vector().is_none())) || old == Some(new) || !ctx.holds_rows(table) {
            continue;
        }
        let from = old.map(|o| format!(" from {o}")).unwrap_or_default();
        out.push(Hit::new(
            r.statement,
            format!("changing {table}.{col}{from} to {new} rewrites {table} under an ACCESS EXCLUSIVE lock, fails on every stored vector of another dimension, and rebuilds the column's vector indexes (HNSW: hours) inside that lock{}", ctx.size_note(table)),
            format!("add a new column, fill it with embeddings from the new model, index it CONCURRENTLY, move the queries, then drop the old column:\n  ALTER TABLE {table} ADD COLUMN {col}_new {new};\n  -- backfill in batches; then, in a no-transaction migration:\n  CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{}_{col}_new ON {table} USING hnsw ({col}_new vector_l2_ops);", table.rsplit('.').next().unwrap_or(table)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    #[test]
    fn dimension_change() {
        assert_eq!(
            render(
                "pgvector-dimension-change",
                BackendKind::Postgres,
                &["CREATE TABLE v (e vector(1024));", "ALTER TABLE v ALTER COLUMN e TYPE vector(1536);"]
            ),
            "V2__m.sql:1:1: error[pgvector-dimension-change]: changing v.e from vector(1024) to vector(1536) rewrites v under an ACCESS EXCLUSIVE lock, fails on every stored vector of another dimension, and rebuilds the column's vector indexes (HNSW: hours) inside that lock
   | ALTER TABLE v ALTER COLUMN e TYPE vector(1536)
   = help: add a new column, fill it with embeddings from the new model, index it CONCURRENTLY, move the queries, then drop the old column:
             ALTER TABLE v ADD COLUMN e_new vector(1536);
             -- backfill in batches; then, in a no-transaction migration:
             CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_v_e_new ON v USING hnsw (e_new vector_l2_ops);

"
        );
    }

    #[test]
    fn new_table_or_other_columns_are_fine() {
        let r = "pgvector-dimension-change";
        let p = BackendKind::Postgres;
        assert_eq!(
            render(
                r,
                p,
                &["CREATE TABLE v (e vector(3));\nALTER TABLE v ALTER COLUMN e TYPE vector(4);"]
            ),
            ""
        );
        assert_eq!(
            render(
                r,
                p,
                &["CREATE TABLE v (e vector(3), n int);", "ALTER TABLE v ALTER COLUMN n TYPE bigint;"]
            ),
            ""
        );
    }
}
