//! `citus-parallel-operation` (Citus): in one transaction running in
//! parallel multi-shard mode, a parallel distributed operation
//! (`create_distributed_table`, a query or DML on a distributed table)
//! followed by CREATE TYPE / CREATE SCHEMA / CREATE FUNCTION, or by a write
//! to a reference table. Citus refuses the later statement, because the
//! parallel operation opened several connections per worker that cannot all
//! see the new object or the reference-table change.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::capabilities::Property;
use crate::lint::facts::{self, Kind};
use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};
use crate::migration::TxMode;

pub static RULE: Rule = Rule {
    id: "citus-parallel-operation",
    level: Level::Error,
    summary: "CREATE TYPE/SCHEMA/FUNCTION or a reference-table write after a parallel distributed operation in one transaction",
    ignorable: true,
    scope: Scope::Having(Property::DistributedTables),
    check,
};

const MODE: &str = "citus.multi_shard_modify_mode";

/// The tables a statement reads or writes (its range variables).
fn tables(node: &NodeEnum) -> Vec<String> {
    node.nodes()
        .into_iter()
        .filter_map(|(n, ..)| match n {
            pg_query::NodeRef::RangeVar(r) => Some(ast::rel_key(r)),
            _ => None,
        })
        .collect()
}

/// The table a DML statement writes.
fn written(node: &NodeEnum) -> Option<String> {
    let rel = match node {
        NodeEnum::InsertStmt(s) => s.relation.as_ref(),
        NodeEnum::UpdateStmt(s) => s.relation.as_ref(),
        NodeEnum::DeleteStmt(s) => s.relation.as_ref(),
        _ => None,
    }?;
    Some(ast::rel_key(rel))
}

/// Whether a statement sets `citus.multi_shard_modify_mode` to parallel
/// (`Some(true)`), to something else (`Some(false)`), or not at all.
pub fn sets_parallel(node: &NodeEnum) -> Option<bool> {
    let NodeEnum::VariableSetStmt(v) = node else { return None };
    (v.name == MODE).then(|| {
        v.args
            .first()
            .and_then(ast::const_str)
            .unwrap_or("")
            .eq_ignore_ascii_case("parallel")
    })
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    if ctx.migration.tx_mode() != TxMode::Transaction {
        return;
    }
    let mut parallel = ctx.citus_parallel;
    // The parallel operation seen so far: (statement, what).
    let mut seen: Option<(usize, String)> = None;
    for (i, node) in ctx.statements() {
        let pos = ctx.pos(i);
        if let NodeEnum::VariableSetStmt(_) = node {
            parallel = sets_parallel(node).unwrap_or(parallel);
            continue;
        }
        let command = match node {
            NodeEnum::CompositeTypeStmt(_) | NodeEnum::CreateEnumStmt(_) | NodeEnum::CreateRangeStmt(_) => Some("type"),
            NodeEnum::DefineStmt(d) if d.kind == ObjectType::ObjectType as i32 => Some("type"),
            NodeEnum::CreateSchemaStmt(_) => Some("schema"),
            NodeEnum::CreateFunctionStmt(_) => Some("function"),
            _ => None,
        };
        let reference_write = written(node).filter(|t| ctx.facts.kind(t, pos) == Kind::Reference);
        // This statement's own parallel operation, if any.
        let own = match facts::citus_calls(node)
            .into_iter()
            .find(|c| c.function.starts_with("create_distributed_table"))
        {
            Some(c) => Some(format!("{}('{}')", c.function, c.table)),
            None => tables(node)
                .into_iter()
                .find(|t| matches!(ctx.facts.kind(t, pos), Kind::Distributed { .. }))
                .map(|t| format!("a query on distributed table {t}")),
        };
        if parallel {
            // A reference-table write fails after a parallel read in the
            // same statement too (INSERT INTO ref SELECT ... FROM dist).
            let before = match (&seen, &reference_write, &own) {
                (Some((at, what)), _, _) => Some((*at, what.clone())),
                (None, Some(_), Some(what)) => Some((i, what.clone())),
                _ => None,
            };
            let refused = match (command, &reference_write) {
                (Some(c), _) => Some(format!("ERROR: cannot run {c} command because there was a parallel operation on a distributed table in the transaction HINT: Try re-running the transaction with \"SET LOCAL citus.multi_shard_modify_mode TO 'sequential';\"")),
                (None, Some(t)) => Some(format!("ERROR: cannot modify table \"{t}\" because there was a parallel operation on a distributed table")),
                _ => None,
            };
            if let (Some((at, what)), Some(refused)) = (before, refused) {
                let place = if at == i {
                    "in this statement".to_string()
                } else {
                    format!("(statement {}, line {})", at + 1, ctx.migration.location(at, 0).line)
                };
                out.push(Hit::new(
                    i,
                    format!("this transaction runs in parallel multi-shard mode, and {what} {place} was a parallel operation; Citus refuses this statement with {refused}"),
                    "run the transaction in sequential mode, chatmigrate's default on Citus (remove `-- chatmigrate:citus-parallel`, or make `SET LOCAL citus.multi_shard_modify_mode TO 'sequential';` its first statement); or move this statement before the parallel operation, or to a migration of its own",
                ));
            }
        }
        if seen.is_none() {
            seen = own.map(|what| (i, what));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    const R: &str = "citus-parallel-operation";

    #[test]
    fn create_type_after_distributing() {
        assert_eq!(
            render(R, BackendKind::Citus, &["-- chatmigrate:citus-parallel\nCREATE TABLE msg (userid text, id bigint);\nSELECT create_distributed_table('msg', 'userid');\nCREATE TYPE mood AS ENUM ('ok', 'bad');"]),
            "V1__m.sql:4:1: error[citus-parallel-operation]: this transaction runs in parallel multi-shard mode, and create_distributed_table('msg') (statement 2, line 3) was a parallel operation; Citus refuses this statement with ERROR: cannot run type command because there was a parallel operation on a distributed table in the transaction HINT: Try re-running the transaction with \"SET LOCAL citus.multi_shard_modify_mode TO 'sequential';\"
   | CREATE TYPE mood AS ENUM ('ok', 'bad')
   = help: run the transaction in sequential mode, chatmigrate's default on Citus (remove `-- chatmigrate:citus-parallel`, or make `SET LOCAL citus.multi_shard_modify_mode TO 'sequential';` its first statement); or move this statement before the parallel operation, or to a migration of its own

"
        );
        let reference = render(R, BackendKind::Citus, &[
            "CREATE TABLE themes (name text PRIMARY KEY);\nSELECT create_reference_table('themes');\nCREATE TABLE msg (userid text, theme text);\nSELECT create_distributed_table('msg', 'userid');",
            "SET LOCAL citus.multi_shard_modify_mode TO 'parallel';\nINSERT INTO themes SELECT DISTINCT theme FROM msg;",
        ]);
        assert!(
            reference.contains("ERROR: cannot modify table \"themes\" because there was a parallel operation"),
            "{reference}"
        );
    }

    #[test]
    fn sequential_mode_or_type_first_is_fine() {
        let files = ["SET LOCAL citus.multi_shard_modify_mode TO 'sequential';\nCREATE TABLE msg (userid text);\nSELECT create_distributed_table('msg', 'userid');\nCREATE SCHEMA app;"];
        assert_eq!(render(R, BackendKind::Citus, &files), "");
        let files = [
            "CREATE TYPE mood AS ENUM ('ok');\nCREATE TABLE msg (userid text, m mood);\nSELECT create_distributed_table('msg', 'userid');",
        ];
        assert_eq!(render(R, BackendKind::Citus, &files), "");
    }
}
