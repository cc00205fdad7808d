//! `pgvector-index-dimensions`: an HNSW or IVFFlat index on more dimensions
//! than pgvector's index types allow (vector 2,000, halfvec 4,000, bit
//! 64,000). pgvector refuses the build ("column cannot have more than 2000
//! dimensions for hnsw index"). The dimension comes from the column's type
//! in the set, or from a cast in an expression index.

use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "pgvector-index-dimensions",
    level: Level::Error,
    summary: "vector index on more dimensions than HNSW / IVFFlat allow",
    ignorable: true,
    scope: Scope::All,
    check,
};

/// The most dimensions an HNSW or IVFFlat index takes, per type.
fn limit(ty: &str) -> Option<i64> {
    match ty {
        "vector" => Some(2_000),
        "halfvec" => Some(4_000),
        "bit" => Some(64_000),
        _ => None,
    }
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let NodeEnum::IndexStmt(x) = node else { continue };
        let (Some(method), Some(rel)) = (ast::vector_method(x), &x.relation) else {
            continue;
        };
        let table = ast::rel_key(rel);
        let state = ctx.facts.state(&table, ctx.pos(i));
        for p in &x.index_params {
            let Some(NodeEnum::IndexElem(e)) = &p.node else { continue };
            let ty = match e.expr.as_deref().and_then(|n| n.node.as_ref()) {
                Some(NodeEnum::TypeCast(c)) => c.type_name.as_ref().map(ast::Type::of),
                _ => state.column(&e.name).cloned(),
            };
            let Some(ty) = ty else { continue };
            let Some((name, Some(dims))) = ty.vector() else { continue };
            let Some(max) = limit(name) else { continue };
            if dims <= max {
                continue;
            }
            let col = if e.name.is_empty() {
                "(expression)".to_string()
            } else {
                e.name.clone()
            };
            out.push(Hit::new(
                i,
                format!("{method} index on {col} ({ty}): pgvector indexes at most {max} dimensions of {name}, so the build fails (column cannot have more than {max} dimensions for {} index)", x.access_method),
                if name == "vector" && dims <= 4_000 {
                    format!("index it as halfvec (up to 4,000 dimensions), and cast the same way in queries:\n  CREATE INDEX ... USING {} (({col}::halfvec({dims})) halfvec_l2_ops);", x.access_method)
                } else {
                    "use fewer dimensions (a model or setting with smaller embeddings), or index a binary quantization: USING hnsw ((binary_quantize(col)::bit(n)) bit_hamming_ops)".to_string()
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn too_many_dimensions() {
        assert_eq!(
            pg("pgvector-index-dimensions", "CREATE TABLE v (e vector(3072));\nCREATE INDEX i ON v USING hnsw (e vector_l2_ops);\n"),
            "V1__m.sql:2:1: error[pgvector-index-dimensions]: HNSW index on e (vector(3072)): pgvector indexes at most 2000 dimensions of vector, so the build fails (column cannot have more than 2000 dimensions for hnsw index)
   | CREATE INDEX i ON v USING hnsw (e vector_l2_ops)
   = help: index it as halfvec (up to 4,000 dimensions), and cast the same way in queries:
             CREATE INDEX ... USING hnsw ((e::halfvec(3072)) halfvec_l2_ops);

"
        );
    }

    #[test]
    fn within_limits_is_fine() {
        let r = "pgvector-index-dimensions";
        assert_eq!(
            pg(
                r,
                "CREATE TABLE v (e vector(1024));\nCREATE INDEX i ON v USING hnsw (e vector_l2_ops);\n"
            ),
            ""
        );
        assert_eq!(
            pg(
                r,
                "CREATE TABLE v (e vector(3072));\nCREATE INDEX i ON v USING hnsw ((e::halfvec(3072)) halfvec_l2_ops);\n"
            ),
            ""
        );
    }
}
