//! `constraint-missing-not-valid`: a CHECK or FOREIGN KEY constraint added to
//! an existing table without NOT VALID. PostgreSQL then checks every row
//! while it holds the table's lock: ACCESS EXCLUSIVE for CHECK (no reads or
//! writes), SHARE ROW EXCLUSIVE on both tables for a foreign key (no
//! writes). Also: `VALIDATE CONSTRAINT` in the same transaction as the `ADD
//! ... NOT VALID`, which keeps the strong lock during the scan after all.

use pg_query::protobuf::{AlterTableType as At, ConstrType};
use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "constraint-missing-not-valid",
    level: Level::Error,
    summary: "CHECK or FOREIGN KEY added to an existing table without NOT VALID scans it under lock",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    // Constraints added NOT VALID earlier in this transactional file.
    let mut not_valid: Vec<(String, String)> = Vec::new();
    let transactional = ctx.migration.tx_mode() == TxMode::Transaction;
    for (i, node) in ctx.statements() {
        let Some((table, _, cmds)) = ast::alter_cmds(node) else { continue };
        for cmd in cmds {
            if ast::cmd_is(cmd, At::AtValidateConstraint) {
                if transactional && not_valid.contains(&(table.clone(), cmd.name.clone())) {
                    out.push(Hit::new(
                        i,
                        format!("VALIDATE CONSTRAINT {} runs in the same transaction as its ADD ... NOT VALID, so the lock of the ADD is held during the scan of {table} after all", cmd.name),
                        format!("move it to a later migration (it then scans with a SHARE UPDATE EXCLUSIVE lock: reads and writes go on):\n  ALTER TABLE {table} VALIDATE CONSTRAINT {};", cmd.name),
                    ));
                }
                continue;
            }
            if !ast::cmd_is(cmd, At::AtAddConstraint) {
                continue;
            }
            let Some(c) = ast::cmd_constraint(cmd) else { continue };
            let foreign = ast::is(c, ConstrType::ConstrForeign);
            if !foreign && !ast::is(c, ConstrType::ConstrCheck) {
                continue;
            }
            let name = if c.conname.is_empty() {
                let cols = if foreign {
                    ast::strings(&c.fk_attrs).join("_")
                } else {
                    String::new()
                };
                let bare = table.rsplit('.').next().unwrap_or(&table);
                if foreign {
                    format!("{bare}_{cols}_fkey")
                } else {
                    format!("{bare}_check")
                }
            } else {
                c.conname.clone()
            };
            if c.skip_validation {
                not_valid.push((table.clone(), name));
                continue;
            }
            if ctx.new_table(&table, i) || !ctx.large_table(&table) {
                continue;
            }
            let mut fixed = c.clone();
            fixed.skip_validation = true;
            fixed.initially_valid = false;
            fixed.conname = name.clone();
            let mut n = node.clone();
            if let NodeEnum::AlterTableStmt(a) = &mut n {
                a.cmds
                    .retain(|x| matches!(&x.node, Some(NodeEnum::AlterTableCmd(y)) if y.as_ref() == cmd));
                if let Some(Some(NodeEnum::AlterTableCmd(y))) = a.cmds.first_mut().map(|x| x.node.as_mut()) {
                    y.def = Some(Box::new(pg_query::protobuf::Node {
                        node: Some(NodeEnum::Constraint(Box::new(fixed))),
                    }));
                }
            }
            let add = sql::deparse(&n).unwrap_or_default();
            let message = if foreign {
                let target = c.pktable.as_ref().map(ast::rel_key).unwrap_or_default();
                format!("FOREIGN KEY added without NOT VALID checks every row of {table} while it holds SHARE ROW EXCLUSIVE locks on {table} and {target}: writes to both wait until the scan ends{}", ctx.size_note(&table))
            } else {
                format!("CHECK constraint added without NOT VALID checks every row of {table} while it holds an ACCESS EXCLUSIVE lock: no reads or writes until the scan ends{}", ctx.size_note(&table))
            };
            out.push(Hit::new(
                i,
                message,
                format!("add it NOT VALID (new rows are checked at once, the lock is brief), then validate it in a later migration (the scan no longer blocks writes):\n  {add};\n  -- next migration:\n  ALTER TABLE {table} VALIDATE CONSTRAINT {name};"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn foreign_key_on_existing_table() {
        assert_eq!(
            pg("constraint-missing-not-valid", "ALTER TABLE msg ADD CONSTRAINT msg_user_fk FOREIGN KEY (userid) REFERENCES users (id);\n"),
            "V1__m.sql:1:1: error[constraint-missing-not-valid]: FOREIGN KEY added without NOT VALID checks every row of msg while it holds SHARE ROW EXCLUSIVE locks on msg and users: writes to both wait until the scan ends
   | ALTER TABLE msg ADD CONSTRAINT msg_user_fk FOREIGN KEY (userid) REFER...
   = help: add it NOT VALID (new rows are checked at once, the lock is brief), then validate it in a later migration (the scan no longer blocks writes):
             ALTER TABLE msg ADD CONSTRAINT msg_user_fk FOREIGN KEY (userid) REFERENCES users (id) NOT VALID;
             -- next migration:
             ALTER TABLE msg VALIDATE CONSTRAINT msg_user_fk;

"
        );
        let same_tx = pg(
            "constraint-missing-not-valid",
            "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\n",
        );
        assert!(
            same_tx.contains("V1__m.sql:2:1: error[constraint-missing-not-valid]: VALIDATE CONSTRAINT c runs in the same transaction"),
            "{same_tx}"
        );
    }

    #[test]
    fn not_valid_or_new_table_is_fine() {
        let r = "constraint-missing-not-valid";
        assert_eq!(pg(r, "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"), "");
        assert_eq!(pg(r, "ALTER TABLE t VALIDATE CONSTRAINT c;\n"), "");
        assert_eq!(
            pg(r, "CREATE TABLE t (a int);\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);\n"),
            ""
        );
    }
}
