//! The `citus` backend: the PostgreSQL transport to a Citus coordinator
//! (Azure Database for PostgreSQL elastic clusters and Azure Cosmos DB for
//! PostgreSQL included), plus what Citus needs. Works with Citus 12.1
//! (PostgreSQL 16) to 14.x (PostgreSQL 18); docs/citus.md has the table.
//!
//! - On connect it checks that the database has the citus extension and that
//!   this node is the coordinator: a worker accepts connections and queries
//!   too, but the migration's advisory lock and the distributed metadata live
//!   on the coordinator, so a runner on a worker would bypass the lock. The
//!   decision is [`check_role`], a pure function of what the probe read
//!   (`dialects/citus/probe.sql`).
//! - It reads the Citus release and the active workers; `status` shows them,
//!   and which of them the coordinator cannot reach ([`Backend::check_cluster`]).
//! - Before it takes the lock, the schema of its own tables (`history_schema`)
//!   is created as a regular schema, whatever schema-based sharding says, and
//!   a distributed schema is refused: chatmigrate's tables stay local to the
//!   coordinator.
//! - Transactional migrations start with `SET LOCAL
//!   citus.multi_shard_modify_mode TO 'sequential'` ([`transaction_prelude`]),
//!   so types, schemas, functions and reference-table writes after a
//!   distributed operation work in the same transaction. It never sets
//!   `citus.create_object_propagation` (its `automatic` value silently leaves
//!   types on the coordinator only).
//! - `SELECT create_distributed_table(...)` on a table that already has rows
//!   is sent as `create_distributed_table_concurrently` when every condition
//!   of that function holds ([`concurrent_obstacles`]); otherwise as written,
//!   with a note that says which writes are blocked and why
//!   ([`Backend::adapt`]). `citus_rebalance_start()` gets a note that the
//!   job outlives the migration; `citus_rebalance_wait()` is waited for with
//!   progress lines.
//! - The NOTICEs and WARNINGs of Citus function calls are shown.
//! - A statement that fails because the coordinator cannot reach a worker
//!   ([`node_failure`]) is a Citus node failure, not a lost connection: it is
//!   tried again within `citus_node_wait`, then reported with the node and
//!   how to check it; the coordinator session is kept.
//! - `--create-database` is refused ([`create_database_refusal`]): a database
//!   created through the coordinator has no citus extension and no nodes.
//! - Citus's run-time errors get a hint that names the fix ([`runtime_hint`]);
//!   an error Citus relays from another node with that node's "HINT:" inside
//!   its text is split into message, detail and hint ([`split_relayed`]).
//! - A transactional migration is sent as one query string per statement
//!   (pipelined, still one round trip): Citus passes a DDL statement's query
//!   string on to the workers, and a string of several commands fails there
//!   with "cannot insert multiple commands into a prepared statement".
//! - The history is not group-committed: the coordinator's commit decides the
//!   two-phase commit on the workers, so it is always synchronous.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::postgres::{self, Notice, Postgres};
use super::{Adapted, Backend, Canceller, Capabilities, ExecError, Purpose};
use crate::classify;
use crate::dialect::{citus as sql_of, ToolSql};
use crate::error::{DbError, Error, Result};
use crate::history::Row;
use crate::migration::{ExtraSet, Migration};
use crate::retry::{self, Backoff, Progress, Waiting};
use crate::settings::{self, Config, ModifyMode};
use crate::sql::{self, Statement};

/// The PostgreSQL transport's, without group commit.
pub const CAPABILITIES: Capabilities = Capabilities {
    group_commit: false,
    distributed_tables: true,
    ..postgres::CAPABILITIES
};

/// The `citus` backend in the registry ([`super::BACKENDS`]).
pub static DEF: super::BackendDef = super::BackendDef {
    kind: crate::settings::BackendKind::Citus,
    name: "citus",
    capabilities: CAPABILITIES,
    target: super::pg_target,
    unreachable_hint: super::pg_unreachable_hint,
    extra_migrations: EXTRA_MIGRATIONS,
    prelude: |cfg, m| transaction_prelude(&cfg.citus, m),
    connect: |cfg, purpose| Box::pin(async move { Ok(Box::new(Citus::connect(cfg, purpose).await?) as Box<dyn Backend>) }),
    connect_maintenance: |cfg, purpose| Box::pin(async move { Ok(Box::new(Citus::maintenance(cfg, purpose).await?) as Box<dyn Backend>) }),
};

/// How long `status` lets the coordinator try to reach each worker.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// The `SET LOCAL` that opens every transactional migration on Citus: the
/// environment's mode, or parallel for a file with
/// `-- chatmigrate:citus-parallel`.
pub fn transaction_prelude(settings: &settings::Citus, m: &Migration) -> Vec<String> {
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
    /// decoding output plugins (`None`: no such setting, or hidden).
    pub output_plugins: Option<String>,
    /// This user may not read superuser-only settings (no privileges of
    /// `pg_read_all_settings`): `output_plugin_libraries` is unknown.
    pub settings_hidden: bool,
    /// `citus.enable_schema_based_sharding` (`None`: before Citus 12.0,
    /// which has no distributed schemas).
    pub schema_sharding: Option<String>,
    /// What `status` found when the coordinator tried to reach each worker
    /// ([`Reach`]); `None`: not checked.
    pub reach: Option<Reach>,
}

/// Whether the coordinator reached its workers (`status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The workers it could not reach, `host:port` and what it got.
    Checked(Vec<(String, String)>),
    /// The check itself failed (the error).
    Failed(String),
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
            schema_sharding: r.get(10).cloned().flatten(),
            settings_hidden: s(11) == "true",
            reach: None,
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
        let mut unreachable = None;
        match &self.reach {
            Some(Reach::Checked(down)) if !down.is_empty() => {
                workers.push_str(&format!("; {} unreachable from the coordinator", down.len()));
                let list: Vec<String> = down.iter().map(|(w, why)| format!("{w} ({why})")).collect();
                let (host, port) = down[0].0.rsplit_once(':').unwrap_or((&down[0].0, "5432"));
                unreachable = Some(format!(
                    "{}: a node failure, migrations that touch its shards fail until it is back; check it with SELECT * FROM citus_check_cluster_node_health() on the coordinator, or pg_isready -h {host} -p {port}",
                    list.join(", ")
                ));
            }
            Some(Reach::Failed(e)) => unreachable = Some(format!("the coordinator could not check its workers: {e}")),
            _ => {}
        }
        out.push(("workers".to_string(), workers));
        if let Some(u) = unreachable {
            let key = if matches!(self.reach, Some(Reach::Failed(_))) {
                "worker check"
            } else {
                "unreachable"
            };
            out.push((key.to_string(), u));
        }
        if self.object_propagation == "automatic" {
            out.push((
                "create_object_propagation".to_string(),
                "automatic: a type or function created after distributed work in one transaction stays on the coordinator (chatmigrate never sets this; see docs/citus.md)".to_string(),
            ));
        }
        out
    }

    /// Whether the logical decoding that create_distributed_table_concurrently
    /// needs is refused, and why (for [`concurrent_obstacles`]).
    fn decoding_obstacles(&self) -> Vec<String> {
        let mut why = Vec::new();
        if !self.concurrent_distribution {
            why.push(format!(
                "Citus {} has no create_distributed_table_concurrently (it came in 11.1)",
                self.version
            ));
        }
        if self.wal_level != "logical" {
            why.push(format!(
                "create_distributed_table_concurrently decodes WAL and needs wal_level = logical, and the coordinator has {}",
                self.wal_level
            ));
        }
        if self.output_plugins.is_none() && self.settings_hidden {
            why.push("create_distributed_table_concurrently decodes WAL with the citus output plugin, and whether output_plugin_libraries allows it is hidden from this user (grant it pg_read_all_settings to let chatmigrate read the setting)".into());
        }
        if let Some(list) = self
            .output_plugins
            .as_deref()
            .filter(|l| !l.split(',').any(|p| p.trim() == "citus"))
        {
            why.push(format!(
                "create_distributed_table_concurrently decodes WAL with the citus output plugin, and output_plugin_libraries allows only {list} (add citus to it on every node)"
            ));
        }
        why
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

/// Why `--create-database` stops on Citus, from what the maintenance
/// database says: whether Citus is loaded (`loaded`), and its
/// `citus.enable_create_database_propagation` (`None`: a release without it,
/// 12.1 and earlier, which never propagates CREATE DATABASE). Every case
/// stops: whether or not CREATE DATABASE propagates, the new database has no
/// citus extension and no nodes (`pg_dist_node` is per database), and
/// distributing tables in it would silently keep every shard on the
/// coordinator.
pub fn create_database_refusal(name: &str, target: &str, loaded: bool, propagation: Option<&str>) -> Error {
    let why = match (loaded, propagation) {
        (false, _) => "the server does not run Citus (no citus.* settings), so there is no coordinator to create it on",
        (true, Some("on")) => "with citus.enable_create_database_propagation on it would be created on every node, but without the citus extension and without nodes (pg_dist_node is per database)",
        (true, Some(_)) => "with citus.enable_create_database_propagation off (the default) it would exist on the coordinator only, without the citus extension and without nodes",
        (true, None) => "this Citus release does not propagate CREATE DATABASE (it has no citus.enable_create_database_propagation), so it would exist on the coordinator only, without the citus extension and without nodes",
    };
    Error::CitusCreateDatabase {
        name: name.to_string(),
        target: target.to_string(),
        why: why.to_string(),
    }
}

/// A statement failed because the coordinator could not reach another node
/// of the cluster: what Citus names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFailure {
    /// `host:port` of the node.
    pub node: String,
    /// What the coordinator got, e.g. `Connection refused`.
    pub reason: String,
}

/// Whether `e` is a Citus node failure (SQLSTATE 08006 sent as an ERROR on a
/// coordinator session that goes on): "connection to the remote node
/// user@host:port failed[ with the following error: ...]", or "could not
/// establish any connections to the node host:port after N ms".
pub fn node_failure(e: &DbError) -> Option<NodeFailure> {
    if !classify::connection_exception(&e.code) && !e.code.is_empty() {
        return None;
    }
    let m = e.message.as_str();
    if let Some(rest) = m.strip_prefix("connection to the remote node ") {
        let (who, reason) = match rest.split_once(" failed with the following error: ") {
            Some((who, reason)) => (who, reason),
            None => (rest.strip_suffix(" failed")?, "connection failed"),
        };
        let node = who.rsplit_once('@').map(|(_, n)| n).unwrap_or(who);
        let reason = reason.split(['\n', ';']).next().unwrap_or(reason).trim();
        return Some(NodeFailure {
            node: node.to_string(),
            reason: if reason.is_empty() { "connection failed" } else { reason }.to_string(),
        });
    }
    let rest = m.strip_prefix("could not establish any connections to the node ")?;
    let (node, after) = rest.split_once(" after ")?;
    Some(NodeFailure {
        node: node.to_string(),
        reason: format!("no connection within {after} (citus.node_connection_timeout)"),
    })
}

/// An error Citus relays from another node when that node's answer had no
/// message of its own: Citus then uses libpq's text, which carries the
/// remote error's "ERROR:", "DETAIL:" and "HINT:" lines inside the message
/// (`ERROR:  library "citus" may not be used as an output plugin\nHINT:
/// ...`). Splits them into message, detail and hint. (Any multi-line
/// text is shown on one line by [`DbError`]'s `Display`.)
pub fn split_relayed(e: &mut DbError) {
    if !["ERROR:  ", "FATAL:  ", "PANIC:  "].iter().any(|p| e.message.starts_with(p)) {
        return;
    }
    let text = std::mem::take(&mut e.message);
    let mut body = text.as_str();
    for prefix in ["ERROR:  ", "FATAL:  ", "PANIC:  "] {
        if let Some(rest) = body.strip_prefix(prefix) {
            body = rest;
            break;
        }
    }
    let mut message: Vec<&str> = Vec::new();
    let mut detail: Vec<&str> = Vec::new();
    let mut hint: Vec<&str> = Vec::new();
    let mut part = &mut message;
    for line in body.lines() {
        let line = line.trim();
        if let Some(d) = line.strip_prefix("DETAIL:") {
            part = &mut detail;
            part.push(d.trim());
        } else if let Some(h) = line.strip_prefix("HINT:") {
            part = &mut hint;
            part.push(h.trim());
        } else if line.starts_with("CONTEXT:") || line.starts_with("LINE ") {
            // Where it happened on that node: not for the user's one line.
            break;
        } else if !line.is_empty() {
            part.push(line);
        }
    }
    e.message = message.join(" ");
    if e.detail.is_none() && !detail.is_empty() {
        e.detail = Some(detail.join(" "));
    }
    if e.hint.is_none() && !hint.is_empty() {
        e.hint = Some(hint.join(" "));
    }
}

/// The fix for an error Citus returns at run time (its texts are matched:
/// Citus reports these under generic SQLSTATEs, 0A000 and XX000).
pub fn runtime_hint(e: &DbError) -> Option<String> {
    if let Some(f) = node_failure(e) {
        let (host, port) = f.node.rsplit_once(':').unwrap_or((&f.node, "5432"));
        return Some(format!(
            "a Citus node failure, not chatmigrate's connection (the coordinator session is fine): the coordinator could not reach the worker {} ({}); check the node with SELECT * FROM citus_check_cluster_node_health() on the coordinator, or pg_isready -h {host} -p {port} where that address is reachable (on Azure the nodes' addresses are internal: see the cluster's nodes in the portal); run `chatmigrate up` again once it is back (or set citus_node_wait, e.g. \"2min\", to make `up` wait for a node that restarts)",
            f.node, f.reason
        ));
    }
    let m = e.message.as_str();
    let detail = e.detail.as_deref().unwrap_or("");
    let parallel = "chatmigrate runs transactional migrations with SET LOCAL citus.multi_shard_modify_mode TO 'sequential', which avoids this: remove `-- chatmigrate:citus-parallel` from the file (or citus_multi_shard_modify_mode = \"parallel\" from the environment), or move the statement to a migration of its own";
    let fix = if m.starts_with("cannot create constraint on") && detail.contains("do not include the partition column") {
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
        "create_distributed_table_concurrently, shard moves and the rebalancer decode WAL with the citus output plugin: add citus to output_plugin_libraries on every node and reload (chatmigrate then sends create_distributed_table_concurrently itself for a table with rows), or write create_distributed_table, which blocks writes to the table while its rows are copied"
    } else if m.starts_with("cannot distribute a table concurrently when citus.shard_replication_factor > 1") {
        "create_distributed_table_concurrently needs citus.shard_replication_factor = 1: write create_distributed_table (chatmigrate sends that as written when the factor is above 1; it blocks writes while rows are copied), or set the factor to 1"
    } else if m.starts_with("functions used in the DO UPDATE SET clause of INSERTs on distributed tables must be marked IMMUTABLE") {
        "on a distributed table, ON CONFLICT DO UPDATE SET may use immutable functions only: take the value from the proposed row instead, e.g. SET updated_at = EXCLUDED.updated_at with the value (or the column's DEFAULT now()) in the INSERT"
    } else if m.starts_with("cannot colocate tables") {
        "tables are colocated only when their distribution columns have the same type (and collation): distribute one of them by a column of the other's type, or make the smaller one a reference table"
    } else if m.starts_with("table \"") && m.ends_with("\" is already distributed") {
        "the table is distributed already (see citus_tables): guard the call, e.g. SELECT create_distributed_table('t', 'col') WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 't'::regclass AND partmethod = 'h')"
    } else if m.starts_with("cannot undistribute table because the table is not distributed") {
        "the table is not distributed (any more): guard the call, e.g. SELECT undistribute_table('t') WHERE EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 't'::regclass)"
    } else if m.starts_with("this call doesn't change any properties of the table") {
        "alter_distributed_table was asked for what the table has already (see citus_tables): guard the call, e.g. WHERE NOT EXISTS (SELECT 1 FROM citus_tables WHERE table_name = 't'::regclass AND distribution_column = 'col')"
    } else {
        return None;
    };
    Some(fix.to_string())
}

/// Citus's functions whose NOTICEs and WARNINGs are shown (every
/// `citus_*` function too).
const CITUS_FUNCTIONS: &[&str] = &[
    "create_distributed_table",
    "create_distributed_table_concurrently",
    "create_reference_table",
    "alter_distributed_table",
    "undistribute_table",
    "update_distributed_table_colocation",
    "truncate_local_data_after_distributing_table",
    "rebalance_table_shards",
    "isolate_tenant_to_new_shard",
    "alter_table_set_access_method",
    "create_time_partitions",
    "drop_old_time_partitions",
    "master_move_shard_placement",
    "run_command_on_workers",
    "run_command_on_all_nodes",
    "run_command_on_shards",
    "run_command_on_placements",
    "run_command_on_colocated_placements",
];

/// Whether `name` (lowercase, unqualified) is one of Citus's functions.
pub fn is_citus_function(name: &str) -> bool {
    name.starts_with("citus_") || CITUS_FUNCTIONS.contains(&name)
}

/// A server notice as one line for the user.
pub fn notice_line(n: &Notice) -> String {
    let mut e = n.error.clone();
    split_relayed(&mut e);
    let mut line = format!("server {}: {}", n.severity, e.message);
    if let Some(d) = &e.detail {
        line.push_str(&format!("; DETAIL: {d}"));
    }
    if let Some(h) = &e.hint {
        line.push_str(&format!("; HINT: {h}"));
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The note for `citus_rebalance_start()`, which starts a background job
/// and returns.
pub fn rebalance_note(in_transaction: bool) -> String {
    let when = if in_transaction { ", once this transaction commits," } else { "" };
    format!(
        "citus_rebalance_start() starts the rebalance as a background job{when} and returns at once: the migration is recorded as applied while shards still move (follow it with SELECT * FROM citus_rebalance_status()); to record it only when the job has ended, call SELECT citus_rebalance_wait() after it, in a `-- chatmigrate:no-transaction` file, and chatmigrate waits for it with progress lines"
    )
}

/// What `dialects/citus/table_state.sql` read about a table named in
/// `create_distributed_table`, just before the call is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableState {
    /// The table as the server prints it (`None`: it does not exist yet).
    pub regclass: Option<String>,
    /// Hash-distributed already.
    pub distributed: bool,
    /// It (every partition) can publish UPDATE and DELETE to logical
    /// decoding: REPLICA IDENTITY FULL, or a primary key or replica index.
    pub replica_identity: bool,
    /// This session's `citus.shard_replication_factor`.
    pub replication_factor: String,
    /// Tables that are not hash-distributed and have foreign keys to it.
    pub referenced_by: Option<String>,
}

impl Default for TableState {
    fn default() -> TableState {
        TableState {
            regclass: None,
            distributed: false,
            replica_identity: true,
            replication_factor: "1".into(),
            referenced_by: None,
        }
    }
}

impl TableState {
    pub fn from_row(r: &[Option<String>]) -> TableState {
        let s = |i: usize| r.get(i).cloned().flatten();
        TableState {
            regclass: s(0),
            distributed: s(1).as_deref() == Some("true"),
            replica_identity: s(2).as_deref() != Some("false"),
            replication_factor: s(3).unwrap_or_else(|| "1".into()),
            referenced_by: s(4).filter(|t| !t.is_empty()),
        }
    }
}

/// Every reason why `create_distributed_table_concurrently` cannot take the
/// place of `call` on `table` (empty: it can, and writes go on while the
/// rows move). Citus's own conditions: outside a transaction block, the
/// release has it, logical decoding with the citus output plugin works
/// (wal_level, output_plugin_libraries), hash distribution by a column,
/// `citus.shard_replication_factor` 1, a replica identity (or UPDATE and
/// DELETE on the table fail while the rows move), no foreign key to the
/// table from a table that is not distributed; and the call can be renamed.
pub fn concurrent_obstacles(
    call: &sql::Call,
    table: &str,
    state: &TableState,
    in_transaction: bool,
    allowed: bool,
    node: Option<&Node>,
) -> Vec<String> {
    if in_transaction {
        return vec!["create_distributed_table_concurrently cannot run in a transaction: put the call in a `-- chatmigrate:no-transaction` file to keep writes going".into()];
    }
    if !allowed {
        return vec!["citus_distribute_concurrently = false".into()];
    }
    let mut why = match node {
        Some(n) => n.decoding_obstacles(),
        None => vec!["the Citus release is not known".into()],
    };
    if let Some(method) = call.arg(2, "distribution_type").filter(|t| *t != "hash") {
        why.push(format!(
            "create_distributed_table_concurrently distributes by hash only, and the call asks for {method}"
        ));
    }
    if call.arg(1, "distribution_column").is_none() {
        why.push("the call gives no distribution column as a string (a single-shard table), which create_distributed_table_concurrently cannot make".into());
    }
    if state.replication_factor.trim() != "1" {
        why.push(format!(
            "create_distributed_table_concurrently needs citus.shard_replication_factor = 1, and this session has {}",
            state.replication_factor
        ));
    }
    if !state.replica_identity {
        why.push(format!(
            "{table} has neither a primary key nor a replica identity, so create_distributed_table_concurrently would make its UPDATE and DELETE fail while its rows move (INSERT would work): add a primary key, or ALTER TABLE {table} REPLICA IDENTITY FULL, in an earlier migration"
        ));
    }
    if let Some(from) = &state.referenced_by {
        why.push(format!(
            "{from} (not distributed) has a foreign key to {table}, which create_distributed_table_concurrently refuses"
        ));
    }
    if call.name_span.is_none() {
        why.push("the function name is quoted, so chatmigrate sends the call as written".into());
    }
    why
}

/// How `create_distributed_table` on `table`, which has rows, is sent: as
/// `create_distributed_table_concurrently` (writes go on) when nothing in
/// [`concurrent_obstacles`] stands in the way; otherwise as written, with a
/// note that says which writes are blocked and every reason why.
pub fn distribution(
    statement: &Statement,
    call: &sql::Call,
    table: &str,
    state: &TableState,
    in_transaction: bool,
    allowed: bool,
    node: Option<&Node>,
) -> Adapted {
    let why = concurrent_obstacles(call, table, state, in_transaction, allowed, node);
    if let (true, Some((start, end))) = (why.is_empty(), call.name_span) {
        return Adapted {
            sql: Some(format!(
                "{}create_distributed_table_concurrently{}",
                &statement.sql[..start],
                &statement.sql[end..]
            )),
            note: Some(format!(
                "{table} has rows: sent as create_distributed_table_concurrently, so writes to it go on while its rows move to the shards"
            )),
            reads: Vec::new(),
        };
    }
    Adapted {
        sql: None,
        note: Some(format!(
            "{table} has rows: create_distributed_table copies them and blocks INSERT, UPDATE and DELETE on {table} until it commits (reads go on); not sent as create_distributed_table_concurrently, because {}",
            why.join("; ")
        )),
        reads: Vec::new(),
    }
}

/// A connection to a Citus coordinator.
pub struct Citus {
    pg: Postgres,
    /// `None` on the maintenance connection (no role checks there).
    node: Option<Node>,
    settings: settings::Citus,
    progress: Progress,
    /// `history_schema`: made a regular schema, and checked, before the
    /// lock (whose table lives there) is first taken.
    history_schema: Option<String>,
    schema_checked: bool,
    /// Statements, as sent, that call Citus functions (from `adapt`):
    /// their notices are shown.
    calls: HashSet<String>,
    /// CONCURRENTLY index builds, as sent, with the index's name and
    /// schema: a retry after a node failure drops the INVALID index first.
    concurrent: HashMap<String, (String, Option<String>)>,
    /// `SELECT citus_rebalance_wait()` statements, as sent: waited for with
    /// progress lines.
    rebalance_waits: HashSet<String>,
    /// The statements last sent call Citus functions.
    last_was_call: bool,
}

impl Citus {
    fn new(pg: Postgres, node: Option<Node>, cfg: &Config) -> Citus {
        Citus {
            pg,
            node,
            settings: cfg.citus,
            progress: cfg.progress.clone(),
            history_schema: cfg.history.schema.clone(),
            schema_checked: false,
            calls: HashSet::new(),
            concurrent: HashMap::new(),
            rebalance_waits: HashSet::new(),
            last_was_call: false,
        }
    }

    /// Connects to the configured database and checks that it is a Citus
    /// coordinator; closes the connection and refuses otherwise. The
    /// connect-time probe also reads the citus extension's version, so the
    /// check costs one round trip (the Citus probe) on top of it.
    pub async fn connect(cfg: &Config, purpose: Purpose) -> Result<Citus> {
        let mut pg = Postgres::connect(cfg, None, purpose, &[sql_of::extension()]).await?;
        match probe(&mut pg).await {
            Ok(node) => Ok(Citus::new(pg, Some(node), cfg)),
            Err(e) => {
                Box::new(pg).close().await;
                Err(e)
            }
        }
    }

    /// Connects to `maintenance_db`, only to create the target from there.
    pub async fn maintenance(cfg: &Config, purpose: Purpose) -> Result<Citus> {
        let pg = Postgres::connect(cfg, Some(&cfg.maintenance_db), purpose, &[]).await?;
        Ok(Citus::new(pg, None, cfg))
    }

    /// Creates `history_schema` where it is missing as a regular schema
    /// (schema-based sharding off for that statement), and refuses a
    /// distributed one: chatmigrate's tables stay local to the coordinator.
    async fn ensure_local_schema(&mut self) -> Result<()> {
        let Some(schema) = self.history_schema.clone().filter(|_| !self.schema_checked) else {
            return Ok(());
        };
        let create = sql_of::history_schema(&schema);
        let mut races = 0;
        loop {
            match self.pg.query(&create).await {
                Ok(_) => break,
                // Another first runner created it at the same moment.
                Err(Error::Db { error, .. })
                    if (classify::unique_violation(&error.code) || classify::duplicate_schema(&error.code)) && races < 5 =>
                {
                    races += 1
                }
                Err(e) => return Err(e),
            }
        }
        if self.node.as_ref().is_some_and(|n| n.schema_sharding.is_some()) {
            let rows = self.pg.query(&sql_of::tenant_schema(&schema)).await?;
            if rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() == Some("true") {
                return Err(Error::CitusTenantSchema {
                    schema,
                    target: self.pg.target(),
                });
            }
        }
        self.schema_checked = true;
        Ok(())
    }

    /// Before statements are sent: drops notices of earlier work and notes
    /// whether these call Citus functions.
    fn sending(&mut self, statements: &[&str]) {
        self.pg.take_notices();
        self.last_was_call = statements.iter().any(|s| self.calls.contains(*s));
    }

    /// After a failed attempt: whether it was a Citus node failure that is
    /// tried again, within `citus_node_wait` from `started` (after a pause,
    /// with a progress line once the wait passes a second).
    async fn node_wait<T>(&self, r: &Result<T, ExecError>, started: Instant, backoff: &mut Backoff, attempt: u32) -> bool {
        let Err(ExecError::Statement { error, .. }) = r else {
            return false;
        };
        let Some(f) = node_failure(error) else { return false };
        let delay = backoff.delay();
        if started.elapsed() + delay > self.settings.node_wait {
            return false;
        }
        if started.elapsed() + delay >= Duration::from_secs(1) {
            self.progress.report(&Waiting {
                what: format!("Citus worker {} (the coordinator cannot reach it)", f.node),
                elapsed: started.elapsed(),
                attempts: attempt,
                cause: f.reason,
            });
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// Before a CONCURRENTLY build is tried again: drops the INVALID index
    /// the failed attempt left (IF NOT EXISTS would accept it).
    async fn drop_invalid_index(&mut self, statement: &str) -> Result<(), ExecError> {
        let Some((name, schema)) = self.concurrent.get(statement).cloned() else {
            return Ok(());
        };
        let found = self
            .pg
            .query(&ToolSql::invalid_index(&name, schema.as_deref()))
            .await
            .map_err(ExecError::transport)?;
        match found.first().and_then(|r| r.first().cloned().flatten()) {
            Some(q) => self.pg.execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {q}")).await,
            None => Ok(()),
        }
    }
}

/// `[environments.<name>.citus]`: this backend's settings, in its own
/// table (docs/config.reference.toml). The flat keys of older files,
/// `citus_multi_shard_modify_mode`, `citus_distribute_concurrently` and
/// `citus_node_wait`, are aliases; config loading folds this table into
/// them ([`settings::Citus`] holds the result).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub multi_shard_modify_mode: Option<String>,
    pub distribute_concurrently: Option<bool>,
    #[serde(default, deserialize_with = "crate::value::duration_text")]
    pub node_wait: Option<String>,
}

static MIGRATIONS: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/dialects/citus/migrations");

/// The citus-only files of the chat schema (`dialects/citus/migrations/`):
/// added to the embedded set, in the portable set's version space.
pub const EXTRA_MIGRATIONS: &[ExtraSet] = &[ExtraSet {
    label: "citus",
    files: citus_migrations,
    undo_files: citus_undo_files,
}];

fn citus_migrations() -> Vec<(&'static str, &'static [u8])> {
    crate::embedded::dir_files(&MIGRATIONS)
}

fn citus_undo_files() -> Vec<(&'static str, &'static [u8])> {
    crate::embedded::dir_undo_files(&MIGRATIONS)
}

/// A failed statement's error, its relayed text split ([`split_relayed`]),
/// with the fix Citus's error calls for ([`runtime_hint`]).
fn tidy<T>(r: &mut Result<T, ExecError>) {
    match r {
        Err(ExecError::Statement { error, .. }) => {
            split_relayed(error);
            explain(error);
        }
        Err(ExecError::Internal { error, .. }) => explain(error),
        _ => {}
    }
}

/// Attaches the fix for a Citus error ([`runtime_hint`]), which the error
/// shows as its hint.
pub fn explain(error: &mut DbError) {
    if error.fix.is_none() {
        error.fix = runtime_hint(error);
    }
}

/// [`explain`] for an error of the tool's own SQL sent to the coordinator.
fn explained<T>(r: Result<T>) -> Result<T> {
    r.map_err(|mut e| {
        if let Error::Db { error, .. } = &mut e {
            explain(error);
        }
        e
    })
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
        // The lease table lives in history_schema: it must be a regular
        // schema before the lease setup creates the table there.
        self.ensure_local_schema().await?;
        self.pg.lock(wait).await
    }

    async fn unlock(&mut self) -> Result<()> {
        self.pg.unlock().await
    }

    async fn ensure_repeatables(&mut self) -> Result<()> {
        self.pg.ensure_repeatables().await
    }

    fn leave_session(&mut self) {
        self.pg.leave_session();
    }

    async fn remote_index_builds(&mut self) -> Result<Vec<(String, String)>> {
        let rows = self.pg.query(sql_of::worker_index_progress()).await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.get(1).cloned().flatten().as_deref() == Some("true"))
            .filter_map(|r| Some((r.first().cloned().flatten()?, r.get(2).cloned().flatten()?)))
            .collect())
    }

    async fn ensure_history(&mut self) -> Result<()> {
        // Local tables on the coordinator, like the lock.
        self.ensure_local_schema().await?;
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
        self.sending(statements);
        let started = Instant::now();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        for attempt in 1.. {
            // Never several statements in one query string: Citus sends a
            // DDL statement's query string on to the workers. A node
            // failure rolled the transaction back: it may run again.
            let mut r = self.pg.run_transaction_separately(settings, statements, row).await;
            tidy(&mut r);
            if !self.node_wait(&r, started, &mut backoff, attempt).await {
                return r;
            }
        }
        unreachable!("the loop returns")
    }

    async fn execute(&mut self, statement: &str) -> Result<(), ExecError> {
        self.sending(&[statement]);
        let started = Instant::now();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let progress = self.progress.clone();
        for attempt in 1.. {
            // A retry of a CONCURRENTLY build first drops the INVALID index
            // the failed attempt left; if that fails too, it is the attempt's result.
            let mut r = if attempt > 1 {
                self.drop_invalid_index(statement).await
            } else {
                Ok(())
            };
            if r.is_ok() {
                r = if self.rebalance_waits.contains(statement) {
                    let since = Instant::now();
                    retry::report_while(self.pg.execute(statement), &progress, since, |elapsed| Waiting {
                        what: "the Citus rebalance to finish".into(),
                        elapsed,
                        attempts: 0,
                        cause: "citus_rebalance_wait(); SELECT * FROM citus_rebalance_status() shows its progress".into(),
                    })
                    .await
                } else {
                    self.pg.execute(statement).await
                };
            }
            tidy(&mut r);
            if !self.node_wait(&r, started, &mut backoff, attempt).await {
                return r;
            }
        }
        unreachable!("the loop returns")
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        explained(self.pg.query(sql).await)
    }

    async fn database_exists(&mut self, name: &str) -> Result<bool> {
        self.pg.database_exists(name).await
    }

    fn facts(&self) -> Vec<(String, String)> {
        self.node.as_ref().map(Node::facts).unwrap_or_default()
    }

    fn notices(&self) -> Option<super::postgres::Notices> {
        self.pg.notices()
    }

    fn take_notices(&mut self) -> Vec<String> {
        let notices = self.pg.take_notices();
        if !std::mem::take(&mut self.last_was_call) {
            return Vec::new();
        }
        notices.iter().map(notice_line).collect()
    }

    async fn check_cluster(&mut self) -> Result<()> {
        let Some(node) = &mut self.node else { return Ok(()) };
        if node.workers.is_empty() {
            return Ok(());
        }
        let sql = sql_of::workers_reachable(REACH_TIMEOUT);
        let since = Instant::now();
        let rows = retry::report_while(self.pg.query(&sql), &self.progress, since, |elapsed| Waiting {
            what: "the coordinator to reach the Citus workers".into(),
            elapsed,
            attempts: 0,
            cause: format!("at most {} s per worker", REACH_TIMEOUT.as_secs()),
        })
        .await;
        node.reach = Some(match rows {
            Ok(rows) => Reach::Checked(
                rows.into_iter()
                    .filter(|r| r.get(1).cloned().flatten().as_deref() != Some("true"))
                    .map(|r| {
                        let s = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                        (s(0), s(2))
                    })
                    .collect(),
            ),
            Err(e) => Reach::Failed(e.to_string()),
        });
        Ok(())
    }

    async fn adapt(&mut self, statement: &Statement, in_transaction: bool) -> Result<Adapted> {
        if let Some(index) = sql::concurrent_index(statement) {
            self.concurrent.insert(statement.sql.clone(), index);
        }
        let Some(call) = sql::select_call(statement) else {
            return Ok(Adapted::default());
        };
        if is_citus_function(&call.name) {
            self.calls.insert(statement.sql.clone());
        }
        match call.name.as_str() {
            "create_distributed_table" => {}
            "citus_rebalance_start" => {
                return Ok(Adapted {
                    note: Some(rebalance_note(in_transaction)),
                    ..Adapted::default()
                })
            }
            "citus_rebalance_wait" => {
                self.rebalance_waits.insert(statement.sql.clone());
                return Ok(Adapted::default());
            }
            _ => return Ok(Adapted::default()),
        }
        let Some(table) = call.arg(0, "table_name") else {
            return Ok(Adapted::default());
        };
        let read = sql_of::table_state(table);
        let rows = self.pg.query(&read).await?;
        let mut reads = vec![read];
        let state = rows.first().map(|r| TableState::from_row(r)).unwrap_or_default();
        // Not there yet (an earlier migration of this run creates it, empty),
        // or distributed already (the call's guard skips it).
        let Some(regclass) = state.regclass.clone().filter(|_| !state.distributed) else {
            return Ok(Adapted {
                reads,
                ..Adapted::default()
            });
        };
        let read = sql_of::has_rows(&regclass);
        let rows = self.pg.query(&read).await?;
        reads.push(read);
        if rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() != Some("true") {
            return Ok(Adapted {
                reads,
                ..Adapted::default()
            });
        }
        let mut adapted = distribution(
            statement,
            &call,
            &regclass,
            &state,
            in_transaction,
            self.settings.distribute_concurrently,
            self.node.as_ref(),
        );
        if let Some(sql) = &adapted.sql {
            self.calls.insert(sql.clone());
        }
        adapted.reads = reads;
        Ok(adapted)
    }

    async fn check_create_database(&mut self, name: &str) -> Result<()> {
        let rows = self.pg.query(sql_of::create_database()).await?;
        let cell = |i: usize| rows.first().and_then(|r| r.get(i).cloned().flatten());
        let loaded = cell(0).as_deref() == Some("true");
        let target = self.pg.target();
        let server = target.rsplit_once('/').map(|(s, _)| s).unwrap_or(&target);
        Err(create_database_refusal(name, server, loaded, cell(1).as_deref()))
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
            "off",
            "false",
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
        let seq = settings::Citus {
            multi_shard_modify_mode: ModifyMode::Sequential,
            distribute_concurrently: true,
            node_wait: Duration::ZERO,
        };
        assert_eq!(
            transaction_prelude(&seq, &m),
            vec!["SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"]
        );
        let par = settings::Citus {
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
        let e = create_database_refusal("chat", "u@c:5432", true, Some("off"));
        assert_eq!(
            e.to_string(),
            "will not create database `chat` on u@c:5432: with citus.enable_create_database_propagation off (the default) it would exist on the coordinator only, without the citus extension and without nodes"
        );
        assert!(e.hint().unwrap().contains("the `citus` database"), "{:?}", e.hint());
        assert!(create_database_refusal("chat", "u@c:5432", true, Some("on"))
            .to_string()
            .contains("created on every node, but without the citus extension"));
        assert!(create_database_refusal("chat", "u@c:5432", false, None)
            .to_string()
            .contains("does not run Citus"));
        // Citus 12.1 (Azure's elastic clusters): loaded, but without the setting.
        assert_eq!(
            create_database_refusal("chat", "u@c:5432", true, None).to_string(),
            "will not create database `chat` on u@c:5432: this Citus release does not propagate CREATE DATABASE (it has no citus.enable_create_database_propagation), so it would exist on the coordinator only, without the citus extension and without nodes"
        );
    }

    fn state() -> TableState {
        TableState {
            regclass: Some("t".into()),
            ..TableState::default()
        }
    }

    #[test]
    fn the_concurrent_form_only_when_every_precondition_holds() {
        let text = "SELECT create_distributed_table('t', 'userid', colocate_with => 'o') WHERE true;\nSELECT create_distributed_table('t', 'k', 'append');\nSELECT \"create_distributed_table\"('t', 'k');\nSELECT create_distributed_table('t', NULL);";
        let stmts = sql::split("f", text).unwrap();
        let call = sql::select_call(&stmts[0]).unwrap();
        let node = Node::from_row(&coordinator()).unwrap();
        let ok = state();
        let why = |st: &TableState, node: &Node| concurrent_obstacles(&call, "t", st, false, true, Some(node));
        assert!(why(&ok, &node).is_empty());

        // Each precondition on its own, with its reason.
        let one = |st: &TableState, node: &Node| {
            let w = why(st, node);
            assert_eq!(w.len(), 1, "{w:?}");
            w[0].clone()
        };
        assert_eq!(
            concurrent_obstacles(&call, "t", &ok, true, true, Some(&node)),
            vec!["create_distributed_table_concurrently cannot run in a transaction: put the call in a `-- chatmigrate:no-transaction` file to keep writes going"]
        );
        assert_eq!(
            concurrent_obstacles(&call, "t", &ok, false, false, Some(&node)),
            vec!["citus_distribute_concurrently = false"]
        );
        let old = Node {
            version: "11.0.4".into(),
            concurrent_distribution: false,
            ..node.clone()
        };
        assert_eq!(
            one(&ok, &old),
            "Citus 11.0.4 has no create_distributed_table_concurrently (it came in 11.1)"
        );
        let replica = Node {
            wal_level: "replica".into(),
            ..node.clone()
        };
        assert!(one(&ok, &replica).ends_with("needs wal_level = logical, and the coordinator has replica"));
        let restricted = Node {
            output_plugins: Some("pgoutput, test_decoding".into()),
            ..node.clone()
        };
        assert!(
            one(&ok, &restricted).contains("output_plugin_libraries allows only pgoutput, test_decoding (add citus to it on every node)")
        );
        let unrestricted = Node {
            output_plugins: None,
            ..node.clone()
        };
        assert!(why(&ok, &unrestricted).is_empty());
        // A user that may not read the setting cannot tell: not chosen.
        let hidden = Node {
            output_plugins: None,
            settings_hidden: true,
            ..node.clone()
        };
        assert!(one(&ok, &hidden).contains("hidden from this user (grant it pg_read_all_settings"));
        let factor = TableState {
            replication_factor: "2".into(),
            ..state()
        };
        assert_eq!(
            one(&factor, &node),
            "create_distributed_table_concurrently needs citus.shard_replication_factor = 1, and this session has 2"
        );
        let no_identity = TableState {
            replica_identity: false,
            ..state()
        };
        assert_eq!(
            one(&no_identity, &node),
            "t has neither a primary key nor a replica identity, so create_distributed_table_concurrently would make its UPDATE and DELETE fail while its rows move (INSERT would work): add a primary key, or ALTER TABLE t REPLICA IDENTITY FULL, in an earlier migration"
        );
        let referenced = TableState {
            referenced_by: Some("audit".into()),
            ..state()
        };
        assert!(one(&referenced, &node).starts_with("audit (not distributed) has a foreign key to t"));
        let append = sql::select_call(&stmts[1]).unwrap();
        assert_eq!(
            concurrent_obstacles(&append, "t", &ok, false, true, Some(&node)),
            vec!["create_distributed_table_concurrently distributes by hash only, and the call asks for append"]
        );
        let quoted = sql::select_call(&stmts[2]).unwrap();
        assert_eq!(
            concurrent_obstacles(&quoted, "t", &ok, false, true, Some(&node)),
            vec!["the function name is quoted, so chatmigrate sends the call as written"]
        );
        let single = sql::select_call(&stmts[3]).unwrap();
        assert!(concurrent_obstacles(&single, "t", &ok, false, true, Some(&node))[0].contains("single-shard"));
        assert_eq!(
            concurrent_obstacles(&call, "t", &ok, false, true, None),
            vec!["the Citus release is not known"]
        );

        // All of them at once: every reason is named.
        let worst = TableState {
            replica_identity: false,
            replication_factor: "2".into(),
            referenced_by: Some("audit".into()),
            ..state()
        };
        let bad_node = Node {
            wal_level: "replica".into(),
            output_plugins: Some("pgoutput".into()),
            ..old.clone()
        };
        assert_eq!(why(&worst, &bad_node).len(), 6);
    }

    #[test]
    fn distributing_a_table_with_rows() {
        let text = "SELECT create_distributed_table('t', 'userid', colocate_with => 'o') WHERE true;";
        let stmts = sql::split("f", text).unwrap();
        let call = sql::select_call(&stmts[0]).unwrap();
        let node = Node::from_row(&coordinator()).unwrap();
        let a = distribution(&stmts[0], &call, "t", &state(), false, true, Some(&node));
        assert_eq!(
            a.sql.as_deref(),
            Some("SELECT create_distributed_table_concurrently('t', 'userid', colocate_with => 'o') WHERE true")
        );
        assert_eq!(
            a.note.as_deref(),
            Some("t has rows: sent as create_distributed_table_concurrently, so writes to it go on while its rows move to the shards")
        );
        let no_identity = TableState {
            replica_identity: false,
            replication_factor: "2".into(),
            ..state()
        };
        let a = distribution(&stmts[0], &call, "t", &no_identity, false, true, Some(&node));
        assert_eq!(a.sql, None);
        assert_eq!(
            a.note.as_deref(),
            Some("t has rows: create_distributed_table copies them and blocks INSERT, UPDATE and DELETE on t until it commits (reads go on); not sent as create_distributed_table_concurrently, because create_distributed_table_concurrently needs citus.shard_replication_factor = 1, and this session has 2; t has neither a primary key nor a replica identity, so create_distributed_table_concurrently would make its UPDATE and DELETE fail while its rows move (INSERT would work): add a primary key, or ALTER TABLE t REPLICA IDENTITY FULL, in an earlier migration")
        );
    }

    #[test]
    fn table_state_is_read_from_its_row() {
        let r = row(&["public.logs", "false", "false", "2", "audit, audit2"]);
        assert_eq!(
            TableState::from_row(&r),
            TableState {
                regclass: Some("public.logs".into()),
                distributed: false,
                replica_identity: false,
                replication_factor: "2".into(),
                referenced_by: Some("audit, audit2".into()),
            }
        );
        let missing = TableState::from_row(&row(&["", "false", "true", "1", ""]));
        assert_eq!(missing.regclass, None);
        assert!(missing.replica_identity && missing.referenced_by.is_none());
    }

    fn db(code: &str, message: &str, detail: Option<&str>) -> DbError {
        DbError {
            fix: None,
            code: code.into(),
            message: message.into(),
            detail: detail.map(str::to_string),
            hint: None,
            offset: None,
        }
    }

    /// Citus's texts for a worker that is down, as a coordinator session
    /// receives them (Citus 12.1 to 14.0: remote_commands.c, adaptive_executor.c).
    const REFUSED: &str = "connection to the remote node postgres@127.0.0.1:9712 failed with the following error: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?";

    #[test]
    fn remote_node_failures_are_citus_node_failures() {
        let f = node_failure(&db("08006", REFUSED, None)).unwrap();
        assert_eq!(
            f,
            NodeFailure {
                node: "127.0.0.1:9712".into(),
                reason: "Connection refused".into()
            }
        );
        // Not a relayed text: kept, and shown on one line.
        let mut e = db("08006", REFUSED, None);
        split_relayed(&mut e);
        assert_eq!(e.message, REFUSED);
        assert_eq!(
            e.to_string(),
            "connection to the remote node postgres@127.0.0.1:9712 failed with the following error: Connection refused Is the server running on that host and accepting TCP/IP connections? (SQLSTATE 08006)"
        );
        assert_eq!(node_failure(&e), Some(f.clone()));
        assert_eq!(
            node_failure(&db("08006", "connection to the remote node app@w-1.example.com:5432 failed", None)),
            Some(NodeFailure {
                node: "w-1.example.com:5432".into(),
                reason: "connection failed".into()
            })
        );
        assert_eq!(
            node_failure(&db("08006", "connection to the remote node citus@10.0.0.3:5432 failed with the following error: server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally", None))
                .unwrap()
                .reason,
            "server closed the connection unexpectedly"
        );
        assert_eq!(
            node_failure(&db(
                "08006",
                "could not establish any connections to the node 10.0.0.3:5432 after 30000 ms",
                None
            )),
            Some(NodeFailure {
                node: "10.0.0.3:5432".into(),
                reason: "no connection within 30000 ms (citus.node_connection_timeout)".into()
            })
        );
        // Not a node failure: another code, or our own connection's text.
        assert_eq!(node_failure(&db("XX000", REFUSED, None)), None);
        assert_eq!(node_failure(&db("08006", "connection to server was lost", None)), None);
        assert_eq!(
            node_failure(&db("57P01", "terminating connection due to administrator command", None)),
            None
        );

        let hint = runtime_hint(&e).unwrap();
        assert!(
            hint.starts_with("a Citus node failure, not chatmigrate's connection (the coordinator session is fine): the coordinator could not reach the worker 127.0.0.1:9712 (Connection refused); check the node with SELECT * FROM citus_check_cluster_node_health() on the coordinator, or pg_isready -h 127.0.0.1 -p 9712 where that address is reachable"),
            "{hint}"
        );
        let shown = Error::Migration {
            location: crate::error::Location {
                path: "V3__a.sql".into(),
                line: 1,
                col: 1,
            },
            version: 3,
            error: Box::new({
                let mut e = e;
                explain(&mut e);
                e
            }),
            transactional: true,
        };
        assert!(shown.hint().unwrap().ends_with("; this migration was rolled back"));
        assert!(!shown.hint().unwrap().contains("fix the"));
    }

    #[test]
    fn a_hint_inside_the_message_is_split_out() {
        let mut e = db("XX000", "ERROR:  library \"citus\" may not be used as an output plugin\nHINT:  If it is safe for all REPLICATION users to use this library as an output plugin, add it to \"output_plugin_libraries\" and reload the server configuration.", None);
        split_relayed(&mut e);
        assert_eq!(e.message, "library \"citus\" may not be used as an output plugin");
        assert_eq!(
            e.hint.as_deref(),
            Some("If it is safe for all REPLICATION users to use this library as an output plugin, add it to \"output_plugin_libraries\" and reload the server configuration.")
        );
        assert_eq!(e.detail, None);
        assert!(runtime_hint(&e)
            .unwrap()
            .contains("add citus to output_plugin_libraries on every node"));
        let mut e = db(
            "XX000",
            "ERROR:  could not do it\nDETAIL:  because\nCONTEXT:  while executing command on 10.0.0.2:5432",
            Some("kept"),
        );
        split_relayed(&mut e);
        assert_eq!((e.message.as_str(), e.detail.as_deref()), ("could not do it", Some("kept")));
        // A plain message stays as it is.
        let mut plain = db("42P01", "relation \"x\" does not exist", None);
        split_relayed(&mut plain);
        assert_eq!(plain, db("42P01", "relation \"x\" does not exist", None));
    }

    #[test]
    fn notices_are_one_line() {
        let n = Notice {
            severity: "NOTICE".into(),
            error: DbError {
                fix: None,
                code: "0A000".into(),
                message: "relation logs does not have a REPLICA IDENTITY or PRIMARY KEY".into(),
                detail: Some("UPDATE and DELETE commands on the relation will error out during create_distributed_table_concurrently unless there is a REPLICA IDENTITY or PRIMARY KEY. INSERT commands will still work.".into()),
                hint: None,
                offset: None,
            },
        };
        assert_eq!(
            notice_line(&n),
            "server NOTICE: relation logs does not have a REPLICA IDENTITY or PRIMARY KEY; DETAIL: UPDATE and DELETE commands on the relation will error out during create_distributed_table_concurrently unless there is a REPLICA IDENTITY or PRIMARY KEY. INSERT commands will still work."
        );
        assert!(is_citus_function("create_distributed_table") && is_citus_function("citus_rebalance_start"));
        assert!(!is_citus_function("now") && !is_citus_function("pg_sleep"));
    }

    #[test]
    fn unreachable_workers_are_shown() {
        let mut n = Node::from_row(&coordinator()).unwrap();
        n.reach = Some(Reach::Checked(Vec::new()));
        assert_eq!(n.facts()[1].1, "2 active (10.0.0.2:5432, 10.0.0.3:5432)");
        n.reach = Some(Reach::Checked(vec![(
            "10.0.0.3:5432".into(),
            "failed to connect to 10.0.0.3:5432".into(),
        )]));
        let f = n.facts();
        assert_eq!(
            f[1].1,
            "2 active (10.0.0.2:5432, 10.0.0.3:5432); 1 unreachable from the coordinator"
        );
        assert_eq!(
            f[2],
            (
                "unreachable".to_string(),
                "10.0.0.3:5432 (failed to connect to 10.0.0.3:5432): a node failure, migrations that touch its shards fail until it is back; check it with SELECT * FROM citus_check_cluster_node_health() on the coordinator, or pg_isready -h 10.0.0.3 -p 5432".to_string()
            )
        );
        n.reach = Some(Reach::Failed("permission denied".into()));
        assert_eq!(
            n.facts()[2],
            (
                "worker check".to_string(),
                "the coordinator could not check its workers: permission denied".to_string()
            )
        );
    }

    #[test]
    fn rebalance_start_says_the_job_outlives_the_migration() {
        assert!(rebalance_note(false).starts_with("citus_rebalance_start() starts the rebalance as a background job and returns at once: the migration is recorded as applied while shards still move"));
        assert!(rebalance_note(true).contains("background job, once this transaction commits, and returns"));
        assert!(rebalance_note(true).contains("SELECT citus_rebalance_wait()"));
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
            db("XX000", "library \"citus\" may not be used as an output plugin", None),
            db("XX000", "cannot distribute a table concurrently when citus.shard_replication_factor > 1", None),
            db("0A000", "functions used in the DO UPDATE SET clause of INSERTs on distributed tables must be marked IMMUTABLE", None),
            db("XX000", "cannot colocate tables a and b", Some("Distribution column types don't match for a and b.")),
            db("XX000", "cannot undistribute table because the table is not distributed", None),
            db("XX000", "this call doesn't change any properties of the table", None),
        ];
        let hints: Vec<_> = cases.iter().map(|c| runtime_hint(c).unwrap_or_else(|| panic!("{c:?}"))).collect();
        assert!(hints[0].contains("must include the distribution column"));
        assert!(hints[2].contains("alter_distributed_table"));
        assert!(hints[5].contains("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"));
        assert_eq!(hints[5], hints[6]);
        assert_eq!(hints[6], hints[7]);
        assert!(hints[9].contains("-- chatmigrate:no-transaction"));
        assert!(hints[11].contains("output_plugin_libraries"));
        assert!(hints[12].contains("citus.shard_replication_factor = 1"));
        assert!(hints[13].contains("EXCLUDED"));
        assert!(hints[14].contains("same type"));
        assert!(hints[15].contains("WHERE EXISTS"));
        assert!(hints[16].contains("citus_tables"));
        assert_eq!(runtime_hint(&db("42P01", "relation \"x\" does not exist", None)), None);
        assert_eq!(runtime_hint(&db("0A000", "cannot create constraint on \"t\"", None)), None);
    }
}
