//! The schema model: a database's schema as plain data, the same whether it
//! was read from the live database or from the scratch database the
//! migrations were applied to. Everything is keyed by name (qualified
//! `schema.name`), never by OID, so two databases compare.
//!
//! Read by [`super::introspect`], compared by [`super::diff`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One database's schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub schemas: BTreeSet<String>,
    /// By name.
    pub extensions: BTreeMap<String, Extension>,
    /// By `schema.name`.
    pub tables: BTreeMap<String, Table>,
    pub sequences: BTreeMap<String, Sequence>,
    /// Views and materialized views.
    pub views: BTreeMap<String, View>,
    /// Enums, composite types, domains, ranges.
    pub types: BTreeMap<String, TypeDef>,
    /// Functions, procedures and aggregates, by `schema.name(argument types)`.
    pub functions: BTreeMap<String, Function>,
    /// The session's search path (`current_schemas(false)`): where an
    /// unqualified name in a migration lands.
    pub search_path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub schema: String,
    pub version: String,
}

/// A table (also partitioned and foreign tables).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// `table`, `partitioned table`, `foreign table`.
    pub kind: String,
    pub unlogged: bool,
    /// `PARTITION OF s.parent FOR VALUES ...`, for a partition.
    pub partition_of: Option<String>,
    /// `PARTITION BY ...`, for a partitioned table.
    pub partition_key: Option<String>,
    /// In the table's order.
    pub columns: Vec<Column>,
    /// PRIMARY KEY, UNIQUE, CHECK, FOREIGN KEY, EXCLUDE; by name. (NOT NULL
    /// is a column's `not_null`.)
    pub constraints: BTreeMap<String, Constraint>,
    /// By name, including the indexes behind constraints.
    pub indexes: BTreeMap<String, Index>,
    pub triggers: BTreeMap<String, Trigger>,
    /// On Citus: how the table is distributed.
    pub distribution: Option<Distribution>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// `"s"."t"`, always quoted, for SQL.
    pub fn sql_name(&self) -> String {
        sql_name(&self.schema, &self.name)
    }
}

/// `t` in the `public` schema, else `s.t`.
pub fn display(schema: &str, name: &str) -> String {
    if schema == "public" {
        name.to_string()
    } else {
        format!("{schema}.{name}")
    }
}

/// A qualified name as SQL: identifiers quoted only where they must be.
pub fn sql_name(schema: &str, name: &str) -> String {
    format!("{}.{}", crate::lint::ast::ident(schema), crate::lint::ast::ident(name))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// With its type modifier, as PostgreSQL prints it: `vector(1024)`,
    /// `character varying(20)`, `timestamp with time zone`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// The expression of a generated column.
    pub generated: Option<String>,
    /// `s` stored, `v` virtual.
    pub generated_kind: Option<String>,
    /// `a` GENERATED ALWAYS, `d` BY DEFAULT.
    pub identity: Option<String>,
    /// A collation other than the type's default.
    pub collation: Option<String>,
}

impl Column {
    /// The column as in `CREATE TABLE` / `ADD COLUMN`.
    pub fn sql(&self) -> String {
        let mut s = format!("{} {}", crate::lint::ast::ident(&self.name), self.data_type);
        if let Some(c) = &self.collation {
            s.push_str(&format!(" COLLATE {}", crate::lint::ast::ident(c)));
        }
        if let Some(g) = &self.generated {
            let how = if self.generated_kind.as_deref() == Some("v") {
                "VIRTUAL"
            } else {
                "STORED"
            };
            s.push_str(&format!(" GENERATED ALWAYS AS ({g}) {how}"));
        }
        if let Some(i) = &self.identity {
            let how = if i == "a" { "ALWAYS" } else { "BY DEFAULT" };
            s.push_str(&format!(" GENERATED {how} AS IDENTITY"));
        }
        if let Some(d) = &self.default {
            s.push_str(&format!(" DEFAULT {d}"));
        }
        if self.not_null {
            s.push_str(" NOT NULL");
        }
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    Check,
    ForeignKey,
    Exclusion,
}

impl ConstraintKind {
    pub fn from_contype(c: &str) -> Option<ConstraintKind> {
        Some(match c {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "c" => ConstraintKind::Check,
            "f" => ConstraintKind::ForeignKey,
            "x" => ConstraintKind::Exclusion,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// `pg_get_constraintdef` without ` NOT VALID`: `PRIMARY KEY (userid,
    /// primarykey)`, `FOREIGN KEY (t) REFERENCES themes(id) ON DELETE CASCADE`.
    pub definition: String,
    /// False for a constraint added `NOT VALID` and not validated since.
    pub validated: bool,
    pub columns: Vec<String>,
    /// Foreign keys: the referenced table, `schema.name`.
    pub references: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    /// `btree`, `gin`, `brin`, `hnsw`, ...
    pub method: String,
    pub unique: bool,
    /// False for an index left INVALID by a failed CONCURRENTLY build.
    pub valid: bool,
    /// `pg_get_indexdef`: the whole `CREATE INDEX` statement.
    pub definition: String,
    /// The definition after `ON`: table, method, keys with their operator
    /// classes, INCLUDE, WITH, WHERE. Two indexes with the same shape and
    /// uniqueness are the same index, whatever their names.
    pub shape: String,
    /// The constraint this index implements (PRIMARY KEY, UNIQUE, EXCLUDE).
    pub constraint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    /// `pg_get_triggerdef`: the whole `CREATE TRIGGER` statement.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub start: String,
    pub increment: String,
    pub min: String,
    pub max: String,
    pub cache: String,
    pub cycle: bool,
    /// `schema.table.column` for a sequence owned by a column (serial).
    pub owned_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub materialized: bool,
    /// `pg_get_viewdef(oid, true)`: the query.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TypeDef {
    Enum {
        labels: Vec<String>,
    },
    Composite {
        /// (name, type), in order.
        attributes: Vec<(String, String)>,
    },
    Domain {
        base: String,
        not_null: bool,
        default: Option<String>,
        checks: Vec<String>,
    },
    Range {
        subtype: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub schema: String,
    pub name: String,
    /// `pg_get_function_identity_arguments`: `a integer, b text`.
    pub args: String,
    /// `function`, `procedure`, `aggregate`, `window`.
    pub kind: String,
    pub returns: Option<String>,
    /// `pg_get_functiondef` (none for aggregates).
    pub definition: Option<String>,
    /// SHA-256 of the definition: what is compared.
    pub hash: String,
}

/// How Citus holds a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    /// `hash`, `reference`, or `local` (a Citus local table).
    pub method: String,
    /// The distribution column (hash-distributed tables).
    pub column: Option<String>,
    /// The other tables of its colocation group, by `schema.name`, sorted.
    pub colocated_with: Vec<String>,
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{} by {c}", self.method)?,
            None => write!(f, "{}", self.method)?,
        }
        if !self.colocated_with.is_empty() {
            write!(f, ", colocated with {}", self.colocated_with.join(", "))?;
        }
        Ok(())
    }
}
