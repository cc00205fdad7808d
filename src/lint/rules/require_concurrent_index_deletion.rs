//! `require-concurrent-index-deletion`: DROP INDEX without CONCURRENTLY. It
//! takes an ACCESS EXCLUSIVE lock on the index's table: short, but every
//! query on the table queues behind it, and behind any long transaction it
//! waits for.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "require-concurrent-index-deletion",
    level: Level::Warning,
    summary: "DROP INDEX without CONCURRENTLY locks the table against reads and writes",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let NodeEnum::DropStmt(d) = node else { continue };
        if d.remove_type != ObjectType::ObjectIndex as i32 || d.concurrent {
            continue;
        }
        for name in ast::drop_keys(d) {
            let bare = name.rsplit('.').next().unwrap_or(&name);
            let table = ctx.facts.index_table(bare).map(str::to_string);
            // In an undo about to run (`down`'s gate, live sizes), any row
            // makes it an error (lint::UNDO_ERRORS); elsewhere a large table.
            let small = |t: &str| match ctx.undo {
                true => !ctx.holds_rows(t),
                false => !ctx.large_table(t),
            };
            if table.as_deref().is_some_and(|t| ctx.new_table(t, i) || small(t)) {
                continue;
            }
            let on = table.as_ref().map(|t| format!(" on table {t}")).unwrap_or_default();
            out.push(Hit::new(
                i,
                format!("DROP INDEX {name} without CONCURRENTLY takes an ACCESS EXCLUSIVE lock{on}: every query on the table waits behind it{}", table.as_deref().map(|t| ctx.size_note(t)).unwrap_or_default()),
                format!("drop it CONCURRENTLY, one index per statement, in a migration that starts with `-- chatmigrate:no-transaction`:\n  DROP INDEX CONCURRENTLY IF EXISTS {name};"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn drop_index_plain() {
        assert_eq!(
            pg("require-concurrent-index-deletion", "DROP INDEX idx_t_a;\n"),
            "V1__m.sql:1:1: warning[require-concurrent-index-deletion]: DROP INDEX idx_t_a without CONCURRENTLY takes an ACCESS EXCLUSIVE lock: every query on the table waits behind it
   | DROP INDEX idx_t_a
   = help: drop it CONCURRENTLY, one index per statement, in a migration that starts with `-- chatmigrate:no-transaction`:
             DROP INDEX CONCURRENTLY IF EXISTS idx_t_a;

"
        );
    }

    #[test]
    fn concurrently_or_new_table_is_fine() {
        let r = "require-concurrent-index-deletion";
        assert_eq!(
            pg(r, "-- chatmigrate:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS idx_t_a;\n"),
            ""
        );
        assert_eq!(pg(r, "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nDROP INDEX i;\n"), "");
    }
}
