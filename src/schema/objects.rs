//! The objects a migration's statements create (tables, indexes, sequences,
//! views, types, extensions, schemas, functions, and columns added with
//! `ALTER TABLE ... ADD COLUMN`), read from the parse trees.
//!
//! Two users: the gate of `up`, which looks each object that a pending
//! migration creates *without* `IF NOT EXISTS` up in the catalog before
//! anything runs (a hand-made database fails at its first `CREATE TABLE`
//! otherwise), and `adopt`, which picks the highest version whose objects
//! all exist in the live schema as its default.

use std::collections::HashSet;

use pg_query::protobuf::{self, ObjectType};
use pg_query::NodeEnum;

use crate::dialect::quote;
use crate::lint::ast;
use crate::migration::SplitMigration;

/// What kind of object a statement creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Table,
    Index,
    Sequence,
    View,
    MaterializedView,
    Type,
    Extension,
    Schema,
    Function,
    Procedure,
    /// `ALTER TABLE ... ADD COLUMN` (for `adopt`'s default version only).
    Column,
    /// `ALTER TABLE ... ADD CONSTRAINT name` (`adopt` only).
    Constraint,
    /// Citus: `create_distributed_table` / `create_reference_table` (`adopt` only).
    Distribution,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Index => "index",
            Kind::Sequence => "sequence",
            Kind::View => "view",
            Kind::MaterializedView => "materialized view",
            Kind::Type => "type",
            Kind::Extension => "extension",
            Kind::Schema => "schema",
            Kind::Function => "function",
            Kind::Procedure => "procedure",
            Kind::Column => "column",
            Kind::Constraint => "constraint",
            Kind::Distribution => "distribution",
        }
    }

    /// The namespace PostgreSQL checks a new name against.
    fn space(self) -> &'static str {
        match self {
            Kind::Table | Kind::Index | Kind::Sequence | Kind::View | Kind::MaterializedView => "relation",
            Kind::Type => "type",
            Kind::Extension => "extension",
            Kind::Schema => "schema",
            Kind::Function | Kind::Procedure => "function",
            Kind::Column => "column",
            Kind::Constraint => "constraint",
            Kind::Distribution => "distribution",
        }
    }
}

/// One object a statement creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub kind: Kind,
    /// The schema as written (`None`: the search path decides).
    pub schema: Option<String>,
    pub name: String,
    /// Indexes and columns: the table (its lint key, `t` or `s.t`).
    pub table: Option<String>,
    /// Functions: the argument types as written (`integer`, `text[]`).
    pub args: Vec<String>,
    /// Indexes: the access method and key columns (for `adopt`, which
    /// takes an index of the same shape under another name as existing).
    pub shape: Option<(String, Vec<String>)>,
    pub if_not_exists: bool,
    /// The statement's index in its migration.
    pub statement: usize,
}

impl Created {
    /// How `up`'s refusal names it: `table st_chat_history_table`,
    /// `index idx_a on t`.
    pub fn display(&self) -> String {
        let name = self.shown_name();
        match (&self.table, self.kind) {
            (Some(t), Kind::Index) => format!("index {name} on {t}"),
            (Some(t), Kind::Column) => format!("column {t}.{}", self.name),
            _ => format!("{} {name}", self.kind.as_str()),
        }
    }

    /// `name`, `s.name`, or `f(integer, text)`.
    pub fn shown_name(&self) -> String {
        let base = match &self.schema {
            Some(s) if s != "public" => format!("{s}.{}", self.name),
            _ => self.name.clone(),
        };
        match self.kind {
            Kind::Function | Kind::Procedure => format!("{base}({})", self.args.join(", ")),
            _ => base,
        }
    }

    /// The catalog namespace and the name as `to_regclass` & co. read it
    /// (quoted; functions with their argument types), for
    /// `dialects/postgres/live_tables.sql`.
    pub fn catalog(&self) -> (&'static str, String) {
        let qualified = match &self.schema {
            Some(s) => format!("{}.{}", quote(s), quote(&self.name)),
            None => quote(&self.name),
        };
        let name = match self.kind {
            Kind::Extension => self.name.clone(),
            Kind::Schema => quote(&self.name),
            Kind::Function | Kind::Procedure => format!("{qualified}({})", self.args.join(", ")),
            _ => qualified,
        };
        (self.kind.space(), name)
    }

    /// A key for matching creations and drops within one run.
    fn key(&self) -> Key {
        let schema = self.schema.clone().unwrap_or_else(|| "public".into());
        (self.kind.space(), format!("{schema}.{}", self.shown_name_bare()))
    }

    fn shown_name_bare(&self) -> String {
        match self.kind {
            Kind::Function | Kind::Procedure => format!("{}({})", self.name, self.args.join(",")),
            Kind::Column => format!("{}.{}", self.table.clone().unwrap_or_default(), self.name),
            _ => self.name.clone(),
        }
    }
}

/// Schema and name of a qualified name list (`["s", "t"]`).
fn qualified(names: &[protobuf::Node]) -> (Option<String>, String) {
    let parts = ast::strings(names);
    match parts.as_slice() {
        [.., s, n] => (Some(s.clone()), n.clone()),
        [n] => (None, n.clone()),
        [] => (None, String::new()),
    }
}

fn range(r: &protobuf::RangeVar) -> (Option<String>, String) {
    let schema = (!r.schemaname.is_empty()).then(|| r.schemaname.clone());
    (schema, r.relname.clone())
}

/// A type as written in a signature: `integer`, `public.mood`, `text[]`.
fn type_text(t: &protobuf::TypeName) -> String {
    let names = ast::strings(&t.names);
    let names: Vec<&str> = names.iter().map(String::as_str).filter(|n| *n != "pg_catalog").collect();
    let mut s = names.join(".");
    if !t.array_bounds.is_empty() {
        s.push_str("[]");
    }
    s
}

fn new(kind: Kind, (schema, name): (Option<String>, String), if_not_exists: bool, statement: usize) -> Created {
    Created {
        kind,
        schema,
        name,
        table: None,
        args: Vec::new(),
        shape: None,
        if_not_exists,
        statement,
    }
}

/// What statement `i` creates.
pub fn created_by(i: usize, node: &NodeEnum) -> Vec<Created> {
    use protobuf::FunctionParameterMode as M;
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateStmt(c) => {
            if let Some(r) = &c.relation {
                out.push(new(Kind::Table, range(r), c.if_not_exists, i));
            }
        }
        NodeEnum::CreateTableAsStmt(c) => {
            if let Some(r) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                let kind = if c.objtype == ObjectType::ObjectMatview as i32 {
                    Kind::MaterializedView
                } else {
                    Kind::Table
                };
                out.push(new(kind, range(r), c.if_not_exists, i));
            }
        }
        NodeEnum::IndexStmt(x) if !x.idxname.is_empty() => {
            if let Some(r) = &x.relation {
                let (schema, _) = range(r);
                let mut c = new(Kind::Index, (schema, x.idxname.clone()), x.if_not_exists, i);
                c.table = Some(ast::rel_key(r));
                let method = if x.access_method.is_empty() { "btree" } else { &x.access_method };
                c.shape = Some((method.to_string(), ast::index_columns(x)));
                out.push(c);
            }
        }
        NodeEnum::CreateSeqStmt(s) => {
            if let Some(r) = &s.sequence {
                out.push(new(Kind::Sequence, range(r), s.if_not_exists, i));
            }
        }
        NodeEnum::ViewStmt(v) => {
            if let Some(r) = &v.view {
                out.push(new(Kind::View, range(r), v.replace, i));
            }
        }
        NodeEnum::CompositeTypeStmt(t) => {
            if let Some(r) = &t.typevar {
                out.push(new(Kind::Type, range(r), false, i));
            }
        }
        NodeEnum::CreateEnumStmt(t) => out.push(new(Kind::Type, qualified(&t.type_name), false, i)),
        NodeEnum::CreateRangeStmt(t) => out.push(new(Kind::Type, qualified(&t.type_name), false, i)),
        NodeEnum::CreateDomainStmt(t) => out.push(new(Kind::Type, qualified(&t.domainname), false, i)),
        NodeEnum::CreateExtensionStmt(e) => out.push(new(Kind::Extension, (None, e.extname.clone()), e.if_not_exists, i)),
        NodeEnum::CreateSchemaStmt(s) if !s.schemaname.is_empty() => {
            out.push(new(Kind::Schema, (None, s.schemaname.clone()), s.if_not_exists, i))
        }
        NodeEnum::CreateFunctionStmt(f) => {
            let kind = if f.is_procedure { Kind::Procedure } else { Kind::Function };
            let mut c = new(kind, qualified(&f.funcname), f.replace, i);
            c.args = f
                .parameters
                .iter()
                .filter_map(|p| match &p.node {
                    Some(NodeEnum::FunctionParameter(p)) => Some(p),
                    _ => None,
                })
                .filter(|p| {
                    ![M::FuncParamOut as i32, M::FuncParamTable as i32].contains(&p.mode)
                        || (f.is_procedure && p.mode == M::FuncParamOut as i32)
                })
                .filter_map(|p| p.arg_type.as_ref().map(type_text))
                .collect();
            out.push(c);
        }
        NodeEnum::SelectStmt(_) => {
            for call in crate::lint::facts::citus_calls(node) {
                if matches!(
                    call.function.as_str(),
                    "create_distributed_table" | "create_distributed_table_concurrently" | "create_reference_table"
                ) {
                    let (schema, name) = match call.table.split_once('.') {
                        Some((s, n)) => (Some(s.to_string()), n.to_string()),
                        None => (None, call.table.clone()),
                    };
                    let mut c = new(Kind::Distribution, (schema, name), false, i);
                    c.table = Some(call.table.clone());
                    out.push(c);
                }
            }
        }
        NodeEnum::AlterTableStmt(_) => {
            if let Some((table, r, cmds)) = ast::alter_cmds(node) {
                for cmd in cmds {
                    if ast::cmd_is(cmd, protobuf::AlterTableType::AtAddConstraint) {
                        if let Some(con) = ast::cmd_constraint(cmd).filter(|c| !c.conname.is_empty()) {
                            let mut c = new(Kind::Constraint, (range(r).0, con.conname.clone()), false, i);
                            c.table = Some(table.clone());
                            out.push(c);
                        }
                        continue;
                    }
                    if !ast::cmd_is(cmd, protobuf::AlterTableType::AtAddColumn) {
                        continue;
                    }
                    if let Some(col) = ast::cmd_column(cmd) {
                        let mut c = new(Kind::Column, (range(r).0, col.colname.clone()), cmd.missing_ok, i);
                        c.table = Some(table.clone());
                        out.push(c);
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// The (namespace, key) of the objects a statement drops or renames away,
/// and of those a rename makes.
/// A name in one of PostgreSQL's namespaces: (namespace, `schema.name`).
type Key = (&'static str, String);

fn dropped_and_renamed(node: &NodeEnum) -> (Vec<Key>, Vec<Key>) {
    let space = |t: i32| -> Option<&'static str> {
        Some(match ObjectType::try_from(t).ok()? {
            ObjectType::ObjectTable
            | ObjectType::ObjectIndex
            | ObjectType::ObjectSequence
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview => "relation",
            ObjectType::ObjectType | ObjectType::ObjectDomain => "type",
            ObjectType::ObjectExtension => "extension",
            ObjectType::ObjectSchema => "schema",
            _ => return None,
        })
    };
    let key = |k: String| if k.contains('.') { k } else { format!("public.{k}") };
    let mut gone = Vec::new();
    let mut made = Vec::new();
    match node {
        NodeEnum::DropStmt(d) => {
            if let Some(sp) = space(d.remove_type) {
                for o in &d.objects {
                    let name = match &o.node {
                        Some(NodeEnum::List(l)) => {
                            let (s, n) = qualified(&l.items);
                            s.map(|s| format!("{s}.{n}")).unwrap_or(n)
                        }
                        Some(NodeEnum::String(s)) => s.sval.clone(),
                        Some(NodeEnum::TypeName(t)) => type_text(t),
                        _ => continue,
                    };
                    gone.push((sp, if sp == "extension" || sp == "schema" { name } else { key(name) }));
                }
            }
        }
        NodeEnum::RenameStmt(r) => {
            if let (Some(sp), Some(rel)) = (space(r.rename_type), &r.relation) {
                let (s, n) = range(rel);
                let s = s.unwrap_or_else(|| "public".into());
                gone.push((sp, format!("{s}.{n}")));
                made.push((sp, format!("{s}.{}", r.newname)));
            }
        }
        _ => {}
    }
    (gone, made)
}

/// The objects that migrations `run` create without `IF NOT EXISTS` and
/// that no statement earlier in the run drops, renames away or creates:
/// each one that exists already makes `up` fail. `run`: positions in `set`,
/// in order, each with the first statement that runs (a no-transaction
/// migration resumed after an interruption skips those it finished).
/// Returns them with the position of their migration.
pub fn to_check(set: &[SplitMigration], run: &[(usize, usize)]) -> Vec<(usize, Created)> {
    let mut freed: HashSet<Key> = HashSet::new();
    let mut made: HashSet<Key> = HashSet::new();
    let mut out = Vec::new();
    for &(p, from) in run {
        for (i, s) in set[p].statements.iter().enumerate().skip(from) {
            let Some(node) = &s.node else { continue };
            let (gone, renamed) = dropped_and_renamed(node);
            freed.extend(gone);
            for c in created_by(i, node) {
                if matches!(c.kind, Kind::Column | Kind::Constraint | Kind::Distribution) {
                    continue;
                }
                let key = c.key();
                let (space, _) = key;
                let bare = (space, key.1.clone());
                // Extensions and schemas are keyed by their name alone.
                let alt = (space, c.name.clone());
                if !c.if_not_exists && !freed.contains(&bare) && !freed.contains(&alt) && !made.contains(&bare) {
                    out.push((p, c.clone()));
                }
                made.insert(bare);
            }
            made.extend(renamed);
        }
    }
    out
}

/// Whether `c` exists in `model` (for `adopt`'s default version): by name,
/// in its schema or the first schema of the search path that has it; an
/// index also under another name when its table has one of the same
/// method on the same columns.
pub fn exists_in(c: &Created, model: &super::model::Model) -> bool {
    let schemas: Vec<String> = match &c.schema {
        Some(s) => vec![s.clone()],
        None if model.search_path.is_empty() => vec!["public".into()],
        None => model.search_path.clone(),
    };
    let key = |name: &str| schemas.iter().map(move |s| format!("{s}.{name}")).collect::<Vec<_>>();
    let table_of = |k: &str| -> Option<&super::model::Table> {
        let (schema, name) = match k.split_once('.') {
            Some((s, n)) => (vec![s.to_string()], n),
            None => (schemas.clone(), k),
        };
        schema.iter().find_map(|s| model.tables.get(&format!("{s}.{name}")))
    };
    match c.kind {
        Kind::Table => key(&c.name).iter().any(|k| model.tables.contains_key(k)),
        Kind::View | Kind::MaterializedView => key(&c.name).iter().any(|k| model.views.contains_key(k)),
        Kind::Sequence => key(&c.name).iter().any(|k| model.sequences.contains_key(k)),
        Kind::Type => key(&c.name).iter().any(|k| model.types.contains_key(k)),
        Kind::Extension => model.extensions.contains_key(&c.name),
        Kind::Schema => model.schemas.contains(&c.name),
        Kind::Function | Kind::Procedure => model.functions.values().any(|f| f.name == c.name && schemas.contains(&f.schema)),
        Kind::Column => c.table.as_deref().and_then(table_of).is_some_and(|t| t.column(&c.name).is_some()),
        Kind::Constraint => c
            .table
            .as_deref()
            .and_then(table_of)
            .is_some_and(|t| t.constraints.contains_key(&c.name)),
        Kind::Distribution => c
            .table
            .as_deref()
            .and_then(table_of)
            .is_some_and(|t| t.distribution.as_ref().is_some_and(|d| d.method != "local")),
        Kind::Index => {
            let Some(t) = c.table.as_deref().and_then(table_of) else {
                return false;
            };
            if t.indexes.contains_key(&c.name) {
                return true;
            }
            let Some((method, columns)) = &c.shape else { return false };
            t.indexes
                .values()
                .any(|i| &i.method == method && &index_columns(&i.shape) == columns)
        }
    }
}

/// The key columns of an index's shape (`public.t USING hnsw (v vector_l2_ops)` → `["v"]`).
fn index_columns(shape: &str) -> Vec<String> {
    let Some(open) = shape.find(" (") else { return Vec::new() };
    let inner = &shape[open + 2..];
    let mut depth = 0;
    let mut end = inner.len();
    for (i, ch) in inner.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' if depth == 0 => {
                end = i;
                break;
            }
            ')' => depth -= 1,
            _ => {}
        }
    }
    inner[..end]
        .split(", ")
        .map(|k| {
            let first = k.split_whitespace().next().unwrap_or("");
            if k.contains('(') {
                "(expression)".to_string()
            } else {
                first.trim_matches('"').to_string()
            }
        })
        .collect()
}

/// What migration `m` creates.
fn made(m: &SplitMigration) -> Vec<Created> {
    m.statements
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.node.as_ref().map(|n| created_by(i, n)))
        .flatten()
        .collect()
}

/// When no version is `adopt`'s default: the first migration that creates
/// an object the database has and one it lacks, with that one (`None`:
/// the database has none of the objects).
pub fn partly_there(set: &[SplitMigration], model: &super::model::Model) -> Option<(i64, Created)> {
    set.iter().find_map(|m| {
        let made = made(m);
        if !made.iter().any(|c| exists_in(c, model)) {
            return None;
        }
        made.into_iter().find(|c| !exists_in(c, model)).map(|c| (m.version, c))
    })
}

/// `adopt`'s default version: the highest one whose migration creates
/// objects (tables, indexes, columns, named constraints, Citus
/// distributions, ...) that all exist in `model`, and the migrations right
/// after it that create nothing to look up (`VALIDATE CONSTRAINT`, data),
/// which only the comparison can judge.
pub fn default_version(set: &[SplitMigration], model: &super::model::Model) -> Option<i64> {
    let last = set.iter().rposition(|m| {
        let made = made(m);
        !made.is_empty() && made.iter().all(|c| exists_in(c, model))
    })?;
    let trailing = set[last + 1..].iter().take_while(|m| made(m).is_empty()).count();
    Some(set[last + trailing].version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[&str]) -> Vec<SplitMigration> {
        files
            .iter()
            .enumerate()
            .map(|(i, sql)| {
                let name = format!("V{}__m.sql", i + 1);
                crate::migration::Migration::parse(&name, &name, sql.as_bytes())
                    .unwrap()
                    .split()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn what_pending_migrations_create() {
        let s = set(&[
            "CREATE TABLE t (a int);\nCREATE INDEX idx_t_a ON t (a);\nCREATE INDEX ON t (a);\nCREATE TABLE IF NOT EXISTS u (a int);",
            "CREATE EXTENSION vector;\nCREATE SCHEMA app;\nCREATE TYPE app.mood AS ENUM ('a');\nCREATE FUNCTION app.f(a integer, b text[], OUT c int) RETURNS int LANGUAGE sql AS 'select 1';\nCREATE OR REPLACE VIEW v AS SELECT 1;\nCREATE VIEW w AS SELECT 1;\nCREATE SEQUENCE s;",
            "DROP TABLE t;\nCREATE TABLE t (b int);\nALTER INDEX idx_t_a RENAME TO idx_old;\nCREATE INDEX idx_t_a ON t (b);",
        ]);
        let found: Vec<(usize, String, (&str, String))> = to_check(&s, &[(0, 0), (1, 0), (2, 0)])
            .into_iter()
            .map(|(p, c)| (p, c.display(), c.catalog()))
            .collect();
        assert_eq!(
            found,
            vec![
                (0, "table t".into(), ("relation", "\"t\"".into())),
                (0, "index idx_t_a on t".into(), ("relation", "\"idx_t_a\"".into())),
                (1, "extension vector".into(), ("extension", "vector".into())),
                (1, "schema app".into(), ("schema", "\"app\"".into())),
                (1, "type app.mood".into(), ("type", "\"app\".\"mood\"".into())),
                (
                    1,
                    "function app.f(int4, text[])".into(),
                    ("function", "\"app\".\"f\"(int4, text[])".into())
                ),
                (1, "view w".into(), ("relation", "\"w\"".into())),
                (1, "sequence s".into(), ("relation", "\"s\"".into())),
            ]
        );
        // Run from V3 alone: t is dropped first, idx_t_a renamed away first.
        assert!(to_check(&s, &[(2, 0)]).is_empty());
        assert_eq!(
            index_columns("public.t USING hnsw (chat_vector vector_l2_ops) WHERE (a > 1)"),
            vec!["chat_vector"]
        );
        assert_eq!(
            index_columns("public.t USING btree (\"timestamp\", lower(x))"),
            vec!["timestamp", "(expression)"]
        );
        // V1 resumed after its first statement: the table is its own.
        assert_eq!(to_check(&s, &[(0, 1)]).len(), 1);
    }
}
