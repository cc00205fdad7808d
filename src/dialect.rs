//! The SQL chatmigrate itself sends (history table, lock, catalog checks),
//! loaded from `dialects/<name>/*.sql` at compile time, with identifiers
//! quoted and values escaped by the driver's own functions
//! (`postgres_protocol::escape`), never spliced by hand. `dialects/citus/`
//! holds only what a Citus node is asked on top of the PostgreSQL SQL.

use postgres_protocol::escape::{escape_identifier, escape_literal};
use sha2::{Digest, Sha256};

use crate::history::{Row, TOOL_VERSION};
use crate::settings::HistoryTable;

/// A value bound into a dialect statement's `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Text(String),
    Bool(bool),
    Null,
    /// A text[] array, each element escaped.
    TextArray(Vec<String>),
    /// A fixed SQL expression from `dialects/` (never user input).
    Expr(&'static str),
    /// A value known only when a run happens, as a dry run shows it:
    /// `<what>` (never sent).
    Placeholder(&'static str),
}

impl Value {
    pub fn opt_text(s: Option<&str>) -> Value {
        s.map(|s| Value::Text(s.to_string())).unwrap_or(Value::Null)
    }

    /// The value as an SQL literal, escaped by the driver.
    pub fn literal(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Text(s) => escape_literal(s),
            Value::Bool(b) => b.to_string(),
            Value::Null => "NULL".into(),
            Value::TextArray(items) => format!(
                "ARRAY[{}]::text[]",
                items.iter().map(|s| escape_literal(s)).collect::<Vec<_>>().join(", ")
            ),
            Value::Expr(e) => e.trim().to_string(),
            Value::Placeholder(what) => format!("<{what}>"),
        }
    }
}

/// The values of `history_upsert.sql`, in order.
pub fn history_values(row: &Row, execution_ms: Value) -> Vec<Value> {
    vec![
        Value::Int(row.version),
        Value::Text(row.name.clone()),
        Value::Text(row.checksum.clone()),
        Value::Text(row.status.as_str().into()),
        Value::Int(row.statements_done.into()),
        Value::Int(row.statements_total.into()),
        execution_ms,
        Value::Text(TOOL_VERSION.into()),
        Value::Text(row.backend.clone()),
        Value::Bool(row.out_of_order),
        Value::opt_text(row.error.as_deref()),
    ]
}

/// The SQL chatmigrate itself sends (history, lock, catalog reads), with
/// the history table's names filled in.
#[derive(Debug, Clone)]
pub struct ToolSql {
    history: String,
    log: String,
    lease: String,
    /// The applied repeatable migrations (`repeatable_*.sql`).
    repeatable: String,
    schema: Option<String>,
    lock_key: i64,
}

macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/dialects/postgres/", $name, ".sql"))
    };
}

macro_rules! citus_sql {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/dialects/citus/", $name, ".sql"))
    };
}

/// Quotes an identifier (always, so names are taken as written).
pub fn quote(ident: &str) -> String {
    escape_identifier(ident)
}

impl ToolSql {
    pub fn new(history: &HistoryTable, dbname: &str) -> ToolSql {
        let qualify = |t: &str| match &history.schema {
            Some(s) => format!("{}.{}", quote(s), quote(t)),
            None => quote(t),
        };
        let mut h = Sha256::new();
        h.update(format!(
            "chatmigrate\0{dbname}\0{}\0{}",
            history.schema.as_deref().unwrap_or(""),
            history.table
        ));
        let d = h.finalize();
        let key = i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) & i64::MAX;
        ToolSql {
            history: qualify(&history.table),
            log: qualify(&format!("{}_log", history.table)),
            lease: qualify(&format!("{}_lease", history.table)),
            repeatable: qualify(&format!("{}_repeatable", history.table)),
            schema: history.schema.clone(),
            lock_key: key,
        }
    }

    /// The advisory-lock key: derived from the database and the history table.
    pub fn lock_key(&self) -> i64 {
        self.lock_key
    }

    fn fill(&self, template: &str) -> String {
        template
            .trim_end()
            .replace("{history}", &self.history)
            .replace("{log}", &self.log)
            .replace("{lease}", &self.lease)
            .replace("{repeatable}", &self.repeatable)
    }

    /// Fills `$n` placeholders of a dialect template with escaped literals,
    /// in one pass (a value that itself contains `$2` stays as it is).
    pub fn bind(sql: &str, values: &[Value]) -> String {
        let mut out = String::with_capacity(sql.len() + 64);
        let mut rest = sql;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let digits = rest[i + 1..].bytes().take_while(u8::is_ascii_digit).count();
            let n: usize = rest[i + 1..i + 1 + digits].parse().unwrap_or(0);
            match values.get(n.wrapping_sub(1)) {
                Some(v) if digits > 0 => out.push_str(&v.literal()),
                _ => out.push_str(&rest[i..i + 1 + digits]),
            }
            rest = &rest[i + 1 + digits..];
        }
        out.push_str(rest);
        out
    }

    /// PL/pgSQL that creates the history schema only where it is missing:
    /// `CREATE SCHEMA IF NOT EXISTS` on a schema that exists still needs
    /// the CREATE privilege on the database, and with Citus's schema-based
    /// sharding on it turns an empty regular schema into a distributed one.
    fn create_schema_if_missing(schema: &str) -> String {
        format!(
            "IF to_regnamespace({}) IS NULL THEN CREATE SCHEMA IF NOT EXISTS {}; END IF;",
            escape_literal(&quote(schema)),
            quote(schema)
        )
    }

    /// Statements that create the history schema and tables, in order.
    pub fn create_history(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = &self.schema {
            out.push(format!(
                "DO $chatmigrate$ BEGIN {} END $chatmigrate$",
                Self::create_schema_if_missing(s)
            ));
        }
        out.push(
            self.fill(sql!("history_create"))
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        out
    }

    /// The connect-time probe (`probe.sql`): recovery, read-only session and
    /// where it was set, user, database, whether the history table exists;
    /// then the backend's `extra` columns (Citus: its extension's version).
    pub fn probe(&self, extra: &[&str]) -> String {
        let mut sql = Self::bind(
            strip_comments(sql!("probe")).trim_end(),
            &[Value::Text(self.history.clone()), Value::Text(self.repeatable.clone())],
        );
        for column in extra {
            sql.push_str(",\n       ");
            sql.push_str(column);
        }
        sql
    }

    /// History rows with a version above `after`, at most `limit` of them
    /// (`None`: all), every column as text.
    pub fn select_history(&self, after: i64, limit: Option<u32>) -> String {
        let limit = limit.map(|l| Value::Int(l.into())).unwrap_or(Value::Expr("ALL"));
        Self::bind(&self.fill(strip_comments(sql!("history_select"))), &[Value::Int(after), limit])
    }

    /// As [`ToolSql::select_history`], with only the columns `up` plans with
    /// ([`Row::from_plan_text`]).
    pub fn select_history_for_plan(&self, after: i64, limit: Option<u32>) -> String {
        let limit = limit.map(|l| Value::Int(l.into())).unwrap_or(Value::Expr("ALL"));
        Self::bind(&self.fill(strip_comments(sql!("history_select_plan"))), &[Value::Int(after), limit])
    }

    /// Creates the table of repeatable migrations where it is missing
    /// (`repeatable_create.sql`; the history schema exists by then).
    pub fn create_repeatables(&self) -> String {
        self.fill(strip_comments(sql!("repeatable_create")))
    }

    /// The applied repeatable migrations, as history rows of version 0, all
    /// columns or (`for_plan`) those `up` plans with (`repeatable_select*.sql`).
    pub fn select_repeatables(&self, for_plan: bool) -> String {
        let template = match for_plan {
            true => sql!("repeatable_select_plan"),
            false => sql!("repeatable_select"),
        };
        self.fill(strip_comments(template))
    }

    /// `down`: forgets every applied repeatable migration, logged
    /// (`repeatable_reset.sql`).
    pub fn reset_repeatables(&self) -> String {
        self.fill(strip_comments(sql!("repeatable_reset")))
    }

    /// repair: removes the row of the repeatable migration `name`.
    pub fn delete_repeatable(&self, name: &str) -> String {
        Self::bind(&self.fill(strip_comments(sql!("repeatable_delete"))), &[Value::Text(name.into())])
    }

    /// A history row written only while the lease owner (the last value,
    /// after [`history_values`]) holds a live lease: no row written (and
    /// none returned) otherwise.
    pub fn upsert_history_fenced(&self, values: &[Value]) -> String {
        let plain = "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        let template = Self::upsert_template(values);
        debug_assert!(template.contains(plain));
        let fenced = template.replace(plain, strip_comments(sql!("lease_fence")).trim_end());
        Self::bind(&self.fill(&fenced), values)
    }

    /// `history_upsert.sql`, or for a repeatable migration's row (version
    /// 0) `repeatable_upsert.sql`, which takes the same values.
    fn upsert_template(values: &[Value]) -> &'static str {
        match values.first() {
            Some(Value::Int(crate::history::REPEATABLE)) => strip_comments(sql!("repeatable_upsert")),
            _ => sql!("history_upsert"),
        }
    }

    /// Creates the lease table (with its schema) and its one row where
    /// missing, and upgrades a lease table of an older release in place.
    pub fn setup_lease(&self) -> String {
        let schema = match &self.schema {
            Some(s) => Self::create_schema_if_missing(s),
            None => String::new(),
        };
        self.fill(strip_comments(sql!("lease_setup")))
            .replace("{lease_text}", &escape_literal(&self.lease))
            .replace("{create_schema}", &schema)
    }

    /// Takes the lease for `owner`: a session holder (`ttl` = `None`) with
    /// the session advisory lock first, a Data API holder for `ttl`. One row:
    /// holds the advisory lock, took the lease, the lease row exists.
    pub fn acquire_lease(&self, owner: &str, holder: &str, ttl: Option<std::time::Duration>) -> String {
        Self::bind(
            &self.fill(strip_comments(sql!("lease_acquire"))),
            &[
                Value::Text(owner.into()),
                Value::Text(holder.into()),
                ttl.map(interval).unwrap_or(Value::Null),
                Value::Int(self.lock_key),
                Value::Bool(ttl.is_none()),
            ],
        )
    }

    /// Extends a live Data API lease; returns a row while `owner` still holds it.
    pub fn renew_lease(&self, owner: &str, ttl: std::time::Duration) -> String {
        Self::bind(
            &self.fill(strip_comments(sql!("lease_renew"))),
            &[Value::Text(owner.into()), interval(ttl)],
        )
    }

    /// Frees the lease and, for a session holder, drops the advisory lock.
    pub fn release_lease(&self, owner: &str, session: bool) -> String {
        Self::bind(
            &self.fill(strip_comments(sql!("lease_release"))),
            &[Value::Text(owner.into()), Value::Int(self.lock_key), Value::Bool(session)],
        )
    }

    /// Who holds the lock (see `lease_holder.sql` for the columns).
    pub fn lease_holder(&self) -> String {
        Self::bind(
            &self.fill(strip_comments(sql!("lease_holder"))),
            &[Value::Int(self.lock_key), Value::Text(self.lease.clone())],
        )
    }

    /// The first call of a Data API migration transaction: its `SET LOCAL`
    /// settings as `set_config` calls, returning a row only while `owner`
    /// holds a live lease, which it keeps locked until the transaction ends.
    pub fn transaction_guard(&self, settings: &[String], owner: &Value) -> String {
        let calls = set_config_calls(settings);
        let list = if calls.is_empty() { "1".to_string() } else { calls.join(", ") };
        Self::bind(
            &self.fill(strip_comments(sql!("lease_guard"))).replace("{settings}", &list),
            std::slice::from_ref(owner),
        )
    }

    /// `SET LOCAL a = x; SET LOCAL b = y` as one statement:
    /// `SELECT set_config('a', x, true), set_config('b', y, true)`.
    pub fn combined_settings(settings: &[String]) -> String {
        format!("SELECT {}", set_config_calls(settings).join(", "))
    }

    /// Is `statement` still running in another session of this database?
    /// Its server pid and seconds running, or no row.
    pub fn statement_abandoned(statement: &str) -> String {
        Self::bind(strip_comments(sql!("statement_abandoned")), &[Value::Text(statement.into())])
    }

    /// The progress of the index build in server process `pid` (`0`: the
    /// session running exactly `statement`), one row or none
    /// (`index_progress.sql` lists its columns).
    pub fn index_progress(pid: i64, statement: &str) -> String {
        Self::bind(
            strip_comments(sql!("index_progress")),
            &[Value::Int(pid), Value::Text(statement.into())],
        )
    }

    /// The server process that holds the migration lock while it builds
    /// an index (a build left running at an earlier run's deadline), or no
    /// row.
    pub fn lock_builder(&self) -> String {
        Self::bind(strip_comments(sql!("lock_builder")), &[Value::Int(self.lock_key)])
    }

    /// `1` while backend `pid` is still running a statement.
    pub fn statement_running(pid: i64) -> String {
        Self::bind(strip_comments(sql!("statement_running")), &[Value::Int(pid)])
    }

    /// 'valid', 'invalid', or no row, for an index in `schema` (or the current one).
    pub fn index_state(name: &str, schema: Option<&str>) -> String {
        Self::bind(
            strip_comments(sql!("index_state")),
            &[Value::Text(name.to_string()), Value::opt_text(schema)],
        )
    }

    pub fn upsert_history(&self, values: &[Value]) -> String {
        Self::bind(&self.fill(Self::upsert_template(values)), values)
    }

    /// The applied row of `version` takes the file's checksum and name (repair).
    pub fn accept_file(&self, version: i64, name: &str, checksum: &str) -> String {
        Self::bind(
            &self.fill(strip_comments(sql!("history_accept_file"))),
            &[
                Value::Int(version),
                Value::Text(checksum.to_string()),
                Value::Text(name.to_string()),
            ],
        )
    }

    /// What `down` writes for `row` (status undo-step, undo-failed or undo;
    /// `row.checksum`: the undo file's), fenced by the lease `owner` on a
    /// lease holder: see `history_undone.sql`, `history_undo_step.sql`.
    pub fn undo_history(&self, row: &Row, execution_ms: Value, owner: Option<&Value>) -> String {
        let fence = match owner {
            Some(o) => format!(
                "AND EXISTS (SELECT 1 FROM {} WHERE name = 'migrations' AND owner = {} AND pid IS NULL AND expires_at > now() FOR KEY SHARE)",
                self.lease,
                o.literal()
            ),
            None => String::new(),
        };
        let fill = |t: &str| self.fill(strip_comments(t)).replace("{fence}", &fence);
        match row.status {
            crate::history::Status::Undone => Self::bind(
                &fill(sql!("history_undone")),
                &[
                    Value::Int(row.version),
                    Value::Text(row.name.clone()),
                    Value::Text(row.checksum.clone()),
                    Value::Int(row.statements_total.into()),
                    execution_ms,
                    Value::Text(row.backend.clone()),
                ],
            ),
            status => Self::bind(
                &fill(sql!("history_undo_step")),
                &[
                    Value::Int(row.version),
                    Value::Text(status.as_str().into()),
                    Value::Text(row.checksum.clone()),
                    Value::Int(row.statements_done.into()),
                    Value::Int(row.statements_total.into()),
                    Value::opt_text(row.error.as_deref()),
                ],
            ),
        }
    }

    /// Every undo that stopped part way, as (version, detail) rows
    /// (`undo_progress_all.sql`).
    pub fn undo_progress_all(&self) -> String {
        self.fill(strip_comments(sql!("undo_progress_all")))
    }

    /// How far an interrupted no-transaction undo got (`undo_progress.sql`).
    pub fn undo_progress(&self, version: i64) -> String {
        Self::bind(&self.fill(strip_comments(sql!("undo_progress"))), &[Value::Int(version)])
    }

    pub fn delete_history(&self, version: i64) -> String {
        Self::bind(&self.fill(sql!("history_delete")), &[Value::Int(version)])
    }

    pub fn insert_log(&self, values: &[Value]) -> String {
        Self::bind(&self.fill(sql!("log_insert")), values)
    }

    pub fn database_exists(name: &str) -> String {
        Self::bind(sql!("database_exists"), &[Value::Text(name.to_string())])
    }

    /// The qualified name of an INVALID index (left by a failed CONCURRENTLY
    /// build) with this name, in `schema` or the current schema.
    pub fn invalid_index(name: &str, schema: Option<&str>) -> String {
        Self::bind(
            sql!("invalid_index").trim_end(),
            &[Value::Text(name.to_string()), Value::opt_text(schema)],
        )
    }

    /// What planning a vector index build on `table` (a lint table key)
    /// reads: the server's version and `maintenance_work_mem`, the table's
    /// row estimate and blocks, `column`'s type and modifier.
    pub fn index_build_plan(table: &str, column: Option<&str>) -> String {
        Self::bind(
            strip_comments(sql!("index_build_plan")).trim_end(),
            &[Value::Text(table.to_string()), Value::opt_text(column)],
        )
    }

    /// The pgvector indexes a `REINDEX INDEX index` or `REINDEX TABLE table`
    /// rebuilds, with what planning their builds needs.
    pub fn reindex_build_plan(index: Option<&str>, table: Option<&str>) -> String {
        Self::bind(
            strip_comments(sql!("reindex_build_plan")).trim_end(),
            &[Value::opt_text(index), Value::opt_text(table)],
        )
    }

    /// After a CONCURRENTLY build: the indexes it made that are not valid
    /// or not ready: index `name` in `schema`, or every index of `table`.
    pub fn index_validity(name: Option<&str>, schema: Option<&str>, table: Option<&str>) -> String {
        Self::bind(
            strip_comments(sql!("index_validity")).trim_end(),
            &[Value::opt_text(name), Value::opt_text(schema), Value::opt_text(table)],
        )
    }

    /// Sessions holding locks on these tables: who blocks a migration.
    pub fn lock_blockers(tables: &[String]) -> String {
        Self::bind(sql!("lock_blockers"), &[Value::TextArray(tables.to_vec())])
    }

    /// Server-side elapsed time of the current transaction, in ms.
    pub fn elapsed_ms() -> Value {
        Value::Expr(sql!("elapsed_ms"))
    }
}

/// The SQL of the `citus` backend (`dialects/citus/`): what differs from
/// PostgreSQL is only what chatmigrate asks a Citus node.
pub mod citus {
    use super::{escape_literal, quote, strip_comments, ToolSql, Value};

    /// The citus extension's version (NULL without it), as a column of the
    /// connect-time probe: one round trip less than a query of its own.
    pub fn extension() -> &'static str {
        strip_comments(citus_sql!("extension")).trim_end()
    }

    /// Release, group, workers, coordinator, settings (see the file).
    pub fn probe() -> &'static str {
        strip_comments(citus_sql!("probe")).trim_end()
    }

    /// The index builds on every worker, one JSON array per worker (see the file).
    pub fn worker_index_progress() -> &'static str {
        strip_comments(citus_sql!("worker_index_progress")).trim_end()
    }

    /// The table's regclass text (or NULL) and whether Citus manages it.
    pub fn table_state(table: &str) -> String {
        ToolSql::bind(strip_comments(citus_sql!("table_state")).trim_end(), &[Value::Text(table.into())])
    }

    /// Planning a vector index build on a table Citus manages: shards, the
    /// largest shard's rows and blocks, the database (see the file).
    pub fn index_build_shards(table: &str) -> String {
        ToolSql::bind(
            strip_comments(citus_sql!("index_build_shards")).trim_end(),
            &[Value::Text(table.into())],
        )
    }

    /// After a CONCURRENTLY build on Citus: what it left not valid or not
    /// ready, on the coordinator and on every shard placement.
    pub fn index_validity(name: Option<&str>, schema: Option<&str>, table: Option<&str>) -> String {
        ToolSql::bind(
            strip_comments(citus_sql!("index_validity")).trim_end(),
            &[Value::opt_text(name), Value::opt_text(schema), Value::opt_text(table)],
        )
    }

    /// Before a CONCURRENTLY build on Citus: the index of its name when it
    /// or one of its shard indexes was left invalid.
    pub fn invalid_index(name: &str, schema: Option<&str>) -> String {
        ToolSql::bind(
            strip_comments(citus_sql!("invalid_index")).trim_end(),
            &[Value::Text(name.to_string()), Value::opt_text(schema)],
        )
    }

    /// Whether the table has a row; `regclass` is the server's own text
    /// for the table, from [`table_state`].
    pub fn has_rows(regclass: &str) -> String {
        strip_comments(citus_sql!("has_rows")).trim_end().replace("{table}", regclass)
    }

    /// Whether Citus is loaded, and `citus.enable_create_database_propagation`
    /// (NULL where Citus is not loaded or predates it).
    pub fn create_database() -> &'static str {
        strip_comments(citus_sql!("create_database")).trim_end()
    }

    /// Creates the schema of chatmigrate's own tables where it is missing,
    /// with schema-based sharding off for that statement.
    pub fn history_schema(schema: &str) -> String {
        strip_comments(citus_sql!("history_schema"))
            .trim_end()
            .replace("{schema_text}", &escape_literal(&quote(schema)))
            .replace("{schema}", &quote(schema))
    }

    /// Whether that schema is a distributed schema (Citus 12.0 and later).
    pub fn tenant_schema(schema: &str) -> String {
        strip_comments(citus_sql!("tenant_schema"))
            .trim_end()
            .replace("{schema_text}", &escape_literal(&quote(schema)))
    }

    /// Each active worker as `host:port`, whether the coordinator reached
    /// it, and what it got, waiting at most `timeout` per connection.
    pub fn workers_reachable(timeout: std::time::Duration) -> String {
        strip_comments(citus_sql!("workers_reachable"))
            .trim_end()
            .replace("{timeout_ms}", &timeout.as_millis().max(1).to_string())
    }
}

/// A dialect file without its leading `--` comment lines.
fn strip_comments(sql: &str) -> &str {
    let mut rest = sql;
    while rest.starts_with("--") {
        rest = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
    }
    rest
}

/// `SET LOCAL name = value` / `SET LOCAL name TO value` statements as
/// `set_config('name', 'value', true)` calls.
fn set_config_calls(settings: &[String]) -> Vec<String> {
    settings
        .iter()
        .filter_map(|s| {
            let rest = s.strip_prefix("SET LOCAL ")?;
            rest.split_once(" = ").or_else(|| rest.split_once(" TO "))
        })
        .map(|(name, value)| {
            let value = if value.starts_with('\'') {
                value.to_string()
            } else {
                format!("'{value}'")
            };
            format!("set_config('{name}', {value}, true)")
        })
        .collect()
}

/// A duration as an SQL interval literal in milliseconds.
fn interval(d: std::time::Duration) -> Value {
    Value::Text(format!("{} milliseconds", d.as_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_binding() {
        let d = ToolSql::new(
            &HistoryTable {
                schema: Some("My\"Schema".into()),
                table: "hist".into(),
            },
            "db",
        );
        assert!(d
            .select_history(5, Some(100))
            .contains("FROM \"My\"\"Schema\".\"hist\" h WHERE h.version > 5 ORDER BY h.version LIMIT 100"));
        assert!(d.select_history(i64::MIN, None).ends_with("LIMIT ALL"));
        // The schema only where it is missing (no CREATE privilege needed,
        // and no Citus schema-based sharding applied to an existing one).
        let missing = "IF to_regnamespace('\"My\"\"Schema\"') IS NULL THEN CREATE SCHEMA IF NOT EXISTS \"My\"\"Schema\"; END IF;";
        assert_eq!(d.create_history()[0], format!("DO $chatmigrate$ BEGIN {missing} END $chatmigrate$"));
        assert!(d.setup_lease().contains(missing), "{}", d.setup_lease());
        let row = Row {
            version: 7,
            name: "n".into(),
            checksum: "sha256:x".into(),
            status: crate::history::Status::Applied,
            statements_done: 1,
            statements_total: 1,
            applied_at: String::new(),
            execution_ms: 0,
            installed_by: String::new(),
            tool_version: TOOL_VERSION.into(),
            backend: "rds-data".into(),
            out_of_order: false,
            error: None,
        };
        let mut v = history_values(&row, Value::Int(0));
        v.push(Value::Text("me".into()));
        let f = d.upsert_history_fenced(&v);
        assert!(
            f.contains("SELECT 7, 'n'")
                && f.contains("owner = 'me' AND pid IS NULL AND expires_at > now()\n              FOR KEY SHARE)\nON CONFLICT")
                && f.ends_with("\nRETURNING h.execution_ms::text"),
            "{f}"
        );
        assert_eq!(
            ToolSql::bind("$1 $10 $2", &[Value::Int(1), Value::Text("o'k $1".into())]),
            "1 $10 'o''k $1'"
        );
        assert!(d.lock_key() >= 0);
    }

    #[test]
    fn the_history_upsert_updates_with_no_function() {
        // Citus refuses a function that is not IMMUTABLE (now(),
        // current_user) in DO UPDATE SET of an INSERT into a distributed
        // table: the values come from the proposed row (EXCLUDED) instead.
        let upsert = sql!("history_upsert");
        let set = upsert.split_once("DO UPDATE SET").unwrap().1;
        assert!(!set.contains('(') && !set.contains("current_user"), "{set}");
        assert!(set.contains("applied_at = EXCLUDED.applied_at") && set.contains("installed_by = EXCLUDED.installed_by"));
    }

    #[test]
    fn settings_combine_into_one_statement() {
        let p = vec![
            "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'".to_string(),
            "SET LOCAL lock_timeout = '5000ms'".to_string(),
            "SET LOCAL synchronous_commit = off".to_string(),
        ];
        assert_eq!(
            ToolSql::combined_settings(&p),
            "SELECT set_config('citus.multi_shard_modify_mode', 'sequential', true), set_config('lock_timeout', '5000ms', true), set_config('synchronous_commit', 'off', true)"
        );
        let d = ToolSql::new(
            &HistoryTable {
                schema: None,
                table: "h".into(),
            },
            "db",
        );
        assert_eq!(
            d.transaction_guard(&p[1..2], &Value::Text("me".into())),
            "SELECT set_config('lock_timeout', '5000ms', true) FROM \"h_lease\"\nWHERE name = 'migrations' AND owner = 'me' AND pid IS NULL AND expires_at > now()\nFOR KEY SHARE"
        );
        assert!(d
            .transaction_guard(&[], &Value::Text("me".into()))
            .starts_with("SELECT 1 FROM \"h_lease\""));
    }

    #[test]
    fn citus_sql() {
        assert!(citus::table_state("o'k").contains("to_regclass('o''k')"));
        assert_eq!(citus::has_rows("public.\"T\""), "SELECT EXISTS (SELECT 1 FROM public.\"T\")::text");
        assert!(citus::probe().starts_with("SELECT split_part(citus_version()"));
        assert_eq!(citus::extension(), "(SELECT extversion FROM pg_extension WHERE extname = 'citus')");
        let schema = citus::history_schema("O'ps");
        assert!(
            schema.contains("to_regnamespace('\"O''ps\"')") && schema.contains("CREATE SCHEMA IF NOT EXISTS \"O'ps\";"),
            "{schema}"
        );
        assert!(schema.contains("set_config('citus.enable_schema_based_sharding', 'off', true)"));
        assert_eq!(
            citus::tenant_schema("ops"),
            "SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace('\"ops\"'))::text"
        );
        assert!(citus::workers_reachable(std::time::Duration::from_secs(5)).contains("SET LOCAL citus.node_connection_timeout TO 5000;"));
        let d = ToolSql::new(
            &HistoryTable {
                schema: Some("s'x".into()),
                table: "h".into(),
            },
            "db",
        );
        let p = d.probe(&[citus::extension()]);
        assert!(p.starts_with("SELECT pg_is_in_recovery()::text,"), "{p}");
        assert!(
            p.ends_with(
                "(to_regclass('\"s''x\".\"h\"') IS NOT NULL)::text,\n       (to_regclass('\"s''x\".\"h_repeatable\"') IS NOT NULL)::text,\n       (SELECT extversion FROM pg_extension WHERE extname = 'citus')"
            ),
            "{p}"
        );
    }
}
