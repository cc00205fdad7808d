//! `adding-not-nullable-field`: `ALTER COLUMN ... SET NOT NULL` on an
//! existing table (a full scan under ACCESS EXCLUSIVE to look for NULLs),
//! and `ADD COLUMN ... NOT NULL` without a DEFAULT (fails as soon as the
//! table has a row).

use pg_query::protobuf::{AlterTableType as At, ConstrType};

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "adding-not-nullable-field",
    level: Level::Error,
    summary: "SET NOT NULL scans an existing table under ACCESS EXCLUSIVE; ADD COLUMN NOT NULL without DEFAULT fails on rows",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let Some((table, _, cmds)) = ast::alter_cmds(node) else { continue };
        if ctx.new_table(&table, i) {
            continue;
        }
        let bare = table.rsplit('.').next().unwrap_or(&table).to_string();
        for cmd in cmds {
            if ast::cmd_is(cmd, At::AtSetNotNull) {
                if !ctx.large_table(&table) {
                    continue;
                }
                let col = &cmd.name;
                let check = format!("{bare}_{col}_not_null");
                out.push(Hit::new(
                    i,
                    format!("SET NOT NULL on {table}.{col} scans every row of {table} while it holds an ACCESS EXCLUSIVE lock: no reads or writes until the scan ends{}", ctx.size_note(&table)),
                    format!("prove it first with a CHECK constraint validated without blocking writes; SET NOT NULL then uses it and skips the scan:\n  ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID;\n  -- next migration:\n  ALTER TABLE {table} VALIDATE CONSTRAINT {check};\n  ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL;\n  ALTER TABLE {table} DROP CONSTRAINT {check};"),
                ));
            } else if ast::cmd_is(cmd, At::AtAddColumn) {
                let Some(col) = ast::cmd_column(cmd) else { continue };
                let cons: Vec<_> = ast::constraints(&col.constraints).collect();
                let not_null = col.is_not_null || cons.iter().any(|c| ast::is(c, ConstrType::ConstrNotnull));
                let filled = col.raw_default.is_some()
                    || cons.iter().any(|c| {
                        ast::is(c, ConstrType::ConstrDefault)
                            || ast::is(c, ConstrType::ConstrIdentity)
                            || ast::is(c, ConstrType::ConstrGenerated)
                    })
                    || col.type_name.as_ref().is_some_and(|t| ast::Type::of(t).is_serial());
                if not_null && !filled && ctx.holds_rows(&table) {
                    let ty = col.type_name.as_ref().map(|t| ast::Type::of(t).to_string()).unwrap_or_default();
                    out.push(Hit::new(
                        i,
                        format!("ADD COLUMN {} NOT NULL without a DEFAULT fails as soon as {table} has a row (existing rows would hold NULL){}", col.colname, ctx.size_note(&table)),
                        format!("give it a constant default (no rewrite since PostgreSQL 11), or add it nullable and backfill before SET NOT NULL:\n  ALTER TABLE {table} ADD COLUMN {} {ty} NOT NULL DEFAULT <constant>;", col.colname),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn set_not_null_on_existing_table() {
        assert_eq!(
            pg("adding-not-nullable-field", "ALTER TABLE msg ALTER COLUMN themename SET NOT NULL;\n"),
            "V1__m.sql:1:1: error[adding-not-nullable-field]: SET NOT NULL on msg.themename scans every row of msg while it holds an ACCESS EXCLUSIVE lock: no reads or writes until the scan ends
   | ALTER TABLE msg ALTER COLUMN themename SET NOT NULL
   = help: prove it first with a CHECK constraint validated without blocking writes; SET NOT NULL then uses it and skips the scan:
             ALTER TABLE msg ADD CONSTRAINT msg_themename_not_null CHECK (themename IS NOT NULL) NOT VALID;
             -- next migration:
             ALTER TABLE msg VALIDATE CONSTRAINT msg_themename_not_null;
             ALTER TABLE msg ALTER COLUMN themename SET NOT NULL;
             ALTER TABLE msg DROP CONSTRAINT msg_themename_not_null;

"
        );
        let add = pg("adding-not-nullable-field", "ALTER TABLE msg ADD COLUMN lang text NOT NULL;\n");
        assert!(add.contains("ADD COLUMN lang NOT NULL without a DEFAULT fails"), "{add}");
    }

    #[test]
    fn defaults_and_new_tables_are_fine() {
        let r = "adding-not-nullable-field";
        assert_eq!(pg(r, "ALTER TABLE msg ADD COLUMN lang text NOT NULL DEFAULT 'ja';\n"), "");
        assert_eq!(
            pg(r, "CREATE TABLE msg (a int);\nALTER TABLE msg ALTER COLUMN a SET NOT NULL;\n"),
            ""
        );
    }
}
