//! The `citus` backend: the PostgreSQL transport to a Citus coordinator
//! (Azure Cosmos DB for PostgreSQL included), plus what Citus needs.
//!
//! - On connect it checks that the database has the citus extension and that
//!   this node is the coordinator: a worker accepts connections and queries
//!   too, but the migration's advisory lock and the distributed metadata live
//!   on the coordinator, so a runner on a worker would bypass the lock. The
//!   decision is [`check_role`], a pure function of what the probe read
//!   (`dialects/citus/probe.sql`).
//! - It reads the Citus release and the active workers; `status` shows them.
//! - Transactional migrations start with `SET LOCAL
//!   citus.multi_shard_modify_mode TO 'sequential'` ([`transaction_prelude`]),
//!   so types, schemas, functions and reference-table writes after a
//!   distributed operation work in the same transaction. It never sets
//!   `citus.create_object_propagation` (its `automatic` value silently leaves
//!   types on the coordinator only).
//! - `SELECT create_distributed_table(...)` on a table that already has rows,
//!   outside a transaction, is sent as `create_distributed_table_concurrently`
//!   where the release has it; otherwise chatmigrate says that writes to the
//!   table are blocked while its rows are copied ([`Backend::adapt`]).
//! - `--create-database` is refused ([`create_database_refusal`]): a database
//!   created through the coordinator has no citus extension and no nodes.
//! - Citus's run-time errors get a hint that names the fix ([`runtime_hint`]).
//! - A transactional migration is sent as one query string per statement
//!   (pipelined, still one round trip): Citus passes a DDL statement's query
//!   string on to the workers, and a string of several commands fails there
//!   with "cannot insert multiple commands into a prepared statement".
//! - The history is not group-committed: the coordinator's commit decides the
//!   two-phase commit on the workers, so it is always synchronous.

use std::time::Duration;

use async_trait::async_trait;

use super::postgres::{self, Postgres};
use super::{Adapted, Backend, Canceller, Capabilities, ExecError, Purpose};
use crate::config::{self, Config, ModifyMode};
use crate::dialect::citus as sql_of;
use crate::error::{DbError, Error, Result};
use crate::history::Row;
use crate::migration::Migration;
use crate::sql::{self, Statement};

/// The PostgreSQL transport's, without group commit.
pub const CAPABILITIES: Capabilities = Capabilities {
    group_commit: false,
    ..postgres::CAPABILITIES
};

/// The `SET LOCAL` that opens every transactional migration on Citus: the
/// environment's mode, or parallel for a file with
/// `-- chatmigrate:citus-parallel`.
pub fn transaction_prelude(settings: &config::Citus, m: &Migration) -> Vec<String> {
    let mode = if m.directives.citus_parallel {
        ModifyMode::Parallel
    } else {
        settings.multi_shard_modify_mode
    };
    vec![format!("SET LOCAL citus.multi_shard_modify_mode TO '{}'", mode.as_str())]
}

/// What the probe read from a node of a Citus database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The Citus release, e.g. `14.0.1`.
    pub version: String,
    /// `pg_dist_local_group.groupid`: 0 on the coordinator.
    pub group: i64,
    /// Active primary workers, `host:port`.
    pub workers: Vec<String>,
    /// Primary workers marked inactive.
    pub inactive: usize,
    /// The coordinator as `pg_dist_node` names it (group 0), if registered.
    pub coordinator: Option<String>,
    /// Active nodes of any group in `pg_dist_node`.
    pub active_nodes: usize,
    /// The release has `create_distributed_table_concurrently` (11.1+).
    pub concurrent_distribution: bool,
    pub wal_level: String,
    /// `citus.create_object_propagation` (empty if unknown).
    pub object_propagation: String,
    /// `output_plugin_libraries` where the server restricts logical
    /// decoding output plugins (`None`: no such setting).
    pub output_plugins: Option<String>,
}

impl Node {
    /// Reads the row of `dialects/citus/probe.sql`.
    pub fn from_row(r: &[Option<String>]) -> Result<Node> {
        let s = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let bad = |what: &str, i: usize| Error::Other(format!("unexpected answer from the Citus probe ({what}: `{}`)", s(i)));
        Ok(Node {
            version: s(0),
            group: s(1).parse().map_err(|_| bad("group", 1))?,
            workers: s(2).split(", ").filter(|w| !w.is_empty()).map(str::to_string).collect(),
            inactive: s(3).parse().map_err(|_| bad("inactive workers", 3))?,
            coordinator: r.get(4).cloned().flatten(),
            active_nodes: s(5).parse().map_err(|_| bad("active nodes", 5))?,
            concurrent_distribution: s(6) == "true",
            wal_level: s(7),
            object_propagation: s(8),
            output_plugins: r.get(9).cloned().flatten(),
        })
    }

    /// `(what, value)` lines for `status` and `up -v`.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut out = vec![("citus".to_string(), format!("{} (coordinator)", self.version))];
        let mut workers = match self.workers.len() {
            0 => "none active: shards are placed on the coordinator".to_string(),
            n => format!("{n} active ({})", self.workers.join(", ")),
        };
        if self.inactive > 0 {
            workers.push_str(&format!("; {} inactive", self.inactive));
        }
        out.push(("workers".to_string(), workers));
        if self.object_propagation == "automatic" {
            out.push((
                "create_object_propagation".to_string(),
                "automatic: a type or function created after distributed work in one transaction stays on the coordinator (chatmigrate never sets this; see docs/citus.md)".to_string(),
            ));
        }
        out
    }
}

/// May migrations run on this node? Only on the coordinator, by Citus's own
/// rule (`citus_is_coordinator()`): group 0 and at least one active node in
/// `pg_dist_node`.
pub fn check_role(node: &Node, target: &str) -> Result<()> {
    if node.group != 0 {
        return Err(Error::CitusWorker {
            target: target.to_string(),
            group: node.group,
            coordinator: node.coordinator.clone(),
        });
    }
    if node.active_nodes == 0 {
        return Err(Error::CitusNoNodes {
            target: target.to_string(),
        });
    }
    Ok(())
}

/// Why `--create-database` stops on Citus, from the maintenance database's
/// `citus.enable_create_database_propagation` (`None`: Citus is not loaded
/// there). Every case stops: whether or not CREATE DATABASE propagates, the
/// new database has no citus extension and no nodes (`pg_dist_node` is per
/// database), and distributing tables in it would silently keep every shard
/// on the coordinator.
pub fn create_database_refusal(name: &str, target: &str, propagation: Option<&str>) -> Error {
    let why = match propagation {
        Some("on") => "with citus.enable_create_database_propagation on it would be created on every node, but without the citus extension and without nodes (pg_dist_node is per database)",
        Some(_) => "with citus.enable_create_database_propagation off (the default) it would exist on the coordinator only, without the citus extension and without nodes",
        None => "the server does not run Citus (no citus.* settings), so there is no coordinator to create it on",
    };
    Error::CitusCreateDatabase {
        name: name.to_string(),
        target: target.to_string(),
        why: why.to_string(),
    }
}

/// The fix for an error Citus returns at run time (its texts are matched:
/// Citus reports these under generic SQLSTATEs, 0A000 and XX000).
pub fn runtime_hint(e: &DbError) -> Option<&'static str> {
    let m = e.message.as_str();
    let detail = e.detail.as_deref().unwrap_or("");
    let parallel = "chatmigrate runs transactional migrations with SET LOCAL citus.multi_shard_modify_mode TO 'sequential', which avoids this: remove `-- chatmigrate:citus-parallel` from the file (or citus_multi_shard_modify_mode = \"parallel\" from the environment), or move the statement to a migration of its own";
    Some(
        if m.starts_with("cannot create constraint on") && detail.contains("do not include the partition column") {
            "on Citus a PRIMARY KEY or UNIQUE constraint must include the distribution column: e.g. PRIMARY KEY (userid, primarykey) for a table distributed by userid (or make the table a reference table)"
        } else if m.starts_with("creating unique indexes on non-partition columns") {
            "on Citus a unique index must include the distribution column, e.g. (userid, ...) for a table distributed by userid (or make the table a reference table)"
        } else if m.starts_with("cannot execute ALTER TABLE command involving partition column") {
            "the distribution column cannot change type or be dropped (renaming it is fine): add a new column and backfill it, or redistribute with alter_distributed_table(table, distribution_column => ...)"
        } else if m.contains("relations are not colocated or not referencing a reference table") {
            "a foreign key between distributed tables needs both distributed by the key's column and colocated: distribute the referencing table with colocate_with => '<referenced table>', or make the referenced table a reference table (create_reference_table)"
        } else if m.contains("foreign keys from reference tables and local tables to distributed tables are not supported") {
            "point the foreign key from the distributed table to the reference table, distribute the referencing table too, or drop the key"
        } else if m.starts_with("cannot create foreign key constraint")
            && detail.contains("Referenced table must be a distributed table or a reference table")
        {
            "distribute (or create_reference_table) the referenced table before the referencing one, or add the foreign key after both are distributed"
        } else if m.contains("because there was a parallel operation on a distributed table")
            || m.contains("because there was a parallel DML access to distributed table")
        {
            parallel
        } else if m.starts_with("create_distributed_table_concurrently cannot run inside a transaction block") {
            "put the call in a file with `-- chatmigrate:no-transaction`, or use create_distributed_table (which blocks writes to the table while its rows are copied)"
        } else if m.contains("library \"citus\" may not be used as an output plugin") {
            "create_distributed_table_concurrently decodes WAL with the citus output plugin: add citus to output_plugin_libraries on every node and reload, or set citus_distribute_concurrently = false (writes to the table are then blocked while its rows are copied)"
        } else if m.starts_with("table \"") && m.ends_with("\" is already distributed") {
            "the table is distributed already (see citus_tables): guard the call, e.g. SELECT create_distributed_table('t', 'col') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 't'::regclass)"
        } else {
            return None;
        },
    )
}

/// A connection to a Citus coordinator.
pub struct Citus {
    pg: Postgres,
    /// `None` on the maintenance connection (no role checks there).
    node: Option<Node>,
    settings: config::Citus,
}

impl Citus {
    /// Connects to the configured database and checks that it is a Citus
    /// coordinator; closes the connection and refuses otherwise. The
    /// connect-time probe also reads the citus extension's version, so the
    /// check costs one round trip (the Citus probe) on top of it.
    pub async fn connect(cfg: &Config, purpose: Purpose) -> Result<Citus> {
        let mut pg = Postgres::connect(cfg, None, purpose, &[sql_of::extension()]).await?;
        match probe(&mut pg).await {
            Ok(node) => Ok(Citus {
                pg,
                node: Some(node),
                settings: cfg.citus,
            }),
            Err(e) => {
                Box::new(pg).close().await;
                Err(e)
            }
        }
    }

    /// Connects to `maintenance_db`, only to create the target from there.
    pub async fn maintenance(cfg: &Config, purpose: Purpose) -> Result<Citus> {
        Ok(Citus {
            pg: Postgres::connect(cfg, Some(&cfg.maintenance_db), purpose, &[]).await?,
            node: None,
            settings: cfg.citus,
        })
    }
}

/// How `create_distributed_table` on `table`, which has rows, is sent:
/// as `create_distributed_table_concurrently` (writes go on) when the call
/// runs outside a transaction, the environment allows it and the node can;
/// otherwise as written, with a note that writes are blocked and why.
pub fn distribution(
    statement: &Statement,
    call: &sql::Call,
    table: &str,
    in_transaction: bool,
    allowed: bool,
    node: Option<&Node>,
) -> Adapted {
    let hash = call.arg(2, "distribution_type").is_none_or(|t| t == "hash");
    let why = if in_transaction {
        "create_distributed_table_concurrently cannot run in a transaction: put the call in a `-- chatmigrate:no-transaction` file to keep writes going".to_string()
    } else if !allowed {
        "citus_distribute_concurrently = false".to_string()
    } else if node.is_none_or(|n| !n.concurrent_distribution) {
        format!(
            "Citus {} has no create_distributed_table_concurrently, which came in 11.1",
            node.map(|n| n.version.as_str()).unwrap_or("?")
        )
    } else if node.is_none_or(|n| n.wal_level != "logical") {
        format!(
            "create_distributed_table_concurrently needs wal_level = logical and the coordinator has {}",
            node.map(|n| n.wal_level.as_str()).unwrap_or("?")
        )
    } else if let Some(allowed) = node
        .and_then(|n| n.output_plugins.as_deref())
        .filter(|l| !l.split(',').any(|p| p.trim() == "citus"))
    {
        format!("create_distributed_table_concurrently needs citus in output_plugin_libraries and the coordinator allows only: {allowed}")
    } else if !hash {
        "create_distributed_table_concurrently distributes by hash only".to_string()
    } else if let Some((start, end)) = call.name_span {
        return Adapted {
            sql: Some(format!(
                "{}create_distributed_table_concurrently{}",
                &statement.sql[..start],
                &statement.sql[end..]
            )),
            note: Some(format!(
                "{table} has rows: sent as create_distributed_table_concurrently, so writes to it go on while its rows move to the shards"
            )),
        };
    } else {
        "the function name is quoted, so chatmigrate sends the call as written".to_string()
    };
    Adapted {
        sql: None,
        note: Some(format!(
            "{table} has rows: create_distributed_table copies them and blocks writes to {table} until it commits ({why})"
        )),
    }
}

/// Reads the node's role and cluster, and refuses anything but a coordinator.
async fn probe(pg: &mut Postgres) -> Result<Node> {
    let target = pg.target();
    // The citus extension's version, read by the connect-time probe.
    if pg.session().extra.first().cloned().flatten().is_none() {
        return Err(Error::NotCitus { target });
    }
    let rows = pg.query(sql_of::probe()).await?;
    let row = rows.first().ok_or_else(|| Error::Other("the Citus probe returned no row".into()))?;
    let node = Node::from_row(row)?;
    check_role(&node, &target)?;
    Ok(node)
}

#[async_trait]
impl Backend for Citus {
    fn name(&self) -> &'static str {
        "citus"
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn target(&self) -> String {
        self.pg.target()
    }

    async fn lock(&mut self, wait: Duration) -> Result<()> {
        self.pg.lock(wait).await
    }

    async fn unlock(&mut self) -> Result<()> {
        self.pg.unlock().await
    }

    async fn ensure_history(&mut self) -> Result<()> {
        // A local table on the coordinator, like the lock.
        self.pg.ensure_history().await
    }

    async fn read_history(&mut self) -> Result<Vec<Row>> {
        self.pg.read_history().await
    }

    async fn read_history_for_plan(&mut self) -> Result<Vec<Row>> {
        self.pg.read_history_for_plan().await
    }

    async fn write_history(&mut self, row: &Row) -> Result<()> {
        self.pg.write_history(row).await
    }

    async fn accept_file(&mut self, version: i64, name: &str, checksum: &str) -> Result<()> {
        self.pg.accept_file(version, name, checksum).await
    }

    async fn delete_history(&mut self, version: i64) -> Result<()> {
        self.pg.delete_history(version).await
    }

    async fn log_event(&mut self, version: i64, action: &str, old: Option<&str>, new: Option<&str>, detail: Option<&str>) -> Result<()> {
        self.pg.log_event(version, action, old, new, detail).await
    }

    async fn run_transaction(&mut self, settings: &[String], statements: &[&str], row: &Row) -> Result<i64, ExecError> {
        // Never several statements in one query string: Citus sends a DDL
        // statement's query string on to the workers.
        self.pg.run_transaction_separately(settings, statements, row).await
    }

    async fn execute(&mut self, statement: &str) -> Result<(), ExecError> {
        self.pg.execute(statement).await
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        self.pg.query(sql).await
    }

    async fn database_exists(&mut self, name: &str) -> Result<bool> {
        self.pg.database_exists(name).await
    }

    fn facts(&self) -> Vec<(String, String)> {
        self.node.as_ref().map(Node::facts).unwrap_or_default()
    }

    async fn adapt(&mut self, statement: &Statement, in_transaction: bool) -> Result<Adapted> {
        let Some(call) = sql::select_call(statement) else {
            return Ok(Adapted::default());
        };
        if call.name != "create_distributed_table" {
            return Ok(Adapted::default());
        }
        let Some(table) = call.arg(0, "table_name") else {
            return Ok(Adapted::default());
        };
        let state = self.pg.query(&sql_of::table_state(table)).await?;
        let (Some(regclass), Some(managed)) = (
            state.first().and_then(|r| r.first().cloned().flatten()),
            state.first().and_then(|r| r.get(1).cloned().flatten()),
        ) else {
            // Not there yet: an earlier migration of this run creates it, empty.
            return Ok(Adapted::default());
        };
        if managed == "true" {
            return Ok(Adapted::default());
        }
        let rows = self.pg.query(&sql_of::has_rows(&regclass)).await?;
        if rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() != Some("true") {
            return Ok(Adapted::default());
        }
        Ok(distribution(
            statement,
            &call,
            &regclass,
            in_transaction,
            self.settings.distribute_concurrently,
            self.node.as_ref(),
        ))
    }

    async fn check_create_database(&mut self, name: &str) -> Result<()> {
        let rows = self.pg.query(sql_of::create_database()).await?;
        let propagation = rows.first().and_then(|r| r.first().cloned().flatten());
        let target = self.pg.target();
        let server = target.rsplit_once('/').map(|(s, _)| s).unwrap_or(&target);
        Err(create_database_refusal(name, server, propagation.as_deref()))
    }

    async fn check_drop_database(&mut self, name: &str) -> Result<()> {
        let target = self.pg.target();
        let server = target.rsplit_once('/').map(|(s, _)| s).unwrap_or(&target);
        Err(Error::CitusDropDatabase {
            name: name.to_string(),
            target: server.to_string(),
        })
    }

    fn canceller(&self) -> Option<Canceller> {
        self.pg.canceller()
    }

    async fn close(self: Box<Self>) {
        Box::new(self.pg).close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<Option<String>> {
        cells.iter().map(|c| (!c.is_empty()).then(|| c.to_string())).collect()
    }

    fn coordinator() -> Vec<Option<String>> {
        row(&[
            "14.0.1",
            "0",
            "10.0.0.2:5432, 10.0.0.3:5432",
            "0",
            "10.0.0.1:5432",
            "3",
            "true",
            "logical",
            "immediate",
            "pgoutput, test_decoding, citus",
        ])
    }

    #[test]
    fn coordinator_is_accepted_and_described() {
        let n = Node::from_row(&coordinator()).unwrap();
        assert_eq!(check_role(&n, "u@c:5432/citus").ok(), Some(()));
        assert_eq!(
            n.facts(),
            vec![
                ("citus".to_string(), "14.0.1 (coordinator)".to_string()),
                ("workers".to_string(), "2 active (10.0.0.2:5432, 10.0.0.3:5432)".to_string()),
            ]
        );
    }

    #[test]
    fn worker_is_refused_and_names_the_coordinator() {
        // A worker with metadata (Citus 11+): its own group, the coordinator in pg_dist_node.
        let mut r = coordinator();
        r[1] = Some("2".into());
        let n = Node::from_row(&r).unwrap();
        let e = check_role(&n, "u@w1:5432/citus").unwrap_err();
        assert_eq!(
            e.to_string(),
            "u@w1:5432/citus is a Citus worker (group 2), not the coordinator (10.0.0.1:5432): the migration lock and the distributed metadata live on the coordinator"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.hint().unwrap().starts_with("point the environment at the coordinator"),
            "{:?}",
            e.hint()
        );
        r[4] = None;
        let e = check_role(&Node::from_row(&r).unwrap(), "u@w1:5432/citus").unwrap_err();
        assert_eq!(
            e.to_string(),
            "u@w1:5432/citus is a Citus worker (group 2), not the coordinator: the migration lock and the distributed metadata live on the coordinator"
        );
    }

    #[test]
    fn unreadable_probe_is_an_error() {
        let mut r = coordinator();
        r[5] = Some("many".into());
        assert_eq!(
            Node::from_row(&r).unwrap_err().to_string(),
            "unexpected answer from the Citus probe (active nodes: `many`)"
        );
    }

    #[test]
    fn group_zero_without_nodes_is_refused() {
        // A worker without synced metadata looks like this, and so does a
        // coordinator that was never set up; citus_is_coordinator() says false.
        let r = row(&["14.0.1", "0", "", "0", "", "0", "true", "replica", "immediate"]);
        let n = Node::from_row(&r).unwrap();
        let e = check_role(&n, "u@h:5432/db").unwrap_err();
        assert_eq!(
            e.to_string(),
            "u@h:5432/db has the citus extension but pg_dist_node lists no active node: a worker of a cluster without metadata, or a coordinator that was never set up"
        );
        assert!(e.hint().unwrap().contains("citus_set_coordinator_host"));
    }

    #[test]
    fn single_node_coordinator_and_inactive_workers() {
        let r = row(&["13.2.0", "0", "", "1", "localhost:5432", "1", "true", "replica", "automatic"]);
        let n = Node::from_row(&r).unwrap();
        assert!(check_role(&n, "t").is_ok());
        let f = n.facts();
        assert_eq!(f[1].1, "none active: shards are placed on the coordinator; 1 inactive");
        assert_eq!(f[2].0, "create_object_propagation");
    }

    #[test]
    fn prelude_is_sequential_unless_asked() {
        let mut m = Migration::parse("V1__a.sql", "V1__a.sql", b"select 1;").unwrap();
        let seq = config::Citus {
            multi_shard_modify_mode: ModifyMode::Sequential,
            distribute_concurrently: true,
        };
        assert_eq!(
            transaction_prelude(&seq, &m),
            vec!["SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"]
        );
        let par = config::Citus {
            multi_shard_modify_mode: ModifyMode::Parallel,
            ..seq
        };
        assert_eq!(
            transaction_prelude(&par, &m),
            vec!["SET LOCAL citus.multi_shard_modify_mode TO 'parallel'"]
        );
        m.directives.citus_parallel = true;
        assert_eq!(
            transaction_prelude(&seq, &m),
            vec!["SET LOCAL citus.multi_shard_modify_mode TO 'parallel'"]
        );
    }

    #[test]
    fn create_database_is_refused_with_the_reason() {
        let e = create_database_refusal("chat", "u@c:5432", Some("off"));
        assert_eq!(
            e.to_string(),
            "will not create database `chat` on u@c:5432: with citus.enable_create_database_propagation off (the default) it would exist on the coordinator only, without the citus extension and without nodes"
        );
        assert!(e.hint().unwrap().contains("the `citus` database"), "{:?}", e.hint());
        assert!(create_database_refusal("chat", "u@c:5432", Some("on"))
            .to_string()
            .contains("created on every node, but without the citus extension"));
        assert!(create_database_refusal("chat", "u@c:5432", None)
            .to_string()
            .contains("does not run Citus"));
    }

    #[test]
    fn distributing_a_table_with_rows() {
        let text = "SELECT create_distributed_table('t', 'userid', colocate_with => 'o') WHERE true;\nSELECT create_distributed_table('t', 'k', 'append');\nSELECT \"create_distributed_table\"('t', 'k');";
        let stmts = sql::split("f", text).unwrap();
        let call = sql::select_call(&stmts[0]).unwrap();
        let node = Node::from_row(&coordinator()).unwrap();
        let d = |in_tx: bool, allowed: bool, node: &Node| distribution(&stmts[0], &call, "t", in_tx, allowed, Some(node));
        let a = d(false, true, &node);
        assert_eq!(
            a.sql.as_deref(),
            Some("SELECT create_distributed_table_concurrently('t', 'userid', colocate_with => 'o') WHERE true")
        );
        assert_eq!(
            a.note.as_deref(),
            Some("t has rows: sent as create_distributed_table_concurrently, so writes to it go on while its rows move to the shards")
        );
        let blocked = |a: Adapted| {
            assert_eq!(a.sql, None);
            let n = a.note.unwrap();
            assert!(
                n.starts_with("t has rows: create_distributed_table copies them and blocks writes to t until it commits ("),
                "{n}"
            );
            n
        };
        assert!(blocked(d(true, true, &node)).contains("cannot run in a transaction"));
        assert!(blocked(d(false, false, &node)).contains("(citus_distribute_concurrently = false)"));
        let old = Node {
            version: "11.0.4".into(),
            concurrent_distribution: false,
            ..node.clone()
        };
        assert!(blocked(d(false, true, &old)).contains("Citus 11.0.4 has no create_distributed_table_concurrently"));
        let replica = Node {
            wal_level: "replica".into(),
            ..node.clone()
        };
        assert!(blocked(d(false, true, &replica)).contains("needs wal_level = logical and the coordinator has replica"));
        let restricted = Node {
            output_plugins: Some("pgoutput, test_decoding".into()),
            ..node.clone()
        };
        assert!(blocked(d(false, true, &restricted)).contains("allows only: pgoutput, test_decoding"));
        let unrestricted = Node {
            output_plugins: None,
            ..node.clone()
        };
        assert!(d(false, true, &unrestricted).sql.is_some());
        let append = sql::select_call(&stmts[1]).unwrap();
        assert!(blocked(distribution(&stmts[1], &append, "t", false, true, Some(&node))).contains("by hash only"));
        let quoted = sql::select_call(&stmts[2]).unwrap();
        assert!(blocked(distribution(&stmts[2], &quoted, "t", false, true, Some(&node))).contains("quoted"));
    }

    fn db(code: &str, message: &str, detail: Option<&str>) -> DbError {
        DbError {
            code: code.into(),
            message: message.into(),
            detail: detail.map(str::to_string),
            hint: None,
            offset: None,
        }
    }

    #[test]
    fn runtime_errors_get_their_fix() {
        let cases = [
            db("0A000", "cannot create constraint on \"bad_pk\"", Some("Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column (with an equality operator if EXCLUDE).")),
            db("0A000", "creating unique indexes on non-partition columns is currently unsupported", None),
            db("XX000", "cannot execute ALTER TABLE command involving partition column", None),
            db("0A000", "cannot create foreign key constraint since relations are not colocated or not referencing a reference table", None),
            db("0A000", "cannot create foreign key constraint since foreign keys from reference tables and local tables to distributed tables are not supported", None),
            db("XX000", "cannot run type command because there was a parallel operation on a distributed table in the transaction", None),
            db("XX000", "cannot modify table \"categories\" because there was a parallel operation on a distributed table", None),
            db("XX000", "cannot execute DML on table \"categories\" because there was a parallel DML access to distributed table \"docs\" in the same transaction", None),
            db("0A000", "cannot create foreign key constraint", Some("Referenced table must be a distributed table or a reference table.")),
            db("25001", "create_distributed_table_concurrently cannot run inside a transaction block", None),
            db("42P16", "table \"docs\" is already distributed", None),
            db("XX000", "ERROR:  library \"citus\" may not be used as an output plugin", None),
        ];
        let hints: Vec<_> = cases.iter().map(|c| runtime_hint(c).unwrap_or_else(|| panic!("{c:?}"))).collect();
        assert!(hints[0].contains("must include the distribution column"));
        assert!(hints[2].contains("alter_distributed_table"));
        assert!(hints[5].contains("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"));
        assert_eq!(hints[5], hints[6]);
        assert_eq!(hints[6], hints[7]);
        assert!(hints[9].contains("-- chatmigrate:no-transaction"));
        assert!(hints[11].contains("output_plugin_libraries"));
        assert_eq!(runtime_hint(&db("42P01", "relation \"x\" does not exist", None)), None);
        assert_eq!(runtime_hint(&db("0A000", "cannot create constraint on \"t\"", None)), None);
    }
}
