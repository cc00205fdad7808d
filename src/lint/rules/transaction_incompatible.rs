//! `transaction-incompatible`: a statement PostgreSQL refuses inside a
//! transaction block (CREATE INDEX CONCURRENTLY, CREATE DATABASE, VACUUM, ...)
//! in a file that chatmigrate runs in a transaction.

use crate::lint::{Finding, Level, Rule};
use crate::migration::{Migration, TxMode};

pub static RULE: Rule = Rule {
    id: "transaction-incompatible",
    level: Level::Error,
    summary: "statement cannot run inside a transaction block, but the file is transactional",
    ignorable: false,
    check,
};

fn check(m: &Migration, out: &mut Vec<Finding>) {
    if m.tx_mode() == TxMode::NoTransaction {
        return;
    }
    for (i, s) in m.statements.iter().enumerate() {
        if let Some(what) = s.non_transactional() {
            out.push(Finding {
                rule: RULE.id,
                level: RULE.level,
                location: m.location(i, 0),
                excerpt: s.excerpt(),
                message: format!("{what} cannot run inside a transaction block, and this file runs in one"),
                help: "add `-- chatmigrate:no-transaction` as the file's first line (its statements then run one by one), or move the statement to a file of its own".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::migration::Migration;

    fn lint(sql: &str) -> Vec<String> {
        let mut m = Migration::parse("V1__t.sql", "V1__t.sql", sql.as_bytes()).unwrap();
        m.prepare().unwrap();
        crate::lint::check(&[m])
            .iter()
            .map(|f| format!("{} [{}] {} (`{}`)", f.location, f.rule, f.message, f.excerpt))
            .collect()
    }

    #[test]
    fn fires_in_transactional_file() {
        assert_eq!(
            lint("CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t (a);\n"),
            vec!["V1__t.sql:2:1 [transaction-incompatible] CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and this file runs in one (`CREATE INDEX CONCURRENTLY i ON t (a)`)"]
        );
    }

    #[test]
    fn quiet_with_directive_or_plain_index() {
        assert!(lint("-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n").is_empty());
        assert!(lint("CREATE INDEX i ON t (a);\n").is_empty());
    }
}
