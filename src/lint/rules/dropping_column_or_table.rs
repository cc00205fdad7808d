//! `dropping-column-or-table`: DROP TABLE, or ALTER TABLE ... DROP COLUMN,
//! of something this migration did not create: the data is gone for good,
//! and clients still using it break.

use pg_query::protobuf::{AlterTableType as At, ObjectType};
use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "dropping-column-or-table",
    level: Level::Warning,
    summary: "dropping a column or table deletes its data and breaks clients still using it",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    let help = "first release the application that no longer reads or writes it, and keep a copy of the data if it may be needed (pg_dump --table); then drop it in a later migration, and mark this one with `-- chatmigrate:ignore dropping-column-or-table -- <why it is safe>`";
    for (i, node) in ctx.statements() {
        match node {
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
                for t in ast::drop_keys(d).into_iter().filter(|t| !ctx.new_table(t, i)) {
                    out.push(Hit::new(
                        i,
                        format!("DROP TABLE {t} deletes its rows for good and breaks every client that still uses it"),
                        help,
                    ));
                }
            }
            NodeEnum::AlterTableStmt(_) => {
                let Some((table, _, cmds)) = ast::alter_cmds(node) else { continue };
                if ctx.new_table(&table, i) {
                    continue;
                }
                for c in cmds.into_iter().filter(|c| ast::cmd_is(c, At::AtDropColumn)) {
                    out.push(Hit::new(
                        i,
                        format!(
                            "DROP COLUMN {table}.{} deletes its values for good and breaks every query that still names it",
                            c.name
                        ),
                        help,
                    ));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn drop_column() {
        assert_eq!(
            pg("dropping-column-or-table", "ALTER TABLE msg DROP COLUMN botresponse;\n"),
            "V1__m.sql:1:1: warning[dropping-column-or-table]: DROP COLUMN msg.botresponse deletes its values for good and breaks every query that still names it
   | ALTER TABLE msg DROP COLUMN botresponse
   = help: first release the application that no longer reads or writes it, and keep a copy of the data if it may be needed (pg_dump --table); then drop it in a later migration, and mark this one with `-- chatmigrate:ignore dropping-column-or-table -- <why it is safe>`

"
        );
        assert!(pg("dropping-column-or-table", "DROP TABLE IF EXISTS old_msg;\n").contains("DROP TABLE old_msg deletes"));
    }

    #[test]
    fn dropping_what_this_migration_made_is_fine() {
        assert_eq!(
            pg(
                "dropping-column-or-table",
                "CREATE TABLE tmp (a int, b int);\nALTER TABLE tmp DROP COLUMN b;\nDROP TABLE tmp;\n"
            ),
            ""
        );
    }
}
