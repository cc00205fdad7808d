//! The one module that touches the SQL parser (libpg_query through the
//! `pg_query` crate): splitting a file into statements with their byte spans,
//! locating syntax errors, mapping offsets to `line:col`, telling which
//! statements PostgreSQL refuses inside a transaction block, and which
//! function a `SELECT f(...)` statement calls (how Citus is driven).
//!
//! Nothing here is a hand-written SQL scanner: statement boundaries come from
//! the real PostgreSQL grammar, comment tokens from its real lexer.

use pg_query::protobuf::{self, Token};
use pg_query::NodeEnum;

use crate::error::{Error, Location, Result};

/// One statement of a migration file.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Byte span in the file's text (BOM removed), without leading comments
    /// and without the trailing semicolon.
    pub start: usize,
    pub end: usize,
    /// The statement text, `text[start..end]`.
    pub sql: String,
    /// The parse tree of the statement.
    pub node: Option<NodeEnum>,
    /// `-- chatmigrate:...` comments between the previous statement and this
    /// one: (byte offset of the comment, its text after `--`, trimmed).
    pub directives: Vec<(usize, String)>,
}

impl Statement {
    /// Why PostgreSQL refuses this statement inside a transaction block, if
    /// it does (the `SQL` of the refusal as PostgreSQL names it).
    pub fn non_transactional(&self) -> Option<&'static str> {
        non_transactional(self.node.as_ref()?)
    }

    /// The first line of the statement, shortened, for messages.
    pub fn excerpt(&self) -> String {
        let first = self.sql.lines().next().unwrap_or("").trim();
        if first.chars().count() > 72 {
            let cut: String = first.chars().take(69).collect();
            format!("{cut}...")
        } else if self.sql.contains('\n') {
            format!("{first} ...")
        } else {
            first.to_string()
        }
    }
}

/// Splits `text` into statements. On a syntax error, the error names the
/// `path:line:col` of the offending token.
pub fn split(path: &str, text: &str) -> Result<Vec<Statement>> {
    if text.contains('\0') {
        let offset = text.find('\0').unwrap_or(0);
        return Err(Error::SqlSyntax {
            location: location(path, text, offset),
            message: "NUL byte in SQL text".into(),
        });
    }
    let tokens = match pg_query::scan(text) {
        Ok(t) => t.tokens,
        Err(e) => {
            let raw = e.to_string();
            return Err(Error::SqlSyntax {
                location: location(path, text, scan_error_offset(text, &raw)),
                message: clean(&raw),
            });
        }
    };
    let parsed = match pg_query::parse(text, 0) {
        Ok(p) => p,
        Err(e) => return Err(syntax_error(path, text, &tokens, e)),
    };
    let mut out: Vec<Statement> = Vec::with_capacity(parsed.protobuf.stmts.len());
    for raw in parsed.protobuf.stmts {
        let loc = raw.stmt_location.max(0) as usize;
        let end = if raw.stmt_len == 0 {
            text.len()
        } else {
            loc + raw.stmt_len as usize
        };
        let Some((start, end)) = trim_span(&tokens, loc, end) else {
            continue;
        };
        out.push(Statement {
            start,
            end,
            sql: text[start..end].to_string(),
            node: raw.stmt.and_then(|n| n.node),
            // Comments after the previous statement (its `;`) lead this one.
            directives: directive_comments(text, &tokens, out.last().map_or(0, |p| p.end), start),
        });
    }
    Ok(out)
}

/// The tokens lying inside `[loc, end)` (tokens are sorted and disjoint, so
/// a binary search finds the first; a file of many statements stays linear).
fn tokens_in(tokens: &[protobuf::ScanToken], loc: usize, end: usize) -> impl Iterator<Item = &protobuf::ScanToken> {
    let first = tokens.partition_point(|t| (t.start as usize) < loc);
    tokens[first..].iter().take_while(move |t| t.end as usize <= end)
}

/// Narrows `[loc, end)` to the first and last real (non-comment) token.
fn trim_span(tokens: &[protobuf::ScanToken], loc: usize, end: usize) -> Option<(usize, usize)> {
    let is_code = |t: &&protobuf::ScanToken| {
        let kind = t.token;
        kind != Token::SqlComment as i32 && kind != Token::CComment as i32 && kind != Token::Ascii59 as i32
    };
    let mut inside = tokens_in(tokens, loc, end).filter(is_code);
    let first = inside.next()?;
    let last = inside.last().unwrap_or(first);
    Some((first.start as usize, last.end as usize))
}

/// The `-- chatmigrate:` comments in `[from, start)`, the comments that lead
/// a statement.
fn directive_comments(text: &str, tokens: &[protobuf::ScanToken], from: usize, start: usize) -> Vec<(usize, String)> {
    tokens_in(tokens, from, start)
        .filter(|t| t.token == Token::SqlComment as i32)
        .filter_map(|t| {
            let body = text[t.start as usize..t.end as usize].trim_start_matches('-').trim();
            body.starts_with("chatmigrate:").then(|| (t.start as usize, body.to_string()))
        })
        .collect()
}

/// The `-- chatmigrate:` comments after byte `from` (the end of the last
/// statement): directives that lead no statement.
pub fn trailing_directives(text: &str, from: usize) -> Vec<(usize, String)> {
    let Some(tail) = text.get(from..) else { return Vec::new() };
    let Ok(scanned) = pg_query::scan(tail) else { return Vec::new() };
    directive_comments(tail, &scanned.tokens, 0, tail.len())
        .into_iter()
        .map(|(offset, body)| (from + offset, body))
        .collect()
}

/// Identifiers of a statement longer than PostgreSQL's 63 bytes (NAMEDATALEN
/// minus one), as written: the parser has already truncated them in the
/// tree, so they are read from the lexer's tokens. Returns (byte offset in
/// the statement, identifier without quotes, its length in bytes).
pub fn long_identifiers(s: &Statement) -> Vec<(usize, String, usize)> {
    const MAX: usize = 63;
    if s.sql.len() <= MAX {
        return Vec::new();
    }
    let Ok(scanned) = pg_query::scan(&s.sql) else {
        return Vec::new();
    };
    scanned
        .tokens
        .iter()
        .filter(|t| t.token == Token::Ident as i32)
        .filter_map(|t| {
            let raw = &s.sql[t.start as usize..t.end as usize];
            let name = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => raw.to_lowercase(),
            };
            (name.len() > MAX).then(|| (t.start as usize, name.clone(), name.len()))
        })
        .collect()
}

/// Finds where a file fails to parse: the statement (split by the lexer's
/// semicolons, tolerant of errors) and, inside it, the shortest token prefix
/// that is already an error other than "at end of input".
fn syntax_error(path: &str, text: &str, tokens: &[protobuf::ScanToken], err: pg_query::Error) -> Error {
    let message = clean(&err.to_string());
    // Statement boundaries from the error-tolerant splitter.
    let mut offset = 0;
    if let Ok(parts) = pg_query::split_with_scanner(text) {
        for part in parts {
            let start = part.as_ptr() as usize - text.as_ptr() as usize;
            if pg_query::parse(part, 0).is_err() {
                let end = start + part.len();
                let stmt_tokens: Vec<&protobuf::ScanToken> = tokens
                    .iter()
                    .filter(|t| t.start as usize >= start && t.end as usize <= end)
                    .filter(|t| t.token != Token::SqlComment as i32 && t.token != Token::CComment as i32)
                    .collect();
                offset = stmt_tokens.first().map(|t| t.start as usize).unwrap_or(start);
                // Smallest k such that tokens[..k] is a hard error.
                let bad = |k: usize| -> bool {
                    let cut = stmt_tokens[k - 1].end as usize;
                    match pg_query::parse(&text[stmt_tokens[0].start as usize..cut], 0) {
                        Ok(_) => false,
                        Err(e) => !e.to_string().contains("at end of input"),
                    }
                };
                let (mut lo, mut hi) = (1, stmt_tokens.len());
                if hi >= 1 && bad(hi) {
                    while lo < hi {
                        let mid = (lo + hi) / 2;
                        if bad(mid) {
                            hi = mid;
                        } else {
                            lo = mid + 1;
                        }
                    }
                    offset = stmt_tokens[hi - 1].start as usize;
                } else if let Some(last) = stmt_tokens.last() {
                    // The statement is cut short: point at its end.
                    offset = last.end as usize;
                }
                break;
            }
        }
    }
    Error::SqlSyntax {
        location: location(path, text, offset),
        message,
    }
}

/// The server's message without libpg_query's prefix, on one line: the
/// text it quotes (`at or near "..."`) may span lines.
fn clean(message: &str) -> String {
    message
        .trim_start_matches("Invalid statement: ")
        .trim_start_matches("Error scanning: ")
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() { c.escape_debug().collect() } else { vec![c] };
            escaped
        })
        .collect()
}

/// Where a scanner error is: the scanner gives no position, but quotes the
/// text from it (`unterminated quoted string at or near "'abc..."`), which
/// for an unterminated token runs to the end of the file.
fn scan_error_offset(text: &str, message: &str) -> usize {
    let Some(near) = message.split_once("at or near \"").map(|(_, r)| r.strip_suffix('"').unwrap_or(r)) else {
        return 0;
    };
    if near.is_empty() {
        return 0;
    }
    if text.ends_with(near) {
        return text.len() - near.len();
    }
    text.find(near).unwrap_or(0)
}

/// A parse tree back to SQL text (libpg_query's deparser), for showing the
/// safer form of a statement in lint help. `None` if it cannot deparse it.
pub fn deparse(node: &NodeEnum) -> Option<String> {
    node.deparse(pg_query::DeparseOptions::default()).ok()
}

/// The tables a piece of SQL reads or writes (for naming lock blockers).
pub fn tables(text: &str) -> Vec<String> {
    let mut out: Vec<String> = pg_query::parse(text, 0).map(|p| p.tables()).unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// The index a `CREATE INDEX CONCURRENTLY` statement builds: (name, schema
/// of its table), when the statement names it.
pub fn concurrent_index(s: &Statement) -> Option<(String, Option<String>)> {
    match s.node.as_ref()? {
        NodeEnum::IndexStmt(i) if i.concurrent && !i.idxname.is_empty() => {
            let schema = i.relation.as_ref().map(|r| r.schemaname.clone()).filter(|s| !s.is_empty());
            Some((i.idxname.clone(), schema))
        }
        _ => None,
    }
}

/// What a CONCURRENTLY build or rebuild leaves behind, to check once it
/// ended: `(index name, schema, table key)` with the index of `CREATE
/// INDEX CONCURRENTLY name` or `REINDEX INDEX CONCURRENTLY name`, or the
/// table of `REINDEX TABLE CONCURRENTLY t`. `None` for anything else (an
/// unnamed index, a REINDEX of a schema or database).
pub fn concurrent_build(s: &Statement) -> Option<(Option<String>, Option<String>, Option<String>)> {
    match s.node.as_ref()? {
        NodeEnum::IndexStmt(_) => concurrent_index(s).map(|(n, schema)| (Some(n), schema, None)),
        NodeEnum::ReindexStmt(r) => {
            let concurrently = r.params.iter().any(|p| match &p.node {
                Some(NodeEnum::DefElem(d)) => d.defname == "concurrently",
                _ => false,
            });
            let rel = r.relation.as_ref().filter(|_| concurrently)?;
            let schema = Some(rel.schemaname.clone()).filter(|s| !s.is_empty());
            match pg_query::protobuf::ReindexObjectType::try_from(r.kind).ok()? {
                pg_query::protobuf::ReindexObjectType::ReindexObjectIndex => Some((Some(rel.relname.clone()), schema, None)),
                pg_query::protobuf::ReindexObjectType::ReindexObjectTable => Some((None, None, Some(rel_key(rel)))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Where each line of a text starts, for many offset → `line:col` lookups
/// on one file (each one a binary search instead of a scan from the top).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset in `text`
    /// (the text this index was built from).
    pub fn location(&self, path: &str, text: &str, offset: usize) -> Location {
        let offset = floor_char(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&s| s <= offset);
        let line_start = self.starts[line - 1];
        Location {
            path: path.to_string(),
            line,
            col: text[line_start..offset].chars().count() + 1,
        }
    }
}

/// A statement that is one function call, `SELECT f(args) [WHERE ...]`
/// (how Citus is driven: `SELECT create_distributed_table('t', 'col')`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function's name, without its schema, lowercased.
    pub name: String,
    /// Byte span of the (unqualified, unquoted) name inside the statement's
    /// text; `None` when it is written quoted.
    pub name_span: Option<(usize, usize)>,
    /// Arguments in order: the name of a named argument (`colocate_with =>`)
    /// and the value when it is a string literal (possibly cast).
    pub args: Vec<(Option<String>, Option<String>)>,
}

impl Call {
    /// The string value of the argument at `position`, or of the named one.
    pub fn arg(&self, position: usize, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .or_else(|| self.args.get(position).filter(|(n, _)| n.is_none()))
            .and_then(|(_, v)| v.as_deref())
    }
}

/// The function a statement consists of, if it is `SELECT f(...)` with no
/// FROM (a WHERE guard is allowed).
pub fn select_call(s: &Statement) -> Option<Call> {
    let NodeEnum::SelectStmt(sel) = s.node.as_ref()? else { return None };
    if sel.target_list.len() != 1 || !sel.from_clause.is_empty() || !sel.values_lists.is_empty() {
        return None;
    }
    let NodeEnum::ResTarget(rt) = sel.target_list[0].node.as_ref()? else {
        return None;
    };
    let NodeEnum::FuncCall(f) = rt.val.as_ref()?.node.as_ref()? else {
        return None;
    };
    let name = match f.funcname.last()?.node.as_ref()? {
        NodeEnum::String(n) => n.sval.to_ascii_lowercase(),
        _ => return None,
    };
    // The location points at the (possibly schema-qualified) name, in the
    // file's text; the unqualified name is its last dotted part.
    let at = (f.location.max(0) as usize).checked_sub(s.start)?;
    let name_span = s.sql.get(at..).and_then(|rest| {
        let lower = rest.to_ascii_lowercase();
        let mut i = 0;
        for (k, part) in f.funcname.iter().enumerate() {
            let NodeEnum::String(p) = part.node.as_ref()? else { return None };
            if !lower[i..].starts_with(&p.sval.to_ascii_lowercase()) {
                return None;
            }
            if k + 1 == f.funcname.len() {
                return Some((at + i, at + i + p.sval.len()));
            }
            i += p.sval.len();
            i += lower[i..].len() - lower[i..].trim_start().len();
            i += usize::from(lower[i..].starts_with('.'));
            i += lower[i..].len() - lower[i..].trim_start().len();
        }
        None
    });
    let literal = |n: &pg_query::protobuf::Node| -> Option<String> {
        let mut node = n.node.as_ref()?;
        if let NodeEnum::TypeCast(c) = node {
            node = c.arg.as_ref()?.node.as_ref()?;
        }
        match node {
            NodeEnum::AConst(c) => match c.val.as_ref()? {
                protobuf::a_const::Val::Sval(v) => Some(v.sval.clone()),
                _ => None,
            },
            _ => None,
        }
    };
    let args = f
        .args
        .iter()
        .map(|a| match a.node.as_ref() {
            Some(NodeEnum::NamedArgExpr(n)) => (Some(n.name.clone()), n.arg.as_deref().and_then(literal)),
            _ => (None, literal(a)),
        })
        .collect();
    Some(Call { name, name_span, args })
}

/// 1-based line and column (in characters) of a byte offset.
pub fn location(path: &str, text: &str, offset: usize) -> Location {
    let offset = offset.min(text.len());
    let before = &text[..floor_char(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    Location {
        path: path.to_string(),
        line,
        col,
    }
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte offset of the 1-based character position `pos` in `text`.
pub fn char_pos_to_byte(text: &str, pos: usize) -> usize {
    text.char_indices().nth(pos.saturating_sub(1)).map(|(i, _)| i).unwrap_or(text.len())
}

/// The statements PostgreSQL refuses inside a transaction block
/// ("... cannot run inside a transaction block").
fn non_transactional(node: &NodeEnum) -> Option<&'static str> {
    Some(match node {
        NodeEnum::IndexStmt(s) if s.concurrent => "CREATE INDEX CONCURRENTLY",
        NodeEnum::DropStmt(s) if s.concurrent => "DROP INDEX CONCURRENTLY",
        NodeEnum::ReindexStmt(s) => {
            let concurrently = s
                .params
                .iter()
                .any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"));
            let kind = s.kind;
            if concurrently {
                "REINDEX CONCURRENTLY"
            } else if kind == protobuf::ReindexObjectType::ReindexObjectSystem as i32 {
                "REINDEX SYSTEM"
            } else if kind == protobuf::ReindexObjectType::ReindexObjectDatabase as i32 {
                "REINDEX DATABASE"
            } else {
                return None;
            }
        }
        NodeEnum::CreatedbStmt(_) => "CREATE DATABASE",
        NodeEnum::DropdbStmt(_) => "DROP DATABASE",
        NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => "VACUUM",
        NodeEnum::AlterSystemStmt(_) => "ALTER SYSTEM",
        NodeEnum::CreateTableSpaceStmt(_) => "CREATE TABLESPACE",
        NodeEnum::DropTableSpaceStmt(_) => "DROP TABLESPACE",
        NodeEnum::CreateSubscriptionStmt(_) => "CREATE SUBSCRIPTION",
        NodeEnum::DropSubscriptionStmt(_) => "DROP SUBSCRIPTION",
        NodeEnum::ClusterStmt(s) if s.relation.is_none() => "CLUSTER (without a table)",
        NodeEnum::DiscardStmt(s) if s.target == protobuf::DiscardMode::DiscardAll as i32 => "DISCARD ALL",
        NodeEnum::AlterDatabaseStmt(s)
            if s.options
                .iter()
                .any(|o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname == "tablespace")) =>
        {
            "ALTER DATABASE SET TABLESPACE"
        }
        NodeEnum::AlterTableStmt(s)
            if s.cmds.iter().any(|c| {
                matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd))
                    if cmd.subtype == protobuf::AlterTableType::AtDetachPartition as i32
                    && matches!(cmd.def.as_deref().and_then(|d| d.node.as_ref()), Some(NodeEnum::PartitionCmd(p)) if p.concurrent))
            }) =>
        {
            "ALTER TABLE ... DETACH PARTITION CONCURRENTLY"
        }
        _ => return None,
    })
}

/// What the lexer says a byte of a file is, for placeholder substitution
/// (`placeholders.rs`): the byte ranges of comments and of dollar-quoted
/// string bodies (`$$...$$`, `$fn$...$fn$`, delimiters included). `None`
/// when the text does not scan (the split reports that error).
pub struct Unscanned {
    pub comments: Vec<(usize, usize)>,
    pub dollar_quoted: Vec<(usize, usize)>,
}

/// See [`Unscanned`].
pub fn unscanned(text: &str) -> Option<Unscanned> {
    let scanned = pg_query::scan(text).ok()?;
    let mut u = Unscanned {
        comments: Vec::new(),
        dollar_quoted: Vec::new(),
    };
    for t in &scanned.tokens {
        let (start, end) = (t.start as usize, t.end as usize);
        if t.token == Token::SqlComment as i32 || t.token == Token::CComment as i32 {
            u.comments.push((start, end));
        } else if t.token == Token::Sconst as i32 && text.get(start..).is_some_and(|s| s.starts_with('$')) {
            u.dollar_quoted.push((start, end));
        }
    }
    Some(u)
}

/// The key a table is known by across the set: its name, schema-qualified
/// unless the schema is `public` (the default search_path's first schema).
pub fn rel_key(r: &pg_query::protobuf::RangeVar) -> String {
    if r.schemaname.is_empty() || r.schemaname == "public" {
        r.relname.clone()
    } else {
        format!("{}.{}", r.schemaname, r.relname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_spans() {
        let text = "-- head\nCREATE TABLE a (x int);\n/* c */ CREATE INDEX i ON a (x)\n;\nselect ';';";
        let s = split("f.sql", text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].sql, "CREATE TABLE a (x int)");
        assert_eq!(s[1].sql, "CREATE INDEX i ON a (x)");
        assert_eq!(s[2].sql, "select ';'");
        assert_eq!(location("f.sql", text, s[1].start).to_string(), "f.sql:3:9");
    }

    #[test]
    fn dollar_quotes_and_functions() {
        let text = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT f();";
        let s = split("f.sql", text).unwrap();
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn syntax_error_location() {
        let text = "CREATE TABLE a (x int);\n\nCREATE TABLE b (y int,, z int);\n";
        let e = split("f.sql", text).unwrap_err();
        assert_eq!(e.to_string(), "f.sql:3:23: syntax error at or near \",\"");
        let e = split("f.sql", "SELECT 1;\nCREAT TABLE x ();").unwrap_err();
        assert_eq!(e.to_string(), "f.sql:2:1: syntax error at or near \"CREAT\"");
        let e = split("f.sql", "SELECT 1;\nSELECT 'oops;\n").unwrap_err();
        assert_eq!(e.to_string(), "f.sql:2:8: unterminated quoted string at or near \"'oops;\\n\"");
    }

    #[test]
    fn finds_function_calls() {
        let text = "SELECT 1;\nSELECT  pg_catalog . create_distributed_table('t'::regclass, 'userid', colocate_with => 'other') WHERE true;\nSELECT create_reference_table('r');\nSELECT \"Quoted\"('x');\nSELECT f(a) FROM t;";
        let s = split("f", text).unwrap();
        assert_eq!(select_call(&s[0]), None);
        let c = select_call(&s[1]).unwrap();
        assert_eq!(c.name, "create_distributed_table");
        let (a, b) = c.name_span.unwrap();
        assert_eq!(&s[1].sql[a..b], "create_distributed_table");
        assert_eq!(c.arg(0, "table_name"), Some("t"));
        assert_eq!(c.arg(1, "distribution_column"), Some("userid"));
        assert_eq!(c.arg(3, "colocate_with"), Some("other"));
        assert_eq!(c.arg(2, "distribution_type"), None);
        let c = select_call(&s[2]).unwrap();
        assert_eq!((c.name.as_str(), c.arg(0, "table_name")), ("create_reference_table", Some("r")));
        let c = select_call(&s[3]).unwrap();
        assert_eq!((c.name.as_str(), c.name_span), ("quoted", None));
        assert_eq!(select_call(&s[4]), None);
    }

    #[test]
    fn detects_non_transactional() {
        let cases = [
            ("CREATE INDEX CONCURRENTLY i ON t (a)", Some("CREATE INDEX CONCURRENTLY")),
            ("CREATE INDEX i ON t (a)", None),
            ("DROP INDEX CONCURRENTLY i", Some("DROP INDEX CONCURRENTLY")),
            ("REINDEX (CONCURRENTLY) INDEX i", Some("REINDEX CONCURRENTLY")),
            ("REINDEX INDEX CONCURRENTLY i", Some("REINDEX CONCURRENTLY")),
            ("REINDEX INDEX i", None),
            ("CREATE DATABASE d", Some("CREATE DATABASE")),
            ("DROP DATABASE d", Some("DROP DATABASE")),
            ("VACUUM t", Some("VACUUM")),
            ("ANALYZE t", None),
            ("ALTER SYSTEM SET work_mem = '1MB'", Some("ALTER SYSTEM")),
            ("CREATE TABLESPACE s LOCATION '/x'", Some("CREATE TABLESPACE")),
            (
                "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
                Some("ALTER TABLE ... DETACH PARTITION CONCURRENTLY"),
            ),
            ("ALTER TABLE p DETACH PARTITION c", None),
        ];
        for (sql, want) in cases {
            let s = split("f", sql).unwrap();
            assert_eq!(s[0].non_transactional(), want, "{sql}");
        }
    }
}
