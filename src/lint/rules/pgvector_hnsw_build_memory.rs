//! `pgvector-hnsw-build-memory`: an HNSW build on an existing table with no
//! `maintenance_work_mem` raised before it in the same migration (or for the
//! database with `ALTER DATABASE ... SET` earlier in the set). When the graph
//! does not fit in maintenance_work_mem (64MB by default), pgvector says
//! "hnsw graph no longer fits into maintenance_work_mem" and goes on much
//! more slowly. On a backend without sessions (the Data API), a session
//! `SET` in a no-transaction file does not reach the build.

use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;

pub static RULE: Rule = Rule {
    id: "pgvector-hnsw-build-memory",
    level: Level::Warning,
    summary: "HNSW build without maintenance_work_mem raised before it",
    ignorable: true,
    scope: Scope::All,
    check,
};

const SETTING: &str = "maintenance_work_mem";

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    let no_tx = ctx.migration.tx_mode() == TxMode::NoTransaction;
    let mut raised = false;
    let mut skipped = false;
    for (i, node) in ctx.statements() {
        match node {
            NodeEnum::VariableSetStmt(v) if v.name == SETTING => {
                // A session SET outside a transaction does not outlive one
                // call on a transport without sessions.
                if no_tx && !v.is_local && !ctx.caps.session_state {
                    skipped = true;
                } else {
                    raised = v.kind == pg_query::protobuf::VariableSetKind::VarSetValue as i32;
                }
            }
            NodeEnum::SelectStmt(_) => {
                let sets = ast::func_calls(node)
                    .into_iter()
                    .any(|f| ast::func_name(f) == "set_config" && ast::arg(f, 0, "").and_then(ast::const_str) == Some(SETTING));
                raised |= sets;
            }
            NodeEnum::IndexStmt(x) if x.access_method == "hnsw" => {
                let Some(rel) = &x.relation else { continue };
                let table = ast::rel_key(rel);
                if raised || ctx.new_table(&table, i) || !ctx.large_table(&table) || ctx.facts.default_setting_before(SETTING, ctx.pos(i)) {
                    continue;
                }
                let message = if skipped {
                    format!("HNSW build on {table}: the `SET {SETTING}` before it is a session setting in a no-transaction file, which the Data API does not keep between calls (chatmigrate skips it), so the build runs with the cluster's {SETTING}")
                } else {
                    format!("HNSW build on {table} without {SETTING} raised before it: once the graph outgrows it (64MB by default) pgvector builds far more slowly (NOTICE: hnsw graph no longer fits into maintenance_work_mem)")
                };
                let help = if skipped {
                    format!("raise it for the database in an earlier migration, or in the DB cluster parameter group:\n  ALTER DATABASE <db> SET {SETTING} = '2GB';")
                } else {
                    format!("raise it just before the build, in the same file (and RESET it after, in a no-transaction file):\n  SET {SETTING} = '2GB';  -- SET LOCAL in a transactional file; size it to the index, below the server's RAM")
                };
                out.push(Hit::new(i, format!("{message}{}", ctx.size_note(&table)), help));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{pg, render};
    use crate::settings::BackendKind;

    const BUILD: &str = "-- chatmigrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON v USING hnsw (e vector_l2_ops);\n";

    #[test]
    fn build_without_memory() {
        assert_eq!(
            pg("pgvector-hnsw-build-memory", BUILD),
            "V1__m.sql:2:1: warning[pgvector-hnsw-build-memory]: HNSW build on v without maintenance_work_mem raised before it: once the graph outgrows it (64MB by default) pgvector builds far more slowly (NOTICE: hnsw graph no longer fits into maintenance_work_mem)
   | CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON v USING hnsw (e vector_l...
   = help: raise it just before the build, in the same file (and RESET it after, in a no-transaction file):
             SET maintenance_work_mem = '2GB';  -- SET LOCAL in a transactional file; size it to the index, below the server's RAM

"
        );
        let with_set = "-- chatmigrate:no-transaction\nSET maintenance_work_mem = '1GB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON v USING hnsw (e vector_l2_ops);\n";
        let data_api = render("pgvector-hnsw-build-memory", BackendKind::RdsData, &[with_set]);
        assert!(data_api.contains("which the Data API does not keep between calls"), "{data_api}");
    }

    #[test]
    fn raised_memory_is_fine() {
        let r = "pgvector-hnsw-build-memory";
        assert_eq!(
            pg(r, "-- chatmigrate:no-transaction\nSET maintenance_work_mem = '1GB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON v USING hnsw (e vector_l2_ops);\nRESET maintenance_work_mem;\n"),
            ""
        );
        assert_eq!(
            render(
                r,
                BackendKind::RdsData,
                &["ALTER DATABASE d SET maintenance_work_mem = '1GB';", BUILD]
            ),
            ""
        );
    }
}
