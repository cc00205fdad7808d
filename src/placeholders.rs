//! Placeholders: `${name}` in a migration's text, replaced by a value before
//! the file is split, linted or run (Flyway's placeholders, Atlas's
//! variables). One migration set then serves several environments, and the
//! shipped chat schema takes the embedding dimension of the user's model.
//!
//! Where values come from, later ones winning: the defaults
//! (`embedding_dimensions` = 1024 and `embedding_type` chosen by it), the
//! config file's `[placeholders]`, the environment's
//! `[environments.<name>.placeholders]`, `--placeholder name=value` (or the
//! library's `Migrator::placeholder`). The built-ins `${database}`,
//! `${user}`, `${history_table}` and `${backend}` come from the target and
//! cannot be set.
//!
//! What is substituted where (docs/migrations.md): every `${name}` in SQL
//! code, string literals and quoted identifiers; nothing in comments; nothing
//! in dollar-quoted bodies (`$$ ... $$`, `$fn$ ... $fn$`: PL/pgSQL's `$1`
//! and a function's own `${...}` stay as written) unless the file says
//! `-- chatmigrate:placeholders-in-dollar-quotes`. `$${name}` writes a
//! literal `${name}`. An unknown name, or a `${` that starts no
//! `${name}`, is an error at `file:line:col` when the files are loaded,
//! before anything connects. The checksum is the text's before substitution,
//! so a changed value is not drift. Which bytes are comments and
//! dollar-quoted bodies is the PostgreSQL lexer's answer (`sql::unscanned`).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::migration::{self, ExtraSet, Migration, Source};
use crate::settings::{BackendKind, Config};

/// The names chatmigrate gives a value itself, from the target.
pub const BUILT_IN: [&str; 4] = ["backend", "database", "history_table", "user"];

/// The embedding dimension of the chat schema's `chat_vector` column.
pub const DIMENSIONS: &str = "embedding_dimensions";
/// Its element type: `vector` or `halfvec`.
pub const ELEMENT_TYPE: &str = "embedding_type";
/// Bedrock Cohere multilingual v3's dimension, the schema's from the start.
pub const DEFAULT_DIMENSIONS: u32 = 1024;
/// pgvector's HNSW limit for `vector` (and so the largest dimension that
/// gets `vector` when `embedding_type` is not given).
pub const HNSW_VECTOR_MAX: u32 = 2000;
/// pgvector's HNSW limit for `halfvec`.
pub const HNSW_HALFVEC_MAX: u32 = 4000;

/// A value of `[placeholders]` as written in TOML: text, a whole number or
/// a boolean (`embedding_dimensions = 1536`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum FileValue {
    Text(String),
    Integer(i64),
    Bool(bool),
}

impl std::fmt::Display for FileValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileValue::Text(s) => f.write_str(s),
            FileValue::Integer(i) => write!(f, "{i}"),
            FileValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

pub use crate::settings::Given;

/// One placeholder as `status -v` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shown {
    pub name: String,
    /// `None` when it has no value on this target (`user` on rds-data).
    pub value: Option<String>,
    /// `built-in`, `default`, `[environments.dev.placeholders]`, `--placeholder`, ...
    pub from: String,
}

#[derive(Debug, Clone)]
enum Resolved {
    Value {
        value: String,
        from: String,
    },
    /// Known, but without a value on this target: why.
    Unavailable {
        why: String,
    },
}

/// Every placeholder's value for one configuration, checked.
#[derive(Debug, Clone)]
pub struct Values {
    map: BTreeMap<String, Resolved>,
}

/// Whether `name` can be a placeholder's name: a letter or `_`, then
/// letters, digits and `_`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name=value` of `--placeholder`.
pub fn parse_flag(arg: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((name, value)) if valid_name(name) => Ok((name.to_string(), value.to_string())),
        _ => Err(Error::Usage {
            message: format!("--placeholder `{arg}` is not name=value (a name is letters, digits and underscores)"),
            hint: "e.g. --placeholder embedding_dimensions=1536".into(),
        }),
    }
}

impl Values {
    /// The values of `cfg`: built-ins, defaults, then what the config file,
    /// flags or the library gave. Refuses a bad name, a built-in's name, a
    /// value with a line break, and an embedding dimension the chat
    /// schema's HNSW index cannot have.
    pub fn of(cfg: &Config) -> Result<Values> {
        let mut map = BTreeMap::new();
        let built = |v: String| Resolved::Value {
            value: v,
            from: "built-in".into(),
        };
        map.insert("backend".into(), built(cfg.backend.as_str().into()));
        map.insert("database".into(), built(cfg.pg.dbname.clone()));
        map.insert("history_table".into(), built(history_table(cfg)));
        map.insert(
            "user".into(),
            match cfg.backend {
                BackendKind::RdsData => Resolved::Unavailable {
                    why: "the rds-data backend logs in with secret_arn's secret, which chatmigrate does not read before it connects".into(),
                },
                _ => built(cfg.pg.user.clone()),
            },
        );
        for (name, given) in &cfg.placeholders {
            let bad = |message: String| Error::Placeholder {
                at: format!("{} {name}", given.from),
                message,
                hint: "see docs/migrations.md#placeholders".into(),
                location: None,
            };
            if !valid_name(name) {
                return Err(bad(
                    "a placeholder's name is letters, digits and underscores, not starting with a digit".into(),
                ));
            }
            if BUILT_IN.contains(&name.as_str()) {
                return Err(bad(format!(
                    "`{name}` is built in (its value comes from the target): choose another name"
                )));
            }
            if given.value.contains(['\n', '\r']) {
                return Err(bad("a placeholder's value is one line".into()));
            }
            map.insert(
                name.clone(),
                Resolved::Value {
                    value: given.value.clone(),
                    from: given.from.clone(),
                },
            );
        }
        let (dims, element) = embedding(cfg)?;
        map.entry(DIMENSIONS.into()).or_insert(Resolved::Value {
            value: dims.to_string(),
            from: "default".into(),
        });
        map.entry(ELEMENT_TYPE.into()).or_insert(Resolved::Value {
            value: element.into(),
            from: format!(
                "default ({})",
                if dims <= HNSW_VECTOR_MAX {
                    "dimensions up to 2000"
                } else {
                    "dimensions above 2000"
                }
            ),
        });
        Ok(Values { map })
    }

    /// Every value, sorted by name (`status -v`).
    pub fn shown(&self) -> Vec<Shown> {
        self.map
            .iter()
            .map(|(name, r)| match r {
                Resolved::Value { value, from } => Shown {
                    name: name.clone(),
                    value: Some(value.clone()),
                    from: from.clone(),
                },
                Resolved::Unavailable { .. } => Shown {
                    name: name.clone(),
                    value: None,
                    from: "built-in".into(),
                },
            })
            .collect()
    }

    /// Replaces the placeholders of `m`'s text (see the module docs). The
    /// checksum stays the file's.
    pub fn substitute(&self, m: &mut Migration) -> Result<()> {
        if !m.sql.contains("${") {
            return Ok(());
        }
        let text = &m.sql;
        let found = find(text);
        // The lexer reads the text with every placeholder blanked out, so
        // that `$${` is not taken for a dollar quote, nor `1${n}` for a
        // number with junk after it.
        let mut masked = text.clone().into_bytes();
        for f in &found {
            masked[f.start..f.end].fill(b' ');
        }
        let masked = String::from_utf8(masked).unwrap_or_default();
        let Some(lexed) = crate::sql::unscanned(&masked) else {
            // Not SQL the lexer can read: the split names the error.
            return Ok(());
        };
        let inside = |ranges: &[(usize, usize)], at: usize| ranges.iter().any(|&(s, e)| s <= at && at < e);
        let bodies = m.directives.placeholders_in_dollar_quotes;
        let mut out = String::with_capacity(text.len());
        let mut from = 0;
        for f in &found {
            if inside(&lexed.comments, f.start) || (!bodies && inside(&lexed.dollar_quoted, f.start)) {
                continue;
            }
            out.push_str(&text[from..f.start]);
            from = f.end;
            let at = || crate::sql::location(&m.path, text, f.start);
            match (&f.name, f.escaped) {
                // `$${name}` and a lone `$${`: the same text minus one `$`.
                (_, true) => out.push_str(&text[f.start + 1..f.end]),
                (None, false) => {
                    let shown: String = text[f.start..].chars().take(24).take_while(|c| *c != '\n').collect();
                    return Err(Error::Placeholder {
                        at: at().to_string(),
                        message: format!("`${{` starts a placeholder, but `{shown}` is not one (${{name}}: letters, digits and underscores)"),
                        hint: "write $${ for a literal ${".into(),
                        location: Some(at()),
                    });
                }
                (Some(name), false) => match self.map.get(name) {
                    Some(Resolved::Value { value, .. }) => out.push_str(value),
                    Some(Resolved::Unavailable { why }) => {
                        return Err(Error::Placeholder {
                            at: at().to_string(),
                            message: format!("placeholder `${{{name}}}` has no value here: {why}"),
                            hint: "write the value in the file, or use a placeholder of your own ([environments.<name>.placeholders] or --placeholder name=value)".into(),
                            location: Some(at()),
                        })
                    }
                    None => {
                        let known: Vec<&str> = self.map.keys().map(String::as_str).collect();
                        return Err(Error::Placeholder {
                            at: at().to_string(),
                            message: format!("unknown placeholder `${{{name}}}`"),
                            hint: format!(
                                "give it a value in [environments.<name>.placeholders] or with --placeholder {name}=<value> (known: {}); write $${{{name}}} for a literal ${{{name}}}",
                                known.join(", ")
                            ),
                            location: Some(at()),
                        });
                    }
                },
            }
        }
        out.push_str(&text[from..]);
        m.sql = out;
        Ok(())
    }
}

/// The history table as SQL names it: `"chatmigrate_history"`, or
/// `"ops"."chatmigrate_history"` with `history_schema`.
fn history_table(cfg: &Config) -> String {
    let q = crate::dialect::quote;
    match &cfg.history.schema {
        Some(s) => format!("{}.{}", q(s), q(&cfg.history.table)),
        None => q(&cfg.history.table),
    }
}

/// The chat schema's embedding dimension and element type, checked against
/// pgvector's HNSW limits (its index is built on the column).
fn embedding(cfg: &Config) -> Result<(u32, &'static str)> {
    let given = |name: &str| cfg.placeholders.get(name);
    let bad = |name: &str, g: &Given, message: String| {
        Error::Placeholder {
        at: format!("{} {name}", g.from),
        message,
        hint: "pgvector's HNSW index takes vector up to 2000 dimensions and halfvec up to 4000; for a larger model, ask it for shortened embeddings (OpenAI's `dimensions`, Matryoshka models) (docs/schema.md)".into(),
        location: None,
    }
    };
    let dims = match given(DIMENSIONS) {
        None => DEFAULT_DIMENSIONS,
        Some(g) => match g.value.trim().parse::<u32>() {
            Ok(n) if (1..=HNSW_HALFVEC_MAX).contains(&n) => n,
            Ok(n) if n > HNSW_HALFVEC_MAX => {
                return Err(bad(
                    DIMENSIONS,
                    g,
                    format!("{n} dimensions are above HNSW's limit of {HNSW_HALFVEC_MAX} (for halfvec; {HNSW_VECTOR_MAX} for vector)"),
                ))
            }
            _ => {
                return Err(bad(
                    DIMENSIONS,
                    g,
                    format!("`{}` is not a dimension (1 to {HNSW_HALFVEC_MAX})", g.value),
                ))
            }
        },
    };
    let element = match given(ELEMENT_TYPE) {
        None if dims <= HNSW_VECTOR_MAX => "vector",
        None => "halfvec",
        Some(g) => match g.value.trim() {
            "vector" if dims > HNSW_VECTOR_MAX => {
                return Err(bad(
                    ELEMENT_TYPE,
                    g,
                    format!("{dims} dimensions are above HNSW's limit of {HNSW_VECTOR_MAX} for vector: use halfvec (up to {HNSW_HALFVEC_MAX}), or leave embedding_type out"),
                ))
            }
            "vector" => "vector",
            "halfvec" => "halfvec",
            other => return Err(bad(ELEMENT_TYPE, g, format!("`{other}` is not vector or halfvec"))),
        },
    };
    Ok((dims, element))
}

/// One `${...}` in a text: its byte span (from the extra `$` of `$${`).
struct Found {
    start: usize,
    end: usize,
    /// The name, when `${` starts a well-formed `${name}`.
    name: Option<String>,
    /// `$${...}`: a literal.
    escaped: bool,
}

fn find(text: &str) -> Vec<Found> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = text[i..].find("${").map(|p| p + i) {
        // A `$` that the previous match did not take makes `$${`.
        let escaped = p > i && bytes[p - 1] == b'$';
        let start = if escaped { p - 1 } else { p };
        let name_start = p + 2;
        let name_len = text[name_start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let name = &text[name_start..name_start + name_len];
        let closed = bytes.get(name_start + name_len) == Some(&b'}');
        let (end, name) = if closed && valid_name(name) {
            (name_start + name_len + 1, Some(name.to_string()))
        } else {
            (name_start, None)
        };
        out.push(Found { start, end, name, escaped });
        i = end;
    }
    out
}

/// Loads `cfg`'s migrations with its placeholders substituted.
pub fn load(cfg: &Config) -> Result<Vec<Migration>> {
    let values = Values::of(cfg)?;
    load_with(&cfg.source, crate::backend::extra_migrations(cfg.backend), &values)
}

/// [`load`] for a source, a backend's extra sets and values given apart (a
/// loader thread).
pub fn load_with(source: &Source, extra: &[ExtraSet], values: &Values) -> Result<Vec<Migration>> {
    let mut set = migration::load(source, extra)?;
    crate::undo::check(source, extra, &set)?;
    for m in &mut set {
        values.substitute(m)?;
    }
    Ok(set)
}

/// [`load`] on a thread of its own, started now: the files are read while
/// the caller connects.
pub fn spawn_load(cfg: &Config) -> std::thread::JoinHandle<Result<Vec<Migration>>> {
    let values = Values::of(cfg);
    let (source, extra) = (cfg.source.clone(), crate::backend::extra_migrations(cfg.backend));
    std::thread::spawn(move || load_with(&source, extra, &values?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(given: &[(&str, &str)]) -> Config {
        let mut c = Config::from_url("postgres://app@db:5432/chat").unwrap();
        for (k, v) in given {
            c.placeholders.insert(
                k.to_string(),
                Given {
                    value: v.to_string(),
                    from: "--placeholder".into(),
                },
            );
        }
        c
    }

    fn sub(given: &[(&str, &str)], text: &str) -> std::result::Result<String, String> {
        let values = Values::of(&cfg(given)).map_err(|e| e.to_string())?;
        let mut m = Migration::parse("V1__x.sql", "V1__x.sql", text.as_bytes()).map_err(|e| e.to_string())?;
        let before = m.checksum.clone();
        values.substitute(&mut m).map_err(|e| e.to_string())?;
        assert_eq!(m.checksum, before, "the checksum is the text's before substitution");
        Ok(m.sql)
    }

    #[test]
    fn what_is_substituted_where() {
        let g = [("schema", "app"), ("n", "7")];
        // Code, string literals, quoted identifiers.
        assert_eq!(
            sub(&g, "CREATE TABLE ${schema}.t (v vector(${n}));").unwrap(),
            "CREATE TABLE app.t (v vector(7));"
        );
        assert_eq!(
            sub(&g, "SELECT '${schema}', \"${schema}_x\", 1${n};").unwrap(),
            "SELECT 'app', \"app_x\", 17;"
        );
        // Comments and dollar-quoted bodies are left as written.
        assert_eq!(
            sub(&g, "-- ${nope}\nSELECT 1; /* ${nope} */").unwrap(),
            "-- ${nope}\nSELECT 1; /* ${nope} */"
        );
        let f = "CREATE FUNCTION f(a int) RETURNS text LANGUAGE plpgsql AS $fn$ BEGIN RETURN '${x}' || $1; END $fn$;";
        assert_eq!(sub(&g, f).unwrap(), f);
        assert_eq!(sub(&g, "SELECT $$ ${nope}$$, ${n};").unwrap(), "SELECT $$ ${nope}$$, 7;");
        // ... unless the file asks for it.
        assert_eq!(
            sub(
                &g,
                "-- chatmigrate:placeholders-in-dollar-quotes\nDO $$ BEGIN PERFORM ${n}; END $$;"
            )
            .unwrap(),
            "-- chatmigrate:placeholders-in-dollar-quotes\nDO $$ BEGIN PERFORM 7; END $$;"
        );
        // `$${name}` is a literal `${name}`.
        assert_eq!(sub(&g, "SELECT '$${schema}', '$${x}';").unwrap(), "SELECT '${schema}', '${x}';");
        // Built-ins and defaults.
        assert_eq!(
            sub(
                &[],
                "SELECT '${database}', '${user}', '${backend}', '${history_table}', ${embedding_type}(${embedding_dimensions});"
            )
            .unwrap(),
            "SELECT 'chat', 'app', 'postgres', '\"chatmigrate_history\"', vector(1024);"
        );
        assert_eq!(
            sub(&[("embedding_dimensions", "3072")], "${embedding_type}(${embedding_dimensions})").unwrap(),
            "halfvec(3072)"
        );
    }

    #[test]
    fn errors_name_the_place() {
        assert_eq!(
            sub(&[], "SELECT 1;\nSELECT  ${nope};").unwrap_err(),
            "V1__x.sql:2:9: unknown placeholder `${nope}`"
        );
        assert_eq!(
            sub(&[], "SELECT '${not-one}';").unwrap_err(),
            "V1__x.sql:1:9: `${` starts a placeholder, but `${not-one}';` is not one (${name}: letters, digits and underscores)"
        );
        let e = sub(&[("embedding_dimensions", "5000")], "SELECT 1;").unwrap_err();
        assert_eq!(
            e,
            "--placeholder embedding_dimensions: 5000 dimensions are above HNSW's limit of 4000 (for halfvec; 2000 for vector)"
        );
        let e = sub(&[("embedding_dimensions", "3072"), ("embedding_type", "vector")], "SELECT 1;").unwrap_err();
        assert!(e.contains("above HNSW's limit of 2000 for vector"), "{e}");
        let e = sub(&[("database", "x")], "SELECT 1;").unwrap_err();
        assert_eq!(
            e,
            "--placeholder database: `database` is built in (its value comes from the target): choose another name"
        );
        let mut c = cfg(&[]);
        c.backend = BackendKind::RdsData;
        let mut m = Migration::parse("V1__x.sql", "V1__x.sql", b"SELECT '${user}';").unwrap();
        let e = Values::of(&c).unwrap().substitute(&mut m).unwrap_err().to_string();
        assert!(e.starts_with("V1__x.sql:1:9: placeholder `${user}` has no value here"), "{e}");
    }

    #[test]
    fn the_flag() {
        assert_eq!(parse_flag("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_flag("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_flag("1a=b").is_err() && parse_flag("ab").is_err());
    }

    proptest::proptest! {
        /// Any text: substituted or an error naming the file; never a panic.
        #[test]
        fn any_text_substitutes_or_names_the_file(text in "([a-z ;'\"$(){}\n-]|\\$\\{|\\$\\$|\\$\\{n\\}|/\\*|\\*/){0,40}") {
            let values = Values::of(&cfg(&[("n", "1")])).unwrap();
            if let Ok(mut m) = Migration::parse("V1__x.sql", "V1__x.sql", text.as_bytes()) {
                if let Err(e) = values.substitute(&mut m) {
                    proptest::prop_assert!(e.to_string().starts_with("V1__x.sql:"), "{}", e);
                }
            }
        }
    }
}
