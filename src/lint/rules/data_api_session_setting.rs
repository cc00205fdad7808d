//! `data-api-session-setting` (rds-data): a session-level SET or RESET in a
//! no-transaction file. Outside a transaction each statement is its own Data
//! API call, possibly on another database session, so the setting does not
//! reach the statements after it (chatmigrate skips such statements and says
//! so). `SET LOCAL` there has no effect at all. Settings that only tune
//! resources (maintenance_work_mem, work_mem, max_parallel_maintenance_workers)
//! change no result and are left to `pgvector-hnsw-build-memory`.

use pg_query::NodeEnum;

use crate::capabilities::Property;
use crate::lint::{Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;

pub static RULE: Rule = Rule {
    id: "data-api-session-setting",
    level: Level::Error,
    summary: "SET / RESET outside a transaction does not persist between Data API calls",
    ignorable: true,
    scope: Scope::Having(Property::NoSessionState),
    check,
};

/// Settings that change how fast a statement runs, never what it does.
const RESOURCE_ONLY: &[&str] = &[
    "maintenance_work_mem",
    "work_mem",
    "max_parallel_maintenance_workers",
    "max_parallel_workers_per_gather",
];

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    if ctx.migration.tx_mode() != TxMode::NoTransaction || ctx.caps.session_state {
        return;
    }
    for (i, node) in ctx.statements() {
        let NodeEnum::VariableSetStmt(v) = node else { continue };
        if RESOURCE_ONLY.contains(&v.name.as_str()) {
            continue;
        }
        let name = if v.name.is_empty() { "ALL".to_string() } else { v.name.clone() };
        let message = if v.is_local {
            format!(
                "SET LOCAL {name} in a no-transaction file has no effect: each statement runs in a transaction of its own on the Data API"
            )
        } else {
            format!("{} {name} in a no-transaction file: on the Data API each statement is its own call, possibly on another database session, so the setting does not reach the statements after it (chatmigrate skips it)", if v.kind == pg_query::protobuf::VariableSetKind::VarReset as i32 || v.kind == pg_query::protobuf::VariableSetKind::VarResetAll as i32 { "RESET" } else { "SET" })
        };
        out.push(Hit::new(
            i,
            message,
            format!("put the statements that need it in a transactional file (no `-- chatmigrate:no-transaction`) and open it with SET LOCAL {name} = ...; or qualify names instead of relying on search_path; or set it for every session: ALTER DATABASE <db> SET {name} = ..."),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    const R: &str = "data-api-session-setting";

    #[test]
    fn search_path_in_a_no_transaction_file() {
        assert_eq!(
            render(R, BackendKind::RdsData, &["-- chatmigrate:no-transaction\nSET search_path = app;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n"]),
            "V1__m.sql:2:1: error[data-api-session-setting]: SET search_path in a no-transaction file: on the Data API each statement is its own call, possibly on another database session, so the setting does not reach the statements after it (chatmigrate skips it)
   | SET search_path = app
   = help: put the statements that need it in a transactional file (no `-- chatmigrate:no-transaction`) and open it with SET LOCAL search_path = ...; or qualify names instead of relying on search_path; or set it for every session: ALTER DATABASE <db> SET search_path = ...

"
        );
    }

    #[test]
    fn transactions_resources_and_direct_connections_are_fine() {
        assert_eq!(
            render(R, BackendKind::RdsData, &["SET LOCAL search_path = app;\nCREATE TABLE t (a int);"]),
            ""
        );
        assert_eq!(
            render(
                R,
                BackendKind::RdsData,
                &["-- chatmigrate:no-transaction\nSET maintenance_work_mem = '1GB';\nRESET maintenance_work_mem;"]
            ),
            ""
        );
        assert_eq!(
            render(
                R,
                BackendKind::Postgres,
                &["-- chatmigrate:no-transaction\nSET search_path = app;\nSELECT 1;"]
            ),
            ""
        );
    }
}
