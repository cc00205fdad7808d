//! `citus-foreign-key-not-colocated` (Citus): a foreign key between two
//! distributed tables that are not colocated, or that does not pair their
//! distribution columns. Citus checks a key inside one shard, so both rows
//! must live in the same shard group: same colocation group, distribution
//! columns at the same position of the key.

use crate::capabilities::Property;
use crate::lint::ast::Type;
use crate::lint::facts::{Group, Kind};
use crate::lint::rules::citus_foreign_key_to_distributed::{describe, fk_events};
use crate::lint::{Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "citus-foreign-key-not-colocated",
    level: Level::Error,
    summary: "foreign key between distributed tables that are not colocated on their distribution columns",
    ignorable: true,
    scope: Scope::Having(Property::DistributedTables),
    check,
};

/// Citus's refusal of a key between tables of different colocation groups.
const NOT_COLOCATED: &str = "ERROR: cannot create foreign key constraint since relations are not colocated or not referencing a reference table DETAIL: A distributed table can only have foreign keys if it is referencing another colocated hash distributed table or a reference table";

/// The type's name as colocation compares it: `bigserial` is a `bigint`
/// column, and a length (`varchar(10)`) does not matter.
fn base(t: &Type) -> &str {
    match t.name.as_str() {
        "serial" | "serial4" => "int4",
        "bigserial" | "serial8" => "int8",
        "smallserial" | "serial2" => "int2",
        other => other,
    }
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let pos = ctx.pos(i);
        for e in fk_events(ctx, i, node) {
            let origin = if e.added {
                String::new()
            } else {
                format!(" (the key is from {})", ctx.facts.location(e.at))
            };
            // Tables of a distributed schema: one shard each, colocated
            // with the other tables of their schema only.
            let tenant = match (&e.from, &e.to) {
                (Kind::Schema(a), Kind::Schema(b)) if a == b => continue,
                (Kind::Schema(s), Kind::Schema(_) | Kind::Distributed { .. }) | (Kind::Distributed { .. }, Kind::Schema(s)) => Some(s),
                _ => None,
            };
            if let Some(s) = tenant {
                out.push(Hit::new(
                    i,
                    format!("foreign key {} joins a table of the distributed schema {s} with a table outside it{origin}; Citus refuses it with {NOT_COLOCATED}", describe(&e)),
                    format!("a table of a distributed schema can have foreign keys to the tables of its own schema and to reference tables only: keep both tables in schema {s}, make {} a reference table, or drop the key", e.fk.target),
                ));
                continue;
            }
            let (Kind::Distributed { column: c1, group: g1 }, Kind::Distributed { column: c2, group: g2 }) = (&e.from, &e.to) else {
                continue;
            };
            // The distribution columns' types: tables colocate only when
            // they are the same, and a key cannot pair columns of different types.
            let t1 = ctx.facts.state(&e.table, pos).column(c1).cloned();
            let t2 = ctx.facts.state(&e.fk.target, pos).column(c2).cloned();
            let types_differ = match (&t1, &t2) {
                (Some(a), Some(b)) if base(a) != base(b) => Some((a.clone(), b.clone())),
                _ => None,
            };
            if let Some((a, b)) = &types_differ {
                if *g1 == Group::Unknown || *g2 == Group::Unknown || g1 != g2 {
                    out.push(Hit::new(
                        i,
                        format!("foreign key {} joins distributed tables that are not colocated{origin}: {}.{c1} is {a} and {}.{c2} is {b}, and Citus colocates tables only when their distribution columns have the same type; Citus refuses it with {NOT_COLOCATED}", describe(&e), e.table, e.fk.target),
                        format!("make {} a reference table (create_reference_table('{}')), or distribute {} by a column of type {b} that the key pairs with {}.{c2} (alter_distributed_table('{}', distribution_column := '<column>', colocate_with := '{}')); otherwise drop the key", e.fk.target, e.fk.target, e.table, e.fk.target, e.table, e.fk.target),
                    ));
                    continue;
                }
            }
            if *g1 != Group::Unknown && *g2 != Group::Unknown && g1 != g2 {
                out.push(Hit::new(
                    i,
                    format!(
                        "foreign key {} joins distributed tables that are not colocated{origin}; Citus refuses it with {NOT_COLOCATED}",
                        describe(&e)
                    ),
                    format!(
                        "distribute {} with colocate_with => '{}' (distribution columns of the same type), or make {} a reference table",
                        e.table, e.fk.target, e.fk.target
                    ),
                ));
                continue;
            }
            if e.fk.target_columns.is_empty() || *g1 == Group::Unknown || *g2 == Group::Unknown {
                continue;
            }
            let here = e.fk.columns.iter().position(|c| c == c1);
            let there = e.fk.target_columns.iter().position(|c| c == c2);
            if here.is_none() || here != there {
                let help = match &types_differ {
                    // Pairing them is no fix: a key cannot join different types.
                    Some((a, b)) => format!("{}.{c1} is {a} and {}.{c2} is {b}, so the key cannot pair them: make {} a reference table, or redistribute one of the tables by a column of the other's type; otherwise drop the key", e.table, e.fk.target, e.fk.target),
                    None => format!("put both distribution columns in the key at the same position, e.g. FOREIGN KEY ({c1}, ...) REFERENCES {} ({c2}, ...)", e.fk.target),
                };
                out.push(Hit::new(
                    i,
                    format!("foreign key {} does not pair the distribution columns ({}.{c1} with {}.{c2}) at the same position{origin}; Citus refuses it with ERROR: cannot create foreign key constraint DETAIL: Foreign keys are supported in two cases, either in between two colocated tables including partition column in the same ordinal in the both tables or from distributed to reference tables", describe(&e), e.table, e.fk.target),
                    help,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    const R: &str = "citus-foreign-key-not-colocated";

    #[test]
    fn not_colocated() {
        assert_eq!(
            render(R, BackendKind::Citus, &[
                "CREATE TABLE msg (userid text, id bigint, PRIMARY KEY (userid, id));\nSELECT create_distributed_table('msg', 'userid');\nCREATE TABLE vec (userid text, id bigint);\nSELECT create_distributed_table('vec', 'userid', colocate_with => 'none');",
                "ALTER TABLE vec ADD FOREIGN KEY (userid, id) REFERENCES msg (userid, id);",
            ]),
            "V2__m.sql:1:1: error[citus-foreign-key-not-colocated]: foreign key vec (userid, id) -> msg (userid, id) joins distributed tables that are not colocated; Citus refuses it with ERROR: cannot create foreign key constraint since relations are not colocated or not referencing a reference table DETAIL: A distributed table can only have foreign keys if it is referencing another colocated hash distributed table or a reference table
   | ALTER TABLE vec ADD FOREIGN KEY (userid, id) REFERENCES msg (userid, id)
   = help: distribute vec with colocate_with => 'msg' (distribution columns of the same type), or make msg a reference table

"
        );
        let order = render(R, BackendKind::Citus, &[
            "CREATE TABLE msg (userid text, id bigint, PRIMARY KEY (id, userid));\nSELECT create_distributed_table('msg', 'userid');\nCREATE TABLE vec (userid text, id bigint);\nSELECT create_distributed_table('vec', 'userid', colocate_with => 'msg');",
            "ALTER TABLE vec ADD FOREIGN KEY (userid, id) REFERENCES msg (id, userid);",
        ]);
        assert!(order.contains("does not pair the distribution columns"), "{order}");
    }

    #[test]
    fn columns_of_different_types_are_never_paired_in_the_help() {
        let out = render(R, BackendKind::Citus, &[
            "CREATE TABLE msg (userid text, id bigint, PRIMARY KEY (userid, id));\nSELECT create_distributed_table('msg', 'userid');\nCREATE TABLE vec (owner bigint, id bigint);\nSELECT create_distributed_table('vec', 'owner');",
            "ALTER TABLE vec ADD FOREIGN KEY (owner, id) REFERENCES msg (userid, id);",
        ]);
        assert!(out.contains("vec.owner is bigint and msg.userid is text, and Citus colocates tables only when their distribution columns have the same type"), "{out}");
        assert!(
            !out.contains("colocate_with => 'msg' (distribution columns of the same type)"),
            "{out}"
        );
        assert!(out.contains("make msg a reference table"), "{out}");
        // bigserial is a bigint column: the same type for colocation.
        let same = render(R, BackendKind::Citus, &[
            "CREATE TABLE a (k bigserial PRIMARY KEY);\nSELECT create_distributed_table('a', 'k');\nCREATE TABLE b (k bigint, FOREIGN KEY (k) REFERENCES a (k));\nSELECT create_distributed_table('b', 'k', colocate_with => 'a');",
        ]);
        assert_eq!(same, "");
    }

    #[test]
    fn tables_of_a_distributed_schema() {
        let base = "CREATE SCHEMA ops;\nCREATE TABLE ops.a (k bigint PRIMARY KEY);\nCREATE TABLE ops.b (k bigint);\nCREATE TABLE d (k bigint PRIMARY KEY);\nSELECT create_distributed_table('d', 'k');\nSELECT citus_schema_distribute('ops');";
        assert_eq!(
            render(
                R,
                BackendKind::Citus,
                &[base, "ALTER TABLE ops.b ADD FOREIGN KEY (k) REFERENCES ops.a (k);"]
            ),
            ""
        );
        let out = render(
            R,
            BackendKind::Citus,
            &[base, "ALTER TABLE ops.b ADD FOREIGN KEY (k) REFERENCES d (k);"],
        );
        assert!(
            out.contains("joins a table of the distributed schema ops with a table outside it"),
            "{out}"
        );
    }

    #[test]
    fn colocated_keys_are_fine() {
        let files = [
            "CREATE TABLE msg (userid text, id bigint, PRIMARY KEY (userid, id));\nSELECT create_distributed_table('msg', 'userid');",
            "CREATE TABLE vec (userid text, id bigint, FOREIGN KEY (userid, id) REFERENCES msg (userid, id));\nSELECT create_distributed_table('vec', 'userid', colocate_with => 'msg');",
        ];
        assert_eq!(render(R, BackendKind::Citus, &files), "");
    }
}
