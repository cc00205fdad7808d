//! `changing-column-type`: `ALTER COLUMN ... TYPE` on an existing table
//! rewrites it and rebuilds its indexes under an ACCESS EXCLUSIVE lock. Only
//! widening text (varchar(n) → text, or a longer varchar) is free. pgvector
//! columns have their own rule, `pgvector-dimension-change`.

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "changing-column-type",
    level: Level::Error,
    summary: "ALTER COLUMN TYPE rewrites an existing table and its indexes under ACCESS EXCLUSIVE",
    ignorable: true,
    scope: Scope::All,
    check,
};

/// Text that only gets longer: no rewrite.
fn widening(old: Option<&ast::Type>, new: &ast::Type) -> bool {
    let texty = |t: &ast::Type| matches!(t.name.as_str(), "text" | "varchar") && !t.array;
    match old {
        Some(old) if texty(old) && texty(new) => match (old.mods.first(), new.mods.first()) {
            (_, None) => true,
            (Some(o), Some(n)) => n >= o,
            (None, Some(_)) => false,
        },
        _ => false,
    }
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for r in ctx.column_retypes() {
        let (table, col, old, new) = (&r.table, &r.column, r.old.as_ref(), &r.new);
        if new.vector().is_some() || old.is_some_and(|o| o.vector().is_some()) || widening(old, new) || !ctx.large_table(table) {
            continue;
        }
        let from = old.map(|o| format!(" from {o}")).unwrap_or_default();
        out.push(Hit::new(
            r.statement,
            format!("changing {table}.{col}{from} to {new} rewrites {table} and rebuilds its indexes while it holds an ACCESS EXCLUSIVE lock: no reads or writes until it ends{}", ctx.size_note(table)),
            format!("add a new column, fill it in batches, move readers and writers to it, then drop the old one:\n  ALTER TABLE {table} ADD COLUMN {col}_new {new};\n  -- in batches: UPDATE {table} SET {col}_new = {col}::{new} WHERE <key range>;\n  -- later migrations: switch the application, then DROP COLUMN {col} and RENAME {col}_new TO {col}\n(for longer text, text or a longer varchar needs no rewrite)"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn type_change_on_existing_table() {
        assert_eq!(
            crate::lint::testing::render(
                "changing-column-type",
                crate::settings::BackendKind::Postgres,
                &["CREATE TABLE msg (chatid integer);", "ALTER TABLE msg ALTER COLUMN chatid TYPE bigint;"]
            ),
            "V2__m.sql:1:1: error[changing-column-type]: changing msg.chatid from integer to bigint rewrites msg and rebuilds its indexes while it holds an ACCESS EXCLUSIVE lock: no reads or writes until it ends
   | ALTER TABLE msg ALTER COLUMN chatid TYPE bigint
   = help: add a new column, fill it in batches, move readers and writers to it, then drop the old one:
             ALTER TABLE msg ADD COLUMN chatid_new bigint;
             -- in batches: UPDATE msg SET chatid_new = chatid::bigint WHERE <key range>;
             -- later migrations: switch the application, then DROP COLUMN chatid and RENAME chatid_new TO chatid
           (for longer text, text or a longer varchar needs no rewrite)

"
        );
    }

    #[test]
    fn widening_text_and_new_tables_are_fine() {
        let r = "changing-column-type";
        let pgk = crate::settings::BackendKind::Postgres;
        assert_eq!(
            crate::lint::testing::render(
                r,
                pgk,
                &["CREATE TABLE m (t varchar(10));", "ALTER TABLE m ALTER COLUMN t TYPE text;"]
            ),
            ""
        );
        assert_eq!(pg(r, "CREATE TABLE m (a int);\nALTER TABLE m ALTER COLUMN a TYPE bigint;\n"), "");
    }
}
