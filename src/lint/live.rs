//! What the live database says about the tables a run touches, for the
//! locking rules: whether each table exists, and how big it is.
//!
//! Without it (`chatmigrate lint` in CI) the rules are conservative: a table
//! this migration did not create may hold rows. With it (`up`, `up
//! --dry-run`, `lint --pending`, `verify`), a table is *new* when it does
//! not exist yet or a migration earlier in the same run creates it, and a
//! table that exists is judged by its size: only one above the threshold
//! ([`Thresholds`], `lint_large_table_rows` / `lint_large_table_mb`), or
//! one whose size cannot be read, is a hazard. The numbers come from the
//! catalog (`pg_class.reltuples`, the relation's size on disk), read in one
//! query for every table of the run (`schema::live`); this module only
//! holds and judges them.

use std::collections::HashMap;

/// Above either of these, a table is large: a lock held on it while a
/// statement works through its rows hurts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Estimated rows (`lint_large_table_rows`, default 10,000).
    pub rows: i64,
    /// Bytes on disk, with indexes and TOAST (`lint_large_table_mb`, default 10 MB).
    pub bytes: i64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            rows: 10_000,
            bytes: 10 * 1024 * 1024,
        }
    }
}

impl Thresholds {
    /// `10,000 rows or 10 MB`.
    pub fn describe(&self) -> String {
        format!("{} rows or {}", thousands(self.rows), pretty_bytes(self.bytes))
    }
}

/// One table, as the catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Size {
    /// No such table (yet).
    Missing,
    /// The table exists. `rows` is the planner's estimate: `reltuples`
    /// scaled to the table's current size, or, for a table never analyzed,
    /// its size divided by an estimated row width (`estimated`).
    Measured {
        rows: i64,
        /// The row count was estimated from the size (never analyzed).
        estimated: bool,
        /// Everything on disk: heap, TOAST and indexes.
        bytes: i64,
        /// The heap alone: 0 means no row was ever stored.
        heap_bytes: i64,
    },
    /// It exists, but its size could not be read (why).
    Unknown(String),
}

/// The live facts for one run.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// By lint table key ([`crate::lint::ast::rel_key`]).
    pub tables: HashMap<String, Size>,
    pub thresholds: Thresholds,
    /// The positions (in the set) of the migrations of this run.
    pub run: Vec<usize>,
    /// Nothing exists in the database yet (it is about to be created): a
    /// table that was not looked up is missing, not unknown.
    pub empty_database: bool,
}

impl Live {
    /// A database where nothing exists yet (`up --create-database` before
    /// the database is created): every table is new.
    pub fn empty(thresholds: Thresholds, run: Vec<usize>) -> Live {
        Live {
            tables: HashMap::new(),
            thresholds,
            run,
            empty_database: true,
        }
    }

    /// Whether the catalog has no such table. A table that was not looked
    /// up is missing only in an empty database ([`Live::empty`]); otherwise
    /// it is treated as of unknown size.
    pub fn missing(&self, table: &str) -> bool {
        match self.tables.get(table) {
            Some(Size::Missing) => true,
            Some(_) => false,
            None => self.empty_database,
        }
    }

    /// Above the threshold, or of unknown size: a lock held on it hurts.
    pub fn large(&self, table: &str) -> bool {
        match self.tables.get(table) {
            Some(Size::Missing) => false,
            Some(Size::Measured { rows, bytes, .. }) => *rows > self.thresholds.rows || *bytes > self.thresholds.bytes,
            Some(Size::Unknown(_)) => true,
            None => !self.empty_database,
        }
    }

    /// Whether the table holds (or may hold) a row: a statement that fails
    /// on any row (ADD COLUMN ... NOT NULL without a default) fails here.
    pub fn holds_rows(&self, table: &str) -> bool {
        match self.tables.get(table) {
            Some(Size::Missing) => false,
            Some(Size::Measured { rows, heap_bytes, .. }) => *heap_bytes > 0 && *rows > 0,
            Some(Size::Unknown(_)) => true,
            None => !self.empty_database,
        }
    }

    /// `table st_chat_history_table holds about 25,000 rows (3.2 MB)`.
    pub fn describe(&self, table: &str) -> String {
        match self.tables.get(table) {
            Some(Size::Measured {
                rows, estimated, bytes, ..
            }) => {
                let how = if *estimated {
                    ", estimated from its size: never analyzed"
                } else {
                    ""
                };
                format!(
                    "table {table} holds about {} rows ({}{how})",
                    thousands(*rows),
                    pretty_bytes(*bytes)
                )
            }
            Some(Size::Unknown(why)) => format!("the size of table {table} is unknown ({why})"),
            Some(Size::Missing) => format!("table {table} does not exist yet"),
            None => format!("the size of table {table} is unknown"),
        }
    }

    /// The clause a rule adds to its message: the table's size, and
    /// whether it is above the threshold.
    pub fn why_large(&self, table: &str) -> String {
        match self.tables.get(table) {
            Some(Size::Measured { .. }) if !self.large(table) => self.describe(table),
            Some(Size::Measured { .. }) => format!(
                "{}, above the gate's threshold of {}",
                self.describe(table),
                self.thresholds.describe()
            ),
            _ => format!("{}, so it may hold rows", self.describe(table)),
        }
    }
}

/// `25,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `812 bytes`, `64 kB`, `3.2 MB`, `1.5 GB` (units of 1024, as pg_size_pretty).
pub fn pretty_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else if v < 10.0 && v.fract() >= 0.05 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{:.0} {}", v.round(), UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(25_000), "25,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(pretty_bytes(812), "812 bytes");
        assert_eq!(pretty_bytes(64 * 1024), "64 kB");
        assert_eq!(pretty_bytes(3_355_443), "3.2 MB");
        assert_eq!(pretty_bytes(10 * 1024 * 1024), "10 MB");
        assert_eq!(Thresholds::default().describe(), "10,000 rows or 10 MB");
    }

    #[test]
    fn judged_by_size() {
        let mut live = Live::empty(Thresholds::default(), vec![]);
        assert!(live.missing("t") && !live.large("t") && !live.holds_rows("t"));
        live.empty_database = false;
        live.tables.insert("t".into(), Size::Missing);
        live.tables.insert(
            "small".into(),
            Size::Measured {
                rows: 500,
                estimated: false,
                bytes: 80_000,
                heap_bytes: 40_000,
            },
        );
        live.tables.insert(
            "big".into(),
            Size::Measured {
                rows: 25_000,
                estimated: true,
                bytes: 3_355_443,
                heap_bytes: 2_000_000,
            },
        );
        live.tables.insert("odd".into(), Size::Unknown("a foreign table".into()));
        assert!(!live.large("small") && live.holds_rows("small"));
        assert!(live.large("big"));
        assert!(live.large("odd") && live.holds_rows("odd"));
        // Not looked up in a database that has tables: unknown.
        assert!(!live.missing("other") && live.large("other"));
        assert_eq!(
            live.why_large("big"),
            "table big holds about 25,000 rows (3.2 MB, estimated from its size: never analyzed), above the gate's threshold of 10,000 rows or 10 MB"
        );
    }
}
