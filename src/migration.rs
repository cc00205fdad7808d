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

use crate::error::{catch_panic, Error, Location, Result};
pub use crate::error::{short_checksum, NameProblem, PathProblem};
use crate::sql::{self, Statement};
use crate::value::{self, Origin};

pub use crate::value::MAX_FILE_BYTES;

/// The version of a repeatable migration (`R__{name}.sql`): no versioned
/// file has it (versions start at 1).
pub const REPEATABLE: i64 = 0;

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
    /// `-- chatmigrate:no-transaction`: statement by statement, in autocommit.
    pub no_transaction: bool,
    /// `-- chatmigrate:lock-timeout <duration>`.
    pub lock_timeout: Option<Duration>,
    /// `-- chatmigrate:statement-timeout <duration>`.
    pub statement_timeout: Option<Duration>,
    /// Each `-- chatmigrate:ignore <rule> -- <reason>` at the top of the
    /// file (it covers every statement).
    pub ignores: Vec<Ignore>,
    /// `-- chatmigrate:citus-parallel`: on Citus, run this transactional file
    /// in parallel multi-shard mode instead of the environment's mode.
    /// Ignored by the other backends.
    pub citus_parallel: bool,
    /// `-- chatmigrate:adopt-fix`: written by `chatmigrate adopt
    /// --write-fix`; `up` runs it alone, statement by statement, and records
    /// it in the history log only (docs/adopt.md). Needs `no-transaction`.
    pub adopt_fix: bool,
    /// `-- chatmigrate:placeholders-in-dollar-quotes`: substitute
    /// placeholders inside dollar-quoted bodies too (`placeholders.rs`).
    pub placeholders_in_dollar_quotes: bool,
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

/// One migration file as read: its name, text, checksum and directives.
/// The statements come later, inside the crate, when the file is to run,
/// be linted or be shown (so a no-op `up` parses nothing).
#[derive(Debug, Clone)]
pub struct Migration {
    /// The `{version}` of `V{version}__{name}.sql`.
    pub version: i64,
    /// The `{name}` of `V{version}__{name}.sql`.
    pub name: String,
    /// Where it came from: a path on disk or `embedded:<file>`.
    pub path: String,
    /// The text (without a leading byte order mark).
    pub sql: String,
    /// `sha256:<hex>` over the normalised text.
    pub checksum: String,
    /// What its leading comments ask for.
    pub directives: Directives,
    /// Checksums of earlier texts of this file that are not drift (the
    /// shipped chat schema's; `shipped_checksums.rs`).
    pub(crate) earlier_checksums: &'static [&'static str],
}

/// A migration split into its statements by libpg_query: what runs, is
/// linted and is shown. Made by `Migration::split`; reads as its
/// [`Migration`] too (`Deref`).
#[derive(Debug, Clone)]
pub struct SplitMigration {
    file: Migration,
    /// At least one.
    pub(crate) statements: Vec<Statement>,
    /// `-- chatmigrate:ignore` comments directly above a statement (not at
    /// the top of the file).
    pub(crate) statement_ignores: Vec<Ignore>,
    lines: std::sync::OnceLock<sql::LineIndex>,
}

impl std::ops::Deref for SplitMigration {
    type Target = Migration;

    fn deref(&self) -> &Migration {
        &self.file
    }
}

impl SplitMigration {
    /// A file of the set that does not parse, as the context of other
    /// files (the lint's facts): no statements, so it gives no facts.
    /// Never one that runs: its error is [`Migration::split`]'s.
    pub(crate) fn unparsed(m: &Migration) -> SplitMigration {
        SplitMigration {
            file: m.clone(),
            statements: Vec::new(),
            statement_ignores: Vec::new(),
            lines: std::sync::OnceLock::new(),
        }
    }

    /// `file:line:col` of the statement at `index`, plus `extra` bytes into it.
    pub(crate) fn location(&self, index: usize, extra: usize) -> Location {
        let offset = self.statements.get(index).map(|s| s.start).unwrap_or(0) + extra;
        self.lines
            .get_or_init(|| sql::LineIndex::new(&self.sql))
            .location(&self.path, &self.sql, offset)
    }

    /// Every ignore comment of the file: the top-of-file ones, then those
    /// above statements.
    pub(crate) fn ignores(&self) -> impl Iterator<Item = &Ignore> {
        self.directives.ignores.iter().chain(&self.statement_ignores)
    }
}

/// Every file of `set` split, in order; the first that does not split is
/// the error.
pub(crate) fn split_all(set: &[Migration]) -> Result<Vec<SplitMigration>> {
    set.iter().map(Migration::split).collect()
}

/// The files of `set` at `targets` split (the first of them, in that
/// order, that does not split is the error), with the others for their
/// context: one of those that does not parse has no statements
/// ([`SplitMigration::unparsed`]).
pub(crate) fn split_set(set: &[Migration], targets: impl IntoIterator<Item = usize>) -> Result<Vec<SplitMigration>> {
    let mut split: Vec<Result<SplitMigration>> = set.iter().map(Migration::split).collect();
    if let Some(i) = targets.into_iter().find(|&i| split[i].is_err()) {
        return Err(split.swap_remove(i).unwrap_err());
    }
    Ok(split
        .into_iter()
        .zip(set)
        .map(|(r, m)| r.unwrap_or_else(|_| SplitMigration::unparsed(m)))
        .collect())
}

impl Migration {
    /// A repeatable migration (`R__{name}.sql`): applied after the
    /// versioned ones, again whenever its checksum changes.
    pub fn is_repeatable(&self) -> bool {
        self.version == REPEATABLE
    }

    /// How messages name it: `V3 add_theme_index`, or `R__refresh_views`.
    pub fn label(&self) -> String {
        label(self.version, &self.name)
    }

    /// Whether a history row's `checksum` is this file's: its own, or an
    /// earlier one the shipped file accepts.
    pub(crate) fn checksum_matches(&self, checksum: &str) -> bool {
        self.checksum == checksum || self.earlier_checksums.contains(&checksum)
    }

    /// In one transaction, or statement by statement (`no-transaction`).
    pub fn tx_mode(&self) -> TxMode {
        if self.directives.no_transaction {
            TxMode::NoTransaction
        } else {
            TxMode::Transaction
        }
    }

    /// Reads one file: name, text, checksum and directives. Statements are
    /// split later, only for the files that run, are linted or shown.
    /// `path` is for messages; `file_name` carries the grammar.
    pub fn parse(file_name: &str, path: &str, bytes: &[u8]) -> Result<Migration> {
        let (version, name) = check_file_name(file_name, path)?;
        let sql = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                return Err(Error::NotUtf8 {
                    path: path.to_string(),
                    offset: e.valid_up_to(),
                })
            }
        };
        // A leading BOM is not SQL; it is not part of the checksum either.
        let text = sql.strip_prefix('\u{feff}').unwrap_or(sql).to_string();
        let checksum = checksum(sql);
        if text.trim().is_empty() {
            return Err(Error::EmptyMigration { path: path.to_string() });
        }
        let directives = parse_directives(path, &text)?;
        if version == REPEATABLE && (directives.no_transaction || directives.adopt_fix) {
            // A repeatable file is applied whole or not at all, with its
            // row in the same transaction: its progress has no row to live
            // in, and it runs again whenever it changes.
            let word = if directives.adopt_fix { "adopt-fix" } else { "no-transaction" };
            let line = text.lines().position(|l| l.contains(&format!("chatmigrate:{word}"))).unwrap_or(0) + 1;
            return Err(Error::BadDirective {
                location: Location {
                    path: path.to_string(),
                    line,
                    col: 1,
                },
                message: format!("`{word}` in a repeatable migration: an R__ file runs in one transaction with its history row; put statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY) in a versioned file"),
            });
        }
        Ok(Migration {
            version,
            name,
            path: path.to_string(),
            sql: text,
            checksum,
            directives,
            earlier_checksums: &[],
        })
    }

    /// Splits the file into statements: a syntax error, a file with no
    /// statement or a directive out of place is an error naming its line.
    pub(crate) fn split(&self) -> Result<SplitMigration> {
        catch_panic(|| format!("splitting {}", self.path), || self.split_inner())
    }

    fn split_inner(&self) -> Result<SplitMigration> {
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
                    "no-transaction" | "lock-timeout" | "statement-timeout" | "citus-parallel" | "placeholders-in-dollar-quotes" => {
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
        // A directive below the last statement would apply to nothing.
        let end = statements.last().map_or(0, |s| s.end);
        if let Some((offset, body)) = sql::trailing_directives(&self.sql, end).into_iter().next() {
            let (word, _) = split_directive(body.trim_start_matches("chatmigrate:"));
            return Err(Error::BadDirective {
                location: sql::location(&self.path, &self.sql, offset),
                message: format!("`{word}` comes after the last statement, where it applies to nothing: move it to the top of the file (or, for ignore, above its statement)"),
            });
        }
        Ok(SplitMigration {
            file: self.clone(),
            statements,
            statement_ignores: ignores,
            lines: std::sync::OnceLock::new(),
        })
    }
}

/// How messages name a migration of `version` and `name`: `V3
/// add_theme_index`, or for a repeatable one `R__refresh_views`.
pub fn label(version: i64, name: &str) -> String {
    match version {
        REPEATABLE => format!("R__{name}"),
        v => format!("V{v} {name}"),
    }
}

/// `V{digits}__{name}.sql` → (version, name); `R__{name}.sql` → (0, name),
/// a repeatable migration ([`REPEATABLE`]). Names are letters, digits and
/// underscores (the refinery grammar, so refinery projects keep their
/// files). When it is not one: a [`Error::BadFileName`] saying what is
/// wrong, or a [`Error::BadValue`] for a version out of range (0, or past an
/// i64). `path` is for messages.
pub fn check_file_name(file_name: &str, path: &str) -> Result<(i64, String)> {
    let bad = |problem| Error::BadFileName {
        path: path.to_string(),
        problem,
    };
    let starts_like_one =
        file_name.len() > 1 && file_name.starts_with(['V', 'v']) && file_name[1..].starts_with(|c: char| c.is_ascii_digit());
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Err(bad(if starts_like_one && file_name.contains("__") {
            NameProblem::NotSql
        } else {
            NameProblem::Form
        }));
    };
    let refinery_u = stem
        .strip_prefix('U')
        .and_then(|r| r.split_once("__"))
        .is_some_and(|(d, n)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty());
    if refinery_u {
        return Err(bad(NameProblem::RefineryUnversioned));
    }
    if let Some(name) = stem.strip_prefix("R__").filter(|n| !n.is_empty()) {
        // A repeatable migration: version 0 (history::REPEATABLE), which
        // no versioned file has.
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(NameProblem::NameChars));
        }
        return Ok((REPEATABLE, name.to_string()));
    }
    let rest = match (stem.strip_prefix('V'), stem.strip_prefix('v')) {
        (Some(rest), _) => rest,
        (None, Some(_)) if starts_like_one => return Err(bad(NameProblem::LowercaseV)),
        _ => return Err(bad(NameProblem::Form)),
    };
    let Some((digits, name)) = rest.split_once("__") else {
        let one = rest
            .split_once('_')
            .is_some_and(|(d, n)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty());
        return Err(bad(if one { NameProblem::OneUnderscore } else { NameProblem::Form }));
    };
    if digits.is_empty() {
        return Err(bad(NameProblem::NoVersion));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(NameProblem::VersionNotDigits));
    }
    if name.is_empty() {
        return Err(bad(NameProblem::EmptyName));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad(NameProblem::NameChars));
    }
    let version = value::count("version", Origin::FileName, digits, value::VERSION).map_err(|invalid| Error::value_at(path, invalid))?;
    Ok((version, name.to_string()))
}

/// SHA-256 over the text with a leading BOM removed and CRLF turned into LF,
/// so a checkout with other line endings is not drift. A no-op `up` hashes
/// every file, so this allocates nothing but the result: the text is hashed
/// in the pieces between the CRs that end a line.
pub fn checksum(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).as_bytes();
    let mut hasher = Sha256::new();
    let mut rest = text;
    if text.contains(&b'\r') {
        while let Some(i) = rest.iter().position(|&b| b == b'\r') {
            // A CR before an LF is dropped; any other CR is text.
            let keep = if rest.get(i + 1) == Some(&b'\n') { i } else { i + 1 };
            hasher.update(&rest[..keep]);
            rest = &rest[i + 1..];
        }
    }
    hasher.update(rest);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for b in hasher.finalize() {
        hex.push(HEX[usize::from(b >> 4)] as char);
        hex.push(HEX[usize::from(b & 15)] as char);
    }
    hex
}

/// Reads `-- chatmigrate:<directive>` lines from the leading comment block.
fn parse_directives(path: &str, text: &str) -> Result<Directives> {
    let mut d = Directives::default();
    let mut citus_parallel_line = None;
    let mut adopt_fix_line = None;
    let mut seen: Vec<(&str, usize)> = Vec::new();
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
        if word != "ignore" {
            if let Some(first) = seen.iter().find(|(w, _)| *w == word).map(|(_, l)| *l) {
                return Err(Error::BadDirective {
                    location,
                    message: format!("`{word}` is given twice (first on line {first}): keep one"),
                });
            }
            seen.push((word, i + 1));
        }
        let duration = |key: &str, limits| {
            value::duration(key, Origin::Directive, arg, limits).map_err(|invalid| Error::value_at(location.to_string(), invalid))
        };
        match word {
            "no-transaction" => {
                if !arg.is_empty() {
                    return Err(Error::BadDirective {
                        location,
                        message: format!("no-transaction takes no argument, got `{arg}`"),
                    });
                }
                d.no_transaction = true
            }
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
            "adopt-fix" => {
                if !arg.is_empty() {
                    return Err(Error::BadDirective {
                        location,
                        message: format!("adopt-fix takes no argument, got `{arg}`"),
                    });
                }
                adopt_fix_line = Some(location);
                d.adopt_fix = true;
            }
            "placeholders-in-dollar-quotes" => {
                if !arg.is_empty() {
                    return Err(Error::BadDirective {
                        location,
                        message: format!("placeholders-in-dollar-quotes takes no argument, got `{arg}`"),
                    });
                }
                d.placeholders_in_dollar_quotes = true;
            }
            // `off` / `0`: no timeout for this file (PostgreSQL's 0).
            "lock-timeout" => d.lock_timeout = Some(duration("lock-timeout", value::LOCK_TIMEOUT)?),
            "statement-timeout" => d.statement_timeout = Some(duration("statement-timeout", value::STATEMENT_TIMEOUT)?),
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
    if let (Some(location), false) = (adopt_fix_line, d.no_transaction) {
        // An adopt fix builds indexes CONCURRENTLY: statement by statement.
        return Err(Error::BadDirective {
            location,
            message: "an adopt fix runs statement by statement: add `-- chatmigrate:no-transaction` above it".into(),
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
    /// Sets compiled into the binary (`embed_migrations!`, the chat schema).
    Compiled(Vec<crate::embedded::EmbeddedSet>),
}

pub use crate::embedded::embedded_files;

/// Migrations a backend adds to the embedded set, in the same version space
/// (Citus: `dialects/citus/migrations/`): declared by the backend
/// (`backend::BackendDef::extra_migrations`).
#[derive(Debug, Clone, Copy)]
pub struct ExtraSet {
    /// Shown in the files' paths: `embedded:<label>/<file>`.
    pub label: &'static str,
    /// The files as (file name, bytes), sorted; no undo files.
    pub files: fn() -> Vec<(&'static str, &'static [u8])>,
    /// Its undo files (`*.undo.sql`, `chatmigrate down`'s) as (file name,
    /// bytes), sorted.
    pub undo_files: fn() -> Vec<(&'static str, &'static [u8])>,
}

/// The embedded undo files (`*.undo.sql`) of the portable set and of the
/// backend's `extra` sets, as (file name, bytes, path prefix).
pub fn embedded_undo_files(extra: &[ExtraSet]) -> Vec<(&'static str, &'static [u8], String)> {
    let mut out: Vec<_> = crate::embedded::embedded_undo_files()
        .into_iter()
        .map(|(n, b)| (n, b, "embedded:".to_string()))
        .collect();
    for set in extra {
        out.extend(
            (set.undo_files)()
                .into_iter()
                .map(|(n, b)| (n, b, format!("embedded:{}/", set.label))),
        );
    }
    out.sort();
    out
}

/// Loads and checks a whole set, sorted by version. The embedded set is
/// the portable set plus the backend's `extra` sets (Citus: its citus-only
/// files). Undo files are not in it (`undo.rs` reads them).
pub fn load(source: &Source, extra: &[ExtraSet]) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    match source {
        Source::Embedded => {
            for (name, bytes) in embedded_files() {
                let mut m = parse_guarded(name, &format!("embedded:{name}"), bytes)?;
                m.earlier_checksums = crate::shipped_checksums::earlier(name);
                out.push(m);
            }
            for set in extra {
                for (name, bytes) in (set.files)() {
                    out.push(parse_guarded(name, &format!("embedded:{}/{name}", set.label), bytes)?);
                }
            }
        }
        Source::Dirs(dirs) => {
            for dir in dirs {
                load_dir(dir, &mut out)?;
            }
        }
        Source::Compiled(sets) => {
            for set in sets {
                if set.is_chat_schema() {
                    out.extend(load(&Source::Embedded, extra)?);
                    continue;
                }
                for (name, bytes) in set.files() {
                    out.push(parse_guarded(name, &format!("embedded:{}/{name}", set.dir()), bytes)?);
                }
            }
        }
    }
    // The versioned files in version order, then the repeatable ones
    // (version 0) in name order: the order `up` applies them in.
    out.sort_by(order);
    for pair in out.windows(2) {
        if pair[0].is_repeatable() && pair[1].is_repeatable() {
            if pair[0].name == pair[1].name {
                return Err(Error::DuplicateRepeatable {
                    name: pair[0].name.clone(),
                    first: pair[0].path.clone(),
                    second: pair[1].path.clone(),
                });
            }
            continue;
        }
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

/// The order of a set: versioned files by version (a stable sort: two
/// files of one version stay in file order, for the error naming both),
/// then repeatable migrations by name.
pub fn order(a: &Migration, b: &Migration) -> std::cmp::Ordering {
    match (a.is_repeatable(), b.is_repeatable()) {
        (true, true) => a.name.cmp(&b.name),
        (x, y) => (x, a.version).cmp(&(y, b.version)),
    }
}

/// "a FIFO (named pipe)", "a socket", ...: what a non-regular file is.
fn special_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    let _ = t;
    "a special file"
}

/// [`Migration::parse`], with a panic turned into an error that names the file.
fn parse_guarded(file_name: &str, path: &str, bytes: &[u8]) -> Result<Migration> {
    catch_panic(
        || format!("reading {path}"),
        || {
            // A failpoint for the tests of this guard (debug builds only).
            #[cfg(debug_assertions)]
            if std::env::var_os("CHATMIGRATE_TEST_PANIC").is_some_and(|v| v == "load") {
                panic!("test panic while reading a migration file");
            }
            Migration::parse(file_name, path, bytes)
        },
    )
}

fn load_dir(dir: &Path, out: &mut Vec<Migration>) -> Result<()> {
    let io = |e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        entries.push((entry.file_name(), entry));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // Reading the files is most of a no-op `up`'s own work when there are
    // many (the main thread meanwhile waits for the database): from
    // PARALLEL_FROM files on, they are read on several threads, each a
    // contiguous run of the sorted list, so the error reported is the first
    // in file order, as with one thread.
    let threads = match entries.len() >= PARALLEL_FROM {
        true => std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
        false => 1,
    };
    if threads <= 1 {
        return load_entries(&entries, out);
    }
    let per_thread = entries.len().div_ceil(threads);
    let runs: Vec<Result<Vec<Migration>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(per_thread)
            .map(|run| {
                scope.spawn(move || {
                    let mut read = Vec::with_capacity(run.len());
                    load_entries(run, &mut read).map(|()| read)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| Err(crate::error::internal(Some(format!("reading {}", dir.display())), panic.as_ref())))
            })
            .collect()
    });
    for run in runs {
        out.extend(run?);
    }
    Ok(())
}

/// From this many files in a directory on, [`load_dir`] reads them on
/// several threads.
const PARALLEL_FROM: usize = 200;

/// Reads and parses `entries` (sorted) into `out`; the first error stops.
fn load_entries(entries: &[(std::ffi::OsString, std::fs::DirEntry)], out: &mut Vec<Migration>) -> Result<()> {
    for (file_name, entry) in entries {
        let path = entry.path();
        let shown = path.display().to_string();
        let Some(file_name) = file_name.to_str() else {
            return Err(Error::BadFileName {
                path: shown,
                problem: NameProblem::Form,
            });
        };
        // Hidden files (editor swap files, .keep), notes and subdirectories
        // are not migrations; a directory named like one is an error. The
        // type comes with the directory entry (no system call on Linux).
        let kind = entry.file_type().ok();
        let is_dir = kind.is_some_and(|t| t.is_dir());
        if file_name.starts_with('.') || file_name.ends_with(".md") || (is_dir && !file_name.ends_with(".sql")) {
            continue;
        }
        // Undo files are `down`'s (undo.rs).
        if crate::embedded::is_undo_file(file_name) && !is_dir {
            continue;
        }
        let bytes = match kind {
            Some(t) if t.is_file() => read_regular_entry(&path, &shown)?,
            _ => read_regular(&path, &shown)?,
        };
        out.push(parse_guarded(file_name, &shown, &bytes)?);
    }
    Ok(())
}

/// A directory entry that was a regular file when the directory was read:
/// opened without a check of the path first, the checks made on the open
/// file instead (4 system calls: open, fstat, read, close; a no-op `up`
/// reads every file). Opened non-blocking, so an entry replaced by a FIFO
/// since cannot hang the read; anything but a regular file is refused as
/// [`read_regular`] refuses it.
fn read_regular_entry(path: &Path, shown: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |e| Error::Io {
        path: shown.to_string(),
        source: e,
    };
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut open, libc::O_NONBLOCK);
    let mut file = match open.open(path) {
        Ok(f) => f,
        // Gone or changed since the directory was read: the careful path says what it is.
        Err(_) => return read_regular(path, shown),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return read_regular(path, shown);
    }
    let not_a_file = |bytes| Error::NotAFile {
        path: shown.to_string(),
        problem: PathProblem::TooLarge { bytes },
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(not_a_file(meta.len()));
    }
    // One byte more than the size: a read that fills less is the end.
    let size = meta.len() as usize;
    let mut buf = vec![0u8; size + 1];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            // The file grew since fstat.
            if filled as u64 > MAX_FILE_BYTES {
                return Err(not_a_file(filled as u64));
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = match file.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        filled += n;
        if n == 0 || (filled == size && filled < buf.len()) {
            break;
        }
    }
    buf.truncate(filled);
    if filled as u64 > MAX_FILE_BYTES {
        return Err(not_a_file(filled as u64));
    }
    Ok(buf)
}

/// One file given by path (e.g. `chatmigrate lint FILE`), read with the
/// same checks as a directory's files.
pub fn load_file(path: &Path) -> Result<Migration> {
    let shown = path.display().to_string();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let bytes = read_regular(path, &shown)?;
    parse_guarded(name, &shown, &bytes)
}

/// Reads a migration file, refusing what is not a regular file (a FIFO
/// would block the read forever), a dangling link and a file over
/// [`MAX_FILE_BYTES`] before reading it.
fn read_regular(path: &Path, shown: &str) -> Result<Vec<u8>> {
    let not_a_file = |problem| Error::NotAFile {
        path: shown.to_string(),
        problem,
    };
    let io = |e| Error::Io {
        path: shown.to_string(),
        source: e,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(match std::fs::read_link(path) {
                Ok(target) => not_a_file(PathProblem::DanglingSymlink {
                    target: target.display().to_string(),
                }),
                Err(_) => io(e),
            })
        }
        Err(e) => return Err(io(e)),
    };
    let t = meta.file_type();
    if t.is_dir() {
        return Err(not_a_file(PathProblem::Directory));
    }
    if !t.is_file() {
        return Err(not_a_file(PathProblem::Special(special_kind(&t))));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(not_a_file(PathProblem::TooLarge { bytes: meta.len() }));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    // The file may have grown between the two calls.
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(not_a_file(PathProblem::TooLarge { bytes: bytes.len() as u64 }));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file name grammar alone: (version, name), or `None`.
    fn parse_file_name(file_name: &str) -> Option<(i64, String)> {
        check_file_name(file_name, file_name).ok()
    }

    #[test]
    fn checksum_drops_a_bom_and_the_cr_of_crlf_only() {
        let plain = |t: &str| {
            let t = t.strip_prefix('\u{feff}').unwrap_or(t).replace("\r\n", "\n");
            let hex: String = Sha256::digest(t.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        };
        for t in ["", "a\n", "a\r\nb\r\n", "\u{feff}x\r\n", "a\rb\r\r\nc\r", "\r\n\r\n", "é\r\nü"] {
            assert_eq!(checksum(t), plain(t), "{t:?}");
        }
        assert_eq!(checksum("a\r\nb\n"), checksum("a\nb\n"));
        assert_ne!(checksum("a\rb\n"), checksum("a\nb\n"));
        assert_eq!(short_checksum(&checksum("a\n")), format!("{}…", &checksum("a\n")[..15]));
    }

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
        assert_eq!(parse_file_name("V0__x.sql"), None);
        assert_eq!(parse_file_name("V9223372036854775807__x.sql"), Some((i64::MAX, "x".into())));
        let why = |n: &str| check_file_name(n, "p").unwrap_err().to_string();
        let form = " (expected V{version}__{name}.sql, e.g. V20250101120000__create_users.sql)";
        for (name, line) in [
            ("notes.txt", format!("p: not a migration file name{form}")),
            ("v1__x.sql", format!("p: not a migration file name: the V must be upper-case{form}")),
            (
                "V1_x.sql",
                format!("p: not a migration file name: two underscores separate the version from the name{form}"),
            ),
            (
                "V__x.sql",
                format!("p: not a migration file name: the version after the V is missing{form}"),
            ),
            (
                "V-1__x.sql",
                format!("p: not a migration file name: the version must be digits only{form}"),
            ),
            (
                "V1__.sql",
                format!("p: not a migration file name: the name after the two underscores is empty{form}"),
            ),
            (
                "V1__a b.sql",
                format!("p: not a migration file name: the name may hold only letters, digits and underscores{form}"),
            ),
            (
                "V1__x.SQL",
                format!("p: not a migration file name: migration files end in .sql{form}"),
            ),
            (
                "U3__backfill.sql",
                format!("p: not a migration file name: U is refinery's unversioned migration, which chatmigrate does not run (docs/migrations.md#refinerys-u-files){form}"),
            ),
            ("V0__x.sql", "p: version `0` is out of range (1 to 9223372036854775807)".into()),
            (
                "V9223372036854775808__x.sql",
                "p: version `9223372036854775808` is out of range (1 to 9223372036854775807)".into(),
            ),
        ] {
            assert_eq!(why(name), line, "{name}");
        }
    }

    #[test]
    fn directive_values_are_range_checked() {
        for (text, want) in [
            (
                "-- chatmigrate:lock-timeout 10000000000000000h\n",
                "f:1:1: lock-timeout `10000000000000000h` is out of range (1ms to 24h, or off)",
            ),
            (
                "-- chatmigrate:lock-timeout\n",
                "f:1:1: lock-timeout needs a duration (1ms to 24h, or off)",
            ),
            (
                "-- chatmigrate:statement-timeout -5s\n",
                "f:1:1: statement-timeout `-5s` is out of range (1ms to 24h, or off)",
            ),
            (
                "-- chatmigrate:statement-timeout 2 days\n",
                "f:1:1: statement-timeout `2 days` is not a duration (e.g. 500ms, 30s, 5min, 1h)",
            ),
            (
                "-- chatmigrate:no-transaction please\n",
                "f:1:1: no-transaction takes no argument, got `please`",
            ),
        ] {
            assert_eq!(parse_directives("f", text).unwrap_err().to_string(), want, "{text}");
        }
        let d = parse_directives("f", "-- chatmigrate:lock-timeout off\n-- chatmigrate:statement-timeout 0\n").unwrap();
        assert_eq!((d.lock_timeout, d.statement_timeout), (Some(Duration::ZERO), Some(Duration::ZERO)));
    }

    #[test]
    fn special_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir(p.join("V1__dir.sql")).unwrap();
        std::os::unix::fs::symlink(p.join("nowhere.sql"), p.join("V2__link.sql")).unwrap();
        let big = std::fs::File::create(p.join("V3__big.sql")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = |name: &str| read_regular(&p.join(name), name).unwrap_err().to_string();
        assert_eq!(e("V1__dir.sql"), "V1__dir.sql: is a directory, not a migration file");
        assert_eq!(
            e("V2__link.sql"),
            format!(
                "V2__link.sql: is a symbolic link to {}, which does not exist",
                p.join("nowhere.sql").display()
            )
        );
        assert_eq!(
            e("V3__big.sql"),
            "V3__big.sql: is 32.0 MiB, over the 32 MiB limit for one migration file"
        );
    }

    #[test]
    fn a_panic_while_reading_names_the_file() {
        let e = catch_panic(|| "reading V1__x.sql".into(), || -> Result<()> { panic!("boom") }).unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error while reading V1__x.sql: boom (this is a bug in chatmigrate)"
        );
        assert_eq!(e.kind(), "internal");
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
        let m = Migration::parse("V1__x.sql", "V1__x.sql", text.as_bytes())
            .unwrap()
            .split()
            .unwrap();
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
                .and_then(|m| m.split())
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

    mod properties {
        use super::super::*;
        use super::parse_file_name;
        use proptest::prelude::*;

        /// Names close to the grammar, and anything at all.
        fn file_names() -> impl Strategy<Value = String> {
            prop_oneof![
                "[Vv]?[-+]?[0-9]{0,22}_{0,3}[a-zA-Z0-9_ .\\-é]{0,12}(\\.sql|\\.SQL|\\.txt)?",
                "\\PC{0,40}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn a_file_name_is_a_version_or_an_error_naming_it(name in file_names()) {
                match check_file_name(&name, "the/path") {
                    Ok((version, n)) => {
                        prop_assert!(version >= 1);
                        prop_assert_eq!(parse_file_name(&format!("V{version}__{n}.sql")), Some((version, n)));
                    }
                    Err(e) => {
                        prop_assert!(e.to_string().starts_with("the/path: "), "{}", e);
                        prop_assert!(e.hint().is_some());
                    }
                }
            }

            #[test]
            fn a_directive_is_read_or_refused_at_its_line(
                blank in "(\n){0,2}",
                word in prop_oneof![
                    Just("no-transaction".to_string()), Just("lock-timeout".to_string()), Just("statement-timeout".to_string()),
                    Just("citus-parallel".to_string()), Just("ignore".to_string()), "[a-z-]{0,14}",
                ],
                arg in prop_oneof!["[-0-9. ]{0,24}(ms|s|min|h|d|off)?", "\\PC{0,20}", Just(String::new())],
            ) {
                let text = format!("{blank}-- chatmigrate:{word} {arg}\nSELECT 1;\n");
                match Migration::parse("V1__x.sql", "dir/V1__x.sql", text.as_bytes()).and_then(|m| m.split()) {
                    Ok(m) => {
                        for d in [m.directives.lock_timeout, m.directives.statement_timeout].into_iter().flatten() {
                            prop_assert!(d <= Duration::from_secs(24 * 3600));
                        }
                    }
                    Err(e) => {
                        let line = e.to_string();
                        prop_assert!(line.starts_with(&format!("dir/V1__x.sql:{}:", blank.len() + 1)), "{}", line);
                        prop_assert!(!line.contains('\n'));
                        prop_assert!(e.hint().is_some());
                    }
                }
            }

            /// Any bytes as a file: a migration, or an error naming the file.
            #[test]
            fn any_bytes_load_or_name_the_file(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
                let r = Migration::parse("V7__x.sql", "dir/V7__x.sql", &bytes).and_then(|m| m.split());
                if let Err(e) = r {
                    prop_assert!(e.to_string().starts_with("dir/V7__x.sql"), "{}", e);
                }
            }

            /// SQL-like text through the splitter: statements whose spans lie
            /// in the text, or an error at a position inside the file.
            #[test]
            fn sql_text_splits_or_fails_at_a_position(text in "([a-zA-Z_0-9 ,;()'\"$*=.\n-]|/\\*|\\*/|--|\\$\\$|E'|::){0,60}") {
                match Migration::parse("V7__x.sql", "f.sql", text.as_bytes()).and_then(|m| m.split()) {
                    Ok(m) => {
                        prop_assert!(!m.statements.is_empty());
                        for s in &m.statements {
                            prop_assert!(s.start <= s.end && s.end <= m.sql.len());
                        }
                    }
                    Err(e) => prop_assert!(e.to_string().starts_with("f.sql"), "{}", e),
                }
            }
        }
    }

    #[test]
    fn embedded_sets_share_one_version_space() {
        // The citus-only files sort among the portable ones; a version used
        // by both would be a DuplicateVersion for every citus environment.
        // With the placeholders substituted (V3 and V4 hold `${embedding_dimensions}`).
        let mut cfg = crate::settings::Config::from_url("postgres://localhost/x").unwrap();
        let portable = crate::placeholders::load(&cfg).unwrap();
        cfg.backend = crate::settings::BackendKind::Citus;
        let citus = crate::placeholders::load(&cfg).unwrap();
        assert!(portable.iter().all(|m| m.path.starts_with("embedded:V")));
        assert!(citus.len() > portable.len());
        let citus_only: Vec<_> = citus.iter().filter(|m| m.path.starts_with("embedded:citus/")).collect();
        assert_eq!(citus_only.len(), (crate::backend::citus::EXTRA_MIGRATIONS[0].files)().len());
        assert_eq!(citus.len(), portable.len() + citus_only.len());
        for m in citus {
            m.split().unwrap();
        }
    }
}
