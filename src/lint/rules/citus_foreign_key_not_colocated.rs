//! `citus-foreign-key-not-colocated` (Citus): a foreign key between two
//! distributed tables that are not colocated, or that does not pair their
//! distribution columns. Citus checks a key inside one shard, so both rows
//! must live in the same shard group: same colocation group, distribution
//! columns at the same position of the key.

use crate::config::BackendKind;
use crate::lint::facts::{Group, Kind};
use crate::lint::rules::citus_foreign_key_to_distributed::{describe, fk_events};
use crate::lint::{Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "citus-foreign-key-not-colocated",
    level: Level::Error,
    summary: "foreign key between distributed tables that are not colocated on their distribution columns",
    ignorable: true,
    scope: Scope::Backend(BackendKind::Citus),
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        for e in fk_events(ctx, i, node) {
            let (Kind::Distributed { column: c1, group: g1 }, Kind::Distributed { column: c2, group: g2 }) = (&e.from, &e.to) else {
                continue;
            };
            let origin = if e.added {
                String::new()
            } else {
                format!(" (the key is from {})", ctx.facts.location(e.at))
            };
            if *g1 != Group::Unknown && *g2 != Group::Unknown && g1 != g2 {
                out.push(Hit::new(
                    i,
                    format!("foreign key {} joins distributed tables that are not colocated{origin}; Citus refuses it with ERROR: cannot create foreign key constraint since relations are not colocated or not referencing a reference table DETAIL: A distributed table can only have foreign keys if it is referencing another colocated hash distributed table or a reference table", describe(&e)),
                    format!("distribute {} with colocate_with => '{}' (distribution columns of the same type), or make {} a reference table", e.table, e.fk.target, e.fk.target),
                ));
                continue;
            }
            if e.fk.target_columns.is_empty() || *g1 == Group::Unknown || *g2 == Group::Unknown {
                continue;
            }
            let here = e.fk.columns.iter().position(|c| c == c1);
            let there = e.fk.target_columns.iter().position(|c| c == c2);
            if here.is_none() || here != there {
                out.push(Hit::new(
                    i,
                    format!("foreign key {} does not pair the distribution columns ({}.{c1} with {}.{c2}) at the same position{origin}; Citus refuses it with ERROR: cannot create foreign key constraint DETAIL: Foreign keys are supported in two cases, either in between two colocated tables including partition column in the same ordinal in the both tables or from distributed to reference tables", describe(&e), e.table, e.fk.target),
                    format!("put both distribution columns in the key at the same position, e.g. FOREIGN KEY ({c1}, ...) REFERENCES {} ({c2}, ...)", e.fk.target),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::BackendKind;
    use crate::lint::testing::render;

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
    fn colocated_keys_are_fine() {
        let files = [
            "CREATE TABLE msg (userid text, id bigint, PRIMARY KEY (userid, id));\nSELECT create_distributed_table('msg', 'userid');",
            "CREATE TABLE vec (userid text, id bigint, FOREIGN KEY (userid, id) REFERENCES msg (userid, id));\nSELECT create_distributed_table('vec', 'userid', colocate_with => 'msg');",
        ];
        assert_eq!(render(R, BackendKind::Citus, &files), "");
    }
}
