//! `prefer-timestamptz`: a column of type `timestamp` (without time zone).
//! Its values carry no offset, so what they mean depends on the TimeZone
//! setting of whoever wrote them; chat timestamps from several regions mix.

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "prefer-timestamptz",
    level: Level::Warning,
    summary: "timestamp without time zone loses the writer's offset",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        for (table, col, ty) in ast::defined_columns(node) {
            if ast::Type::of(ty).name != "timestamp" || ty.location < 0 {
                continue;
            }
            out.push(
                Hit::new(
                    i,
                    format!("{table}.{col} is timestamp without time zone: its values carry no offset, so they depend on the TimeZone of each writer"),
                    format!("use timestamptz (stored as UTC, shown in each reader's zone): {col} timestamptz"),
                )
                .at(ctx, ty.location),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn timestamp_column() {
        assert_eq!(
            pg("prefer-timestamptz", "CREATE TABLE msg (id bigint, sent_at timestamp DEFAULT now());\n"),
            "V1__m.sql:1:38: warning[prefer-timestamptz]: msg.sent_at is timestamp without time zone: its values carry no offset, so they depend on the TimeZone of each writer
   | CREATE TABLE msg (id bigint, sent_at timestamp DEFAULT now())
   = help: use timestamptz (stored as UTC, shown in each reader's zone): sent_at timestamptz

"
        );
    }

    #[test]
    fn timestamptz_is_fine() {
        assert_eq!(
            pg(
                "prefer-timestamptz",
                "CREATE TABLE msg (sent_at timestamptz, d date);\nALTER TABLE msg ADD COLUMN e timestamp with time zone;\n"
            ),
            ""
        );
    }
}
