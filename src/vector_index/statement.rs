//! Which statements of a migration build a pgvector index, read from
//! libpg_query's parse tree (the node [`crate::sql::split`] gives each
//! statement) with the readers of [`crate::lint::ast`]:
//!
//! - `CREATE INDEX [CONCURRENTLY] ... USING hnsw | ivfflat`: the method, the
//!   table, the column or the cast of an expression (`(e::halfvec(1024))`),
//!   the operator class and the options (`WITH (m = 24, ef_construction =
//!   128)`, `WITH (lists = 1000)`);
//! - `REINDEX [ (CONCURRENTLY) ] INDEX | TABLE | SCHEMA | DATABASE`,
//!   `VACUUM FULL`, `CLUSTER` and `ALTER TABLE ... ALTER COLUMN ... TYPE`:
//!   rebuilds whose indexes only the catalog knows.
//!
//! An option pgvector would refuse (out of range, not an integer) is left
//! unset here: the server rejects the statement with its own message.

use pg_query::protobuf::{self, Node};
use pg_query::NodeEnum;

use super::memory::VectorType;
use crate::lint::ast;

/// pgvector's index methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Hnsw,
    Ivfflat,
}

impl Method {
    /// By the access method's name (`USING hnsw`, `pg_am.amname`).
    pub fn from_name(name: &str) -> Option<Method> {
        match name.to_ascii_lowercase().as_str() {
            "hnsw" => Some(Method::Hnsw),
            "ivfflat" => Some(Method::Ivfflat),
            _ => None,
        }
    }

    /// As shown in messages.
    pub fn name(self) -> &'static str {
        match self {
            Method::Hnsw => "HNSW",
            Method::Ivfflat => "IVFFlat",
        }
    }
}

/// The storage options of a vector index, as written; `None` takes
/// pgvector's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexOptions {
    /// HNSW: connections per node, 2..=100 (default 16).
    pub m: Option<u32>,
    /// HNSW: the candidate list of the build's search, 4..=1000 (default 64).
    pub ef_construction: Option<u32>,
    /// IVFFlat: the number of lists, 1..=32768 (default 100).
    pub lists: Option<u32>,
}

impl IndexOptions {
    pub fn m(&self) -> u32 {
        self.m.unwrap_or(16)
    }

    pub fn lists(&self) -> u32 {
        self.lists.unwrap_or(100)
    }

    /// Sets `name` from its text when pgvector would accept it (hnsw.c:88-91,
    /// ivfflat.c: `add_int_reloption` with these bounds).
    fn set(&mut self, name: &str, value: &str) {
        let Ok(v) = value.trim().parse::<u32>() else { return };
        match name.to_ascii_lowercase().as_str() {
            "m" if (2..=100).contains(&v) => self.m = Some(v),
            "ef_construction" if (4..=1000).contains(&v) => self.ef_construction = Some(v),
            "lists" if (1..=32768).contains(&v) => self.lists = Some(v),
            _ => {}
        }
    }

    /// The options as the catalog holds them (`pg_class.reloptions`, joined
    /// by commas: `m=24,ef_construction=100`).
    pub fn from_reloptions(text: &str) -> IndexOptions {
        let mut o = IndexOptions::default();
        for kv in text.split(',') {
            if let Some((k, v)) = kv.split_once('=') {
                o.set(k.trim(), v);
            }
        }
        o
    }

    /// The `WITH (...)` list of a `CREATE INDEX`.
    fn from_defs(defs: &[Node]) -> IndexOptions {
        let mut o = IndexOptions::default();
        for d in defs {
            let Some(NodeEnum::DefElem(d)) = &d.node else { continue };
            if let Some(value) = d.arg.as_deref().and_then(def_value) {
                o.set(&d.defname, &value);
            }
        }
        o
    }
}

/// The value of an option as PostgreSQL's reloption parser would read it:
/// `m = 16`, `m = '16'`.
fn def_value(n: &Node) -> Option<String> {
    match &n.node {
        Some(NodeEnum::Integer(i)) => Some(i.ival.to_string()),
        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
        Some(NodeEnum::Float(f)) => Some(f.fval.clone()),
        _ => None,
    }
}

/// A `CREATE INDEX ... USING hnsw | ivfflat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateIndex {
    pub method: Method,
    /// The index's name, when the statement gives one.
    pub name: Option<String>,
    /// The table, as [`ast::rel_key`] names it.
    pub table: String,
    pub concurrently: bool,
    pub if_not_exists: bool,
    /// The indexed column, when the index is on a column or on a cast of one.
    pub column: Option<String>,
    /// The type and dimensions of an expression's cast (`(e::halfvec(1024))`).
    pub cast: Option<(VectorType, Option<u32>)>,
    /// The operator class, without its schema.
    pub opclass: Option<String>,
    pub options: IndexOptions,
    /// A partial index (`WHERE ...`) indexes fewer rows than the table holds.
    pub partial: bool,
}

impl CreateIndex {
    /// The type the index stores: the cast's, else the operator class's.
    /// `None` for an index without either (the column's type then says it).
    pub fn vector_type(&self) -> Option<VectorType> {
        self.cast
            .map(|(t, _)| t)
            .or_else(|| self.opclass.as_deref().and_then(VectorType::from_opclass))
    }

    /// The dimensions written in the statement (a cast's); otherwise the
    /// column's type modifier in the catalog (`pg_attribute.atttypmod`).
    pub fn dims(&self) -> Option<u32> {
        self.cast.and_then(|(_, d)| d)
    }
}

/// What a `REINDEX` rebuilds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReindexTarget {
    Index(String),
    Table(String),
    Schema(String),
    /// `REINDEX DATABASE` / `REINDEX SYSTEM` (the current database).
    Database,
}

/// Why a statement rebuilds every index of some tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    VacuumFull,
    Cluster,
    AlterColumnType,
}

/// A statement that builds or rebuilds indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexBuild {
    /// A new HNSW or IVFFlat index.
    Create(CreateIndex),
    /// A rebuild of existing indexes: which of them are vector indexes,
    /// and their options, are in the catalog.
    Reindex { target: ReindexTarget, concurrently: bool },
    /// A table rewrite, which rebuilds all of the tables' indexes. An empty
    /// list is every table of the database (`VACUUM FULL`, `CLUSTER`).
    Rewrite { tables: Vec<String>, why: Rewrite },
}

/// The index build a statement is, if it is one.
pub fn index_build(node: &NodeEnum) -> Option<IndexBuild> {
    match node {
        NodeEnum::IndexStmt(i) => create_index(i).map(IndexBuild::Create),
        NodeEnum::ReindexStmt(r) => reindex(r),
        NodeEnum::VacuumStmt(v) if v.is_vacuumcmd && has_option(&v.options, "full") => Some(IndexBuild::Rewrite {
            tables: v
                .rels
                .iter()
                .filter_map(|r| match &r.node {
                    Some(NodeEnum::VacuumRelation(v)) => v.relation.as_ref().map(ast::rel_key),
                    _ => None,
                })
                .collect(),
            why: Rewrite::VacuumFull,
        }),
        NodeEnum::ClusterStmt(c) => Some(IndexBuild::Rewrite {
            tables: c.relation.iter().map(ast::rel_key).collect(),
            why: Rewrite::Cluster,
        }),
        NodeEnum::AlterTableStmt(_) => {
            let (table, _, cmds) = ast::alter_cmds(node)?;
            cmds.iter()
                .any(|c| ast::cmd_is(c, protobuf::AlterTableType::AtAlterColumnType))
                .then(|| IndexBuild::Rewrite {
                    tables: vec![table],
                    why: Rewrite::AlterColumnType,
                })
        }
        _ => None,
    }
}

fn create_index(i: &protobuf::IndexStmt) -> Option<CreateIndex> {
    let method = Method::from_name(&i.access_method)?;
    let table = ast::rel_key(i.relation.as_ref()?);
    let elem = i.index_params.iter().find_map(|p| match &p.node {
        Some(NodeEnum::IndexElem(e)) => Some(e.as_ref()),
        _ => None,
    });
    let (mut column, mut cast, mut opclass) = (None, None, None);
    if let Some(e) = elem {
        if !e.name.is_empty() {
            column = Some(e.name.clone());
        }
        if let Some(NodeEnum::TypeCast(c)) = e.expr.as_deref().and_then(|n| n.node.as_ref()) {
            if let Some(t) = c.type_name.as_ref().map(ast::Type::of) {
                if let Some(vt) = VectorType::from_type_name(&t.name).filter(|_| !t.array) {
                    cast = Some((vt, t.mods.first().and_then(|&d| u32::try_from(d).ok())));
                }
            }
            column = column.or_else(|| c.arg.as_deref().and_then(column_ref));
        }
        opclass = e.opclass.last().and_then(ast::string).map(str::to_string);
    }
    Some(CreateIndex {
        method,
        name: Some(i.idxname.clone()).filter(|n| !n.is_empty()),
        table,
        concurrently: i.concurrent,
        if_not_exists: i.if_not_exists,
        column,
        cast,
        opclass,
        options: IndexOptions::from_defs(&i.options),
        partial: i.where_clause.is_some(),
    })
}

/// The column a plain column reference names (`e`, `t.e`).
fn column_ref(n: &Node) -> Option<String> {
    match &n.node {
        Some(NodeEnum::ColumnRef(c)) => c.fields.last().and_then(ast::string).map(str::to_string),
        _ => None,
    }
}

fn reindex(r: &protobuf::ReindexStmt) -> Option<IndexBuild> {
    use protobuf::ReindexObjectType as K;
    let relation = || r.relation.as_ref().map(ast::rel_key);
    let target = match K::try_from(r.kind).ok()? {
        K::ReindexObjectIndex => ReindexTarget::Index(relation()?),
        K::ReindexObjectTable => ReindexTarget::Table(relation()?),
        K::ReindexObjectSchema => ReindexTarget::Schema(r.name.clone()),
        K::ReindexObjectDatabase | K::ReindexObjectSystem => ReindexTarget::Database,
        K::Undefined => return None,
    };
    Some(IndexBuild::Reindex {
        target,
        concurrently: has_option(&r.params, "concurrently"),
    })
}

/// Whether a list of options (`(CONCURRENTLY)`, `(FULL, ANALYZE)`) turns
/// `name` on: present without a value, or with a true one.
fn has_option(defs: &[Node], name: &str) -> bool {
    defs.iter().any(|d| match &d.node {
        Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case(name) => match d.arg.as_deref().map(|a| &a.node) {
            None => true,
            Some(Some(NodeEnum::Boolean(b))) => b.boolval,
            Some(Some(NodeEnum::Integer(i))) => i.ival != 0,
            Some(Some(NodeEnum::String(s))) => matches!(s.sval.to_ascii_lowercase().as_str(), "on" | "true" | "yes" | "1"),
            Some(_) => true,
        },
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(sql: &str) -> Option<IndexBuild> {
        let stmts = crate::sql::split("V1__t.sql", sql).expect("parses");
        assert_eq!(stmts.len(), 1, "{sql}");
        index_build(stmts[0].node.as_ref().expect("a node"))
    }

    fn create(sql: &str) -> CreateIndex {
        match build(sql) {
            Some(IndexBuild::Create(c)) => c,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn shipped_v4() {
        let v4 = include_str!("../../migrations/V4__st_chat_history_vector_hnsw.sql");
        let v4 = v4.replace("${embedding_type}", "vector");
        let stmts = crate::sql::split("V4", &v4).unwrap();
        let builds: Vec<IndexBuild> = stmts.iter().filter_map(|s| index_build(s.node.as_ref()?)).collect();
        assert_eq!(
            builds,
            vec![IndexBuild::Create(CreateIndex {
                method: Method::Hnsw,
                name: Some("idx_st_chat_history_vector_hnsw".into()),
                table: "st_chat_history_vector_table".into(),
                concurrently: true,
                if_not_exists: true,
                column: Some("chat_vector".into()),
                cast: None,
                opclass: Some("vector_l2_ops".into()),
                options: IndexOptions::default(),
                partial: false,
            })]
        );
        let IndexBuild::Create(c) = &builds[0] else { unreachable!() };
        assert_eq!(
            (c.vector_type(), c.dims(), c.options.m(), c.options.ef_construction),
            (Some(VectorType::Vector), None, 16, None)
        );
    }

    #[test]
    fn options_casts_and_methods() {
        let c =
            create("CREATE INDEX ON app.items USING HNSW ((emb::halfvec(3072)) halfvec_cosine_ops) WITH (m = 24, ef_construction = '200')");
        assert_eq!(c.method, Method::Hnsw);
        assert_eq!((c.name.as_deref(), c.table.as_str()), (None, "app.items"));
        assert_eq!(
            (c.column.as_deref(), c.cast),
            (Some("emb"), Some((VectorType::Halfvec, Some(3072))))
        );
        assert_eq!((c.vector_type(), c.dims()), (Some(VectorType::Halfvec), Some(3072)));
        assert_eq!((c.options.m, c.options.ef_construction), (Some(24), Some(200)));
        assert!(!c.concurrently && !c.partial);

        let c = create("CREATE INDEX i ON t USING ivfflat (e public.vector_ip_ops) WITH (lists = 1000) WHERE e IS NOT NULL");
        assert_eq!((c.method, c.options.lists(), c.options.m()), (Method::Ivfflat, 1000, 16));
        assert_eq!(
            (c.opclass.as_deref(), c.vector_type()),
            (Some("vector_ip_ops"), Some(VectorType::Vector))
        );
        assert!(c.partial);

        // What pgvector refuses is left to the server's message.
        let c = create("CREATE INDEX i ON t USING hnsw (e vector_l2_ops) WITH (m = 1000, ef_construction = 'x', lists = 5)");
        assert_eq!((c.options.m, c.options.ef_construction, c.options.lists), (None, None, Some(5)));
        // No opclass: the column's type says it.
        assert_eq!(create("CREATE INDEX i ON t USING ivfflat (e)").vector_type(), None);
        // Other methods are no vector builds.
        assert_eq!(build("CREATE INDEX i ON t USING gin (doc)"), None);
        assert_eq!(build("CREATE INDEX i ON t (a)"), None);
        assert_eq!(build("SELECT 1"), None);
    }

    #[test]
    fn rebuilds() {
        assert_eq!(
            build("REINDEX INDEX CONCURRENTLY idx_st_chat_history_vector_hnsw"),
            Some(IndexBuild::Reindex {
                target: ReindexTarget::Index("idx_st_chat_history_vector_hnsw".into()),
                concurrently: true
            })
        );
        assert_eq!(
            build("REINDEX (VERBOSE) TABLE app.items"),
            Some(IndexBuild::Reindex {
                target: ReindexTarget::Table("app.items".into()),
                concurrently: false
            })
        );
        assert_eq!(
            build("REINDEX (CONCURRENTLY false) SCHEMA app"),
            Some(IndexBuild::Reindex {
                target: ReindexTarget::Schema("app".into()),
                concurrently: false
            })
        );
        assert_eq!(
            build("REINDEX DATABASE"),
            Some(IndexBuild::Reindex {
                target: ReindexTarget::Database,
                concurrently: false
            })
        );
        assert_eq!(
            build("VACUUM (FULL, ANALYZE) items, app.other"),
            Some(IndexBuild::Rewrite {
                tables: vec!["items".into(), "app.other".into()],
                why: Rewrite::VacuumFull
            })
        );
        assert_eq!(build("VACUUM ANALYZE items"), None);
        assert_eq!(
            build("VACUUM FULL"),
            Some(IndexBuild::Rewrite {
                tables: vec![],
                why: Rewrite::VacuumFull
            })
        );
        assert_eq!(
            build("CLUSTER items USING items_pkey"),
            Some(IndexBuild::Rewrite {
                tables: vec!["items".into()],
                why: Rewrite::Cluster
            })
        );
        assert_eq!(
            build("ALTER TABLE items ALTER COLUMN emb TYPE halfvec(1024)"),
            Some(IndexBuild::Rewrite {
                tables: vec!["items".into()],
                why: Rewrite::AlterColumnType
            })
        );
        assert_eq!(build("ALTER TABLE items ADD COLUMN x int"), None);
    }
}
