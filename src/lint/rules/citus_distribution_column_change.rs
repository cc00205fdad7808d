//! `citus-distribution-column-change` (Citus): `ALTER COLUMN ... TYPE` or
//! `DROP COLUMN` of a distributed table's distribution column. Citus refuses
//! both: rows are placed in shards by that column's hash.

use pg_query::protobuf::AlterTableType as At;

use crate::capabilities::Property;
use crate::lint::facts::Kind;
use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "citus-distribution-column-change",
    level: Level::Error,
    summary: "ALTER TYPE or DROP of a distribution column",
    ignorable: true,
    scope: Scope::Having(Property::DistributedTables),
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let Some((table, _, cmds)) = ast::alter_cmds(node) else { continue };
        let Kind::Distributed { column, .. } = ctx.facts.kind(&table, ctx.pos(i)) else {
            continue;
        };
        for cmd in cmds {
            let what = if ast::cmd_is(cmd, At::AtAlterColumnType) {
                "changing the type of"
            } else if ast::cmd_is(cmd, At::AtDropColumn) {
                "dropping"
            } else {
                continue;
            };
            if cmd.name != column {
                continue;
            }
            out.push(Hit::new(
                i,
                format!("{what} {table}.{column}, the column {table} is distributed by; Citus refuses it with ERROR: cannot execute ALTER TABLE command involving partition column"),
                format!("a distribution column stays as it is: create a new table distributed by the new column (create_distributed_table('{table}_new', '<column>', colocate_with => ...)), copy the rows with INSERT ... SELECT, and swap the names; or undistribute_table('{table}') first, which moves every row to the coordinator"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    const R: &str = "citus-distribution-column-change";

    #[test]
    fn retyping_the_distribution_column() {
        assert_eq!(
            render(R, BackendKind::Citus, &["CREATE TABLE msg (userid text, id bigint);\nSELECT create_distributed_table('msg', 'userid');", "ALTER TABLE msg ALTER COLUMN userid TYPE varchar(64);"]),
            "V2__m.sql:1:1: error[citus-distribution-column-change]: changing the type of msg.userid, the column msg is distributed by; Citus refuses it with ERROR: cannot execute ALTER TABLE command involving partition column
   | ALTER TABLE msg ALTER COLUMN userid TYPE varchar(64)
   = help: a distribution column stays as it is: create a new table distributed by the new column (create_distributed_table('msg_new', '<column>', colocate_with => ...)), copy the rows with INSERT ... SELECT, and swap the names; or undistribute_table('msg') first, which moves every row to the coordinator

"
        );
    }

    #[test]
    fn other_columns_and_local_tables_are_fine() {
        let files = [
            "CREATE TABLE msg (userid text, id bigint);\nSELECT create_distributed_table('msg', 'userid');",
            "ALTER TABLE msg ALTER COLUMN id TYPE numeric;\nALTER TABLE msg RENAME COLUMN userid TO uid;",
        ];
        assert_eq!(render(R, BackendKind::Citus, &files), "");
        assert_eq!(
            render(
                R,
                BackendKind::Citus,
                &["CREATE TABLE l (userid text);\nALTER TABLE l DROP COLUMN userid;"]
            ),
            ""
        );
    }
}
