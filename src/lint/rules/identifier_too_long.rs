//! `identifier-too-long`: a name longer than 63 bytes. PostgreSQL silently
//! keeps the first 63 (with only a NOTICE), so the object's real name
//! differs from the file, and two long names that share a prefix collide.

use crate::lint::{Ctx, Hit, Level, Rule, Scope};
use crate::sql;

pub static RULE: Rule = Rule {
    id: "identifier-too-long",
    level: Level::Error,
    summary: "identifier over 63 bytes is truncated by PostgreSQL",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, s) in ctx.migration.statements.iter().enumerate() {
        for (offset, name, len) in sql::long_identifiers(s) {
            let mut cut = 63;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            let mut hit = Hit::new(
                i,
                format!("identifier `{name}` is {len} bytes; PostgreSQL keeps only the first 63 (`{}`), so the name in the database differs from the file and long names sharing a prefix collide", &name[..cut]),
                "shorten it to 63 bytes or less (abbreviate, e.g. idx_<table>_<column>)",
            );
            hit.offset = offset;
            out.push(hit);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn long_index_name() {
        let name = format!("idx_{}", "x".repeat(62));
        assert_eq!(
            pg("identifier-too-long", &format!("CREATE TABLE t (a int);\nCREATE INDEX {name} ON t (a);\n")),
            format!("V1__m.sql:2:14: error[identifier-too-long]: identifier `{name}` is 66 bytes; PostgreSQL keeps only the first 63 (`{}`), so the name in the database differs from the file and long names sharing a prefix collide
   | CREATE INDEX {}...
   = help: shorten it to 63 bytes or less (abbreviate, e.g. idx_<table>_<column>)

", &name[..63], &name[..56])
        );
    }

    #[test]
    fn names_up_to_63_bytes_are_fine() {
        let name = "y".repeat(63);
        assert_eq!(pg("identifier-too-long", &format!("CREATE TABLE \"{name}\" (a int);\n")), "");
    }
}
