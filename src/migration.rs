//! Migration files: the `V{version}__{name}.sql` grammar, directives in the
//! leading comments, the checksum, and loading a set from directories or from
//! the embedded (compiled-in) set.
//!
//! Loading is where bad input stops: a bad name, a duplicate version, a file
//! that is not UTF-8 or is empty stop before any connection is opened; the
//! files about to run are then split (syntax errors) and linted (a statement
//! that cannot run in a transaction inside a transactional file) before the
//! lock is taken or anything is written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::BackendKind;
use crate::error::{Error, Location, Result};
use crate::sql::{self, Statement};

/// How a migration's statements are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxMode {
    /// All statements and the history row in one transaction.
    Transaction,
    /// One statement at a time, in autocommit, progress recorded after each.
    NoTransaction,
}

/// Settings a file asks for in its leading comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub no_transaction: bool,
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
    /// Each `-- chatmigrate:ignore <rule> -- <reason>` at the top of the
    /// file (it covers every statement).
    pub ignores: Vec<Ignore>,
    /// `-- chatmigrate:citus-parallel`: on Citus, run this transactional file
    /// in parallel multi-shard mode instead of the environment's mode.
    /// Ignored by the other backends.
    pub citus_parallel: bool,
}

/// One `-- chatmigrate:ignore <rule>[, <rule>...] -- <reason>` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    /// The rule ids it names.
    pub rules: Vec<String>,
    /// Why (required: an ignore is a decision someone can review).
    pub reason: String,
    /// 1-based line of the comment.
    pub line: usize,
    /// The statement it sits above; `None` for the top of the file.
    pub statement: Option<usize>,
}

/// One migration file, parsed and split.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    /// Where it came from: a path on disk or `embedded:<file>`.
    pub path: String,
    pub sql: String,
    /// `sha256:<hex>` over the normalised text.
    pub checksum: String,
    pub directives: Directives,
    /// Filled by [`Migration::prepare`].
    pub statements: Vec<Statement>,
    /// `-- chatmigrate:ignore` comments directly above a statement (not at
    /// the top of the file); filled by [`Migration::prepare`].
    pub statement_ignores: Vec<Ignore>,
    prepared: bool,
    lines: std::sync::OnceLock<sql::LineIndex>,
}

impl Migration {
    pub fn tx_mode(&self) -> TxMode {
        if self.directives.no_transaction {
            TxMode::NoTransaction
        } else {
            TxMode::Transaction
        }
    }

    /// `file:line:col` of the statement at `index`, plus `extra` bytes into it.
    pub fn location(&self, index: usize, extra: usize) -> Location {
        let offset = self.statements.get(index).map(|s| s.start).unwrap_or(0) + extra;
        self.lines
            .get_or_init(|| sql::LineIndex::new(&self.sql))
            .location(&self.path, &self.sql, offset)
    }

    /// Every ignore comment of the file: the top-of-file ones, then those
    /// above statements.
    pub fn ignores(&self) -> impl Iterator<Item = &Ignore> {
        self.directives.ignores.iter().chain(&self.statement_ignores)
    }

    /// Reads one file: name, text, checksum and directives. Statements are
    /// split later, by [`Migration::prepare`]. `path` is for messages;
    /// `file_name` carries the grammar.
    pub fn parse(file_name: &str, path: &str, bytes: &[u8]) -> Result<Migration> {
        let (version, name) = parse_file_name(file_name).ok_or_else(|| Error::BadFileName { path: path.to_string() })?;
        let sql = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(e) => {
                return Err(Error::NotUtf8 {
                    path: path.to_string(),
                    offset: e.valid_up_to(),
                })
            }
        };
        // A leading BOM is not SQL; it is not part of the checksum either.
        let text = sql.strip_prefix('\u{feff}').unwrap_or(&sql).to_string();
        let checksum = checksum(&sql);
        if text.trim().is_empty() {
            return Err(Error::EmptyMigration { path: path.to_string() });
        }
        let directives = parse_directives(path, &text)?;
        Ok(Migration {
            version,
            name,
            path: path.to_string(),
            sql: text,
            checksum,
            directives,
            statements: Vec::new(),
            statement_ignores: Vec::new(),
            prepared: false,
            lines: std::sync::OnceLock::new(),
        })
    }

    /// Splits the file into statements (once). Only migrations that will be
    /// run, linted or shown need this, so a no-op `up` parses nothing.
    pub fn prepare(&mut self) -> Result<()> {
        if self.prepared {
            return Ok(());
        }
        let statements = sql::split(&self.path, &self.sql)?;
        if statements.is_empty() {
            return Err(Error::EmptyMigration { path: self.path.clone() });
        }
        // Comments above the first statement are the file's header, read by
        // `parse_directives`; those above later statements may only ignore.
        let mut ignores = Vec::new();
        for (i, s) in statements.iter().enumerate().skip(1) {
            for (offset, body) in &s.directives {
                let location = sql::location(&self.path, &self.sql, *offset);
                let (word, arg) = split_directive(body.trim_start_matches("chatmigrate:"));
                match word {
                    "ignore" => ignores.push(parse_ignore(&location, arg, Some(i))?),
                    "no-transaction" | "lock-timeout" | "statement-timeout" | "citus-parallel" => {
                        return Err(Error::BadDirective {
                            location,
                            message: format!("`{word}` works only in the comments at the top of the file, before the first statement"),
                        })
                    }
                    other => {
                        return Err(Error::UnknownDirective {
                            location,
                            directive: other.to_string(),
                        })
                    }
                }
            }
        }
        self.statement_ignores = ignores;
        self.statements = statements;
        self.prepared = true;
        Ok(())
    }
}

/// `V{digits}__{name}.sql` → (version, name). Names are letters, digits and
/// underscores (the refinery grammar, so refinery projects keep their files).
pub fn parse_file_name(file_name: &str) -> Option<(i64, String)> {
    let stem = file_name.strip_suffix(".sql")?;
    let rest = stem.strip_prefix('V')?;
    let (digits, name) = rest.split_once("__")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let version = digits.parse::<i64>().ok()?;
    Some((version, name.to_string()))
}

/// SHA-256 over the text with a leading BOM removed and CRLF turned into LF,
/// so a checkout with other line endings is not drift.
pub fn checksum(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalised = text.replace("\r\n", "\n");
    let digest = Sha256::digest(normalised.as_bytes());
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Parses a duration as written in directives and config: `500ms`, `2s`,
/// `10min`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" | "sec" | "secs" => n,
        "m" | "min" | "mins" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

/// Reads `-- chatmigrate:<directive>` lines from the leading comment block.
fn parse_directives(path: &str, text: &str) -> Result<Directives> {
    let mut d = Directives::default();
    let mut citus_parallel_line = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else { break };
        let Some(body) = comment.trim().strip_prefix("chatmigrate:") else {
            continue;
        };
        let location = Location {
            path: path.to_string(),
            line: i + 1,
            col: 1,
        };
        let (word, arg) = split_directive(body);
        let duration = |what: &str| {
            parse_duration(arg).ok_or_else(|| Error::BadDirective {
                location: location.clone(),
                message: format!("{what} needs a duration such as 2s, 500ms or 10min, got `{arg}`"),
            })
        };
        match word {
            "no-transaction" => d.no_transaction = true,
            "citus-parallel" => {
                if !arg.is_empty() {
                    return Err(Error::BadDirective {
                        location,
                        message: format!("citus-parallel takes no argument, got `{arg}`"),
                    });
                }
                citus_parallel_line = Some(location);
                d.citus_parallel = true;
            }
            "lock-timeout" => d.lock_timeout = Some(duration("lock-timeout")?),
            "statement-timeout" => d.statement_timeout = Some(duration("statement-timeout")?),
            "ignore" => d.ignores.push(parse_ignore(&location, arg, None)?),
            other => {
                return Err(Error::UnknownDirective {
                    location,
                    directive: other.to_string(),
                })
            }
        }
    }
    if let (Some(location), true) = (citus_parallel_line, d.no_transaction) {
        // The mode is a SET LOCAL of the migration's transaction; a
        // no-transaction file has none (each statement commits by itself).
        return Err(Error::BadDirective {
            location,
            message: "citus-parallel sets the mode of the file's transaction, and a no-transaction file has none: remove one of the two directives".into(),
        });
    }
    Ok(d)
}

/// `word rest` of a directive body.
fn split_directive(body: &str) -> (&str, &str) {
    match body.trim().split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (body.trim(), ""),
    }
}

/// `<rule>[, <rule>...] -- <reason>`, the argument of an ignore directive.
fn parse_ignore(location: &Location, arg: &str, statement: Option<usize>) -> Result<Ignore> {
    let bad = |message: &str| Error::BadDirective {
        location: location.clone(),
        message: format!("{message}: -- chatmigrate:ignore <rule> -- <reason>"),
    };
    let (ids, reason) = arg.split_once("--").ok_or_else(|| bad("ignore needs a rule id and a reason"))?;
    let rules: Vec<String> = ids.split([',', ' ', '\t']).filter(|r| !r.is_empty()).map(str::to_string).collect();
    if rules.is_empty() {
        return Err(bad("ignore needs a rule id"));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(bad("ignore needs a reason after `--`"));
    }
    Ok(Ignore {
        rules,
        reason: reason.to_string(),
        line: location.line,
        statement,
    })
}

/// Where migrations come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The set compiled into the binary (`migrations/` at build time), plus
    /// for backend `citus` the citus-only files of `dialects/citus/migrations/`.
    Embedded,
    /// Directories on disk, read in order.
    Dirs(Vec<PathBuf>),
}

static EMBEDDED: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/migrations");
static EMBEDDED_CITUS: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/dialects/citus/migrations");

fn sql_files(dir: &'static include_dir::Dir<'static>) -> Vec<(&'static str, &'static [u8])> {
    let mut files: Vec<_> = dir
        .files()
        .filter_map(|f| Some((f.path().file_name()?.to_str()?, f.contents())))
        .filter(|(n, _)| n.ends_with(".sql"))
        .collect();
    files.sort();
    files
}

/// The embedded portable set's files as (file name, bytes).
pub fn embedded_files() -> Vec<(&'static str, &'static [u8])> {
    sql_files(&EMBEDDED)
}

/// The embedded citus-only files (`dialects/citus/migrations/`). They share
/// the portable set's version space: sorted together, each version used once.
pub fn embedded_citus_files() -> Vec<(&'static str, &'static [u8])> {
    sql_files(&EMBEDDED_CITUS)
}

/// Loads and checks a whole set, sorted by version. The embedded set of
/// backend `citus` is the portable set plus the citus-only files.
pub fn load(source: &Source, backend: BackendKind) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    match source {
        Source::Embedded => {
            for (name, bytes) in embedded_files() {
                out.push(Migration::parse(name, &format!("embedded:{name}"), bytes)?);
            }
            if backend == BackendKind::Citus {
                for (name, bytes) in embedded_citus_files() {
                    out.push(Migration::parse(name, &format!("embedded:citus/{name}"), bytes)?);
                }
            }
        }
        Source::Dirs(dirs) => {
            for dir in dirs {
                load_dir(dir, &mut out)?;
            }
        }
    }
    out.sort_by_key(|m| m.version);
    for pair in out.windows(2) {
        if pair[0].version == pair[1].version {
            return Err(Error::DuplicateVersion {
                version: pair[0].version,
                first: pair[0].path.clone(),
                second: pair[1].path.clone(),
            });
        }
    }
    Ok(out)
}

fn load_dir(dir: &Path, out: &mut Vec<Migration>) -> Result<()> {
    let io = |e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let shown = path.display().to_string();
        let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(Error::BadFileName { path: shown });
        };
        // Hidden files (editor swap files, .keep) and notes are not migrations.
        if file_name.starts_with('.') || file_name.ends_with(".md") || entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::Io {
            path: shown.clone(),
            source: e,
        })?;
        out.push(Migration::parse(&file_name, &shown, &bytes)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_file_name("V1__init.sql"), Some((1, "init".into())));
        assert_eq!(parse_file_name("V20250101120000__a_b.sql"), Some((20250101120000, "a_b".into())));
        assert_eq!(parse_file_name("V001__x.sql"), Some((1, "x".into())));
        assert_eq!(parse_file_name("v1__x.sql"), None);
        assert_eq!(parse_file_name("V1_x.sql"), None);
        assert_eq!(parse_file_name("V__x.sql"), None);
        assert_eq!(parse_file_name("V1__.sql"), None);
        assert_eq!(parse_file_name("V1__x-y.sql"), None);
        assert_eq!(parse_file_name("V1__x.txt"), None);
        assert_eq!(parse_file_name("V99999999999999999999__x.sql"), None);
    }

    #[test]
    fn checksum_ignores_crlf_and_bom() {
        let a = checksum("create table t(a int);\n");
        assert_eq!(a, checksum("create table t(a int);\r\n"));
        assert_eq!(a, checksum("\u{feff}create table t(a int);\n"));
        assert_ne!(a, checksum("create table t(b int);\n"));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10min"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn directives() {
        let d = parse_directives("f", "-- chatmigrate:no-transaction\n-- chatmigrate:lock-timeout 2s\nselect 1;").unwrap();
        assert!(d.no_transaction);
        assert_eq!(d.lock_timeout, Some(Duration::from_secs(2)));
        let e = parse_directives("f", "-- chatmigrate:bogus\n").unwrap_err();
        assert_eq!(e.to_string(), "f:1:1: unknown directive `bogus`");
    }

    #[test]
    fn ignores_at_the_top_and_above_statements() {
        let text = "-- chatmigrate:ignore a, b -- legacy table\nSELECT 1;\n-- why:\n-- chatmigrate:ignore c -- empty table\nSELECT 2;\n";
        let mut m = Migration::parse("V1__x.sql", "V1__x.sql", text.as_bytes()).unwrap();
        m.prepare().unwrap();
        assert_eq!(m.directives.ignores[0].rules, vec!["a", "b"]);
        assert_eq!(m.directives.ignores[0].reason, "legacy table");
        assert_eq!(m.statement_ignores.len(), 1);
        assert_eq!((m.statement_ignores[0].line, m.statement_ignores[0].statement), (4, Some(1)));
        for (text, want) in [
            (
                "-- chatmigrate:ignore a\nSELECT 1;",
                "f:1:1: ignore needs a rule id and a reason: -- chatmigrate:ignore <rule> -- <reason>",
            ),
            (
                "-- chatmigrate:ignore a --\nSELECT 1;",
                "f:1:1: ignore needs a reason after `--`: -- chatmigrate:ignore <rule> -- <reason>",
            ),
            (
                "SELECT 1;\n-- chatmigrate:no-transaction\nSELECT 2;",
                "f:2:1: `no-transaction` works only in the comments at the top of the file, before the first statement",
            ),
            (
                "SELECT 1;\n  -- chatmigrate:ignor x -- y\nSELECT 2;",
                "f:2:3: unknown directive `ignor`",
            ),
        ] {
            let e = Migration::parse("V1__x.sql", "f", text.as_bytes())
                .and_then(|mut m| m.prepare())
                .unwrap_err();
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn citus_parallel_directive() {
        let d = parse_directives("f", "-- chatmigrate:citus-parallel\nselect 1;").unwrap();
        assert!(d.citus_parallel && !d.no_transaction);
        assert!(!parse_directives("f", "select 1;").unwrap().citus_parallel);
        let e = parse_directives("f", "-- chatmigrate:citus-parallel yes\n").unwrap_err();
        assert_eq!(e.to_string(), "f:1:1: citus-parallel takes no argument, got `yes`");
        let e = parse_directives("f", "-- chatmigrate:no-transaction\n--\n-- chatmigrate:citus-parallel\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:3:1: citus-parallel sets the mode of the file's transaction, and a no-transaction file has none: remove one of the two directives"
        );
    }

    #[test]
    fn embedded_sets_share_one_version_space() {
        // The citus-only files sort among the portable ones; a version used
        // by both would be a DuplicateVersion for every citus environment.
        let portable = load(&Source::Embedded, BackendKind::Postgres).unwrap();
        let citus = load(&Source::Embedded, BackendKind::Citus).unwrap();
        assert!(portable.iter().all(|m| m.path.starts_with("embedded:V")));
        assert!(citus.len() > portable.len());
        let citus_only: Vec<_> = citus.iter().filter(|m| m.path.starts_with("embedded:citus/")).collect();
        assert_eq!(citus_only.len(), embedded_citus_files().len());
        assert_eq!(citus.len(), portable.len() + citus_only.len());
        for m in citus {
            let mut m = m.clone();
            m.prepare().unwrap();
        }
    }
}
