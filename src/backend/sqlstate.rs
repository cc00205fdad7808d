//! The SQLSTATE of a PostgreSQL error that arrives as text only.
//!
//! The Data API has no SQLSTATE field. AWS's `DatabaseErrorException` is
//! believed to end its message in `; SQLState: XXXXX` (the JDBC text), but
//! that is not documented, and emulators send other spellings: no suffix,
//! `BadRequestException` with the bare server message, a JDBC wrapper
//! (`Database error code: 0. Message: ERROR: …`), an HTTP 500 that quotes
//! the connect error. When no code came with the error, chatmigrate reads
//! the server's message against [`TABLE`]: PostgreSQL's own message formats
//! (the `errmsg` texts in its sources, `%` for what the server fills in),
//! in English, the language the Data API's server sessions use.
//!
//! This is the one place such texts are matched. A message that matches no
//! entry has no SQLSTATE: the caller shows it in full as a generic SQL
//! error.

/// `(SQLSTATE, message format)`, first match wins: specific formats come
/// before the generic ones they would also match (`relation "%" already
/// exists` before `% "%" already exists`). `%` stands for one or more
/// characters; letters compare without regard to ASCII case.
pub const TABLE: &[(&str, &str)] = &[
    // undefined_table
    ("42P01", "relation \"%\" does not exist"),
    ("42P01", "table \"%\" does not exist"),
    ("42P01", "view \"%\" does not exist"),
    ("42P01", "materialized view \"%\" does not exist"),
    ("42P01", "sequence \"%\" does not exist"),
    ("42P01", "foreign table \"%\" does not exist"),
    ("42P01", "missing FROM-clause entry for table \"%\""),
    // invalid_catalog_name, invalid_schema_name
    ("3D000", "database \"%\" does not exist"),
    ("3F000", "schema \"%\" does not exist"),
    // undefined_column, undefined_function, undefined_object
    ("42703", "column \"%\" of relation \"%\" does not exist"),
    ("42703", "column \"%\" does not exist"),
    ("42703", "column % does not exist"),
    ("42883", "function % does not exist"),
    ("42883", "operator does not exist: %"),
    ("42704", "constraint \"%\" of relation \"%\" does not exist"),
    ("42704", "% \"%\" does not exist"),
    // duplicate_*: the object kinds with a code of their own first
    ("42P07", "relation \"%\" already exists"),
    ("42P04", "database \"%\" already exists"),
    ("42P06", "schema \"%\" already exists"),
    ("42701", "column \"%\" of relation \"%\" already exists"),
    ("42723", "function \"%\" already exists with same argument types"),
    ("42723", "function % already exists with same argument types"),
    ("42710", "% \"%\" for relation \"%\" already exists"),
    ("42710", "% \"%\" already exists"),
    // integrity constraints
    ("23505", "duplicate key value violates unique constraint \"%\""),
    ("23502", "null value in column \"%\" of relation \"%\" violates not-null constraint"),
    ("23502", "null value in column \"%\" violates not-null constraint"),
    ("23503", "% on table \"%\" violates foreign key constraint \"%\""),
    ("23514", "new row for relation \"%\" violates check constraint \"%\""),
    ("23514", "check constraint \"%\" of relation \"%\" is violated by some row"),
    ("23P01", "conflicting key value violates exclusion constraint \"%\""),
    // insufficient_privilege
    ("42501", "permission denied for %"),
    ("42501", "permission denied to %"),
    ("42501", "must be owner of %"),
    ("42501", "must be superuser to %"),
    // transaction state
    ("25006", "cannot execute % in a read-only transaction"),
    ("25001", "% cannot run inside a transaction block"),
    ("25001", "% cannot be executed inside a transaction block"),
    (
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    ),
    // locks, timeouts, cancels, concurrency
    ("55P03", "canceling statement due to lock timeout"),
    ("55P03", "could not obtain lock on %"),
    ("57014", "canceling statement due to statement timeout"),
    ("57014", "canceling statement due to user request"),
    ("55006", "source database \"%\" is being accessed by other users"),
    ("55006", "database \"%\" is being accessed by other users"),
    ("40P01", "deadlock detected"),
    ("40001", "could not serialize access due to %"),
    // the statement itself
    ("42601", "syntax error at or near %"),
    ("42601", "syntax error at end of input"),
    ("22P02", "invalid input syntax for type %"),
    ("22012", "division by zero"),
    ("2BP01", "cannot drop % because other objects depend on it"),
    // the server and the session
    ("57P01", "terminating connection due to administrator command"),
    ("57P03", "the database system is starting up"),
    ("57P03", "the database system is shutting down"),
    ("53300", "sorry, too many clients already"),
    ("53300", "remaining connection slots are reserved for %"),
    ("28P01", "password authentication failed for user \"%\""),
];

/// The longest first line that is read.
const MAX_LINE: usize = 4096;

/// The most `": "` wrappers skipped before a message.
const MAX_WRAPPERS: usize = 8;

/// The SQLSTATE that `message`, a PostgreSQL error message without its code,
/// implies; `None` when it is not one of the formats in [`TABLE`].
///
/// Only the first line is read (up to 4 KiB). The format may start at the
/// beginning of that line or after one of its first eight `": "`, so
/// wrappers such as `ERROR: `, `FATAL: `, `db error: ` or `Database error
/// code: 0. Message: ` are skipped; a trailing `.` is ignored.
pub fn from_message(message: &str) -> Option<&'static str> {
    let line = message.lines().next().unwrap_or("").trim();
    let line = line.strip_suffix('.').unwrap_or(line).trim_end();
    // PostgreSQL's messages are short (names have at most 63 bytes): a line
    // this long is something else, and is not worth the time.
    if line.len() > MAX_LINE {
        return None;
    }
    let starts: Vec<&str> = std::iter::once(0)
        .chain(line.match_indices(": ").map(|(i, _)| i + 2))
        .take(MAX_WRAPPERS + 1)
        .map(|i| line[i..].trim_start())
        .collect();
    // Table order first: a specific format wins wherever it starts.
    TABLE
        .iter()
        .find(|(_, format)| starts.iter().any(|text| matches(format.as_bytes(), text.as_bytes())))
        .map(|(code, _)| *code)
}

/// Whether `text` is `format` with each `%` replaced by one or more bytes
/// (ASCII letters compare without case). Each literal piece between two `%`
/// is placed at its earliest position: if any placement fits, that one
/// does, so the cost is linear in the text, whatever it holds.
fn matches(format: &[u8], text: &[u8]) -> bool {
    let text = text.to_ascii_lowercase();
    let format = format.to_ascii_lowercase();
    let pieces: Vec<&[u8]> = format.split(|&b| b == b'%').collect();
    let (first, rest) = pieces.split_first().expect("split yields one piece at least");
    let Some((last, middle)) = rest.split_last() else {
        return text == *first;
    };
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    // The last piece sits at the end; everything else must fit before it.
    let end = text.len() - last.len();
    let mut pos = first.len();
    for piece in middle {
        // One byte at least for the `%` before it.
        let from = pos + 1;
        let found = (from <= end)
            .then(|| text[from..end].windows(piece.len().max(1)).position(|w| w == *piece))
            .flatten();
        match found {
            Some(i) if !piece.is_empty() => pos = from + i + piece.len(),
            _ => return false,
        }
    }
    // One byte at least for the last `%`.
    end > pos
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as PostgreSQL 18 sends them (produced with psql against the
    /// test server, `\set VERBOSITY verbose`), with their real SQLSTATE.
    const REAL: &[(&str, &str)] = &[
        ("42P01", "relation \"nope\" does not exist"),
        ("42P01", "table \"nope\" does not exist"),
        ("42P01", "view \"nope\" does not exist"),
        ("42P01", "sequence \"nope\" does not exist"),
        ("42P01", "relation \"public.st_chat_history\" does not exist"),
        ("3D000", "database \"nodb_here\" does not exist"),
        ("3D000", "database \"cmt 1\" does not exist"),
        ("3F000", "schema \"nope\" does not exist"),
        ("42703", "column \"nocol\" does not exist"),
        ("42703", "column \"x\" of relation \"t1\" does not exist"),
        ("42883", "function nofunc() does not exist"),
        ("42883", "operator does not exist: integer = text"),
        ("42704", "index \"nope\" does not exist"),
        ("42704", "type \"nope\" does not exist"),
        ("42704", "extension \"nope\" does not exist"),
        ("42704", "role \"nope\" does not exist"),
        ("42P07", "relation \"t1\" already exists"),
        ("42P07", "relation \"i1\" already exists"),
        ("42701", "column \"id\" of relation \"t1\" already exists"),
        ("42710", "constraint \"c1\" for relation \"t1\" already exists"),
        ("42710", "extension \"plpgsql\" already exists"),
        ("42710", "type \"ty\" already exists"),
        ("42710", "role \"postgres\" already exists"),
        ("42P06", "schema \"s1\" already exists"),
        ("42P04", "database \"postgres\" already exists"),
        ("42723", "function \"f\" already exists with same argument types"),
        ("23505", "duplicate key value violates unique constraint \"t1_pkey\""),
        (
            "23505",
            "duplicate key value violates unique constraint \"pg_type_typname_nsp_index\"",
        ),
        (
            "23502",
            "null value in column \"id\" of relation \"t1\" violates not-null constraint",
        ),
        (
            "23503",
            "insert or update on table \"b\" violates foreign key constraint \"b_a_fkey\"",
        ),
        ("23514", "new row for relation \"t1\" violates check constraint \"c1\""),
        ("42501", "permission denied for table t1"),
        ("42501", "permission denied for schema public"),
        ("42501", "permission denied to create database"),
        ("42501", "permission denied to create extension \"vector\""),
        ("42501", "must be owner of table t1"),
        ("25006", "cannot execute CREATE TABLE in a read-only transaction"),
        ("25006", "cannot execute INSERT in a read-only transaction"),
        ("25001", "CREATE INDEX CONCURRENTLY cannot run inside a transaction block"),
        ("25001", "CREATE DATABASE cannot run inside a transaction block"),
        (
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block",
        ),
        ("55P03", "canceling statement due to lock timeout"),
        ("55P03", "could not obtain lock on relation \"t1\""),
        ("55P03", "could not obtain lock on row in relation \"t1\""),
        ("57014", "canceling statement due to statement timeout"),
        ("57014", "canceling statement due to user request"),
        ("55006", "source database \"template1\" is being accessed by other users"),
        ("40P01", "deadlock detected"),
        ("40001", "could not serialize access due to concurrent update"),
        ("42601", "syntax error at or near \"selec\""),
        ("42601", "syntax error at end of input"),
        ("22P02", "invalid input syntax for type integer: \"x\""),
        ("22012", "division by zero"),
        ("2BP01", "cannot drop table t4 because other objects depend on it"),
        ("57P01", "terminating connection due to administrator command"),
        ("57P03", "the database system is starting up"),
        ("53300", "sorry, too many clients already"),
        ("28P01", "password authentication failed for user \"app\""),
    ];

    #[test]
    fn real_postgresql_messages_get_their_sqlstate() {
        for (code, message) in REAL {
            assert_eq!(from_message(message), Some(*code), "{message}");
        }
    }

    #[test]
    fn wrappers_severity_and_trailing_lines_are_skipped() {
        for wrapped in [
            "ERROR: relation \"nope\" does not exist",
            "ERROR:  relation \"nope\" does not exist",
            "Database error code: 0. Message: ERROR: relation \"nope\" does not exist\n  Position: 15",
            "db error: ERROR: relation \"nope\" does not exist",
            "Relation \"nope\" does not exist.",
        ] {
            assert_eq!(from_message(wrapped), Some("42P01"), "{wrapped}");
        }
        assert_eq!(
            from_message("Could not connect to the database: db error: FATAL: database \"x\" does not exist"),
            Some("3D000")
        );
        assert_eq!(from_message("FATAL: database \"x\" does not exist"), Some("3D000"));
    }

    #[test]
    fn other_texts_have_no_sqlstate() {
        for other in [
            "",
            "something odd",
            "boom 1",
            "already exists.",
            "Transaction is still running a query",
            "Database returned more than the allowed response size limit",
            "The DB cluster doesn't have a DB instance.",
            "relation \"nope\" does not exist, or so it seems",
        ] {
            assert_eq!(from_message(other), None, "{other}");
        }
    }

    #[test]
    fn long_and_odd_texts_are_read_in_linear_time() {
        let start = std::time::Instant::now();
        let quotes = "\" ".repeat(200_000);
        assert_eq!(from_message(&quotes), None);
        let long = format!("relation \"{}\" does not exist", "x".repeat(4000));
        assert_eq!(from_message(&long), Some("42P01"));
        let huge = format!("relation \"{}\" does not exist", "x".repeat(100_000));
        assert_eq!(from_message(&huge), None);
        assert_eq!(from_message(&"a: ".repeat(100_000)), None);
        let odd = format!("{}: é\u{0}: \": %: {}", "ü".repeat(500), "%\"".repeat(500));
        assert_eq!(from_message(&odd), None);
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
        // One byte at least per `%`.
        assert_eq!(from_message("relation \"\" does not exist"), None);
        assert_eq!(from_message("syntax error at or near "), None);
    }

    #[test]
    fn specific_formats_win_over_generic_ones() {
        assert_eq!(from_message("relation \"x\" already exists"), Some("42P07"));
        assert_eq!(from_message("schema \"x\" already exists"), Some("42P06"));
        assert_eq!(from_message("trigger \"t\" for relation \"x\" already exists"), Some("42710"));
        assert_eq!(from_message("database \"x\" does not exist"), Some("3D000"));
        assert_eq!(from_message("schema \"x\" does not exist"), Some("3F000"));
    }
}
