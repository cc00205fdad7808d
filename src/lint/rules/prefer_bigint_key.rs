//! `prefer-bigint-key`: a primary-key column of type smallint or integer
//! (or smallserial / serial). A chat history outgrows 2,147,483,647 rows, and
//! widening a key later rewrites the table and every table referencing it.

use pg_query::protobuf::{AlterTableType as At, ConstrType};
use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "prefer-bigint-key",
    level: Level::Warning,
    summary: "smallint / integer primary keys run out; use bigint",
    ignorable: true,
    scope: Scope::All,
    check,
};

/// The upper bound of a too-small key type.
fn small(t: &ast::Type) -> Option<&'static str> {
    match t.name.as_str() {
        "int2" | "smallserial" | "serial2" => Some("32,767"),
        "int4" | "serial" | "serial4" => Some("2,147,483,647"),
        _ => None,
    }
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        // (table, columns of the table or added, primary-key column names)
        let (table, cols, mut keys): (String, Vec<&pg_query::protobuf::ColumnDef>, Vec<String>) = match node {
            NodeEnum::CreateStmt(c) => {
                let Some(rel) = &c.relation else { continue };
                let keys = ast::constraints(&c.table_elts)
                    .filter(|k| ast::is(k, ConstrType::ConstrPrimary))
                    .flat_map(|k| ast::strings(&k.keys))
                    .collect();
                (ast::rel_key(rel), ast::columns(&c.table_elts).collect(), keys)
            }
            NodeEnum::AlterTableStmt(_) => {
                let Some((t, _, cmds)) = ast::alter_cmds(node) else { continue };
                let cols = cmds
                    .iter()
                    .filter(|c| ast::cmd_is(c, At::AtAddColumn))
                    .filter_map(|c| ast::cmd_column(c))
                    .collect();
                (t, cols, Vec::new())
            }
            _ => continue,
        };
        for col in &cols {
            if ast::constraints(&col.constraints).any(|k| ast::is(k, ConstrType::ConstrPrimary)) {
                keys.push(col.colname.clone());
            }
        }
        for col in cols.into_iter().filter(|c| keys.contains(&c.colname)) {
            let Some(ty) = col.type_name.as_ref().map(ast::Type::of) else {
                continue;
            };
            let Some(max) = small(&ty) else { continue };
            let better = if ty.is_serial() { "bigserial" } else { "bigint" };
            out.push(
                Hit::new(
                    i,
                    format!("primary key {table}.{} is {}: it runs out at {max}, and widening it later rewrites {table} and every table that references it", col.colname, ty),
                    format!("use {better} (or bigint GENERATED ALWAYS AS IDENTITY): {} {better}", col.colname),
                )
                .at(ctx, col.location),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn serial_key() {
        assert_eq!(
            pg("prefer-bigint-key", "CREATE TABLE msg (id serial PRIMARY KEY, body text);\n"),
            "V1__m.sql:1:19: warning[prefer-bigint-key]: primary key msg.id is serial: it runs out at 2,147,483,647, and widening it later rewrites msg and every table that references it
   | CREATE TABLE msg (id serial PRIMARY KEY, body text)
   = help: use bigserial (or bigint GENERATED ALWAYS AS IDENTITY): id bigserial

"
        );
        assert!(pg("prefer-bigint-key", "CREATE TABLE m (a int, b text, PRIMARY KEY (a, b));\n").contains("primary key m.a is integer"));
    }

    #[test]
    fn bigint_keys_are_fine() {
        assert_eq!(
            pg(
                "prefer-bigint-key",
                "CREATE TABLE m (id bigserial, userid text, n int, PRIMARY KEY (userid, id));\n"
            ),
            ""
        );
    }
}
