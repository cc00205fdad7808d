//! The SQL text of a call, checked the way the real service checks it before
//! anything runs (length, exactly one statement), and its `:name`
//! parameters turned into PostgreSQL `$n` placeholders bound as text values
//! (so the server infers their types, as with untyped JDBC strings).

use std::error::Error;

use serde_json::Value;
use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{Format, IsNull, ToSql, Type};

use super::wire::{base64_decode, ApiError, SqlParameter};

/// The model's limit on `sql` (characters).
pub const MAX_SQL_CHARS: usize = 65_536;

/// What kind of statement it is (decides `numberOfRecordsUpdated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// SELECT / VALUES / SHOW / EXPLAIN...: returns rows, updates none.
    Query,
    /// INSERT (with ON CONFLICT, RETURNING or not): rows affected are
    /// reported, unless `Options::insert_counts_zero`.
    Insert,
    /// UPDATE / DELETE / MERGE: rows affected are reported.
    Dml,
    /// Everything else (DDL, SET, ...): 0 rows updated.
    Other,
}

/// Checks `sql` like the Data API does: at most 65,536 characters and a single
/// statement (a trailing `;` is fine). Text the parser rejects is passed on so
/// that PostgreSQL reports the syntax error.
pub fn check(sql: &str) -> Result<StatementKind, ApiError> {
    let chars = sql.chars().count();
    if chars > MAX_SQL_CHARS {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'sql' failed to satisfy constraint: Member must have length less than or equal to {MAX_SQL_CHARS} (length {chars})"
        )));
    }
    let Ok(parsed) = pg_query::parse(sql, 0) else {
        // A syntax error: count with the scanner so "bad; select 1" is still refused.
        if scanned_statements(sql) > 1 {
            return Err(multistatement());
        }
        return Ok(StatementKind::Other);
    };
    let stmts = &parsed.protobuf.stmts;
    if stmts.len() > 1 {
        return Err(multistatement());
    }
    use pg_query::NodeEnum as N;
    Ok(match stmts.first().and_then(|s| s.stmt.as_ref()).and_then(|n| n.node.as_ref()) {
        Some(N::SelectStmt(_) | N::ExplainStmt(_) | N::VariableShowStmt(_)) => StatementKind::Query,
        Some(N::InsertStmt(_)) => StatementKind::Insert,
        Some(N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_)) => StatementKind::Dml,
        _ => StatementKind::Other,
    })
}

/// Statements in `sql` by its `;` tokens (ignoring empty ones and comments).
fn scanned_statements(sql: &str) -> usize {
    use pg_query::protobuf::Token;
    let Ok(tokens) = pg_query::scan_tokens(sql) else {
        return 1;
    };
    let (mut n, mut open) = (0, false);
    for t in tokens {
        if t.token == Token::Ascii59 as i32 {
            n += usize::from(open);
            open = false;
        } else if t.token != Token::SqlComment as i32 && t.token != Token::CComment as i32 {
            open = true;
        }
    }
    n + usize::from(open)
}

fn multistatement() -> ApiError {
    ApiError::validation("Multistatements aren't supported.")
}

/// A parameter value sent in text format; PostgreSQL parses it as whatever
/// type it inferred for the placeholder.
#[derive(Debug, Clone)]
pub struct TextParam(pub Option<String>);

impl ToSql for TextParam {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match &self.0 {
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.to_sql(ty, out)
    }
}

/// Rewrites `:name` placeholders (outside strings, comments and `::` casts) to
/// `$n` and returns the text values in `$n` order. A `typeHint` adds a cast.
pub fn bind(sql: &str, params: &[SqlParameter]) -> Result<(String, Vec<TextParam>), ApiError> {
    if params.is_empty() {
        return Ok((sql.to_string(), Vec::new()));
    }
    let tokens = pg_query::scan_tokens(sql).map_err(|e| ApiError::sql_error(e.to_string(), "42601"))?;
    let mut out = String::with_capacity(sql.len());
    let mut values: Vec<TextParam> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < tokens.len() {
        let (s, e) = (tokens[i].start as usize, tokens[i].end as usize);
        let next = tokens.get(i + 1);
        let is_placeholder = &sql[s..e] == ":"
            && next.is_some_and(|n| n.start as usize == e && sql[e..n.end as usize].chars().all(|c| c.is_alphanumeric() || c == '_'));
        if !is_placeholder {
            i += 1;
            continue;
        }
        let n = next.unwrap();
        let name = &sql[e..n.end as usize];
        let index = match names.iter().position(|x| x == name) {
            Some(p) => p,
            None => {
                let p = params
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name))
                    .ok_or_else(|| ApiError::sql_error(format!("No value specified for parameter {name}"), "07001"))?;
                values.push(TextParam(text_value(p)?));
                names.push(name.to_string());
                names.len() - 1
            }
        };
        let hint = params
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| p.type_hint.as_deref());
        let cast = match hint {
            Some("DATE") => "::date",
            Some("TIME") => "::time",
            Some("TIMESTAMP") => "::timestamp",
            Some("UUID") => "::uuid",
            Some("JSON") => "::json",
            Some("DECIMAL") => "::numeric",
            _ => "",
        };
        out.push_str(&sql[copied..s]);
        out.push_str(&format!("${}{cast}", index + 1));
        copied = n.end as usize;
        i += 2;
    }
    out.push_str(&sql[copied..]);
    Ok((out, values))
}

/// A parameter's `Field` as PostgreSQL text input (None = NULL).
fn text_value(p: &SqlParameter) -> Result<Option<String>, ApiError> {
    let bad = || ApiError::validation(format!("Invalid value for parameter {}", p.name.as_deref().unwrap_or("")));
    let Some(Value::Object(field)) = &p.value else {
        return Err(bad());
    };
    let (key, v) = field.iter().next().ok_or_else(bad)?;
    Ok(match (key.as_str(), v) {
        ("isNull", _) => None,
        ("stringValue", Value::String(s)) => Some(s.clone()),
        ("longValue", Value::Number(n)) => Some(n.to_string()),
        ("doubleValue", Value::Number(n)) => Some(n.to_string()),
        ("doubleValue", Value::String(s)) => Some(s.clone()),
        ("booleanValue", Value::Bool(b)) => Some(b.to_string()),
        ("blobValue", Value::String(b64)) => {
            let bytes = base64_decode(b64).ok_or_else(bad)?;
            Some(format!("\\x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
        }
        ("arrayValue", _) => return Err(ApiError::validation("Array parameters are not supported.")),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(name: &str, value: Value) -> SqlParameter {
        SqlParameter {
            name: Some(name.into()),
            value: Some(value),
            type_hint: None,
        }
    }

    #[test]
    fn counts_statements() {
        assert_eq!(check("select 1").unwrap(), StatementKind::Query);
        assert_eq!(check("select 1;").unwrap(), StatementKind::Query);
        assert_eq!(check("insert into t values (1)").unwrap(), StatementKind::Insert);
        assert_eq!(check("update t set a = 1").unwrap(), StatementKind::Dml);
        assert_eq!(check("create table t(a int)").unwrap(), StatementKind::Other);
        assert_eq!(check("select ';'; select 2").unwrap_err().code, "ValidationException");
        assert_eq!(check("selec 1; select 2").unwrap_err().code, "ValidationException");
        assert_eq!(check("selec 1").unwrap(), StatementKind::Other);
        assert_eq!(check("do $$ begin perform 1; perform 2; end $$").unwrap(), StatementKind::Other);
    }

    #[test]
    fn binds_named_parameters() {
        let (sql, vals) = bind(
            "select :a::int, ':b', :b -- :c\n, :a",
            &[p("a", json!({"longValue": 7})), p("b", json!({"isNull": true}))],
        )
        .unwrap();
        assert_eq!(sql, "select $1::int, ':b', $2 -- :c\n, $1");
        assert_eq!(vals.len(), 2);
        assert_eq!(vals[0].0.as_deref(), Some("7"));
        assert_eq!(vals[1].0, None);
    }
}
