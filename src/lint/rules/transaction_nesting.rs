//! `transaction-nesting`: BEGIN, COMMIT, ROLLBACK (or PREPARE TRANSACTION)
//! written inside a migration. chatmigrate opens and commits the transaction
//! itself, with the history row inside it; a COMMIT in the file would split
//! the migration from its record.

use pg_query::protobuf::TransactionStmtKind as K;
use pg_query::NodeEnum;

use crate::lint::{Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;

pub static RULE: Rule = Rule {
    id: "transaction-nesting",
    level: Level::Error,
    summary: "BEGIN / COMMIT / ROLLBACK inside a migration that chatmigrate wraps",
    ignorable: false,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    let transactional = ctx.migration.tx_mode() == TxMode::Transaction;
    for (i, node) in ctx.statements() {
        let NodeEnum::TransactionStmt(t) = node else { continue };
        let (what, effect) = match t.kind {
            k if k == K::TransStmtBegin as i32 || k == K::TransStmtStart as i32 => (
                "BEGIN",
                "PostgreSQL only warns that a transaction is already in progress, and a later COMMIT would end chatmigrate's transaction early",
            ),
            k if k == K::TransStmtCommit as i32 => (
                "COMMIT",
                "it commits the statements before it without their history row, and the rest of the file runs outside any transaction",
            ),
            k if k == K::TransStmtRollback as i32 => (
                "ROLLBACK",
                "it throws away the statements before it, and the rest of the file runs outside any transaction",
            ),
            k if k == K::TransStmtPrepare as i32 => (
                "PREPARE TRANSACTION",
                "it hands chatmigrate's transaction, history row included, to a two-phase commit nobody finishes",
            ),
            _ => continue,
        };
        let message = if transactional {
            format!("{what} inside a migration that chatmigrate runs in one transaction with its history row: {effect}")
        } else {
            format!("{what} in a no-transaction file: chatmigrate records its progress after each statement, and an explicit transaction would hold those records (and every lock taken) until it ends")
        };
        out.push(Hit::new(
            i,
            message,
            "delete it: chatmigrate begins and commits the transaction itself, history row included.\nTo run statements outside a transaction, start the file with `-- chatmigrate:no-transaction`;\nto commit in several steps, use several migration files.",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn commit_inside_a_transactional_file() {
        assert_eq!(
            pg("transaction-nesting", "CREATE TABLE a (id bigint);\nCOMMIT;\nCREATE TABLE b (id bigint);\n"),
            "V1__m.sql:2:1: error[transaction-nesting]: COMMIT inside a migration that chatmigrate runs in one transaction with its history row: it commits the statements before it without their history row, and the rest of the file runs outside any transaction
   | COMMIT
   = help: delete it: chatmigrate begins and commits the transaction itself, history row included.
           To run statements outside a transaction, start the file with `-- chatmigrate:no-transaction`;
           to commit in several steps, use several migration files.

"
        );
        assert!(pg("transaction-nesting", "-- chatmigrate:no-transaction\nBEGIN;\nSELECT 1;\n").contains("BEGIN in a no-transaction file"));
    }

    #[test]
    fn savepoints_and_plain_files_are_fine() {
        assert_eq!(
            pg(
                "transaction-nesting",
                "SAVEPOINT s;\nSELECT 1;\nROLLBACK TO SAVEPOINT s;\nRELEASE s;\n"
            ),
            ""
        );
    }
}
