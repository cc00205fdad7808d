//! Small readers over libpg_query's parse tree (the `pg_query` crate's
//! protobuf node types), shared by the rules: table keys, type names,
//! constants, function calls, constraints. No rule logic lives here.

use pg_query::protobuf::{self, ConstrType, Node, TypeName};
use pg_query::NodeEnum;

pub use crate::sql::rel_key;

/// A table name written as text (`'public.t'`, `'T'`, `'"Odd"'`, as in
/// `create_distributed_table('t', ...)`) → the same key as [`rel_key`].
pub fn text_key(text: &str) -> String {
    let part = |p: &str| match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(q) => q.to_string(),
        None => p.to_ascii_lowercase(),
    };
    let t = text.trim();
    match t.split_once('.') {
        Some((schema, name)) if !schema.starts_with('"') || schema.ends_with('"') => {
            let (schema, name) = (part(schema), part(name));
            if schema == "public" {
                name
            } else {
                format!("{schema}.{name}")
            }
        }
        _ => part(t),
    }
}

/// A column type as written: `int4`, `vector(1024)`, `timestamp`, `bpchar(2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    /// Last component of the name, as PostgreSQL's grammar normalises it
    /// (`integer` → `int4`, `character` → `bpchar`, `timestamp` → `timestamp`).
    pub name: String,
    pub mods: Vec<i64>,
    pub array: bool,
}

impl Type {
    pub fn of(t: &TypeName) -> Type {
        let name = t.names.last().and_then(string).unwrap_or_default().to_string();
        let mods = t
            .typmods
            .iter()
            .filter_map(|m| match &m.node {
                Some(NodeEnum::AConst(c)) => match &c.val {
                    Some(protobuf::a_const::Val::Ival(i)) => Some(i.ival as i64),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        Type {
            name,
            mods,
            array: !t.array_bounds.is_empty(),
        }
    }

    /// `serial`, `bigserial`, `smallserial` (and their aliases).
    pub fn is_serial(&self) -> bool {
        matches!(
            self.name.as_str(),
            "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
        )
    }

    /// pgvector's types and the dimension count: `vector(1024)` → ("vector", Some(1024)).
    pub fn vector(&self) -> Option<(&str, Option<i64>)> {
        match self.name.as_str() {
            "vector" | "halfvec" | "sparsevec" | "bit" if !self.array => Some((self.name.as_str(), self.mods.first().copied())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.name.as_str() {
            "int2" => "smallint",
            "int4" => "integer",
            "int8" => "bigint",
            "bpchar" => "char",
            "timestamp" => "timestamp",
            other => other,
        };
        f.write_str(name)?;
        if !self.mods.is_empty() {
            let m: Vec<String> = self.mods.iter().map(i64::to_string).collect();
            write!(f, "({})", m.join(", "))?;
        }
        if self.array {
            f.write_str("[]")?;
        }
        Ok(())
    }
}

/// The text of a `String` node.
pub fn string(n: &Node) -> Option<&str> {
    match &n.node {
        Some(NodeEnum::String(s)) => Some(&s.sval),
        _ => None,
    }
}

/// The names of a list of `String` nodes (constraint keys, FK columns).
pub fn strings(nodes: &[Node]) -> Vec<String> {
    nodes.iter().filter_map(string).map(str::to_string).collect()
}

/// A string constant, also under a cast (`'t'::regclass`).
pub fn const_str(n: &Node) -> Option<&str> {
    match &n.node {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(protobuf::a_const::Val::Sval(s)) => Some(&s.sval),
            _ => None,
        },
        Some(NodeEnum::TypeCast(c)) => const_str(c.arg.as_deref()?),
        _ => None,
    }
}

/// The lower-case last part of a function's name (`citus.f` → `f`).
pub fn func_name(f: &protobuf::FuncCall) -> String {
    f.funcname.last().and_then(string).unwrap_or_default().to_ascii_lowercase()
}

/// Every function call in a statement (select lists, defaults, ...).
pub fn func_calls(node: &NodeEnum) -> Vec<&protobuf::FuncCall> {
    node.nodes()
        .into_iter()
        .filter_map(|(n, ..)| match n {
            pg_query::NodeRef::FuncCall(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// Argument `pos` (0-based) of a call, or the one named `name` (`x => v`).
pub fn arg<'a>(f: &'a protobuf::FuncCall, pos: usize, name: &str) -> Option<&'a Node> {
    for (i, a) in f.args.iter().enumerate() {
        match &a.node {
            Some(NodeEnum::NamedArgExpr(n)) if n.name == name => return n.arg.as_deref(),
            Some(NodeEnum::NamedArgExpr(_)) => {}
            _ if i == pos => return Some(a),
            _ => {}
        }
    }
    None
}

/// The constraints in a list of nodes (`CREATE TABLE` elements, a column's
/// constraints).
pub fn constraints(nodes: &[Node]) -> impl Iterator<Item = &protobuf::Constraint> {
    nodes.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::Constraint(c)) => Some(c.as_ref()),
        _ => None,
    })
}

/// The column definitions of a `CREATE TABLE`.
pub fn columns(nodes: &[Node]) -> impl Iterator<Item = &protobuf::ColumnDef> {
    nodes.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::ColumnDef(c)) => Some(c.as_ref()),
        _ => None,
    })
}

/// Whether a constraint is of this type.
pub fn is(c: &protobuf::Constraint, t: ConstrType) -> bool {
    c.contype == t as i32
}

/// The `ALTER TABLE` subcommands of a statement with their table key.
pub fn alter_cmds(node: &NodeEnum) -> Option<(String, &protobuf::RangeVar, Vec<&protobuf::AlterTableCmd>)> {
    let NodeEnum::AlterTableStmt(a) = node else { return None };
    if a.objtype != protobuf::ObjectType::ObjectTable as i32 {
        return None;
    }
    let rel = a.relation.as_ref()?;
    let cmds = a
        .cmds
        .iter()
        .filter_map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd.as_ref()),
            _ => None,
        })
        .collect();
    Some((rel_key(rel), rel, cmds))
}

/// Whether an `ALTER TABLE` subcommand is of this type.
pub fn cmd_is(c: &protobuf::AlterTableCmd, t: protobuf::AlterTableType) -> bool {
    c.subtype == t as i32
}

/// The definition node of a subcommand as a column definition.
pub fn cmd_column(c: &protobuf::AlterTableCmd) -> Option<&protobuf::ColumnDef> {
    match c.def.as_deref().and_then(|d| d.node.as_ref()) {
        Some(NodeEnum::ColumnDef(d)) => Some(d),
        _ => None,
    }
}

/// The definition node of a subcommand as a constraint.
pub fn cmd_constraint(c: &protobuf::AlterTableCmd) -> Option<&protobuf::Constraint> {
    match c.def.as_deref().and_then(|d| d.node.as_ref()) {
        Some(NodeEnum::Constraint(d)) => Some(d),
        _ => None,
    }
}

/// The column names of an index (expressions read as `(expression)`).
pub fn index_columns(i: &protobuf::IndexStmt) -> Vec<String> {
    i.index_params
        .iter()
        .filter_map(|p| match &p.node {
            Some(NodeEnum::IndexElem(e)) => Some(if e.name.is_empty() {
                "(expression)".to_string()
            } else {
                e.name.clone()
            }),
            _ => None,
        })
        .collect()
}

/// The objects a `DROP` names, as keys (`DROP TABLE a, s.b` → `a`, `s.b`).
pub fn drop_keys(d: &protobuf::DropStmt) -> Vec<String> {
    d.objects
        .iter()
        .filter_map(|o| match &o.node {
            Some(NodeEnum::List(l)) => {
                let parts = strings(&l.items);
                match parts.as_slice() {
                    [name] => Some(name.clone()),
                    [schema, name] if schema == "public" => Some(name.clone()),
                    [schema, name] => Some(format!("{schema}.{name}")),
                    [.., schema, name] => Some(format!("{schema}.{name}")),
                    [] => None,
                }
            }
            _ => None,
        })
        .collect()
}

/// The columns a statement defines or retypes, with their table: `CREATE
/// TABLE` columns, `ADD COLUMN`, `ALTER COLUMN ... TYPE`.
pub fn defined_columns(node: &NodeEnum) -> Vec<(String, String, &TypeName)> {
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateStmt(c) => {
            let Some(rel) = &c.relation else { return out };
            let t = rel_key(rel);
            for col in columns(&c.table_elts) {
                if let Some(ty) = &col.type_name {
                    out.push((t.clone(), col.colname.clone(), ty));
                }
            }
        }
        NodeEnum::AlterTableStmt(_) => {
            let Some((t, _, cmds)) = alter_cmds(node) else { return out };
            for cmd in cmds {
                let add = cmd_is(cmd, protobuf::AlterTableType::AtAddColumn);
                if !add && !cmd_is(cmd, protobuf::AlterTableType::AtAlterColumnType) {
                    continue;
                }
                if let Some(col) = cmd_column(cmd) {
                    let name = if add { col.colname.clone() } else { cmd.name.clone() };
                    if let Some(ty) = &col.type_name {
                        out.push((t.clone(), name, ty));
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// pgvector's index methods, by name as shown in messages.
pub fn vector_method(i: &protobuf::IndexStmt) -> Option<&'static str> {
    match i.access_method.as_str() {
        "hnsw" => Some("HNSW"),
        "ivfflat" => Some("IVFFlat"),
        _ => None,
    }
}

/// A double-quoted identifier when it needs quotes, as SQL to show in help.
pub fn ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(text_key("public.T"), "t");
        assert_eq!(text_key("app.\"Odd\""), "app.Odd");
        assert_eq!(text_key("st_chat_history_table"), "st_chat_history_table");
        assert_eq!(ident("a_b1"), "a_b1");
        assert_eq!(ident("UserId"), "\"UserId\"");
    }
}
