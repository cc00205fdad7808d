//! `disallowed-unique-constraint`: a PRIMARY KEY or UNIQUE constraint added
//! to an existing table. PostgreSQL builds its index while it holds an
//! ACCESS EXCLUSIVE lock: no reads or writes for the whole build. Build the
//! unique index CONCURRENTLY first, then attach it with `USING INDEX`.

use pg_query::protobuf::{AlterTableType as At, ConstrType};

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "disallowed-unique-constraint",
    level: Level::Error,
    summary: "PRIMARY KEY or UNIQUE added to an existing table builds its index under ACCESS EXCLUSIVE",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let Some((table, _, cmds)) = ast::alter_cmds(node) else { continue };
        if ctx.new_table(&table, i) || !ctx.large_table(&table) {
            continue;
        }
        let bare = table.rsplit('.').next().unwrap_or(&table).to_string();
        for cmd in cmds {
            let found: Vec<(&pg_query::protobuf::Constraint, Vec<String>)> = if ast::cmd_is(cmd, At::AtAddConstraint) {
                ast::cmd_constraint(cmd).map(|c| (c, ast::strings(&c.keys))).into_iter().collect()
            } else if ast::cmd_is(cmd, At::AtAddColumn) {
                ast::cmd_column(cmd)
                    .map(|col| ast::constraints(&col.constraints).map(|c| (c, vec![col.colname.clone()])).collect())
                    .unwrap_or_default()
            } else {
                continue;
            };
            for (c, cols) in found {
                let primary = ast::is(c, ConstrType::ConstrPrimary);
                if !(primary || ast::is(c, ConstrType::ConstrUnique)) || !c.indexname.is_empty() {
                    continue;
                }
                let what = if primary { "PRIMARY KEY" } else { "UNIQUE" };
                let name = if !c.conname.is_empty() {
                    c.conname.clone()
                } else if primary {
                    format!("{bare}_pkey")
                } else {
                    format!("{bare}_{}_key", cols.join("_"))
                };
                // On Citus, a distributed table's key must hold its
                // distribution column: the index shown must be one Citus builds.
                let cols = ctx.facts.unique_columns(&table, ctx.pos(i), &cols).unwrap_or(cols);
                let list = cols.join(", ");
                let not_null = if primary {
                    "\n  (a primary key also needs its columns NOT NULL: see adding-not-nullable-field for doing that without a scan under lock)"
                } else {
                    ""
                };
                out.push(Hit::new(
                    i,
                    format!("adding a {what} constraint to {table} builds its unique index while it holds an ACCESS EXCLUSIVE lock: no reads or writes until the build ends{}", ctx.size_note(&table)),
                    format!("build the index CONCURRENTLY in a migration of its own (`-- chatmigrate:no-transaction`), then attach it (instant):\n  CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({list});\n  -- next migration:\n  ALTER TABLE {table} ADD CONSTRAINT {name} {what} USING INDEX {name};{not_null}"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn unique_on_existing_table() {
        assert_eq!(
            pg("disallowed-unique-constraint", "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);\n"),
            "V1__m.sql:1:1: error[disallowed-unique-constraint]: adding a UNIQUE constraint to users builds its unique index while it holds an ACCESS EXCLUSIVE lock: no reads or writes until the build ends
   | ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)
   = help: build the index CONCURRENTLY in a migration of its own (`-- chatmigrate:no-transaction`), then attach it (instant):
             CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key ON users (email);
             -- next migration:
             ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;

"
        );
    }

    #[test]
    fn on_a_distributed_table_the_index_shown_has_the_distribution_column() {
        use crate::lint::testing::render;
        use crate::settings::BackendKind;
        let out = render(
            "disallowed-unique-constraint",
            BackendKind::Citus,
            &[
                "CREATE TABLE chats (userid text, chatid bigint);\nSELECT create_distributed_table('chats', 'userid');",
                "ALTER TABLE chats ADD CONSTRAINT chats_chatid_key UNIQUE (chatid);",
            ],
        );
        assert!(
            out.contains("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS chats_chatid_key ON chats (userid, chatid);"),
            "{out}"
        );
        let index = render(
            "require-concurrent-index-creation",
            BackendKind::Citus,
            &[
                "CREATE TABLE chats (userid text, chatid bigint);\nSELECT create_distributed_table('chats', 'userid');",
                "CREATE UNIQUE INDEX chats_chatid ON chats (chatid);",
            ],
        );
        assert!(
            index.contains("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS chats_chatid ON chats USING btree (userid, chatid);"),
            "{index}"
        );
    }

    #[test]
    fn using_index_or_new_table_is_fine() {
        let r = "disallowed-unique-constraint";
        assert_eq!(pg(r, "ALTER TABLE users ADD CONSTRAINT k UNIQUE USING INDEX k;\n"), "");
        assert_eq!(
            pg(r, "CREATE TABLE users (email text);\nALTER TABLE users ADD UNIQUE (email);\n"),
            ""
        );
    }
}
