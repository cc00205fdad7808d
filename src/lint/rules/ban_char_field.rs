//! `ban-char-field`: a `char(n)` / `character(n)` column. It pads values with
//! spaces, compares and concatenates them oddly, and is no faster than text.

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "ban-char-field",
    level: Level::Warning,
    summary: "char(n) pads with spaces; use text or varchar(n)",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        for (table, col, written) in ast::defined_columns(node) {
            let ty = ast::Type::of(written);
            if ty.name != "bpchar" {
                continue;
            }
            let n = ty.mods.first().copied().unwrap_or(1);
            out.push(
                Hit::new(
                    i,
                    format!("{table}.{col} is {ty}: values are padded with spaces to {n} characters, which trailing-space comparisons and concatenation then trip over"),
                    format!("use text, with a CHECK if the length matters: {col} text CHECK (char_length({col}) <= {n})"),
                )
                .at(ctx, written.location),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn char_column() {
        assert_eq!(
            pg("ban-char-field", "CREATE TABLE users (lang char(2));\n"),
            "V1__m.sql:1:26: warning[ban-char-field]: users.lang is char(2): values are padded with spaces to 2 characters, which trailing-space comparisons and concatenation then trip over
   | CREATE TABLE users (lang char(2))
   = help: use text, with a CHECK if the length matters: lang text CHECK (char_length(lang) <= 2)

"
        );
    }

    #[test]
    fn text_and_varchar_are_fine() {
        assert_eq!(
            pg("ban-char-field", "CREATE TABLE users (lang text, code varchar(2), c \"char\");\n"),
            ""
        );
    }
}
