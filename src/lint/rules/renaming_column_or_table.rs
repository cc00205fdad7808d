//! `renaming-column-or-table`: renaming a column or a table that this
//! migration did not create. The rename itself is instant, but every query
//! of the application version still running during a deploy breaks.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "renaming-column-or-table",
    level: Level::Warning,
    summary: "renaming a column or table breaks the clients still using the old name",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let NodeEnum::RenameStmt(r) = node else { continue };
        let Some(rel) = &r.relation else { continue };
        let table = ast::rel_key(rel);
        if ctx.new_table(&table, i) {
            continue;
        }
        let (message, help) = if r.rename_type == ObjectType::ObjectColumn as i32 {
            (
                format!("renaming column {table}.{} to {} breaks every query that still uses the old name (the running application during a deploy, reports, other services)", r.subname, r.newname),
                format!("expand and contract: add {} in one release, write both columns and backfill, move the readers, then drop {} in a later migration", r.newname, r.subname),
            )
        } else if r.rename_type == ObjectType::ObjectTable as i32 {
            (
                format!("renaming table {table} to {} breaks every query that still uses the old name (the running application during a deploy, reports, other services)", r.newname),
                format!("rename, and keep the old name working until no client uses it:\n  ALTER TABLE {table} RENAME TO {};\n  CREATE VIEW {table} AS SELECT * FROM {};  -- drop it in a later migration", r.newname, r.newname),
            )
        } else {
            continue;
        };
        out.push(Hit::new(i, message, help));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn rename_column() {
        assert_eq!(
            pg("renaming-column-or-table", "ALTER TABLE msg RENAME COLUMN userinput TO prompt;\n"),
            "V1__m.sql:1:1: warning[renaming-column-or-table]: renaming column msg.userinput to prompt breaks every query that still uses the old name (the running application during a deploy, reports, other services)
   | ALTER TABLE msg RENAME COLUMN userinput TO prompt
   = help: expand and contract: add prompt in one release, write both columns and backfill, move the readers, then drop userinput in a later migration

"
        );
    }

    #[test]
    fn renames_in_a_new_table_are_fine() {
        assert_eq!(
            pg(
                "renaming-column-or-table",
                "CREATE TABLE msg (a int);\nALTER TABLE msg RENAME COLUMN a TO b;\nALTER TABLE msg RENAME TO m;\n"
            ),
            ""
        );
    }
}
