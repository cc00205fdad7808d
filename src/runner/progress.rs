//! Progress of a long index build (CREATE INDEX [CONCURRENTLY], REINDEX):
//! once a build has run about two seconds, a second, short-lived
//! connection (never the session that runs the build and holds the lock)
//! reads `pg_stat_progress_create_index` about once a second
//! (`dialects/postgres/index_progress.sql`) and reports each reading as a
//! [`BuildProgress`]: the phase, the session a CONCURRENTLY build waits
//! for, blocks or tuples done of total, the time elapsed and an estimate
//! of the time left. A statement that outlived its Data API call is read
//! by its server process on the run's own transport ([`read`]).

use std::time::{Duration, Instant};

use pg_query::NodeEnum;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::backend::{self, Backend, Purpose};
use crate::config::Config;
use crate::dialect::ToolSql;
use crate::error::Result;
use crate::sql::Statement;

use super::Event;

/// How long a build runs before its progress is read.
pub(crate) const AFTER: Duration = Duration::from_secs(2);
/// How often it is read then.
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// One reading of an index build's progress (or, with `ended`, that the
/// build is over: a view clears its progress line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildProgress {
    /// The migration's version, and the statement (1-based) of its file.
    pub version: i64,
    pub statement: usize,
    /// The server process that runs the build.
    pub pid: i64,
    /// `CREATE INDEX`, `CREATE INDEX CONCURRENTLY`, `REINDEX`, `REINDEX CONCURRENTLY`.
    pub command: String,
    /// The index (once the server has created it) and its table.
    pub index: Option<String>,
    pub table: Option<String>,
    /// The server's phase, e.g. `building index: loading tuples` (pgvector's
    /// HNSW), `waiting for old snapshots` (CONCURRENTLY).
    pub phase: String,
    /// What `done` and `total` count: `blocks` or `tuples` (what the index
    /// method reports in this phase; pgvector's HNSW reports blocks), or
    /// `sessions` while CONCURRENTLY waits for older transactions; `None`
    /// when the phase reports no count.
    pub unit: Option<&'static str>,
    pub done: u64,
    pub total: u64,
    /// The session a CONCURRENTLY build waits for, when it waits.
    pub waiting_for: Option<Locker>,
    /// Seconds since the build began.
    pub elapsed_s: u64,
    /// Seconds left in this phase at the rate measured since it began
    /// (`None` until the rate is known).
    pub eta_s: Option<u64>,
    /// The build is over (no more readings follow for it).
    pub ended: bool,
    /// Citus: the builds on shards, per worker (the coordinator's own view
    /// has none of them; `pid` is then 0 and `done`/`total` are the sums).
    pub nodes: Vec<NodeBuilds>,
}

/// The builds on shards that one Citus worker runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeBuilds {
    /// `host:port` of the worker.
    pub node: String,
    /// How many shard builds run there, and the phase most of them are in.
    pub builds: usize,
    pub phase: String,
    /// Blocks done of total, summed over its builds.
    pub done: u64,
    pub total: u64,
}

/// A session that a CONCURRENTLY build waits for (it has a transaction
/// older than the build): `pg_stat_activity` of `current_locker_pid`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Locker {
    pub pid: i64,
    pub application_name: String,
    pub user: String,
    pub state: String,
    /// Seconds since its transaction began.
    pub xact_age_s: Option<u64>,
}

impl BuildProgress {
    /// `blocks 120 of 800 (15%)`-like counts, as one phrase (`None` when the
    /// phase reports none).
    pub fn counts(&self) -> Option<String> {
        let unit = self.unit?;
        let pct = self
            .done
            .saturating_mul(100)
            .checked_div(self.total)
            .map(|p| format!(" ({p}%)"))
            .unwrap_or_default();
        Some(format!("{} of {} {unit}{pct}", self.done, self.total))
    }

    /// The session waited for, in words.
    pub fn waiting_text(&self) -> Option<String> {
        let l = self.waiting_for.as_ref()?;
        let age = l.xact_age_s.map(|s| format!(", transaction open {s} s")).unwrap_or_default();
        Some(format!(
            "waiting for pid {} (application_name '{}', user {}, {}{age})",
            l.pid, l.application_name, l.user, l.state
        ))
    }
}

impl std::fmt::Display for BuildProgress {
    /// `V4 statement 2: CREATE INDEX CONCURRENTLY on t: building index:
    /// loading tuples: 120 of 800 blocks (15%), 12 s elapsed, about 68 s left`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V{} statement {}: {}", self.version, self.statement, self.command)?;
        if let Some(i) = &self.index {
            write!(f, " {i}")?;
        }
        if let Some(t) = &self.table {
            write!(f, " on {t}")?;
        }
        if self.ended {
            return write!(f, ": ended after {} s", self.elapsed_s);
        }
        write!(f, ": {}", self.phase)?;
        if let Some(w) = self.waiting_text() {
            write!(f, ": {w}")?;
        }
        if let Some(c) = self.counts() {
            write!(f, ": {c}")?;
        }
        write!(f, ", {} s elapsed", self.elapsed_s)?;
        if let Some(eta) = self.eta_s {
            write!(f, ", about {eta} s left")?;
        }
        if !self.nodes.is_empty() {
            let each: Vec<String> = self
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "{}: {} shard builds, {} of {} blocks, {}",
                        n.node, n.builds, n.done, n.total, n.phase
                    )
                })
                .collect();
            write!(f, " [{}]", each.join("; "))?;
        }
        Ok(())
    }
}

/// Does `s` build an index whose progress the server reports?
pub(crate) fn is_index_build(s: &Statement) -> bool {
    matches!(s.node, Some(NodeEnum::IndexStmt(_)) | Some(NodeEnum::ReindexStmt(_)))
        // Citus builds a table's indexes on every new shard.
        || (matches!(s.node, Some(NodeEnum::SelectStmt(_))) && s.sql.to_ascii_lowercase().contains("create_distributed_table"))
}

/// The name a shard's relation has on the coordinator: `t_102008` → `t`.
fn shell_name(shard: &str) -> String {
    match shard.rsplit_once('_') {
        Some((base, id)) if !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit()) => base.to_string(),
        _ => shard.to_string(),
    }
}

/// The builds on the nodes beyond the session's server (Citus workers) as
/// one reading, or `None` when none runs there.
async fn remote(b: &mut dyn Backend, version: i64, statement: usize, elapsed: Duration) -> Option<BuildProgress> {
    let answers = b.remote_index_builds().await.ok()?;
    let mut nodes = Vec::new();
    let mut first: Option<serde_json::Value> = None;
    let mut phases: std::collections::BTreeMap<String, usize> = Default::default();
    for (node, json) in answers {
        let Ok(serde_json::Value::Array(builds)) = serde_json::from_str::<serde_json::Value>(&json) else {
            continue;
        };
        if builds.is_empty() {
            continue;
        }
        let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
        let mut here: std::collections::BTreeMap<String, usize> = Default::default();
        for v in &builds {
            let phase = v["phase"].as_str().unwrap_or_default().to_string();
            *here.entry(phase.clone()).or_default() += 1;
            *phases.entry(phase).or_default() += 1;
        }
        let top =
            |m: &std::collections::BTreeMap<String, usize>| m.iter().max_by_key(|(_, c)| **c).map(|(p, _)| p.clone()).unwrap_or_default();
        nodes.push(NodeBuilds {
            node,
            builds: builds.len(),
            phase: top(&here),
            done: builds.iter().map(|v| n(v, "blocks_done")).sum(),
            total: builds.iter().map(|v| n(v, "blocks_total")).sum(),
        });
        first.get_or_insert_with(|| builds[0].clone());
    }
    let first = first?;
    let name = |k: &str| first[k].as_str().map(shell_name);
    let phase = phases.iter().max_by_key(|(_, c)| **c).map(|(p, _)| p.clone()).unwrap_or_default();
    let (done, total) = nodes.iter().fold((0, 0), |(d, t), n| (d + n.done, t + n.total));
    Some(BuildProgress {
        version,
        statement,
        pid: 0,
        command: first["command"].as_str().unwrap_or("CREATE INDEX").to_string(),
        index: name("index"),
        table: name("table"),
        phase,
        unit: (total > 0).then_some("blocks"),
        done,
        total,
        waiting_for: None,
        elapsed_s: elapsed.as_secs(),
        eta_s: None,
        ended: false,
        nodes,
    })
}

/// The rate of the current phase, for the time left.
#[derive(Debug, Default)]
pub(crate) struct Rate {
    phase: Option<(String, Instant, u64)>,
}

impl Rate {
    /// Fills `p.eta_s` from the readings of its phase so far.
    fn estimate(&mut self, p: &mut BuildProgress) {
        let now = Instant::now();
        let key = format!("{}/{:?}", p.phase, p.unit);
        match &self.phase {
            Some((k, at, from)) if *k == key && p.done >= *from => {
                let secs = now.duration_since(*at).as_secs_f64();
                let gained = (p.done - from) as f64;
                if p.unit.is_some() && gained > 0.0 && secs >= 1.0 && p.total > p.done {
                    p.eta_s = Some(((p.total - p.done) as f64 * secs / gained).round() as u64);
                }
            }
            _ => self.phase = Some((key, now, p.done)),
        }
    }
}

/// One row of `index_progress.sql` as a reading (`None`: not a row of it).
fn parse(version: i64, statement: usize, r: &[Option<String>]) -> Option<BuildProgress> {
    let s = |i: usize| r.get(i).cloned().flatten();
    let n = |i: usize| s(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let pid = s(0)?.parse().ok()?;
    let phase = s(1)?;
    let (blocks, tuples, lockers) = ((n(2), n(3)), (n(4), n(5)), (n(6), n(7)));
    let waiting_for = s(8).and_then(|p| p.parse().ok()).map(|pid| Locker {
        pid,
        application_name: s(9).unwrap_or_default(),
        user: s(10).unwrap_or_default(),
        state: s(11).unwrap_or_else(|| "gone".into()),
        xact_age_s: s(12).and_then(|v| v.parse().ok()),
    });
    let (unit, (done, total)) = if phase.starts_with("waiting for") && lockers.1 > 0 {
        (Some("sessions"), lockers)
    } else if blocks.1 > 0 {
        (Some("blocks"), blocks)
    } else if tuples.1 > 0 || tuples.0 > 0 {
        (Some("tuples"), tuples)
    } else {
        (None, (0, 0))
    };
    Some(BuildProgress {
        version,
        statement,
        pid,
        command: s(14).unwrap_or_else(|| "CREATE INDEX".into()),
        index: s(15),
        table: s(16),
        phase,
        unit,
        done,
        total,
        waiting_for,
        elapsed_s: n(13),
        eta_s: None,
        ended: false,
        nodes: Vec::new(),
    })
}

/// Reads the progress of the build in server process `pid` (`0`: the
/// session running exactly `sql`) on `b`; `None` when no build reports.
pub(crate) async fn read(
    b: &mut dyn Backend,
    pid: i64,
    sql: &str,
    version: i64,
    statement: usize,
    rate: &mut Rate,
) -> Option<BuildProgress> {
    let rows = b.query(&ToolSql::index_progress(pid, sql)).await.ok()?;
    let mut p = parse(version, statement, rows.first()?)?;
    rate.estimate(&mut p);
    Some(p)
}

/// Watches the build of statement `statement` (1-based) of V`version`,
/// sent as `sql`: after [`AFTER`], connects a second time and sends each
/// reading to `tx` every [`EVERY`]. Runs until dropped (the connection
/// closes with it) or the receiver is gone; a failure to connect or read
/// ends the watch quietly: progress is shown where it can be read, and
/// never stops a migration.
pub(crate) async fn watch(cfg: &Config, sql: &str, version: i64, statement: usize, tx: UnboundedSender<BuildProgress>) {
    tokio::time::sleep(AFTER).await;
    let Ok(mut b) = backend::connect(cfg, Purpose::READ).await else {
        return;
    };
    let mut rate = Rate::default();
    let mut last = None;
    let mut misses = 0;
    let began = Instant::now() - AFTER;
    while !tx.is_closed() {
        let mut reading = read(&mut *b, 0, sql, version, statement, &mut rate).await;
        if reading.is_none() {
            // Citus: the builds on shards run on the workers.
            reading = remote(&mut *b, version, statement, began.elapsed()).await.map(|mut p| {
                rate.estimate(&mut p);
                p
            });
        }
        match reading {
            Some(p) => {
                misses = 0;
                last = Some(p.clone());
                if tx.send(p).is_err() {
                    break;
                }
            }
            // Not reporting yet (or any more): a few misses in a row end the
            // watch once a build was seen (it ended).
            None => {
                misses += 1;
                if last.is_some() && misses >= 3 {
                    break;
                }
            }
        }
        tokio::time::sleep(EVERY).await;
    }
    b.close().await;
    std::future::pending::<()>().await
}

/// Before `up` waits for the lock on a session transport: a CONCURRENTLY
/// build left building at an earlier run's deadline keeps the lock until
/// it ends. If the holder is such a build, waits for it to end and shows
/// its progress (the lock poll would time out on it); `partial`: the
/// history's partial row it belongs to (version, statement from 1).
pub(crate) async fn await_left_build(
    b: &mut dyn Backend,
    cfg: &Config,
    partial: Option<(i64, usize)>,
    events: &mut dyn FnMut(&Event),
) -> Result<()> {
    let rows = b.query(&ToolSql::new(&cfg.history, &cfg.pg.dbname).lock_builder()).await?;
    let Some(pid) = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|p| p.parse::<i64>().ok())
    else {
        return Ok(());
    };
    let (version, statement) = partial.unwrap_or((0, 0));
    events(&Event::Note {
        version,
        message: format!(
            "statement {statement} is still building on the server (process {pid}), left by an earlier run at its deadline; it holds the migration lock: waiting for it to end (it is not built a second time)"
        ),
    });
    let (mut rate, mut last) = (Rate::default(), None);
    while let Some(p) = read(b, pid, "", version, statement, &mut rate).await {
        last = Some(p.clone());
        events(&Event::IndexProgress(Box::new(p)));
        tokio::time::sleep(EVERY).await;
    }
    if let Some(p) = last {
        let elapsed = Duration::from_secs(p.elapsed_s);
        events(&Event::IndexProgress(Box::new(ended(&p, elapsed))));
    }
    Ok(())
}

/// The reading that says the build is over, after `last` (a view clears
/// its line).
pub(crate) fn ended(last: &BuildProgress, elapsed: Duration) -> BuildProgress {
    BuildProgress {
        ended: true,
        elapsed_s: elapsed.as_secs(),
        eta_s: None,
        waiting_for: None,
        ..last.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[Option<&str>]) -> Vec<Option<String>> {
        cells.iter().map(|c| c.map(str::to_string)).collect()
    }

    #[test]
    fn a_reading_counts_what_the_phase_reports() {
        let hnsw = row(&[
            Some("42"),
            Some("building index: loading tuples"),
            Some("120"),
            Some("800"),
            Some("0"),
            Some("0"),
            Some("0"),
            Some("0"),
            None,
            None,
            None,
            None,
            None,
            Some("12"),
            Some("CREATE INDEX CONCURRENTLY"),
            Some("public.v_hnsw"),
            Some("v"),
        ]);
        let p = parse(4, 2, &hnsw).unwrap();
        assert_eq!((p.unit, p.done, p.total), (Some("blocks"), 120, 800));
        assert_eq!(
            p.to_string(),
            "V4 statement 2: CREATE INDEX CONCURRENTLY public.v_hnsw on v: building index: loading tuples: 120 of 800 blocks (15%), 12 s elapsed"
        );
        let waiting = row(&[
            Some("42"),
            Some("waiting for old snapshots"),
            Some("0"),
            Some("0"),
            Some("0"),
            Some("0"),
            Some("0"),
            Some("1"),
            Some("77"),
            Some("psql"),
            Some("app"),
            Some("idle in transaction"),
            Some("30"),
            Some("3"),
            Some("CREATE INDEX CONCURRENTLY"),
            None,
            Some("v"),
        ]);
        let p = parse(4, 2, &waiting).unwrap();
        assert_eq!(
            p.to_string(),
            "V4 statement 2: CREATE INDEX CONCURRENTLY on v: waiting for old snapshots: waiting for pid 77 (application_name 'psql', user app, idle in transaction, transaction open 30 s): 0 of 1 sessions (0%), 3 s elapsed"
        );
        assert!(parse(1, 1, &row(&[None])).is_none());
    }

    #[test]
    fn a_shard_is_named_as_the_coordinator_names_its_table() {
        assert_eq!(shell_name("cmt_progress_108327"), "cmt_progress");
        assert_eq!(shell_name("public.t_slow_102008"), "public.t_slow");
        assert_eq!(shell_name("plain"), "plain");
        assert_eq!(shell_name("v_2x"), "v_2x");
    }

    #[test]
    fn the_time_left_follows_the_rate_of_the_phase() {
        let mut rate = Rate::default();
        let mut p = parse(1, 1, &row(&[Some("1"), Some("building index"), Some("100"), Some("1000")])).unwrap();
        rate.estimate(&mut p);
        assert_eq!(p.eta_s, None);
        // Two seconds later, 200 blocks more: 700 left at 100 a second.
        if let Some((_, at, _)) = &mut rate.phase {
            *at -= Duration::from_secs(2);
        }
        p.done = 300;
        rate.estimate(&mut p);
        assert_eq!(p.eta_s, Some(7));
        // A new phase starts over.
        p.phase = "building index: loading tuples".into();
        p.eta_s = None;
        rate.estimate(&mut p);
        assert_eq!(p.eta_s, None);
    }
}
