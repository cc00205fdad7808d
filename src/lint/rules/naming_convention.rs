//! `naming-convention`: the seed's rule for names: database, table and
//! column names all lowercase, without `.` or `-`. Such names need double
//! quotes in every query (and some tools, e.g. the RDS query editor, trip
//! over them). Unquoted names are lowercased by PostgreSQL, so this only
//! fires on quoted ones.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "naming-convention",
    level: Level::Error,
    summary: "database, table and column names: lowercase, no '.' or '-'",
    ignorable: true,
    scope: Scope::All,
    check,
};

/// The names a statement gives to databases, tables and columns.
fn names(node: &NodeEnum) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match node {
        NodeEnum::CreatedbStmt(d) => out.push(("database", d.dbname.clone())),
        NodeEnum::CreateStmt(c) => {
            if let Some(r) = &c.relation {
                out.push(("table", r.relname.clone()));
            }
            out.extend(ast::columns(&c.table_elts).map(|col| ("column", col.colname.clone())));
        }
        NodeEnum::CreateTableAsStmt(c) => {
            if let Some(r) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                out.push(("table", r.relname.clone()));
            }
        }
        NodeEnum::RenameStmt(r) => {
            let kind = match r.rename_type {
                t if t == ObjectType::ObjectTable as i32 => "table",
                t if t == ObjectType::ObjectColumn as i32 => "column",
                t if t == ObjectType::ObjectDatabase as i32 => "database",
                _ => return out,
            };
            out.push((kind, r.newname.clone()));
        }
        NodeEnum::AlterTableStmt(_) => {
            for (_, col, _) in ast::defined_columns(node) {
                out.push(("column", col));
            }
        }
        _ => {}
    }
    out
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        for (kind, name) in names(node) {
            if !name.chars().any(|c| c.is_uppercase() || c == '.' || c == '-') {
                continue;
            }
            let better: String = name
                .chars()
                .flat_map(char::to_lowercase)
                .map(|c| if c == '.' || c == '-' { '_' } else { c })
                .collect();
            out.push(Hit::new(
                i,
                format!("{kind} name \"{name}\" has upper case letters, '.' or '-': it must be double-quoted in every query, exactly so"),
                format!("use lowercase letters, digits and underscores: {better}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn quoted_mixed_case() {
        assert_eq!(
            pg("naming-convention", "CREATE TABLE \"ChatHistory\" (\"user-id\" text);\n"),
            "V1__m.sql:1:1: error[naming-convention]: table name \"ChatHistory\" has upper case letters, '.' or '-': it must be double-quoted in every query, exactly so
   | CREATE TABLE \"ChatHistory\" (\"user-id\" text)
   = help: use lowercase letters, digits and underscores: chathistory

V1__m.sql:1:1: error[naming-convention]: column name \"user-id\" has upper case letters, '.' or '-': it must be double-quoted in every query, exactly so
   | CREATE TABLE \"ChatHistory\" (\"user-id\" text)
   = help: use lowercase letters, digits and underscores: user_id

"
        );
    }

    #[test]
    fn lowercase_and_unquoted_names_are_fine() {
        assert_eq!(
            pg(
                "naming-convention",
                "CREATE TABLE ChatHistory (UserId text);\nCREATE DATABASE st_chat_db;\n"
            ),
            ""
        );
    }
}
