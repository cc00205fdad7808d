//! Planning, pure: `plan(local, applied) -> Plan | Error`, and the per-version
//! status view. No I/O, so every rule (drift, missing files, out of order,
//! resume of partial migrations, --target) is unit-tested without a database.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::history::{Row, Status};
use crate::migration::Migration;

/// What to do with the local migrations.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Apply nothing above this version.
    pub target: Option<i64>,
    /// Apply files whose version is below the highest applied one.
    pub allow_out_of_order: bool,
}

/// One migration to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Index into the local migrations.
    pub index: usize,
    /// Statements already done by an earlier, interrupted run (non-transactional
    /// migrations only); execution resumes after them.
    pub resume_from: usize,
    pub out_of_order: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

/// Checks the applied history against the files and lists what to run.
///
/// Repeatable migrations (`R__`, version 0) come last, in name order: each
/// whose file has no row or a row with another checksum, and only when the
/// run leaves no versioned file pending (with `--target` below the newest
/// file they wait: a view may read a column a later version adds).
pub fn plan(local: &[Migration], applied: &[Row], opts: &PlanOptions) -> Result<Plan, Error> {
    let repeatable_rows: BTreeMap<&str, &Row> = applied.iter().filter(|r| r.is_repeatable()).map(|r| (r.name.as_str(), r)).collect();
    let mut plan = plan_versioned(local, applied, opts)?;
    if !local.last().is_some_and(Migration::is_repeatable) {
        return Ok(plan);
    }
    let done: std::collections::HashSet<i64> = applied.iter().filter(|r| r.status == Status::Applied).map(|r| r.version).collect();
    let all_versioned = local
        .iter()
        .filter(|m| !m.is_repeatable())
        .all(|m| done.contains(&m.version) || opts.target.is_none_or(|t| m.version <= t));
    if all_versioned {
        for (i, m) in local.iter().enumerate().filter(|(_, m)| m.is_repeatable()) {
            if repeatable_rows
                .get(m.name.as_str())
                .is_some_and(|r| m.checksum_matches(&r.checksum))
            {
                continue;
            }
            plan.steps.push(Step {
                index: i,
                resume_from: 0,
                out_of_order: false,
            });
        }
    }
    Ok(plan)
}

fn plan_versioned(local: &[Migration], applied: &[Row], opts: &PlanOptions) -> Result<Plan, Error> {
    let by_version: BTreeMap<i64, usize> = local
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.is_repeatable())
        .map(|(i, m)| (m.version, i))
        .collect();
    // Repeatable rows (version 0) are not versions; copied only when there are some.
    let versioned: Vec<Row>;
    let applied = match applied.iter().any(Row::is_repeatable) {
        true => {
            versioned = applied.iter().filter(|r| !r.is_repeatable()).cloned().collect();
            &versioned[..]
        }
        false => applied,
    };
    let rows: BTreeMap<i64, &Row> = applied.iter().map(|r| (r.version, r)).collect();

    if let Some(t) = opts.target {
        if !by_version.contains_key(&t) && !rows.contains_key(&t) {
            return Err(Error::UnknownTarget {
                flag: "--target",
                target: t,
            });
        }
    }
    for row in applied {
        let Some(&i) = by_version.get(&row.version) else {
            return Err(Error::MissingFile {
                version: row.version,
                name: row.name.clone(),
            });
        };
        let m = &local[i];
        if row.status == Status::Applied && !m.checksum_matches(&row.checksum) {
            return Err(Error::ChecksumDrift {
                path: m.path.clone(),
                version: m.version,
                applied: row.checksum.clone(),
                file: m.checksum.clone(),
            });
        }
        if row.status == Status::Applied && row.name != m.name {
            return Err(Error::NameDrift {
                path: m.path.clone(),
                version: m.version,
                applied: row.name.clone(),
                file: m.name.clone(),
            });
        }
    }
    let max_applied = applied.iter().filter(|r| r.status == Status::Applied).map(|r| r.version).max();
    let mut steps = Vec::new();
    for (i, m) in local.iter().enumerate().filter(|(_, m)| !m.is_repeatable()) {
        if opts.target.is_some_and(|t| m.version > t) {
            break;
        }
        let (resume_from, known) = match rows.get(&m.version) {
            Some(r) if r.status == Status::Applied => continue,
            Some(r) => (r.statements_done.max(0) as usize, true),
            None => (0, false),
        };
        let out_of_order = !known && max_applied.is_some_and(|max| m.version < max);
        if out_of_order && !opts.allow_out_of_order {
            return Err(Error::OutOfOrder {
                path: m.path.clone(),
                version: m.version,
                max_applied: max_applied.unwrap_or_default(),
            });
        }
        steps.push(Step {
            index: i,
            resume_from,
            out_of_order,
        });
    }
    Ok(Plan { steps })
}

/// The state of one version, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Applied, and the file matches the history.
    Applied,
    /// A file not applied yet.
    Pending,
    /// Applied, but the file's checksum differs (its name may differ too).
    Changed,
    /// Applied, same checksum, but the file's name differs from the applied one.
    Renamed,
    /// Applied, but no file has this version.
    Missing,
    /// A no-transaction migration stopped between statements; `up` resumes it.
    Partial,
    /// A no-transaction migration stopped on an error; fix the file and run `up`.
    Failed,
    /// A repeatable migration applied with another checksum: `up` applies
    /// it again.
    Outdated,
    /// Applied, and its no-transaction undo stopped part way (the history
    /// log holds how far): `chatmigrate down` resumes it.
    Undoing,
}

impl State {
    /// As `status` prints it: `applied`, `pending`, `changed`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Changed => "changed",
            State::Renamed => "renamed",
            State::Missing => "missing",
            State::Partial => "partial",
            State::Failed => "failed",
            State::Outdated => "outdated",
            State::Undoing => "undoing",
        }
    }
}

impl State {
    /// The history and the file disagree about an applied migration (`verify` exits 1).
    pub fn is_drift(self) -> bool {
        matches!(self, State::Changed | State::Renamed | State::Missing)
    }
}

/// A versioned migration (`V{version}__{name}.sql`) or a repeatable one
/// (`R__{name}.sql`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Versioned,
    Repeatable,
}

impl Kind {
    /// Whether it is `Versioned` (what JSON leaves out).
    pub fn is_versioned(&self) -> bool {
        *self == Kind::Versioned
    }

    /// The kind of a migration of this version (0: repeatable).
    pub fn of(version: i64) -> Kind {
        match version {
            crate::history::REPEATABLE => Kind::Repeatable,
            _ => Kind::Versioned,
        }
    }
}

/// One line of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The migration's version (0 for a repeatable one).
    pub version: i64,
    /// `repeatable` (`R__`); versioned entries (`V{version}__`) leave it
    /// out of the JSON, which is as it was before repeatables.
    #[serde(skip_serializing_if = "Kind::is_versioned")]
    pub kind: Kind,
    /// The file's name (the applied name where no file has this version).
    pub name: String,
    /// The name in the history (`None`: not applied); differs from `name`
    /// when the file was renamed after it was applied.
    pub applied_name: Option<String>,
    /// Applied, pending, changed, ...
    pub state: State,
    /// The file (`None`: no file has this version).
    pub path: Option<String>,
    /// When the history row was last written (the server's `timestamptz`, as text).
    pub applied_at: Option<String>,
    /// The time it took, summed over runs for a resumed migration.
    pub execution_ms: Option<i64>,
    /// The database user that applied it.
    pub installed_by: Option<String>,
    /// Statements finished (a no-transaction migration resumes after them).
    pub statements_done: Option<i32>,
    /// Statements in the file when it ran.
    pub statements_total: Option<i32>,
    /// Applied below the highest version applied before it.
    pub out_of_order: bool,
    /// For a failed migration: the statement, its `file:line:col` and the server's message.
    pub error: Option<String>,
    /// The file's `sha256:<hex>` checksum.
    pub file_checksum: Option<String>,
    /// The checksum in the history.
    pub applied_checksum: Option<String>,
    /// For an undo that stopped part way (state `undoing`): statements of
    /// the undo file done, of how many, and the error it stopped on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<UndoProgress>,
}

/// How far a no-transaction undo got before it stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UndoProgress {
    /// Statements of the undo file done; `down` resumes at the next one.
    pub statements_done: i32,
    pub statements_total: i32,
    /// The statement and the server's message, when it stopped on an error.
    pub error: Option<String>,
}

/// Marks the applied migrations whose no-transaction undo stopped part way
/// (`undoing`: version and the log's `N/M` or `N/M: error`) as
/// [`State::Undoing`], with how far the undo got.
pub fn mark_undoing(entries: &mut [Entry], undoing: &[(i64, String)]) {
    for (version, detail) in undoing {
        let Some(e) = entries
            .iter_mut()
            .find(|e| e.version == *version && e.kind == Kind::Versioned && e.state == State::Applied)
        else {
            continue;
        };
        let (counts, error) = match detail.split_once(": ") {
            Some((c, err)) => (c, Some(err.to_string())),
            None => (detail.as_str(), None),
        };
        let (done, total) = counts.split_once('/').unwrap_or((counts, "0"));
        e.state = State::Undoing;
        e.undo = Some(UndoProgress {
            statements_done: done.trim().parse().unwrap_or(0),
            statements_total: total.trim().parse().unwrap_or(0),
            error,
        });
    }
}

/// Every version known to the files or the history, in version order,
/// then every repeatable migration in name order.
pub fn status(local: &[Migration], applied: &[Row]) -> Vec<Entry> {
    let (versioned, repeatable): (Vec<&Migration>, Vec<&Migration>) = local.iter().partition(|m| !m.is_repeatable());
    let mut out: Vec<Entry> = status_of(
        &versioned,
        applied.iter().filter(|r| !r.is_repeatable()),
        |m| m.version,
        |r| r.version,
    )
    .into_values()
    .collect();
    out.extend(
        status_of(
            &repeatable,
            applied.iter().filter(|r| r.is_repeatable()),
            |m| m.name.clone(),
            |r| r.name.clone(),
        )
        .into_values(),
    );
    out
}

/// The entries of `local` and `applied`, matched by `key`.
fn status_of<'a, K: Ord>(
    local: &[&Migration],
    applied: impl Iterator<Item = &'a Row>,
    key: impl Fn(&Migration) -> K,
    row_key: impl Fn(&Row) -> K,
) -> BTreeMap<K, Entry> {
    let mut out: BTreeMap<K, Entry> = BTreeMap::new();
    for &m in local {
        out.insert(
            key(m),
            Entry {
                kind: Kind::of(m.version),
                version: m.version,
                name: m.name.clone(),
                applied_name: None,
                state: State::Pending,
                path: Some(m.path.clone()),
                applied_at: None,
                execution_ms: None,
                installed_by: None,
                statements_done: None,
                statements_total: None,
                out_of_order: false,
                error: None,
                file_checksum: Some(m.checksum.clone()),
                applied_checksum: None,
                undo: None,
            },
        );
    }
    for r in applied {
        let e = out.entry(row_key(r)).or_insert_with(|| Entry {
            kind: Kind::of(r.version),
            version: r.version,
            name: r.name.clone(),
            applied_name: None,
            state: State::Missing,
            path: None,
            applied_at: None,
            execution_ms: None,
            installed_by: None,
            statements_done: None,
            statements_total: None,
            out_of_order: false,
            error: None,
            file_checksum: None,
            applied_checksum: None,
            undo: None,
        });
        let earlier = local
            .binary_search_by_key(&row_key(r), |m| key(m))
            .ok()
            .is_some_and(|i| local[i].earlier_checksums.contains(&r.checksum.as_str()));
        e.state = match (r.status, &e.file_checksum) {
            (_, None) => State::Missing,
            (_, Some(c)) if r.is_repeatable() && *c != r.checksum && !earlier => State::Outdated,
            (Status::Applied, Some(c)) if *c != r.checksum && !earlier => State::Changed,
            (Status::Applied, _) if e.name != r.name => State::Renamed,
            (Status::Applied, _) => State::Applied,
            (Status::Partial, _) => State::Partial,
            (Status::Failed, _) => State::Failed,
            // Never read back: `down` writes them to the log.
            (Status::Undoing | Status::UndoFailed | Status::Undone, _) => State::Applied,
        };
        e.applied_name = Some(r.name.clone());
        e.applied_at = Some(r.applied_at.clone());
        e.execution_ms = Some(r.execution_ms);
        e.installed_by = Some(r.installed_by.clone());
        e.statements_done = Some(r.statements_done);
        e.statements_total = Some(r.statements_total);
        e.out_of_order = r.out_of_order;
        e.error = r.error.clone();
        e.applied_checksum = Some(r.checksum.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mig(v: i64, body: &str) -> Migration {
        Migration::parse(&format!("V{v}__m{v}.sql"), &format!("V{v}__m{v}.sql"), body.as_bytes()).unwrap()
    }

    fn row(m: &Migration, status: Status, done: i32) -> Row {
        Row {
            version: m.version,
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            status,
            statements_done: done,
            statements_total: 2,
            applied_at: String::new(),
            execution_ms: 1,
            installed_by: String::new(),
            tool_version: String::new(),
            backend: "postgres".into(),
            out_of_order: false,
            error: None,
        }
    }

    fn rep(name: &str, body: &str) -> Migration {
        Migration::parse(&format!("R__{name}.sql"), &format!("R__{name}.sql"), body.as_bytes()).unwrap()
    }

    #[test]
    fn repeatables_come_last_when_their_checksum_changes_and_wait_for_the_target() {
        // As loaded: versions, then repeatables by name.
        let local = vec![
            mig(1, "select 1;"),
            mig(2, "select 2;"),
            rep("a", "select 'a';"),
            rep("b", "select 'b';"),
        ];
        let steps = |applied: &[Row], target| {
            plan(
                &local,
                applied,
                &PlanOptions {
                    target,
                    ..Default::default()
                },
            )
            .unwrap()
            .steps
            .iter()
            .map(|s| s.index)
            .collect::<Vec<_>>()
        };
        assert_eq!(steps(&[], None), vec![0, 1, 2, 3]);
        // A target below the newest version: no repeatable.
        assert_eq!(steps(&[], Some(1)), vec![0]);
        let mut applied = vec![
            row(&local[0], Status::Applied, 1),
            row(&local[1], Status::Applied, 1),
            row(&local[2], Status::Applied, 1),
        ];
        assert_eq!(steps(&applied, None), vec![3]);
        // Everything applied already: --target 1 leaves none pending, so
        // the repeatables may run.
        assert_eq!(steps(&applied, Some(1)), vec![3]);
        applied.push(row(&local[3], Status::Applied, 1));
        assert_eq!(steps(&applied, None), Vec::<usize>::new());
        // Another checksum: again, alone.
        applied[3].checksum = "sha256:old".into();
        assert_eq!(steps(&applied, None), vec![3]);
        // A row without a file is no error for `up`; status shows it.
        let st = status(&local[..3], &applied);
        assert_eq!(
            st.iter().map(|e| (e.kind, e.state, e.name.as_str())).collect::<Vec<_>>(),
            vec![
                (Kind::Versioned, State::Applied, "m1"),
                (Kind::Versioned, State::Applied, "m2"),
                (Kind::Repeatable, State::Applied, "a"),
                (Kind::Repeatable, State::Missing, "b"),
            ]
        );
        assert_eq!(plan(&local[..3], &applied, &PlanOptions::default()).unwrap().steps, vec![]);
        let st = status(&local, &applied);
        assert_eq!(st[3].state, State::Outdated);
        assert!(!State::Outdated.is_drift());
    }

    #[test]
    fn pending_in_order() {
        let local = vec![mig(1, "select 1;"), mig(2, "select 2;"), mig(3, "select 3;")];
        let applied = vec![row(&local[0], Status::Applied, 1)];
        let p = plan(&local, &applied, &PlanOptions::default()).unwrap();
        assert_eq!(p.steps.iter().map(|s| s.index).collect::<Vec<_>>(), vec![1, 2]);
        let p = plan(
            &local,
            &applied,
            &PlanOptions {
                target: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.steps.len(), 1);
        let e = plan(
            &local,
            &applied,
            &PlanOptions {
                target: Some(9),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "--target 9: no migration file has that version");
    }

    #[test]
    fn drift_missing_out_of_order() {
        let local = vec![mig(1, "select 1;"), mig(2, "select 2;")];
        let mut r = row(&local[0], Status::Applied, 1);
        r.checksum = "sha256:00".into();
        let e = plan(&local, &[r], &PlanOptions::default()).unwrap_err();
        assert!(matches!(e, Error::ChecksumDrift { version: 1, .. }));

        let gone = row(&mig(7, "select 7;"), Status::Applied, 1);
        let e = plan(&local, &[gone], &PlanOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "version 7 (m7) is applied in the database but has no migration file");

        let local = vec![mig(1, "select 1;"), mig(2, "select 2;"), mig(3, "select 3;")];
        let applied = vec![row(&local[0], Status::Applied, 1), row(&local[2], Status::Applied, 1)];
        let e = plan(&local, &applied, &PlanOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "V2__m2.sql: version 2 is below the highest applied version 3 (out of order)"
        );
        let p = plan(
            &local,
            &applied,
            &PlanOptions {
                allow_out_of_order: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            p.steps,
            vec![Step {
                index: 1,
                resume_from: 0,
                out_of_order: true
            }]
        );
    }

    #[test]
    fn a_renamed_applied_file_is_drift() {
        let local = vec![mig(1, "select 1;")];
        let mut r = row(&local[0], Status::Applied, 1);
        r.name = "old_name".into();
        let e = plan(&local, &[r.clone()], &PlanOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "V1__m1.sql: version 1 was applied as `old_name` but the file is now named `m1`"
        );
        let s = status(&local, &[r.clone()]);
        assert_eq!(
            (s[0].state, s[0].name.as_str(), s[0].applied_name.as_deref()),
            (State::Renamed, "m1", Some("old_name"))
        );
        // A changed checksum wins; both names are still there.
        r.checksum = "sha256:00".into();
        let s = status(&local, &[r]);
        assert_eq!((s[0].state, s[0].applied_name.as_deref()), (State::Changed, Some("old_name")));
    }

    #[test]
    fn partial_resumes_and_may_be_edited() {
        let local = vec![mig(1, "-- chatmigrate:no-transaction\nselect 1;\nselect 2;")];
        let mut r = row(&local[0], Status::Partial, 1);
        r.checksum = "sha256:old".into();
        let p = plan(&local, &[r.clone()], &PlanOptions::default()).unwrap();
        assert_eq!(
            p.steps,
            vec![Step {
                index: 0,
                resume_from: 1,
                out_of_order: false
            }]
        );
        assert_eq!(status(&local, &[r])[0].state, State::Partial);
    }
}
