//! `citus-foreign-key-to-distributed` (Citus): a foreign key from a
//! reference table or a local table to a distributed table. Its rows live in
//! the shards on the workers; a reference or local table cannot check
//! against them, and Citus refuses the key. Checked where the key is added,
//! and where a table holding such a key is made a reference table.

use crate::capabilities::Property;
use crate::lint::facts::{self, ForeignKey, Kind, Pos};
use crate::lint::{Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "citus-foreign-key-to-distributed",
    level: Level::Error,
    summary: "foreign key from a reference or local table to a distributed table",
    ignorable: true,
    scope: Scope::Having(Property::DistributedTables),
    check,
};

/// A foreign key that statement `i` creates or brings under Citus: added by
/// the statement, or already on a table the statement distributes or makes a
/// reference table. With the kinds of both ends just after the statement.
pub struct FkEvent {
    pub table: String,
    pub fk: ForeignKey,
    pub from: Kind,
    pub to: Kind,
    /// Whether the statement added the key (false: a Citus call on a table
    /// that already had it).
    pub added: bool,
    /// Where the key was added.
    pub at: Pos,
}

/// The foreign keys statement `i` adds or brings under Citus.
pub fn fk_events(ctx: &Ctx<'_>, i: usize, node: &pg_query::NodeEnum) -> Vec<FkEvent> {
    let pos = ctx.pos(i);
    let after = ctx.pos(i + 1);
    let mut out = Vec::new();
    for (table, c, col) in facts::constraints_added(node) {
        let Some(fk) = facts::foreign_key_of(c, &col) else { continue };
        if fk.target == table {
            continue;
        }
        out.push(FkEvent {
            from: ctx.facts.kind(&table, pos),
            to: ctx.facts.kind(&fk.target, pos),
            table,
            fk,
            added: true,
            at: pos,
        });
    }
    for call in facts::citus_calls(node) {
        for (at, fk) in ctx.facts.state(&call.table, pos).foreign_keys {
            if fk.target == call.table {
                continue;
            }
            out.push(FkEvent {
                from: ctx.facts.kind(&call.table, after),
                to: ctx.facts.kind(&fk.target, after),
                table: call.table.clone(),
                fk,
                added: false,
                at,
            });
        }
    }
    out
}

/// `table (a, b) → target (c)`, for messages.
pub fn describe(e: &FkEvent) -> String {
    let target_cols = if e.fk.target_columns.is_empty() {
        String::new()
    } else {
        format!(" ({})", e.fk.target_columns.join(", "))
    };
    format!("{} ({}) -> {}{target_cols}", e.table, e.fk.columns.join(", "), e.fk.target)
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        for e in fk_events(ctx, i, node) {
            let Kind::Distributed { column, .. } = &e.to else { continue };
            let from = match e.from {
                Kind::Reference => "reference table",
                // A local table that the set distributes (or makes a
                // reference table) later is checked then.
                Kind::Local if e.added && !ctx.facts.citus_anywhere(&e.table) => "local table",
                _ => continue,
            };
            let origin = if e.added {
                String::new()
            } else {
                format!(" (the key is from {})", ctx.facts.location(e.at))
            };
            out.push(Hit::new(
                i,
                format!(
                    "foreign key {} goes from a {from} to a distributed table{origin}; Citus refuses it with ERROR: cannot create foreign key constraint since foreign keys from reference tables and local tables to distributed tables are not supported DETAIL: Reference tables and local tables can only have foreign keys to reference tables and local tables",
                    describe(&e)
                ),
                format!(
                    "distribute {} too, colocated and keyed by the same value: SELECT create_distributed_table('{}', '<column>', colocate_with => '{}'); or, if {} is small and shared by all users, make it a reference table instead (create_reference_table('{}')); otherwise drop the key. ({} is distributed by {column})",
                    e.table, e.table, e.fk.target, e.fk.target, e.fk.target, e.fk.target
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    const R: &str = "citus-foreign-key-to-distributed";

    #[test]
    fn reference_table_to_distributed() {
        assert_eq!(
            render(R, BackendKind::Citus, &[
                "CREATE TABLE msg (userid text, id bigint, PRIMARY KEY (userid, id));\nSELECT create_distributed_table('msg', 'userid');",
                "CREATE TABLE pins (userid text, id bigint, FOREIGN KEY (userid, id) REFERENCES msg (userid, id));\nSELECT create_reference_table('pins');",
            ]),
            "V2__m.sql:2:1: error[citus-foreign-key-to-distributed]: foreign key pins (userid, id) -> msg (userid, id) goes from a reference table to a distributed table (the key is from V2__m.sql:1:1); Citus refuses it with ERROR: cannot create foreign key constraint since foreign keys from reference tables and local tables to distributed tables are not supported DETAIL: Reference tables and local tables can only have foreign keys to reference tables and local tables
   | SELECT create_reference_table('pins')
   = help: distribute pins too, colocated and keyed by the same value: SELECT create_distributed_table('pins', '<column>', colocate_with => 'msg'); or, if msg is small and shared by all users, make it a reference table instead (create_reference_table('msg')); otherwise drop the key. (msg is distributed by userid)

"
        );
    }

    #[test]
    fn distributed_to_reference_and_later_distributed_tables_are_fine() {
        let files = [
            "CREATE TABLE themes (name text PRIMARY KEY);\nSELECT create_reference_table('themes');",
            "CREATE TABLE msg (userid text, id bigint, theme text REFERENCES themes (name), PRIMARY KEY (userid, id));\nSELECT create_distributed_table('msg', 'userid');",
            "CREATE TABLE vec (userid text, id bigint, FOREIGN KEY (userid, id) REFERENCES msg (userid, id));\nSELECT create_distributed_table('vec', 'userid', colocate_with => 'msg');",
        ];
        assert_eq!(render(R, BackendKind::Citus, &files), "");
    }
}
