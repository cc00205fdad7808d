//! `pgvector-hnsw-build-memory`: an HNSW build on an existing table whose
//! file sets `maintenance_work_mem` itself with a session `SET` in a
//! no-transaction file, on a backend without sessions (the Data API): the
//! `SET` does not reach the build (chatmigrate skips it), and because the
//! file sets the memory itself chatmigrate does not plan it either, so the
//! build runs with the cluster's setting. When the graph does not fit
//! (64MB by default), pgvector says "hnsw graph no longer fits into
//! maintenance_work_mem" and goes on much more slowly. A build whose file
//! sets nothing is not reported: chatmigrate plans its memory
//! (docs/vector-indexes.md).

use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;

pub static RULE: Rule = Rule {
    id: "pgvector-hnsw-build-memory",
    level: Level::Warning,
    summary: "HNSW build whose own maintenance_work_mem the Data API does not keep",
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
                if !skipped {
                    // Nothing of the file's own: chatmigrate plans the memory.
                    continue;
                }
                let message = format!("HNSW build on {table}: the `SET {SETTING}` before it is a session setting in a no-transaction file, which the Data API does not keep between calls (chatmigrate skips it, and plans nothing for a file that sets the memory itself), so the build runs with the cluster's {SETTING}");
                let help = format!("remove the `SET`/`RESET` and let chatmigrate plan the build's memory (docs/vector-indexes.md), or raise it for the database in an earlier migration:\n  ALTER DATABASE <db> SET {SETTING} = '2GB';");
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
    fn a_files_own_session_set_on_the_data_api() {
        // Nothing of the file's own: chatmigrate plans the build's memory.
        assert_eq!(pg("pgvector-hnsw-build-memory", BUILD), "");
        assert_eq!(render("pgvector-hnsw-build-memory", BackendKind::RdsData, &[BUILD]), "");
        let with_set = "-- chatmigrate:no-transaction\nSET maintenance_work_mem = '1GB';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON v USING hnsw (e vector_l2_ops);\n";
        assert_eq!(pg("pgvector-hnsw-build-memory", with_set), "");
        let data_api = render("pgvector-hnsw-build-memory", BackendKind::RdsData, &[with_set]);
        assert!(data_api.contains("which the Data API does not keep between calls"), "{data_api}");
        assert!(data_api.contains("remove the `SET`/`RESET` and let chatmigrate plan"), "{data_api}");
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
