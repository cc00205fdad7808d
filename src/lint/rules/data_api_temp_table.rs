//! `data-api-temp-table` (rds-data): a temporary table created in a
//! no-transaction file and used by a later statement of it. A temporary
//! table lives in one database session; outside a transaction the next Data
//! API call may run on another session, where the table does not exist.

use pg_query::NodeEnum;

use crate::capabilities::Property;
use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;

pub static RULE: Rule = Rule {
    id: "data-api-temp-table",
    level: Level::Error,
    summary: "temporary table used across statements outside a transaction on the Data API",
    ignorable: true,
    scope: Scope::Having(Property::NoSessionState),
    check,
};

/// The temporary table a statement creates.
fn temp_created(node: &NodeEnum) -> Option<String> {
    let rel = match node {
        NodeEnum::CreateStmt(c) => c.relation.as_ref(),
        NodeEnum::CreateTableAsStmt(c) => c.into.as_ref().and_then(|i| i.rel.as_ref()),
        _ => None,
    }?;
    (rel.relpersistence == "t").then(|| ast::rel_key(rel))
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    if ctx.migration.tx_mode() != TxMode::NoTransaction || ctx.caps.session_state {
        return;
    }
    let mut temps: Vec<(usize, String)> = Vec::new();
    for (i, node) in ctx.statements() {
        if let Some(t) = temp_created(node) {
            temps.push((i, t));
            continue;
        }
        let used: Vec<String> = node
            .nodes()
            .into_iter()
            .filter_map(|(n, ..)| match n {
                pg_query::NodeRef::RangeVar(r) => Some(ast::rel_key(r)),
                _ => None,
            })
            .collect();
        for (at, t) in temps.iter().filter(|(_, t)| used.contains(t)) {
            out.push(Hit::new(
                i,
                format!("temporary table {t} (created at line {}) is used by a later statement of a no-transaction file: on the Data API that statement may run on another database session, where {t} does not exist", ctx.migration.location(*at, 0).line),
                format!("create and use it inside one transactional file (CREATE TEMP TABLE {t} (...) ON COMMIT DROP), or use a regular table and drop it at the end"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    const R: &str = "data-api-temp-table";

    #[test]
    fn temp_table_across_calls() {
        assert_eq!(
            render(R, BackendKind::RdsData, &["-- chatmigrate:no-transaction\nCREATE TEMP TABLE ids AS SELECT id FROM t;\nDELETE FROM u WHERE id IN (SELECT id FROM ids);\n"]),
            "V1__m.sql:3:1: error[data-api-temp-table]: temporary table ids (created at line 2) is used by a later statement of a no-transaction file: on the Data API that statement may run on another database session, where ids does not exist
   | DELETE FROM u WHERE id IN (SELECT id FROM ids)
   = help: create and use it inside one transactional file (CREATE TEMP TABLE ids (...) ON COMMIT DROP), or use a regular table and drop it at the end

"
        );
    }

    #[test]
    fn temp_tables_in_a_transaction_are_fine() {
        assert_eq!(
            render(
                R,
                BackendKind::RdsData,
                &["CREATE TEMP TABLE ids (id int) ON COMMIT DROP;\nINSERT INTO ids VALUES (1);\n"]
            ),
            ""
        );
    }
}
