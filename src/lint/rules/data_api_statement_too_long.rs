//! `data-api-statement-too-long` (rds-data): a statement longer than the
//! transport accepts in one call. The RDS Data API's `ExecuteStatement`
//! takes at most 65,536 characters of SQL and rejects longer ones; the limit
//! comes from the backend's capabilities.

use crate::capabilities::Property;
use crate::lint::{Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "data-api-statement-too-long",
    level: Level::Error,
    summary: "statement longer than the Data API accepts (65,536 characters)",
    ignorable: false,
    scope: Scope::Having(Property::StatementSizeLimit),
    check,
};

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    let Some(limit) = ctx.caps.max_statement_chars else { return };
    for (i, s) in ctx.migration.statements.iter().enumerate() {
        if s.sql.len() <= limit {
            continue;
        }
        let chars = s.sql.chars().count();
        if chars > limit {
            out.push(Hit::new(
                i,
                format!("statement is {chars} characters long; the Data API accepts at most {limit} in one call"),
                "split it (e.g. one INSERT per batch of rows), or load the data another way (COPY over a direct connection); nothing was sent",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::render;
    use crate::settings::BackendKind;

    const R: &str = "data-api-statement-too-long";

    #[test]
    fn long_insert() {
        let sql = format!("INSERT INTO t VALUES ('{}')", "x".repeat(65_600));
        let out = render(R, BackendKind::RdsData, &[&sql]);
        assert!(
            out.starts_with("V1__m.sql:1:1: error[data-api-statement-too-long]: statement is 65625 characters long; the Data API accepts at most 65536 in one call\n"),
            "{}",
            &out[..200.min(out.len())]
        );
        assert!(out.ends_with("   = help: split it (e.g. one INSERT per batch of rows), or load the data another way (COPY over a direct connection); nothing was sent\n\n"));
        // Only on the Data API.
        assert_eq!(render(R, BackendKind::Postgres, &[&sql]), "");
    }

    #[test]
    fn short_statements_are_fine() {
        assert_eq!(render(R, BackendKind::RdsData, &["SELECT 1;"]), "");
    }
}
