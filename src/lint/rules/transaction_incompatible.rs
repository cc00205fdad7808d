//! `transaction-incompatible`: a statement PostgreSQL refuses inside a
//! transaction block (CREATE INDEX CONCURRENTLY, CREATE DATABASE, VACUUM, ...)
//! in a file that chatmigrate runs in a transaction.

use crate::lint::{Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;

pub static RULE: Rule = Rule {
    id: "transaction-incompatible",
    level: Level::Error,
    summary: "statement cannot run inside a transaction block, but the file is transactional",
    ignorable: false,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    let m = ctx.migration;
    if m.tx_mode() == TxMode::NoTransaction {
        return;
    }
    for (i, s) in m.statements.iter().enumerate() {
        if let Some(what) = s.non_transactional() {
            out.push(Hit::new(
                i,
                format!("{what} cannot run inside a transaction block, and this file runs in one"),
                "add `-- chatmigrate:no-transaction` as the file's first line (its statements then run one by one), or move the statement to a file of its own",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn fires_in_transactional_file() {
        assert_eq!(
            pg("transaction-incompatible", "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t (a);\n"),
            "V1__m.sql:2:1: error[transaction-incompatible]: CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and this file runs in one
   | CREATE INDEX CONCURRENTLY i ON t (a)
   = help: add `-- chatmigrate:no-transaction` as the file's first line (its statements then run one by one), or move the statement to a file of its own

"
        );
    }

    #[test]
    fn quiet_with_directive_or_plain_index() {
        let r = "transaction-incompatible";
        assert_eq!(
            pg(
                r,
                "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n"
            ),
            ""
        );
        assert_eq!(pg(r, "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\n"), "");
    }
}
