//! The readable form of a schema diff, one line per difference:
//!
//! ```text
//! changed  constraint st_chat_history_table_pkey on st_chat_history_table: PRIMARY KEY (primarykey) in the database, PRIMARY KEY (userid, primarykey) in the migrations
//! extra    constraint st_chat_history_table_userid_key on st_chat_history_table: UNIQUE (userid)
//! renamed  index st_chat_history_vector_table_chat_vector_idx on st_chat_history_vector_table: the migrations name it idx_st_chat_history_vector_hnsw
//! ```
//!
//! (The JSON form is the [`Difference`] list itself, see docs/adopt.md.)

use super::diff::{Change, Difference, Object};

/// One difference as a line (a multi-line definition, a view's query,
/// joined into one: the line also heads a block of an adopt fix as a
/// comment).
pub fn line(d: &Difference) -> String {
    one_line(&raw_line(d))
}

fn raw_line(d: &Difference) -> String {
    let on = match (&d.table, d.object) {
        (Some(_), Object::Distribution) => String::new(),
        (Some(_), _) => format!(" on {}", d.place()),
        (None, _) => String::new(),
    };
    let name = match (d.object, &d.schema) {
        (Object::Schema | Object::Extension, _) => d.name.clone(),
        (_, _) if d.table.is_some() => d.name.clone(),
        (_, _) => d.place(),
    };
    let what = format!("{:<8} {} {name}{on}", d.change.as_str(), d.object.as_str());
    let e = d.expected.as_deref().unwrap_or("").trim();
    let l = d.live.as_deref().unwrap_or("").trim();
    match d.change {
        Change::Missing if e.is_empty() => what,
        Change::Missing => format!("{what}: {e}"),
        Change::Extra if l.is_empty() => format!("{what} (the migrations do not make it)"),
        Change::Extra => format!("{what}: {l} (the migrations do not make it)"),
        Change::Renamed => format!(
            "{:<8} {} {}{on}: the migrations name it {} ({})",
            "renamed",
            d.object.as_str(),
            d.live_name.as_deref().unwrap_or("?"),
            d.name,
            shape(e)
        ),
        Change::Changed => {
            let attr = d.attribute.as_deref().unwrap_or("definition");
            match attr {
                "definition" | "distribution" => format!("{what}: {l} in the database, {e} in the migrations"),
                "not_null" => format!("{what}: {} in the database, {} in the migrations", nullability(l), nullability(e)),
                "valid" => format!("{what}: INVALID in the database (left by a failed CONCURRENTLY build)"),
                "validated" => format!("{what}: NOT VALID in the database, validated in the migrations"),
                "default" => format!("{what}: {} in the database, {} in the migrations", default(l), default(e)),
                "generated" | "identity" => {
                    let v = |v: &str| if v == "none" { format!("not {attr}") } else { v.to_string() };
                    format!("{what}: {} in the database, {} in the migrations", v(l), v(e))
                }
                _ => format!("{what}: {attr} {l} in the database, {e} in the migrations"),
            }
        }
    }
}

/// `default now()`, or `no default`.
fn default(v: &str) -> String {
    if v == "none" {
        "no default".into()
    } else {
        format!("default {v}")
    }
}

/// Each line break, and the indentation after it, as one space.
fn one_line(s: &str) -> String {
    let mut lines = s.lines();
    let mut out = lines.next().unwrap_or("").to_string();
    for l in lines {
        let l = l.trim_start();
        if !l.is_empty() {
            out.push(' ');
            out.push_str(l);
        }
    }
    out
}

fn nullability(v: &str) -> &'static str {
    if v == "true" {
        "NOT NULL"
    } else {
        "nullable"
    }
}

/// The part of a `CREATE INDEX` after `ON`, for a rename's line.
fn shape(def: &str) -> &str {
    def.split_once(" ON ").map(|(_, s)| s).unwrap_or(def)
}

/// Every difference, one line each.
pub fn text(diffs: &[Difference]) -> String {
    diffs.iter().map(|d| format!("{}\n", line(d))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let d = Difference {
            change: Change::Renamed,
            object: Object::Index,
            schema: Some("public".into()),
            table: Some("v".into()),
            name: "idx_v_hnsw".into(),
            live_name: Some("v_chat_vector_idx".into()),
            attribute: None,
            expected: Some("CREATE INDEX idx_v_hnsw ON public.v USING hnsw (chat_vector vector_l2_ops)".into()),
            live: None,
        };
        assert_eq!(
            line(&d),
            "renamed  index v_chat_vector_idx on v: the migrations name it idx_v_hnsw (public.v USING hnsw (chat_vector vector_l2_ops))"
        );
        let d = Difference {
            change: Change::Changed,
            object: Object::Column,
            schema: Some("app".into()),
            table: Some("t".into()),
            name: "c".into(),
            live_name: None,
            attribute: Some("default".into()),
            expected: Some("0".into()),
            live: Some("none".into()),
        };
        assert_eq!(
            line(&d),
            "changed  column c on app.t: no default in the database, default 0 in the migrations"
        );
        // A view's query, on one line.
        let d = Difference {
            change: Change::Missing,
            object: Object::View,
            schema: Some("public".into()),
            table: None,
            name: "v".into(),
            live_name: None,
            attribute: None,
            expected: Some(" SELECT a,\n    b\n   FROM t;".into()),
            live: None,
        };
        assert_eq!(line(&d), "missing  view v: SELECT a, b FROM t;");
    }
}
