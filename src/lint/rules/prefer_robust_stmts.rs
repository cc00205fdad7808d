//! `prefer-robust-stmts`: in a no-transaction file, a statement that fails
//! when it runs a second time (CREATE without IF NOT EXISTS, DROP without IF
//! EXISTS, ...). chatmigrate resumes such a file at the statement it was on
//! when a run was cut; if that statement had finished but its progress row
//! was not written (a lost connection, a resuming Aurora cluster, a Data API
//! call with no answer), it runs again.

use pg_query::protobuf::AlterTableType as At;
use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "prefer-robust-stmts",
    level: Level::Error,
    summary: "statement in a no-transaction file that fails if it runs again on resume",
    ignorable: true,
    scope: Scope::All,
    check,
};

/// The safer form of a statement: the tree with `fix` applied, deparsed.
fn fixed(node: &NodeEnum, fix: impl FnOnce(&mut NodeEnum)) -> String {
    let mut n = node.clone();
    fix(&mut n);
    let sql = sql::deparse(&n).unwrap_or_default();
    format!("write it so it can run again:\n  {sql};")
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    if ctx.migration.tx_mode() != TxMode::NoTransaction {
        return;
    }
    for (i, node) in ctx.statements() {
        let (what, help) = match node {
            NodeEnum::CreateStmt(c) if !c.if_not_exists => (
                "CREATE TABLE without IF NOT EXISTS".to_string(),
                format!(
                    "write CREATE TABLE IF NOT EXISTS {} (...)",
                    c.relation.as_ref().map(ast::rel_key).unwrap_or_default()
                ),
            ),
            NodeEnum::IndexStmt(x) if !x.if_not_exists => (
                "CREATE INDEX without IF NOT EXISTS".to_string(),
                if x.idxname.is_empty() {
                    "name the index and add IF NOT EXISTS (chatmigrate drops an INVALID index left by a failed CONCURRENTLY build before it runs the statement again)".to_string()
                } else {
                    fixed(node, |n| {
                        if let NodeEnum::IndexStmt(x) = n {
                            x.if_not_exists = true;
                        }
                    })
                },
            ),
            NodeEnum::CreateSchemaStmt(x) if !x.if_not_exists => (
                "CREATE SCHEMA without IF NOT EXISTS".into(),
                format!(
                    "write it so it can run again:\n  CREATE SCHEMA IF NOT EXISTS {};",
                    ast::ident(&x.schemaname)
                ),
            ),
            NodeEnum::CreateExtensionStmt(x) if !x.if_not_exists => (
                "CREATE EXTENSION without IF NOT EXISTS".into(),
                format!(
                    "write it so it can run again:\n  CREATE EXTENSION IF NOT EXISTS {};",
                    ast::ident(&x.extname)
                ),
            ),
            NodeEnum::CreateSeqStmt(x) if !x.if_not_exists => (
                "CREATE SEQUENCE without IF NOT EXISTS".into(),
                fixed(node, |n| {
                    if let NodeEnum::CreateSeqStmt(x) = n {
                        x.if_not_exists = true;
                    }
                }),
            ),
            NodeEnum::CreateTableAsStmt(x) if !x.if_not_exists => (
                "CREATE TABLE / MATERIALIZED VIEW ... AS without IF NOT EXISTS".into(),
                "add IF NOT EXISTS after TABLE or MATERIALIZED VIEW".into(),
            ),
            NodeEnum::ViewStmt(x) if !x.replace => ("CREATE VIEW without OR REPLACE".into(), "write CREATE OR REPLACE VIEW".into()),
            NodeEnum::CreateFunctionStmt(x) if !x.replace => (
                "CREATE FUNCTION without OR REPLACE".into(),
                "write CREATE OR REPLACE FUNCTION (or PROCEDURE)".into(),
            ),
            NodeEnum::CreateTrigStmt(x) if !x.replace => {
                ("CREATE TRIGGER without OR REPLACE".into(), "write CREATE OR REPLACE TRIGGER".into())
            }
            NodeEnum::CompositeTypeStmt(_) | NodeEnum::CreateEnumStmt(_) => (
                "CREATE TYPE".into(),
                "CREATE TYPE has no IF NOT EXISTS: move it to a transactional migration (a file without `-- chatmigrate:no-transaction`)"
                    .into(),
            ),
            NodeEnum::DropStmt(x) if !x.missing_ok => (
                "DROP without IF EXISTS".into(),
                fixed(node, |n| {
                    if let NodeEnum::DropStmt(x) = n {
                        x.missing_ok = true;
                    }
                }),
            ),
            NodeEnum::SelectStmt(_) => {
                let Some((what, guard)) = unguarded_citus_call(node) else {
                    continue;
                };
                let sql = ctx.migration.statements.get(i).map(|s| s.sql.as_str()).unwrap_or_default();
                (
                    what,
                    format!(
                        "guard it with the catalog, as the shipped V6 does, so it is skipped once it took effect:\n  {sql}\n  {guard};"
                    ),
                )
            }
            NodeEnum::AlterTableStmt(_) => {
                let Some((_, _, cmds)) = ast::alter_cmds(node) else { continue };
                let bad = cmds.iter().find_map(|c| {
                    if ast::cmd_is(c, At::AtAddColumn) && !c.missing_ok {
                        Some(("ADD COLUMN without IF NOT EXISTS", "write ADD COLUMN IF NOT EXISTS"))
                    } else if ast::cmd_is(c, At::AtDropColumn) && !c.missing_ok {
                        Some(("DROP COLUMN without IF EXISTS", "write DROP COLUMN IF EXISTS"))
                    } else if ast::cmd_is(c, At::AtDropConstraint) && !c.missing_ok {
                        Some(("DROP CONSTRAINT without IF EXISTS", "write DROP CONSTRAINT IF EXISTS"))
                    } else if ast::cmd_is(c, At::AtAddConstraint) {
                        Some((
                            "ADD CONSTRAINT",
                            "ADD CONSTRAINT has no IF NOT EXISTS: move it to a transactional migration (a file without `-- chatmigrate:no-transaction`)",
                        ))
                    } else {
                        None
                    }
                });
                let Some((what, help)) = bad else { continue };
                (what.to_string(), help.to_string())
            }
            _ => continue,
        };
        out.push(Hit::new(
            i,
            format!("{what} in a no-transaction file fails if it runs again, and chatmigrate runs it again when a run was cut after the statement finished but before its progress was recorded"),
            help,
        ));
    }
}

/// A Citus call that fails when it runs a second time (`table "t" is
/// already distributed`, 42P16; "cannot undistribute table because the
/// table is not distributed"; "this call doesn't change any properties of
/// the table"), written without a guard that reads Citus's catalog
/// (`pg_dist_partition`, `citus_tables`): what it is, and the guard.
fn unguarded_citus_call(node: &NodeEnum) -> Option<(String, String)> {
    let NodeEnum::SelectStmt(sel) = node else { return None };
    let guarded = sel.where_clause.is_some()
        && node.nodes().into_iter().any(
            |(n, ..)| matches!(n, pg_query::NodeRef::RangeVar(r) if matches!(r.relname.as_str(), "pg_dist_partition" | "citus_tables")),
        );
    if guarded {
        return None;
    }
    ast::func_calls(node).into_iter().find_map(|call| {
        let function = ast::func_name(call);
        let table = ast::arg(call, 0, "table_name").and_then(ast::const_str)?;
        let t = table.replace('\'', "''");
        let guard = match function.as_str() {
            "create_distributed_table" | "create_distributed_table_concurrently" => format!(
                "WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = '{t}'::regclass AND partmethod = 'h')"
            ),
            "create_reference_table" => format!(
                "WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = '{t}'::regclass AND partmethod = 'n' AND repmodel = 't')"
            ),
            "undistribute_table" => format!("WHERE EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = '{t}'::regclass)"),
            "alter_distributed_table" => {
                let column = ast::arg(call, 1, "distribution_column").and_then(ast::const_str)?;
                format!(
                    "WHERE NOT EXISTS (SELECT 1 FROM citus_tables WHERE table_name = '{t}'::regclass AND distribution_column = '{}')",
                    column.replace('\'', "''")
                )
            }
            _ => return None,
        };
        Some((format!("{function}('{table}') without a guard"), guard))
    })
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn create_index_without_if_not_exists() {
        assert_eq!(
            pg("prefer-robust-stmts", "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY idx_t_a ON t (a);\n"),
            "V1__m.sql:2:1: error[prefer-robust-stmts]: CREATE INDEX without IF NOT EXISTS in a no-transaction file fails if it runs again, and chatmigrate runs it again when a run was cut after the statement finished but before its progress was recorded
   | CREATE INDEX CONCURRENTLY idx_t_a ON t (a)
   = help: write it so it can run again:
             CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_t_a ON t USING btree (a);

"
        );
        let drop = pg(
            "prefer-robust-stmts",
            "-- chatmigrate:no-transaction\nDROP INDEX CONCURRENTLY idx_t_a;\n",
        );
        assert!(drop.contains("  DROP INDEX CONCURRENTLY IF EXISTS idx_t_a;"), "{drop}");
    }

    #[test]
    fn an_unguarded_distribution() {
        assert_eq!(
            pg("prefer-robust-stmts", "-- chatmigrate:no-transaction\nSELECT create_distributed_table('big', 'id');\n"),
            "V1__m.sql:2:1: error[prefer-robust-stmts]: create_distributed_table('big') without a guard in a no-transaction file fails if it runs again, and chatmigrate runs it again when a run was cut after the statement finished but before its progress was recorded
   | SELECT create_distributed_table('big', 'id')
   = help: guard it with the catalog, as the shipped V6 does, so it is skipped once it took effect:
             SELECT create_distributed_table('big', 'id')
             WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'big'::regclass AND partmethod = 'h');

"
        );
        for (call, guard) in [
            ("create_reference_table('r')", "partmethod = 'n' AND repmodel = 't'"),
            (
                "undistribute_table('r')",
                "WHERE EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'r'::regclass)",
            ),
            (
                "alter_distributed_table('r', distribution_column := 'b')",
                "citus_tables WHERE table_name = 'r'::regclass AND distribution_column = 'b'",
            ),
        ] {
            let out = pg("prefer-robust-stmts", &format!("-- chatmigrate:no-transaction\nSELECT {call};\n"));
            assert!(out.contains(guard), "{out}");
        }
        // Guarded (as V6 is), in a transaction, or not Citus's: fine.
        let r = "prefer-robust-stmts";
        assert_eq!(
            pg(r, "-- chatmigrate:no-transaction\nSELECT create_distributed_table('big', 'id') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'big'::regclass AND partmethod = 'h');\nSELECT create_reference_table('r') WHERE NOT EXISTS (SELECT 1 FROM citus_tables WHERE table_name = 'r'::regclass);\n"),
            ""
        );
        assert_eq!(pg(r, "SELECT create_distributed_table('big', 'id');\n"), "");
        assert_eq!(
            pg(r, "-- chatmigrate:no-transaction\nSELECT citus_rebalance_start();\nSELECT now();\n"),
            ""
        );
        // A WHERE that does not read Citus's catalog is no guard.
        assert!(!pg(
            r,
            "-- chatmigrate:no-transaction\nSELECT create_distributed_table('big', 'id') WHERE true;\n"
        )
        .is_empty());
    }

    #[test]
    fn robust_statements_and_transactional_files_are_fine() {
        let r = "prefer-robust-stmts";
        assert_eq!(
            pg(
                r,
                "-- chatmigrate:no-transaction\nSET maintenance_work_mem = '1GB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nDROP INDEX CONCURRENTLY IF EXISTS j;\nRESET maintenance_work_mem;\n"
            ),
            ""
        );
        assert_eq!(pg(r, "CREATE TABLE t (a int);\nDROP TABLE u;\n"), "");
    }
}
