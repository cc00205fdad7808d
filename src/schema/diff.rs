//! Compares two schema models: what the migrations make (the *expected*
//! schema, read from a scratch database) and what the database holds (the
//! *live* schema). The result is a list of typed [`Difference`]s in a stable
//! order; its JSON form is documented in docs/adopt.md and pinned by a test.
//!
//! Objects are matched by name. An index or a constraint that the two
//! sides name differently but define alike (same table, same definition)
//! is one `renamed` difference, not a missing and an extra one. Indexes
//! behind constraints are compared as their constraints. The history tables
//! of other migration tools (refinery, sqlx, Flyway, ...) are not reported
//! as extra tables.

use serde::Serialize;

use super::model::*;

/// What differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The migrations make it; the database lacks it.
    Missing,
    /// The database has it; the migrations do not make it.
    Extra,
    /// Both have it, with one attribute different.
    Changed,
    /// Both have it, under different names.
    Renamed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Missing => "missing",
            Change::Extra => "extra",
            Change::Changed => "changed",
            Change::Renamed => "renamed",
        }
    }
}

/// What kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Object {
    Schema,
    Extension,
    Type,
    Sequence,
    Table,
    Column,
    Constraint,
    Index,
    Trigger,
    Distribution,
    View,
    MaterializedView,
    Function,
}

impl Object {
    pub fn as_str(self) -> &'static str {
        match self {
            Object::Schema => "schema",
            Object::Extension => "extension",
            Object::Type => "type",
            Object::Sequence => "sequence",
            Object::Table => "table",
            Object::Column => "column",
            Object::Constraint => "constraint",
            Object::Index => "index",
            Object::Trigger => "trigger",
            Object::Distribution => "distribution",
            Object::View => "view",
            Object::MaterializedView => "materialized view",
            Object::Function => "function",
        }
    }
}

/// One difference between the expected and the live schema. Every field is
/// always present in JSON (`null` when it does not apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub change: Change,
    pub object: Object,
    /// The object's schema (`null` for schemas and extensions).
    pub schema: Option<String>,
    /// The table of a column, constraint, index, trigger or distribution.
    pub table: Option<String>,
    /// The name the migrations give it (for `extra`: the database's).
    pub name: String,
    /// `renamed`: the name in the database.
    pub live_name: Option<String>,
    /// `changed`: which attribute (`type`, `not_null`, `default`,
    /// `definition`, `validated`, `valid`, `version`, ...).
    pub attribute: Option<String>,
    /// The definition or value the migrations give (`null` for `extra`).
    pub expected: Option<String>,
    /// The definition or value in the database (`null` for `missing`).
    pub live: Option<String>,
}

impl Difference {
    fn new(change: Change, object: Object, schema: Option<&str>, table: Option<&str>, name: &str) -> Difference {
        Difference {
            change,
            object,
            schema: schema.map(str::to_string),
            table: table.map(str::to_string),
            name: name.to_string(),
            live_name: None,
            attribute: None,
            expected: None,
            live: None,
        }
    }

    fn values(mut self, expected: Option<String>, live: Option<String>) -> Difference {
        self.expected = expected;
        self.live = live;
        self
    }

    fn attr(mut self, a: &str) -> Difference {
        self.attribute = Some(a.to_string());
        self
    }

    /// `t`, `s.t`: where the object is, for messages.
    pub fn place(&self) -> String {
        let schema = self.schema.as_deref().unwrap_or("public");
        match &self.table {
            Some(t) => display(schema, t),
            None => display(schema, &self.name),
        }
    }
}

/// The history tables of other migration tools: a database they managed
/// has one, and the migrations do not make it. Not reported as extra.
pub const OTHER_TOOLS: &[&str] = &[
    "refinery_schema_history",
    "_sqlx_migrations",
    "flyway_schema_history",
    "schema_migrations",
    "__diesel_schema_migrations",
    "goose_db_version",
    "alembic_version",
    "knex_migrations",
    "knex_migrations_lock",
    "pgmigrations",
    "atlas_schema_revisions",
];

/// Every difference between `expected` and `live`, in a stable order
/// (by object kind, place, name).
pub fn compare(expected: &Model, live: &Model) -> Vec<Difference> {
    let mut out = Vec::new();
    let e_schemas: Vec<&String> = expected.schemas.iter().collect();
    for s in &e_schemas {
        if !live.schemas.contains(*s) {
            out.push(Difference::new(Change::Missing, Object::Schema, None, None, s));
        }
    }
    for s in &live.schemas {
        if !expected.schemas.contains(s) {
            out.push(Difference::new(Change::Extra, Object::Schema, None, None, s));
        }
    }
    for (name, e) in &expected.extensions {
        match live.extensions.get(name) {
            None => out.push(
                Difference::new(Change::Missing, Object::Extension, None, None, name)
                    .values(Some(format!("{name} {} in schema {}", e.version, e.schema)), None),
            ),
            Some(l) => {
                if l.version != e.version {
                    out.push(
                        Difference::new(Change::Changed, Object::Extension, None, None, name)
                            .attr("version")
                            .values(Some(e.version.clone()), Some(l.version.clone())),
                    );
                }
                if l.schema != e.schema {
                    out.push(
                        Difference::new(Change::Changed, Object::Extension, None, None, name)
                            .attr("schema")
                            .values(Some(e.schema.clone()), Some(l.schema.clone())),
                    );
                }
            }
        }
    }
    for (name, l) in &live.extensions {
        if !expected.extensions.contains_key(name) {
            out.push(
                Difference::new(Change::Extra, Object::Extension, None, None, name)
                    .values(None, Some(format!("{name} {} in schema {}", l.version, l.schema))),
            );
        }
    }
    keyed(
        &mut out,
        Object::Type,
        &expected.types,
        &live.types,
        |k, _| split(k),
        type_text,
        |e, l| (e != l).then(|| ("definition".to_string(), type_text(e), type_text(l))),
    );
    keyed(
        &mut out,
        Object::Sequence,
        &expected.sequences,
        &live.sequences,
        |_, s| (s.schema.clone(), s.name.clone()),
        sequence_text,
        |e, l| (sequence_text(e) != sequence_text(l)).then(|| ("definition".to_string(), sequence_text(e), sequence_text(l))),
    );
    for (key, e) in &expected.tables {
        match live.tables.get(key) {
            None => {
                out.push(Difference::new(Change::Missing, Object::Table, Some(&e.schema), None, &e.name).values(Some(table_text(e)), None))
            }
            Some(l) => table(&mut out, e, l),
        }
    }
    for (key, l) in &live.tables {
        if !expected.tables.contains_key(key) && !OTHER_TOOLS.contains(&l.name.as_str()) {
            out.push(Difference::new(Change::Extra, Object::Table, Some(&l.schema), None, &l.name).values(None, Some(table_text(l))));
        }
    }
    let view_object = |v: &View| if v.materialized { Object::MaterializedView } else { Object::View };
    for (key, e) in &expected.views {
        match live.views.get(key) {
            None => out.push(
                Difference::new(Change::Missing, view_object(e), Some(&e.schema), None, &e.name).values(Some(e.definition.clone()), None),
            ),
            Some(l) if l.definition != e.definition || l.materialized != e.materialized => out.push(
                Difference::new(Change::Changed, view_object(e), Some(&e.schema), None, &e.name)
                    .attr("definition")
                    .values(Some(e.definition.clone()), Some(l.definition.clone())),
            ),
            Some(_) => {}
        }
    }
    for (key, l) in &live.views {
        if !expected.views.contains_key(key) {
            out.push(
                Difference::new(Change::Extra, view_object(l), Some(&l.schema), None, &l.name).values(None, Some(l.definition.clone())),
            );
        }
    }
    for (key, e) in &expected.functions {
        let name = format!("{}({})", e.name, e.args);
        match live.functions.get(key) {
            None => out.push(
                Difference::new(Change::Missing, Object::Function, Some(&e.schema), None, &name).values(Some(function_text(e)), None),
            ),
            Some(l) if l.hash != e.hash => out.push(
                Difference::new(Change::Changed, Object::Function, Some(&e.schema), None, &name)
                    .attr("definition")
                    .values(Some(function_text(e)), Some(function_text(l))),
            ),
            Some(_) => {}
        }
    }
    for (key, l) in &live.functions {
        if !expected.functions.contains_key(key) {
            let name = format!("{}({})", l.name, l.args);
            out.push(Difference::new(Change::Extra, Object::Function, Some(&l.schema), None, &name).values(None, Some(function_text(l))));
        }
    }
    out.sort_by(|a, b| (a.object, a.place(), &a.name, a.change, &a.attribute).cmp(&(b.object, b.place(), &b.name, b.change, &b.attribute)));
    out
}

fn split(key: &str) -> (String, String) {
    match key.split_once('.') {
        Some((s, n)) => (s.to_string(), n.to_string()),
        None => ("public".into(), key.to_string()),
    }
}

/// Missing, extra and changed objects of one map.
#[allow(clippy::too_many_arguments)]
fn keyed<T>(
    out: &mut Vec<Difference>,
    object: Object,
    expected: &std::collections::BTreeMap<String, T>,
    live: &std::collections::BTreeMap<String, T>,
    place: impl Fn(&str, &T) -> (String, String),
    text: impl Fn(&T) -> String,
    changed: impl Fn(&T, &T) -> Option<(String, String, String)>,
) {
    for (k, e) in expected {
        let (schema, name) = place(k, e);
        match live.get(k) {
            None => out.push(Difference::new(Change::Missing, object, Some(&schema), None, &name).values(Some(text(e)), None)),
            Some(l) => {
                if let Some((attr, ev, lv)) = changed(e, l) {
                    out.push(
                        Difference::new(Change::Changed, object, Some(&schema), None, &name)
                            .attr(&attr)
                            .values(Some(ev), Some(lv)),
                    );
                }
            }
        }
    }
    for (k, l) in live {
        if !expected.contains_key(k) {
            let (schema, name) = place(k, l);
            out.push(Difference::new(Change::Extra, object, Some(&schema), None, &name).values(None, Some(text(l))));
        }
    }
}

fn table(out: &mut Vec<Difference>, e: &Table, l: &Table) {
    let (schema, t) = (Some(e.schema.as_str()), e.name.as_str());
    let mut attr = |name: &str, ev: String, lv: String| {
        if ev != lv {
            out.push(
                Difference::new(Change::Changed, Object::Table, schema, None, t)
                    .attr(name)
                    .values(Some(ev), Some(lv)),
            );
        }
    };
    attr("kind", e.kind.clone(), l.kind.clone());
    attr("unlogged", e.unlogged.to_string(), l.unlogged.to_string());
    attr("partition_of", opt(&e.partition_of), opt(&l.partition_of));
    attr("partition_key", opt(&e.partition_key), opt(&l.partition_key));

    // Columns.
    for ec in &e.columns {
        let Some(lc) = l.column(&ec.name) else {
            out.push(Difference::new(Change::Missing, Object::Column, schema, Some(t), &ec.name).values(Some(ec.sql()), None));
            continue;
        };
        let mut col = |name: &str, ev: String, lv: String| {
            if ev != lv {
                out.push(
                    Difference::new(Change::Changed, Object::Column, schema, Some(t), &ec.name)
                        .attr(name)
                        .values(Some(ev), Some(lv)),
                );
            }
        };
        col("type", ec.data_type.clone(), lc.data_type.clone());
        col("not_null", ec.not_null.to_string(), lc.not_null.to_string());
        col("default", opt(&ec.default), opt(&lc.default));
        col("generated", generated(ec), generated(lc));
        col("identity", identity(&ec.identity), identity(&lc.identity));
        col("collation", opt(&ec.collation), opt(&lc.collation));
    }
    for lc in &l.columns {
        if e.column(&lc.name).is_none() {
            out.push(Difference::new(Change::Extra, Object::Column, schema, Some(t), &lc.name).values(None, Some(lc.sql())));
        }
    }

    // Constraints, with renames: same kind and definition under another name.
    let mut extra: Vec<&Constraint> = l.constraints.values().filter(|c| !e.constraints.contains_key(&c.name)).collect();
    for ec in e.constraints.values() {
        match l.constraints.get(&ec.name) {
            Some(lc) => {
                if lc.kind != ec.kind || lc.definition != ec.definition {
                    out.push(
                        Difference::new(Change::Changed, Object::Constraint, schema, Some(t), &ec.name)
                            .attr("definition")
                            .values(Some(ec.definition.clone()), Some(lc.definition.clone())),
                    );
                } else if lc.validated != ec.validated {
                    out.push(
                        Difference::new(Change::Changed, Object::Constraint, schema, Some(t), &ec.name)
                            .attr("validated")
                            .values(Some(ec.validated.to_string()), Some(lc.validated.to_string())),
                    );
                }
            }
            None => match extra.iter().position(|lc| lc.kind == ec.kind && lc.definition == ec.definition) {
                Some(i) => {
                    let lc = extra.remove(i);
                    let mut d = Difference::new(Change::Renamed, Object::Constraint, schema, Some(t), &ec.name)
                        .values(Some(ec.definition.clone()), Some(lc.definition.clone()));
                    d.live_name = Some(lc.name.clone());
                    out.push(d);
                }
                None => out.push(
                    Difference::new(Change::Missing, Object::Constraint, schema, Some(t), &ec.name)
                        .values(Some(ec.definition.clone()), None),
                ),
            },
        }
    }
    for lc in extra {
        out.push(Difference::new(Change::Extra, Object::Constraint, schema, Some(t), &lc.name).values(None, Some(lc.definition.clone())));
    }

    // Indexes (not those behind constraints), with renames by shape.
    let plain = |x: &Index| x.constraint.is_none();
    let mut extra: Vec<&Index> = l
        .indexes
        .values()
        .filter(|x| plain(x) && !e.indexes.get(&x.name).is_some_and(plain))
        .collect();
    for ei in e.indexes.values().filter(|x| plain(x)) {
        match l.indexes.get(&ei.name).filter(|x| plain(x)) {
            Some(li) => {
                if li.shape != ei.shape || li.unique != ei.unique {
                    out.push(
                        Difference::new(Change::Changed, Object::Index, schema, Some(t), &ei.name)
                            .attr("definition")
                            .values(Some(ei.definition.clone()), Some(li.definition.clone())),
                    );
                } else if !li.valid {
                    out.push(
                        Difference::new(Change::Changed, Object::Index, schema, Some(t), &ei.name)
                            .attr("valid")
                            .values(Some("true".into()), Some("false".into())),
                    );
                }
            }
            None => match extra.iter().position(|li| li.shape == ei.shape && li.unique == ei.unique) {
                Some(i) => {
                    let li = extra.remove(i);
                    let mut d = Difference::new(Change::Renamed, Object::Index, schema, Some(t), &ei.name)
                        .values(Some(ei.definition.clone()), Some(li.definition.clone()));
                    d.live_name = Some(li.name.clone());
                    out.push(d);
                }
                None => out.push(
                    Difference::new(Change::Missing, Object::Index, schema, Some(t), &ei.name).values(Some(ei.definition.clone()), None),
                ),
            },
        }
    }
    for li in extra {
        out.push(Difference::new(Change::Extra, Object::Index, schema, Some(t), &li.name).values(None, Some(li.definition.clone())));
    }

    // Triggers.
    for et in e.triggers.values() {
        match l.triggers.get(&et.name) {
            None => out.push(
                Difference::new(Change::Missing, Object::Trigger, schema, Some(t), &et.name).values(Some(et.definition.clone()), None),
            ),
            Some(lt) if lt.definition != et.definition => out.push(
                Difference::new(Change::Changed, Object::Trigger, schema, Some(t), &et.name)
                    .attr("definition")
                    .values(Some(et.definition.clone()), Some(lt.definition.clone())),
            ),
            Some(_) => {}
        }
    }
    for lt in l.triggers.values() {
        if !e.triggers.contains_key(&lt.name) {
            out.push(Difference::new(Change::Extra, Object::Trigger, schema, Some(t), &lt.name).values(None, Some(lt.definition.clone())));
        }
    }

    // Citus distribution.
    if e.distribution != l.distribution {
        let show = |d: &Option<Distribution>| d.as_ref().map(|d| d.to_string()).unwrap_or_else(|| "not distributed".into());
        out.push(
            Difference::new(Change::Changed, Object::Distribution, schema, Some(t), t)
                .attr("distribution")
                .values(Some(show(&e.distribution)), Some(show(&l.distribution))),
        );
    }
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "none".into())
}

/// `GENERATED ALWAYS AS (length(body)) STORED`, or `none`.
fn generated(c: &Column) -> String {
    match &c.generated {
        Some(g) => {
            let how = if c.generated_kind.as_deref() == Some("v") {
                "VIRTUAL"
            } else {
                "STORED"
            };
            format!("GENERATED ALWAYS AS ({g}) {how}")
        }
        None => "none".into(),
    }
}

fn identity(v: &Option<String>) -> String {
    match v.as_deref() {
        Some("a") => "GENERATED ALWAYS AS IDENTITY".into(),
        Some("d") => "GENERATED BY DEFAULT AS IDENTITY".into(),
        _ => "none".into(),
    }
}

/// `(primarykey bigint NOT NULL DEFAULT ..., userid text NOT NULL, ...)`
/// with its constraints: a table's definition in one line.
pub fn table_text(t: &Table) -> String {
    let mut parts: Vec<String> = t.columns.iter().map(Column::sql).collect();
    parts.extend(t.constraints.values().map(|c| c.definition.clone()));
    format!("({})", parts.join(", "))
}

pub fn sequence_text(s: &Sequence) -> String {
    let mut out = format!(
        "AS {} START {} INCREMENT {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        s.data_type,
        s.start,
        s.increment,
        s.min,
        s.max,
        s.cache,
        if s.cycle { " CYCLE" } else { "" }
    );
    if let Some(o) = &s.owned_by {
        out.push_str(&format!(" OWNED BY {o}"));
    }
    out
}

pub fn type_text(t: &TypeDef) -> String {
    match t {
        TypeDef::Enum { labels } => format!(
            "ENUM ({})",
            labels
                .iter()
                .map(|l| format!("'{}'", l.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDef::Composite { attributes } => format!(
            "({})",
            attributes
                .iter()
                .map(|(n, ty)| format!("{} {ty}", crate::lint::ast::ident(n)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDef::Domain {
            base,
            not_null,
            default,
            checks,
        } => {
            let mut s = format!("DOMAIN AS {base}");
            if let Some(d) = default {
                s.push_str(&format!(" DEFAULT {d}"));
            }
            if *not_null {
                s.push_str(" NOT NULL");
            }
            for c in checks {
                s.push(' ');
                s.push_str(c);
            }
            s
        }
        TypeDef::Range { subtype } => format!("RANGE (SUBTYPE = {subtype})"),
    }
}

fn function_text(f: &Function) -> String {
    match &f.returns {
        Some(r) if !r.is_empty() => format!("{} returning {r} (sha256 {})", f.kind, &f.hash[..f.hash.len().min(12)]),
        _ => format!("{} (sha256 {})", f.kind, &f.hash[..f.hash.len().min(12)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            kind: "table".into(),
            ..Table::default()
        }
    }

    fn index(name: &str, shape: &str) -> Index {
        Index {
            name: name.into(),
            method: "hnsw".into(),
            unique: false,
            valid: true,
            definition: format!("CREATE INDEX {name} ON {shape}"),
            shape: shape.into(),
            constraint: None,
        }
    }

    fn constraint(name: &str, kind: ConstraintKind, def: &str) -> Constraint {
        Constraint {
            name: name.into(),
            kind,
            definition: def.into(),
            validated: true,
            columns: Vec::new(),
            references: None,
        }
    }

    /// The seed's hand-made tables against the shipped ones.
    fn seed() -> (Model, Model) {
        let shape = "public.v USING hnsw (chat_vector vector_l2_ops)";
        let mut e = table("v");
        e.constraints.insert(
            "v_pkey".into(),
            constraint("v_pkey", ConstraintKind::PrimaryKey, "PRIMARY KEY (userid, primarykey)"),
        );
        e.indexes.insert("idx_v_hnsw".into(), index("idx_v_hnsw", shape));
        let mut l = table("v");
        l.constraints.insert(
            "v_pkey".into(),
            constraint("v_pkey", ConstraintKind::PrimaryKey, "PRIMARY KEY (primarykey)"),
        );
        l.constraints.insert(
            "v_userid_key".into(),
            constraint("v_userid_key", ConstraintKind::Unique, "UNIQUE (userid)"),
        );
        l.indexes.insert("v_chat_vector_idx".into(), index("v_chat_vector_idx", shape));
        let mut expected = Model::default();
        expected.tables.insert("public.v".into(), e);
        let mut live = Model::default();
        live.tables.insert("public.v".into(), l);
        live.tables
            .insert("public.refinery_schema_history".into(), table("refinery_schema_history"));
        (expected, live)
    }

    #[test]
    fn seed_differences() {
        let (expected, live) = seed();
        let d = compare(&expected, &live);
        let short: Vec<(Change, Object, &str, Option<&str>)> = d
            .iter()
            .map(|d| (d.change, d.object, d.name.as_str(), d.live_name.as_deref()))
            .collect();
        assert_eq!(
            short,
            vec![
                (Change::Changed, Object::Constraint, "v_pkey", None),
                (Change::Extra, Object::Constraint, "v_userid_key", None),
                (Change::Renamed, Object::Index, "idx_v_hnsw", Some("v_chat_vector_idx")),
            ]
        );
        assert!(compare(&expected, &expected).is_empty());
    }

    /// The JSON form is part of the interface (docs/adopt.md): this pins it.
    #[test]
    fn json_format_is_stable() {
        let (expected, live) = seed();
        let d = compare(&expected, &live);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"[{"change":"changed","object":"constraint","schema":"public","table":"v","name":"v_pkey","live_name":null,"attribute":"definition","expected":"PRIMARY KEY (userid, primarykey)","live":"PRIMARY KEY (primarykey)"},{"change":"extra","object":"constraint","schema":"public","table":"v","name":"v_userid_key","live_name":null,"attribute":null,"expected":null,"live":"UNIQUE (userid)"},{"change":"renamed","object":"index","schema":"public","table":"v","name":"idx_v_hnsw","live_name":"v_chat_vector_idx","attribute":null,"expected":"CREATE INDEX idx_v_hnsw ON public.v USING hnsw (chat_vector vector_l2_ops)","live":"CREATE INDEX v_chat_vector_idx ON public.v USING hnsw (chat_vector vector_l2_ops)"}]"#
        );
    }
}
