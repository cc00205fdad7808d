//! `adding-field-with-default`: ADD COLUMN to an existing table with a
//! default PostgreSQL must compute per row (a volatile function such as
//! `random()`, `gen_random_uuid()`, `clock_timestamp()`, a serial's
//! `nextval`), a stored generated column, or an identity: the whole table is
//! rewritten under an ACCESS EXCLUSIVE lock. Constant and stable defaults
//! (`0`, `'x'`, `now()`) are stored once in the catalog since PostgreSQL 11
//! and cost nothing.

use pg_query::protobuf::{AlterTableType as At, ConstrType};
use pg_query::NodeEnum;

use crate::lint::{ast, Ctx, Hit, Level, Rule, Scope};

pub static RULE: Rule = Rule {
    id: "adding-field-with-default",
    level: Level::Error,
    summary: "ADD COLUMN with a volatile default, identity or stored generated expression rewrites the table",
    ignorable: true,
    scope: Scope::All,
    check,
};

/// Functions whose result does not change within a statement (or at all):
/// a default calling only these is computed once.
const NOT_VOLATILE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_setting",
    "to_timestamp",
    "to_date",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "lower",
    "upper",
    "coalesce",
    "concat",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "array",
    "abs",
    "length",
    "btrim",
    "trim",
    "nullif",
];

/// Why a default needs a per-row value: `Some(function)` or `None` if it does not.
fn volatile(expr: &NodeEnum) -> Option<String> {
    ast::func_calls(expr)
        .into_iter()
        .map(ast::func_name)
        .find(|f| !NOT_VOLATILE.contains(&f.as_str()))
        .map(|f| format!("{f}()"))
}

fn check(ctx: &Ctx<'_>, out: &mut Vec<Hit>) {
    for (i, node) in ctx.statements() {
        let Some((table, _, cmds)) = ast::alter_cmds(node) else { continue };
        if ctx.new_table(&table, i) || !ctx.large_table(&table) {
            continue;
        }
        for cmd in cmds.into_iter().filter(|c| ast::cmd_is(c, At::AtAddColumn)) {
            let Some(col) = ast::cmd_column(cmd) else { continue };
            let ty = col.type_name.as_ref().map(ast::Type::of);
            let mut why = None;
            if ty.as_ref().is_some_and(|t| t.is_serial()) {
                why = Some(format!(
                    "a {} column (each row draws nextval())",
                    ty.as_ref().map(|t| t.name.clone()).unwrap_or_default()
                ));
            }
            for c in ast::constraints(&col.constraints) {
                if ast::is(c, ConstrType::ConstrIdentity) {
                    why = Some("an identity column (each row draws a value)".into());
                } else if ast::is(c, ConstrType::ConstrGenerated) && c.generated_kind != "v" {
                    why = Some("a stored generated column (each row is computed)".into());
                } else if ast::is(c, ConstrType::ConstrDefault) {
                    if let Some(f) = c.raw_expr.as_deref().and_then(|e| e.node.as_ref()).and_then(volatile) {
                        why = Some(format!("a default that calls {f}, which PostgreSQL evaluates for each row (volatile, or not known to chatmigrate as stable)"));
                    }
                }
            }
            let Some(why) = why else { continue };
            let name = &col.colname;
            let plain = ty.map(|t| match t.name.as_str() {
                "serial" | "serial4" => "integer".to_string(),
                "bigserial" | "serial8" => "bigint".to_string(),
                "smallserial" | "serial2" => "smallint".to_string(),
                _ => t.to_string(),
            });
            out.push(Hit::new(
                i,
                format!("ADD COLUMN {name} to {table} as {why}: the whole table is rewritten under an ACCESS EXCLUSIVE lock (no reads or writes){}", ctx.size_note(&table)),
                format!("add the column without it, set the default for new rows, then fill old rows in batches:\n  ALTER TABLE {table} ADD COLUMN {name} {};\n  ALTER TABLE {table} ALTER COLUMN {name} SET DEFAULT <expression>;\n  -- then, in batches: UPDATE {table} SET {name} = <expression> WHERE {name} IS NULL AND <key range>;", plain.unwrap_or_default()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::pg;

    #[test]
    fn volatile_default_on_existing_table() {
        assert_eq!(
            pg("adding-field-with-default", "ALTER TABLE msg ADD COLUMN token uuid DEFAULT gen_random_uuid();\n"),
            "V1__m.sql:1:1: error[adding-field-with-default]: ADD COLUMN token to msg as a default that calls gen_random_uuid(), which PostgreSQL evaluates for each row (volatile, or not known to chatmigrate as stable): the whole table is rewritten under an ACCESS EXCLUSIVE lock (no reads or writes)
   | ALTER TABLE msg ADD COLUMN token uuid DEFAULT gen_random_uuid()
   = help: add the column without it, set the default for new rows, then fill old rows in batches:
             ALTER TABLE msg ADD COLUMN token uuid;
             ALTER TABLE msg ALTER COLUMN token SET DEFAULT <expression>;
             -- then, in batches: UPDATE msg SET token = <expression> WHERE token IS NULL AND <key range>;

"
        );
        assert!(pg("adding-field-with-default", "ALTER TABLE msg ADD COLUMN n bigserial;\n").contains("a bigserial column"));
    }

    #[test]
    fn constant_and_stable_defaults_are_fine() {
        let r = "adding-field-with-default";
        assert_eq!(pg(r, "ALTER TABLE msg ADD COLUMN lang text DEFAULT 'ja';\n"), "");
        assert_eq!(pg(r, "ALTER TABLE msg ADD COLUMN at timestamptz DEFAULT now();\n"), "");
        assert_eq!(
            pg(
                r,
                "CREATE TABLE msg (a int);\nALTER TABLE msg ADD COLUMN t uuid DEFAULT gen_random_uuid();\n"
            ),
            ""
        );
    }
}
