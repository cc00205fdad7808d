//! What the whole migration set says about each table, in order: created
//! where, its columns and their types, its unique keys and foreign keys, and
//! how Citus distributes it (`create_distributed_table`,
//! `create_reference_table`, colocation, and what changes them later:
//! `alter_distributed_table`, `update_distributed_table_colocation`,
//! `undistribute_table`, `citus_schema_distribute` /
//! `citus_schema_undistribute`). Built once per lint run from every
//! statement of the set; rules ask for a table's state *at* a statement, so a
//! key added before a table is distributed and one added after are told apart.
//!
//! Tables are keyed by name, schema-qualified unless the schema is `public`
//! (see [`ast::rel_key`]); a name the set never creates is simply unknown,
//! and rules stay quiet about what they cannot know.

use std::collections::HashMap;

use pg_query::protobuf::{AlterTableType as At, ConstrType, ObjectType};
use pg_query::NodeEnum;

use super::ast::{self, Type};
use crate::migration::SplitMigration;

/// A statement's place in the set: migration (index in set order), statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub migration: usize,
    pub statement: usize,
}

/// A unique key (PRIMARY KEY, UNIQUE constraint or unique index).
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub columns: Vec<String>,
    pub primary: bool,
    /// Made by `CREATE UNIQUE INDEX` rather than a constraint.
    pub index: bool,
}

/// A foreign key from this table.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub target: String,
    pub target_columns: Vec<String>,
}

#[derive(Debug, Clone)]
enum Fact {
    Created,
    RenamedFrom(String),
    Dropped,
    Column(String, Type),
    ColumnDropped(String),
    ColumnRenamed(String, String),
    Key(Key),
    KeyDropped(String),
    ForeignKey(ForeignKey),
    Distributed { column: String, colocate_with: Option<String> },
    Reference,
    Undistributed,
}

/// How Citus holds a table at some point of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A plain table (on Citus: a local table on the coordinator).
    Local,
    Reference,
    Distributed {
        column: String,
        group: Group,
    },
    /// A table of a distributed schema (`citus_schema_distribute`): a
    /// single-shard table, colocated with the other tables of its schema.
    Schema(String),
}

/// A colocation group, as far as the set tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    /// `colocate_with => 'default'`: Citus colocates tables whose
    /// distribution columns have the same type (and shard count).
    Default(String),
    /// `colocate_with => 'none'`: a group of its own.
    Alone(String),
    /// The type of the distribution column is not known from the set.
    Unknown,
}

/// A table's state at one point of the set.
#[derive(Debug, Clone, Default)]
pub struct TableAt {
    pub exists: bool,
    /// Where the table was created (`None`: before the set, or unknown).
    pub created: Option<Pos>,
    pub columns: HashMap<String, Type>,
    pub keys: Vec<(Pos, Key)>,
    pub foreign_keys: Vec<(Pos, ForeignKey)>,
    /// Where it was distributed or made a reference table, and how.
    pub citus: Option<(Pos, CitusEvent)>,
}

/// The Citus call that last changed a table.
#[derive(Debug, Clone)]
pub enum CitusEvent {
    Distributed { column: String, colocate_with: Option<String> },
    Reference,
}

impl TableAt {
    pub fn column(&self, name: &str) -> Option<&Type> {
        self.columns.get(name)
    }
}

/// The facts of one migration set.
#[derive(Debug, Default)]
pub struct Facts<'a> {
    set: &'a [SplitMigration],
    tables: HashMap<String, Vec<(Pos, Fact)>>,
    /// Index name → table key.
    indexes: HashMap<String, String>,
    /// `ALTER DATABASE / ROLE ... SET name`: (where, name).
    settings: Vec<(Pos, String)>,
    /// `citus_schema_distribute` (true) / `citus_schema_undistribute`
    /// (false), per schema, in order.
    schemas: HashMap<String, Vec<(Pos, bool)>>,
}

impl<'a> Facts<'a> {
    /// Reads every statement of `set` (migrations that did not parse are
    /// skipped: they have no statements).
    pub fn build(set: &'a [SplitMigration]) -> Facts<'a> {
        let mut f = Facts { set, ..Facts::default() };
        for (mi, m) in set.iter().enumerate() {
            for (si, s) in m.statements.iter().enumerate() {
                if let Some(node) = &s.node {
                    f.read(
                        Pos {
                            migration: mi,
                            statement: si,
                        },
                        node,
                    );
                }
            }
        }
        f
    }

    fn push(&mut self, table: &str, pos: Pos, e: Fact) {
        self.tables.entry(table.to_string()).or_default().push((pos, e));
    }

    fn read(&mut self, pos: Pos, node: &NodeEnum) {
        match node {
            NodeEnum::CreateStmt(c) => {
                let Some(rel) = &c.relation else { return };
                let t = ast::rel_key(rel);
                self.push(&t, pos, Fact::Created);
                for col in ast::columns(&c.table_elts) {
                    self.column(&t, pos, col);
                }
                for con in ast::constraints(&c.table_elts) {
                    self.constraint(&t, pos, con, &[]);
                }
            }
            NodeEnum::AlterTableStmt(_) => {
                let Some((t, _, cmds)) = ast::alter_cmds(node) else { return };
                for cmd in cmds {
                    if ast::cmd_is(cmd, At::AtAddColumn) {
                        if let Some(col) = ast::cmd_column(cmd) {
                            self.column(&t, pos, col);
                        }
                    } else if ast::cmd_is(cmd, At::AtAlterColumnType) {
                        if let Some(ty) = ast::cmd_column(cmd).and_then(|c| c.type_name.as_ref()) {
                            self.push(&t, pos, Fact::Column(cmd.name.clone(), Type::of(ty)));
                        }
                    } else if ast::cmd_is(cmd, At::AtDropColumn) {
                        self.push(&t, pos, Fact::ColumnDropped(cmd.name.clone()));
                    } else if ast::cmd_is(cmd, At::AtAddConstraint) {
                        if let Some(con) = ast::cmd_constraint(cmd) {
                            self.constraint(&t, pos, con, &[]);
                        }
                    } else if ast::cmd_is(cmd, At::AtDropConstraint) {
                        self.push(&t, pos, Fact::KeyDropped(cmd.name.clone()));
                    }
                }
            }
            NodeEnum::IndexStmt(i) => {
                let Some(rel) = &i.relation else { return };
                let t = ast::rel_key(rel);
                if !i.idxname.is_empty() {
                    self.indexes.insert(i.idxname.clone(), t.clone());
                }
                if i.unique || i.primary {
                    let key = Key {
                        name: i.idxname.clone(),
                        columns: ast::index_columns(i),
                        primary: i.primary,
                        index: true,
                    };
                    self.push(&t, pos, Fact::Key(key));
                }
            }
            NodeEnum::DropStmt(d) => {
                for name in ast::drop_keys(d) {
                    if d.remove_type == ObjectType::ObjectTable as i32 {
                        self.push(&name, pos, Fact::Dropped);
                    } else if d.remove_type == ObjectType::ObjectIndex as i32 {
                        let bare = name.rsplit('.').next().unwrap_or(&name).to_string();
                        if let Some(t) = self.indexes.get(&bare).cloned() {
                            self.push(&t, pos, Fact::KeyDropped(bare));
                        }
                    }
                }
            }
            NodeEnum::RenameStmt(r) => {
                let Some(rel) = &r.relation else { return };
                let t = ast::rel_key(rel);
                if r.rename_type == ObjectType::ObjectTable as i32 {
                    let new = if t.contains('.') {
                        format!("{}.{}", t.split('.').next().unwrap_or_default(), r.newname)
                    } else {
                        r.newname.clone()
                    };
                    self.push(&t, pos, Fact::Dropped);
                    self.push(&new, pos, Fact::RenamedFrom(t));
                } else if r.rename_type == ObjectType::ObjectColumn as i32 {
                    self.push(&t, pos, Fact::ColumnRenamed(r.subname.clone(), r.newname.clone()));
                }
            }
            NodeEnum::AlterDatabaseSetStmt(a) => {
                if let Some(v) = &a.setstmt {
                    self.settings.push((pos, v.name.clone()));
                }
            }
            NodeEnum::AlterRoleSetStmt(a) => {
                if let Some(v) = &a.setstmt {
                    self.settings.push((pos, v.name.clone()));
                }
            }
            NodeEnum::SelectStmt(_) => {
                for call in citus_calls(node) {
                    if let Some(on) = match call.function.as_str() {
                        "citus_schema_distribute" => Some(true),
                        "citus_schema_undistribute" => Some(false),
                        _ => None,
                    } {
                        self.schemas.entry(call.table.clone()).or_default().push((pos, on));
                        continue;
                    }
                    let Some(e) = self.citus_event(&call, pos) else { continue };
                    self.push(&call.table, pos, e);
                }
            }
            _ => {}
        }
    }

    /// How a Citus call changes its table, given what the set did to the
    /// table before it (`None`: it does not, as far as the set tells).
    fn citus_event(&self, call: &CitusCall, pos: Pos) -> Option<Fact> {
        let distributed = |column: String, colocate_with: Option<String>| Fact::Distributed { column, colocate_with };
        match call.function.as_str() {
            "create_reference_table" => Some(Fact::Reference),
            "undistribute_table" => Some(Fact::Undistributed),
            "alter_distributed_table" | "update_distributed_table_colocation" => {
                // Only a table the set distributed: its column and group change.
                let Some((_, CitusEvent::Distributed { column, colocate_with })) = self.citus_before(&call.table, pos, 0) else {
                    return None;
                };
                let group = if call.colocate_given {
                    call.colocate_with.clone()
                } else if call.column.is_some() || (call.shard_count && !call.cascade) {
                    // A new column (or a new shard count that breaks the
                    // colocation): Citus's default group for it.
                    None
                } else {
                    colocate_with
                };
                Some(distributed(call.column.clone().unwrap_or(column), group))
            }
            _ => Some(distributed(call.column.clone()?, call.colocate_with.clone())),
        }
    }

    fn column(&mut self, t: &str, pos: Pos, col: &pg_query::protobuf::ColumnDef) {
        if let Some(ty) = &col.type_name {
            self.push(t, pos, Fact::Column(col.colname.clone(), Type::of(ty)));
        }
        for con in ast::constraints(&col.constraints) {
            self.constraint(t, pos, con, std::slice::from_ref(&col.colname));
        }
    }

    /// A table or column constraint; `column` is the column it is written on.
    fn constraint(&mut self, t: &str, pos: Pos, c: &pg_query::protobuf::Constraint, column: &[String]) {
        if let Some(mut key) = key_of(t, c, column) {
            // `ADD PRIMARY KEY USING INDEX i`: the index's columns.
            if !c.indexname.is_empty() {
                if let Some(cols) = self.key_of_index(t, &c.indexname) {
                    key.columns = cols;
                }
            }
            self.push(t, pos, Fact::Key(key));
        } else if let Some(fk) = foreign_key_of(c, column) {
            self.push(t, pos, Fact::ForeignKey(fk));
        }
    }

    fn key_of_index(&self, t: &str, index: &str) -> Option<Vec<String>> {
        self.tables.get(t)?.iter().rev().find_map(|(_, e)| match e {
            Fact::Key(k) if k.index && k.name == index => Some(k.columns.clone()),
            _ => None,
        })
    }

    /// The state of `table` just before the statement at `pos`.
    pub fn state(&self, table: &str, pos: Pos) -> TableAt {
        self.state_depth(table, pos, 0)
    }

    fn state_depth(&self, table: &str, pos: Pos, depth: usize) -> TableAt {
        let mut s = TableAt::default();
        let Some(events) = self.tables.get(table) else { return s };
        for (p, e) in events.iter().take_while(|(p, _)| *p < pos) {
            match e {
                Fact::Created => {
                    s = TableAt {
                        exists: true,
                        created: Some(*p),
                        ..TableAt::default()
                    }
                }
                Fact::RenamedFrom(old) if depth < 8 => {
                    s = self.state_depth(old, *p, depth + 1);
                }
                Fact::RenamedFrom(_) => {}
                Fact::Dropped => s = TableAt::default(),
                Fact::Column(name, ty) => {
                    s.columns.insert(name.clone(), ty.clone());
                }
                Fact::ColumnDropped(name) => {
                    s.columns.remove(name);
                }
                Fact::ColumnRenamed(from, to) => {
                    if let Some(t) = s.columns.remove(from) {
                        s.columns.insert(to.clone(), t);
                    }
                    for (_, k) in s.keys.iter_mut() {
                        for c in k.columns.iter_mut().filter(|c| *c == from) {
                            *c = to.clone();
                        }
                    }
                    if let Some((_, CitusEvent::Distributed { column, .. })) = &mut s.citus {
                        if column == from {
                            *column = to.clone();
                        }
                    }
                }
                Fact::Key(k) => s.keys.push((*p, k.clone())),
                Fact::KeyDropped(name) => {
                    s.keys.retain(|(_, k)| &k.name != name);
                    s.foreign_keys.retain(|(_, k)| &k.name != name);
                }
                Fact::ForeignKey(fk) => s.foreign_keys.push((*p, fk.clone())),
                Fact::Distributed { column, colocate_with } => {
                    s.citus = Some((
                        *p,
                        CitusEvent::Distributed {
                            column: column.clone(),
                            colocate_with: colocate_with.clone(),
                        },
                    ))
                }
                Fact::Reference => s.citus = Some((*p, CitusEvent::Reference)),
                Fact::Undistributed => s.citus = None,
            }
        }
        s
    }

    /// How Citus holds `table` just before `pos`.
    pub fn kind(&self, table: &str, pos: Pos) -> Kind {
        self.kind_depth(table, pos, 0)
    }

    fn kind_depth(&self, table: &str, pos: Pos, depth: usize) -> Kind {
        if let Some(schema) = self.distributed_schema(table, pos) {
            return Kind::Schema(schema.to_string());
        }
        match self.citus_before(table, pos, 0) {
            None => Kind::Local,
            Some((_, CitusEvent::Reference)) => Kind::Reference,
            Some((at, CitusEvent::Distributed { column, colocate_with })) => {
                let group = match colocate_with.as_deref() {
                    Some("none") => Group::Alone(table.to_string()),
                    Some(other) if depth < 8 => match self.kind_depth(other, at, depth + 1) {
                        Kind::Distributed { group, .. } => group,
                        _ => Group::Unknown,
                    },
                    Some(_) => Group::Unknown,
                    None => match self.column_type(table, &column, pos, 0) {
                        Some(t) => Group::Default(t.to_string()),
                        None => Group::Unknown,
                    },
                };
                Kind::Distributed { column, group }
            }
        }
    }

    /// The schema of `table` if it is a distributed schema just before
    /// `pos` (`citus_schema_distribute`, and no undistribute since).
    fn distributed_schema<'t>(&self, table: &'t str, pos: Pos) -> Option<&'t str> {
        let (schema, _) = table.split_once('.')?;
        let events = self.schemas.get(schema)?;
        let last = events.iter().take_while(|(p, _)| *p < pos).last()?;
        last.1.then_some(schema)
    }

    /// The columns a unique key on `table` needs at `pos` to be accepted:
    /// `columns`, with the distribution column put first when the table is
    /// distributed and the key lacks it (Citus checks uniqueness per
    /// shard); `None` when `columns` will do.
    pub fn unique_columns(&self, table: &str, pos: Pos, columns: &[String]) -> Option<Vec<String>> {
        match self.kind(table, pos) {
            Kind::Distributed { column, .. } if !columns.contains(&column) => {
                Some(std::iter::once(column).chain(columns.iter().cloned()).collect())
            }
            _ => None,
        }
    }

    /// The table's events before `pos` (they are kept in set order).
    fn events_before(&self, table: &str, pos: Pos) -> &[(Pos, Fact)] {
        let events = self.tables.get(table).map(Vec::as_slice).unwrap_or_default();
        &events[..events.partition_point(|(p, _)| *p < pos)]
    }

    /// The last Citus call on `table` before `pos`, its distribution column
    /// followed through renames (a scan, no state built: asked per statement).
    fn citus_before(&self, table: &str, pos: Pos, depth: usize) -> Option<(Pos, CitusEvent)> {
        let mut c = None;
        for (p, e) in self.events_before(table, pos) {
            match e {
                Fact::Created | Fact::Dropped | Fact::Undistributed => c = None,
                Fact::RenamedFrom(old) if depth < 8 => c = self.citus_before(old, *p, depth + 1),
                Fact::Distributed { column, colocate_with } => {
                    c = Some((
                        *p,
                        CitusEvent::Distributed {
                            column: column.clone(),
                            colocate_with: colocate_with.clone(),
                        },
                    ))
                }
                Fact::Reference => c = Some((*p, CitusEvent::Reference)),
                Fact::ColumnRenamed(from, to) => {
                    if let Some((_, CitusEvent::Distributed { column, .. })) = &mut c {
                        if column == from {
                            *column = to.clone();
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// The type of column `name` of `table` just before `pos`, read
    /// backwards through renames.
    fn column_type(&self, table: &str, name: &str, pos: Pos, depth: usize) -> Option<Type> {
        let mut name = name.to_string();
        for (p, e) in self.events_before(table, pos).iter().rev() {
            match e {
                Fact::Column(n, ty) if *n == name => return Some(ty.clone()),
                Fact::ColumnDropped(n) if *n == name => return None,
                Fact::ColumnRenamed(from, to) if *to == name => name = from.clone(),
                Fact::Created | Fact::Dropped => return None,
                Fact::RenamedFrom(old) if depth < 8 => return self.column_type(old, &name, *p, depth + 1),
                _ => {}
            }
        }
        None
    }

    /// `file:line:col` of a statement of the set, for messages.
    pub fn location(&self, pos: Pos) -> String {
        self.set
            .get(pos.migration)
            .map(|m| m.location(pos.statement, 0).to_string())
            .unwrap_or_default()
    }

    /// The table an index belongs to, when the set created it.
    pub fn index_table(&self, index: &str) -> Option<&str> {
        self.indexes.get(index).map(String::as_str)
    }

    /// Whether `table` was created earlier in the same migration as `pos`.
    /// (Asked for nearly every statement: a scan of the table's events, no
    /// state is built.)
    pub fn created_in_migration(&self, table: &str, pos: Pos) -> bool {
        self.created_before(table, pos, 0).is_some_and(|c| c.migration == pos.migration)
    }

    /// Where the table that exists just before `pos` was created, when the
    /// set created it.
    pub fn created_at(&self, table: &str, pos: Pos) -> Option<Pos> {
        self.created_before(table, pos, 0)
    }

    /// Where the table that exists just before `pos` was created.
    fn created_before(&self, table: &str, pos: Pos, depth: usize) -> Option<Pos> {
        let mut created = None;
        for (p, e) in self.tables.get(table)?.iter().take_while(|(p, _)| *p < pos) {
            match e {
                Fact::Created => created = Some(*p),
                Fact::Dropped => created = None,
                Fact::RenamedFrom(old) if depth < 8 => created = self.created_before(old, *p, depth + 1),
                _ => {}
            }
        }
        created
    }

    /// Whether `ALTER DATABASE` / `ALTER ROLE ... SET name` comes before `pos`
    /// (new sessions then start with it).
    pub fn default_setting_before(&self, name: &str, pos: Pos) -> bool {
        self.settings.iter().any(|(p, n)| *p < pos && n == name)
    }

    /// Whether the set distributes `table`, or makes it a reference table,
    /// anywhere.
    pub fn citus_anywhere(&self, table: &str) -> bool {
        let schema = table.split_once('.').map(|(s, _)| s);
        self.tables
            .get(table)
            .is_some_and(|ev| ev.iter().any(|(_, e)| matches!(e, Fact::Distributed { .. } | Fact::Reference)))
            || schema.is_some_and(|s| self.schemas.get(s).is_some_and(|ev| ev.iter().any(|(_, on)| *on)))
    }
}

/// The unique key a PRIMARY KEY / UNIQUE constraint makes (`column`: the
/// column it is written on, for column constraints).
pub fn key_of(t: &str, c: &pg_query::protobuf::Constraint, column: &[String]) -> Option<Key> {
    let primary = ast::is(c, ConstrType::ConstrPrimary);
    if !primary && !ast::is(c, ConstrType::ConstrUnique) {
        return None;
    }
    let columns = if c.keys.is_empty() {
        column.to_vec()
    } else {
        ast::strings(&c.keys)
    };
    let bare = t.rsplit('.').next().unwrap_or(t);
    let name = if !c.conname.is_empty() {
        c.conname.clone()
    } else if primary {
        format!("{bare}_pkey")
    } else {
        format!("{bare}_{}_key", columns.join("_"))
    };
    Some(Key {
        name,
        columns,
        primary,
        index: false,
    })
}

/// The foreign key a FOREIGN KEY / REFERENCES constraint makes.
pub fn foreign_key_of(c: &pg_query::protobuf::Constraint, column: &[String]) -> Option<ForeignKey> {
    if !ast::is(c, ConstrType::ConstrForeign) {
        return None;
    }
    let target = c.pktable.as_ref()?;
    Some(ForeignKey {
        name: c.conname.clone(),
        columns: if c.fk_attrs.is_empty() {
            column.to_vec()
        } else {
            ast::strings(&c.fk_attrs)
        },
        target: ast::rel_key(target),
        target_columns: ast::strings(&c.pk_attrs),
    })
}

/// The constraints a statement adds, with their table and, for column
/// constraints, their column: `CREATE TABLE` elements and columns, `ALTER
/// TABLE ... ADD CONSTRAINT` and `ADD COLUMN`.
pub fn constraints_added(node: &NodeEnum) -> Vec<(String, &pg_query::protobuf::Constraint, Vec<String>)> {
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateStmt(c) => {
            let Some(rel) = &c.relation else { return out };
            let t = ast::rel_key(rel);
            for con in ast::constraints(&c.table_elts) {
                out.push((t.clone(), con, Vec::new()));
            }
            for col in ast::columns(&c.table_elts) {
                for con in ast::constraints(&col.constraints) {
                    out.push((t.clone(), con, vec![col.colname.clone()]));
                }
            }
        }
        NodeEnum::AlterTableStmt(_) => {
            let Some((t, _, cmds)) = ast::alter_cmds(node) else { return out };
            for cmd in cmds {
                if ast::cmd_is(cmd, At::AtAddConstraint) {
                    if let Some(con) = ast::cmd_constraint(cmd) {
                        out.push((t.clone(), con, Vec::new()));
                    }
                } else if ast::cmd_is(cmd, At::AtAddColumn) {
                    if let Some(col) = ast::cmd_column(cmd) {
                        for con in ast::constraints(&col.constraints) {
                            out.push((t.clone(), con, vec![col.colname.clone()]));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// A call of one of Citus's functions that change how a table (or a
/// schema's tables) is held, in a SELECT: `create_distributed_table[_concurrently]`,
/// `create_reference_table`, `alter_distributed_table`,
/// `update_distributed_table_colocation`, `undistribute_table`,
/// `citus_schema_distribute`, `citus_schema_undistribute`.
#[derive(Debug, Clone)]
pub struct CitusCall {
    pub function: String,
    /// The table (the schema, for the `citus_schema_*` functions).
    pub table: String,
    /// The distribution column given (`create_distributed_table*`,
    /// `alter_distributed_table`).
    pub column: Option<String>,
    /// `colocate_with`, unless 'default'.
    pub colocate_with: Option<String>,
    /// Whether `colocate_with` was given at all ('default' included).
    pub colocate_given: bool,
    /// `alter_distributed_table`: a new `shard_count` was given...
    pub shard_count: bool,
    /// ...with `cascade_to_colocated => true` (the group keeps together).
    pub cascade: bool,
}

/// A Citus function [`citus_calls`] reads, with the positions of its
/// `distribution_column`, `colocate_with` and `shard_count` arguments.
type CallShape = (&'static str, Option<usize>, Option<usize>, Option<usize>);

const CITUS_CALLS: &[CallShape] = &[
    ("create_distributed_table", Some(1), Some(3), Some(4)),
    ("create_distributed_table_concurrently", Some(1), Some(3), Some(4)),
    ("create_reference_table", None, None, None),
    ("alter_distributed_table", Some(1), Some(3), Some(2)),
    ("update_distributed_table_colocation", None, Some(1), None),
    ("undistribute_table", None, None, None),
    ("citus_schema_distribute", None, None, None),
    ("citus_schema_undistribute", None, None, None),
];

/// The Citus calls of a statement.
pub fn citus_calls(node: &NodeEnum) -> Vec<CitusCall> {
    if !matches!(node, NodeEnum::SelectStmt(_)) {
        return Vec::new();
    }
    ast::func_calls(node)
        .into_iter()
        .filter_map(|call| {
            let function = ast::func_name(call);
            let &(_, column_at, colocate_at, shards_at) = CITUS_CALLS.iter().find(|(f, ..)| *f == function)?;
            let first = if function.starts_with("citus_schema_") { "schema_name" } else { "table_name" };
            let table = ast::text_key(ast::arg(call, 0, first).and_then(ast::const_str)?);
            let column = column_at
                .and_then(|at| ast::arg(call, at, "distribution_column"))
                .and_then(ast::const_str)
                .map(ast::text_key);
            let colocate = colocate_at.and_then(|at| ast::arg(call, at, "colocate_with")).and_then(ast::const_str);
            let colocate_with = colocate
                .filter(|c| *c != "default")
                .map(|c| if c == "none" { c.to_string() } else { ast::text_key(c) });
            let shard_count = shards_at.and_then(|at| ast::arg(call, at, "shard_count")).is_some();
            let cascade = ast::arg(call, 4, "cascade_to_colocated").is_some_and(|a| {
                matches!(&a.node, Some(NodeEnum::AConst(c)) if matches!(c.val, Some(pg_query::protobuf::a_const::Val::Boolval(ref b)) if b.boolval))
                    || ast::const_str(a).is_some_and(|v| matches!(v, "true" | "t" | "on"))
            });
            Some(CitusCall {
                function,
                table,
                column,
                colocate_given: colocate.is_some(),
                colocate_with,
                shard_count,
                cascade,
            })
        })
        .collect()
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

    fn at(migration: usize, statement: usize) -> Pos {
        Pos { migration, statement }
    }

    #[test]
    fn tables_keys_and_distribution_in_order() {
        let s = set(&[
            "CREATE TABLE a (id bigint, userid text, PRIMARY KEY (userid, id));\nCREATE TABLE b (userid text PRIMARY KEY);",
            "SELECT create_distributed_table('a', 'userid');\nSELECT create_distributed_table('b', 'userid', colocate_with => 'a');\nCREATE TABLE c (x int);\nSELECT create_distributed_table('c', 'x', colocate_with => 'none');\nSELECT create_reference_table('public.d');",
            "ALTER TABLE a RENAME COLUMN userid TO uid;",
        ]);
        let f = Facts::build(&s);
        assert_eq!(f.kind("a", at(1, 0)), Kind::Local);
        let text = Group::Default("text".into());
        assert_eq!(
            f.kind("a", at(1, 1)),
            Kind::Distributed {
                column: "userid".into(),
                group: text.clone()
            }
        );
        assert_eq!(
            f.kind("b", at(2, 0)),
            Kind::Distributed {
                column: "userid".into(),
                group: text
            }
        );
        assert_eq!(
            f.kind("c", at(2, 0)),
            Kind::Distributed {
                column: "x".into(),
                group: Group::Alone("c".into())
            }
        );
        assert_eq!(f.kind("d", at(2, 0)), Kind::Reference);
        let st = f.state("a", at(3, 0));
        assert_eq!(st.keys[0].1.columns, vec!["uid", "id"]);
        assert!(matches!(&st.citus, Some((_, CitusEvent::Distributed { column, .. })) if column == "uid"));
        assert!(f.created_in_migration("c", at(1, 3)));
        assert!(!f.created_in_migration("a", at(1, 3)));
    }

    #[test]
    fn later_citus_calls_change_column_and_group() {
        let s = set(&[
            "CREATE TABLE a (k bigint, b bigint, code text);
SELECT create_distributed_table('a', 'k');
CREATE TABLE o (k bigint);
SELECT create_distributed_table('o', 'k');",
            "SELECT alter_distributed_table('a', distribution_column := 'b');",
            "SELECT update_distributed_table_colocation('a', colocate_with => 'none');",
            "SELECT alter_distributed_table('a', colocate_with := 'o');",
            "SELECT alter_distributed_table('a', shard_count := 8);",
            "SELECT alter_distributed_table('o', shard_count := 8, cascade_to_colocated := true);",
            "SELECT undistribute_table('a');",
        ]);
        let f = Facts::build(&s);
        let int8 = Group::Default("bigint".into());
        let dist = |column: &str, group: Group| Kind::Distributed {
            column: column.into(),
            group,
        };
        assert_eq!(f.kind("a", at(1, 0)), dist("k", int8.clone()));
        // The new distribution column, in Citus's default group for its type.
        assert_eq!(f.kind("a", at(2, 0)), dist("b", int8.clone()));
        assert_eq!(f.state("a", at(2, 0)).citus.map(|(p, _)| p), Some(at(1, 0)));
        assert_eq!(f.kind("a", at(3, 0)), dist("b", Group::Alone("a".into())));
        assert_eq!(f.kind("a", at(4, 0)), dist("b", int8.clone()));
        // A new shard count without cascade_to_colocated leaves the group;
        // with it, the whole group moves along.
        assert_eq!(f.kind("a", at(5, 0)), dist("b", int8.clone()));
        assert_eq!(f.kind("o", at(6, 0)), dist("k", int8));
        assert_eq!(f.kind("a", at(7, 0)), Kind::Local);
        // A call on a table the set never distributed changes nothing known.
        let s = set(&["SELECT alter_distributed_table('x', distribution_column := 'b');"]);
        assert_eq!(Facts::build(&s).kind("x", at(1, 0)), Kind::Local);
    }

    #[test]
    fn distributed_schemas_hold_their_tables() {
        let s = set(&[
            "CREATE SCHEMA ops;
CREATE TABLE ops.t (id bigint PRIMARY KEY);",
            "SELECT citus_schema_distribute('ops');
CREATE TABLE ops.later (id bigint);",
            "SELECT citus_schema_undistribute('ops');",
        ]);
        let f = Facts::build(&s);
        assert_eq!(f.kind("ops.t", at(1, 0)), Kind::Local);
        assert_eq!(f.kind("ops.t", at(1, 1)), Kind::Schema("ops".into()));
        assert_eq!(f.kind("ops.later", at(2, 0)), Kind::Schema("ops".into()));
        assert_eq!(f.kind("ops.t", at(3, 0)), Kind::Local);
        assert!(f.citus_anywhere("ops.t"));
        assert_eq!(f.kind("t", at(2, 0)), Kind::Local);
    }

    #[test]
    fn unique_keys_of_distributed_tables_need_the_column() {
        let s = set(&["CREATE TABLE a (k bigint, code text);
SELECT create_distributed_table('a', 'k');"]);
        let f = Facts::build(&s);
        let cols = |c: &[&str]| c.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(f.unique_columns("a", at(1, 0), &cols(&["code"])), Some(cols(&["k", "code"])));
        assert_eq!(f.unique_columns("a", at(1, 0), &cols(&["code", "k"])), None);
        assert_eq!(f.unique_columns("a", at(0, 1), &cols(&["code"])), None);
    }
}
