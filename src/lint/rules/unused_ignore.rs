//! `unused-ignore`: a `-- chatmigrate:ignore <rule> -- <reason>` comment
//! that suppressed nothing: the rule reported nothing it covers, no rule has
//! that id, or the rule cannot be ignored. A stale ignore would silently
//! cover the next real problem. (Ignores of rules that do not run here,
//! e.g. the Citus rules on plain PostgreSQL, are not reported.)

use crate::lint::{Ctx, Hit, IgnoreStatus, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "unused-ignore",
    level: Level::Warning,
    summary: "an ignore comment that suppresses nothing",
    ignorable: true,
    scope: Scope::All,
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for u in ctx.ignores {
        let line = u.ignore.line;
        let rule = u.rule;
        let (message, help) = match u.status {
            IgnoreStatus::Used | IgnoreStatus::NotRun => continue,
            IgnoreStatus::Unused if u.ignore.statement.is_some() => (
                format!("ignore of {rule} suppresses nothing: {rule} reports nothing in the statement below it"),
                "delete the comment, or move it directly above the statement it is meant for",
            ),
            IgnoreStatus::Unused => (
                format!("ignore of {rule} suppresses nothing: {rule} reports nothing in this file"),
                "delete the comment",
            ),
            IgnoreStatus::Unknown => (
                format!("ignore of `{rule}`: no rule has this id"),
                "check the spelling: `chatmigrate lint` lists the rules in docs/lint.md",
            ),
            IgnoreStatus::NotIgnorable => (
                format!("{rule} cannot be ignored: PostgreSQL (or the transport) would refuse the statement anyway"),
                "delete the comment and fix the statement",
            ),
        };
        out.push(Hit::on_line(line, message, help));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn stale_and_misspelt_ignores() {
        assert_eq!(
            pg(
                "unused-ignore",
                "-- chatmigrate:ignore prefer-timestamptz -- legacy\nCREATE TABLE t (a timestamptz);\n-- chatmigrate:ignore no-such-rule -- typo\nSELECT 1;\n"
            ),
            "V1__m.sql:1:1: warning[unused-ignore]: ignore of prefer-timestamptz suppresses nothing: prefer-timestamptz reports nothing in this file
   | -- chatmigrate:ignore prefer-timestamptz -- legacy
   = help: delete the comment

V1__m.sql:3:1: warning[unused-ignore]: ignore of `no-such-rule`: no rule has this id
   | -- chatmigrate:ignore no-such-rule -- typo
   = help: check the spelling: `chatmigrate lint` lists the rules in docs/lint.md

"
        );
    }

    #[test]
    fn used_ignores_and_other_backends_rules_are_fine() {
        let r = "unused-ignore";
        assert_eq!(
            pg(
                r,
                "-- chatmigrate:ignore prefer-timestamptz -- imported as is\nCREATE TABLE t (a timestamp);\n"
            ),
            ""
        );
        assert_eq!(
            pg(r, "SELECT 1;\n-- chatmigrate:ignore citus-distribution-column-change -- runs on Citus only\nALTER TABLE t DROP COLUMN IF EXISTS b;\n"),
            ""
        );
        // The statement-level ignore covers only the statement below it.
        let both = crate::lint::testing::lint_files(
            crate::settings::BackendKind::Postgres,
            &["SELECT 1;\n-- chatmigrate:ignore prefer-timestamptz -- legacy column\nCREATE TABLE a (x timestamp);\nCREATE TABLE b (y timestamp);\n"],
        );
        let rules: Vec<(&str, usize)> = both.findings.iter().map(|f| (f.rule, f.location.line)).collect();
        assert_eq!(rules, vec![("prefer-timestamptz", 4)]);
    }
}
