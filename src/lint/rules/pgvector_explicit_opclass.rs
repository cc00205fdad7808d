//! `pgvector-explicit-opclass`: an HNSW or IVFFlat index without an operator
//! class. pgvector then uses the L2 class (`vector_l2_ops`), and a query
//! ordering by another distance (`<=>` cosine, `<#>` inner product) does not
//! use the index: it silently scans the whole table.

use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "pgvector-explicit-opclass",
    level: Level::Warning,
    summary: "vector index without an explicit operator class",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let NodeEnum::IndexStmt(x) = node else { continue };
        let Some(method) = ast::vector_method(x) else { continue };
        for p in &x.index_params {
            let Some(NodeEnum::IndexElem(e)) = &p.node else { continue };
            if !e.opclass.is_empty() {
                continue;
            }
            let col = if e.name.is_empty() { "(expression)" } else { &e.name };
            out.push(Hit::new(
                i,
                format!("{method} index on {col} without an operator class: pgvector uses the L2 one, and queries ordering by another distance (<=> cosine, <#> inner product) do not use the index"),
                format!("name the class of the distance your queries use: ({col} vector_cosine_ops) for <=>, vector_l2_ops for <->, vector_ip_ops for <#>, vector_l1_ops for <+> (halfvec_*_ops for halfvec, bit_hamming_ops / bit_jaccard_ops for bit)"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn no_opclass() {
        assert_eq!(
            pg("pgvector-explicit-opclass", "CREATE TABLE v (e vector(3));\nCREATE INDEX i ON v USING hnsw (e);\n"),
            "V1__m.sql:2:1: warning[pgvector-explicit-opclass]: HNSW index on e without an operator class: pgvector uses the L2 one, and queries ordering by another distance (<=> cosine, <#> inner product) do not use the index
   | CREATE INDEX i ON v USING hnsw (e)
   = help: name the class of the distance your queries use: (e vector_cosine_ops) for <=>, vector_l2_ops for <->, vector_ip_ops for <#>, vector_l1_ops for <+> (halfvec_*_ops for halfvec, bit_hamming_ops / bit_jaccard_ops for bit)

"
        );
    }

    #[test]
    fn explicit_opclass_is_fine() {
        assert_eq!(
            pg(
                "pgvector-explicit-opclass",
                "CREATE TABLE v (e vector(3));\nCREATE INDEX i ON v USING hnsw (e vector_cosine_ops);\nCREATE INDEX j ON v (e);\n"
            ),
            ""
        );
    }
}
