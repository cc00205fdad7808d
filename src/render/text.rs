//! Text for people: `up`'s progress lines and summary or its dry-run
//! script, the `status` table, `verify`'s drift and lint findings, `lint`'s
//! report, one-line results, and the `error:` / `hint:` lines.

use std::io::{self, Write};

use super::outcome::{summary, Done, Outcome, SchemaOutcome, StatusOutcome, UpOutcome, VerifyOutcome};
use super::Style;
use crate::backend::LockKind;
use crate::error::Error;
use crate::lint::{self, Finding, Level};
use crate::migration::label;
use crate::migration::{short_checksum, TxMode};
use crate::plan::{Entry, Kind, State};
use crate::runner::{Applied, Event, Line};
use crate::value::elapsed;

pub(super) fn outcome(style: &Style, out: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    match o {
        Outcome::Up(u) => up(style, out, u),
        Outcome::Status(s) => status(style, out, s),
        Outcome::Verify(v) => verify(style, out, v),
        Outcome::Lint(r) => lint(style, out, r),
        Outcome::Done(d) => done(style, out, d),
        Outcome::Schema(s) => schema(style, out, s),
    }
}

/// `adopt` and `diff`: the verdict, one line per difference, what next.
fn schema(style: &Style, out: &mut dyn Write, s: &SchemaOutcome) -> io::Result<()> {
    if s.quiet_ok && style.quiet {
        return Ok(());
    }
    writeln!(out, "{}", s.message)?;
    write!(out, "{}", crate::schema::render::text(&s.differences))?;
    for line in &s.after {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `error: ...`, `hint: ...`, and a lint refusal's report.
pub(super) fn error(style: &Style, out: &mut dyn Write, e: &Error) -> io::Result<()> {
    writeln!(out, "{} {e}", style.paint("1;31", "error:"))?;
    if let Some(h) = e.hint() {
        writeln!(out, "{} {h}", style.paint("1;36", "hint:"))?;
    }
    if let Error::Lint(report) = e {
        writeln!(out)?;
        lint_findings(out, &report.findings, style.color)?;
        writeln!(out, "{}", lint_summary(report))?;
    }
    if let Error::ObjectsExist { objects, .. } = e {
        writeln!(out)?;
        for o in objects {
            writeln!(out, "  {o}")?;
        }
    }
    Ok(())
}

fn done(style: &Style, out: &mut dyn Write, d: &Done) -> io::Result<()> {
    if style.quiet {
        return Ok(());
    }
    writeln!(out, "{}", d.message)
}

/// The findings, as `chatmigrate lint` prints them: for each, a line
/// `file:line:col: level[rule]: message`, the statement's first line, and the
/// help (several lines when it shows SQL), then a blank line.
pub(super) fn lint_findings(out: &mut dyn Write, findings: &[Finding], color: bool) -> io::Result<()> {
    let style = Style { color, ..Style::text() };
    for f in findings {
        let level = match f.level {
            Level::Error => style.paint("1;31", "error"),
            Level::Warning => style.paint("1;33", "warning"),
        };
        writeln!(out, "{}: {level}[{}]: {}", f.location, f.rule, f.message)?;
        writeln!(out, "   | {}", f.excerpt)?;
        let mut help = f.help.lines();
        if let Some(first) = help.next() {
            writeln!(out, "   = help: {first}")?;
        }
        for line in help {
            writeln!(out, "           {line}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `2 errors, 1 warning in 5 files (29 rules)` / `no problems in 5 files (29 rules)`.
pub(super) fn lint_summary(r: &lint::Report) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let found = match (r.errors(), r.warnings()) {
        (0, 0) => "no problems".to_string(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    };
    format!("{found} in {} ({})", plural(r.files, "file"), plural(r.rules.len(), "rule"))
}

/// `chatmigrate lint`: the findings and a summary line.
fn lint(style: &Style, out: &mut dyn Write, r: &lint::Report) -> io::Result<()> {
    lint_findings(out, &r.findings, style.color)?;
    if !style.quiet || !r.findings.is_empty() {
        writeln!(out, "{}", lint_summary(r))?;
    }
    Ok(())
}

/// One line per event while `up` runs.
pub(super) fn event(style: &Style, out: &mut dyn Write, ev: &Event) -> io::Result<()> {
    match ev {
        Event::CreatedDatabase { name } => writeln!(out, "created database {name}"),
        Event::Connected {
            target,
            backend,
            capabilities,
            facts,
        } if style.verbose => {
            let lock = match capabilities.lock {
                LockKind::SessionAdvisory => "lease row held by a session advisory lock",
                LockKind::LeaseRow => "lease row renewed by a heartbeat",
            };
            let trips = if capabilities.pipelined_transactions {
                "one round trip per transactional migration"
            } else {
                "one call per statement"
            };
            writeln!(out, "connected to {target} ({backend}: {lock}, {trips})")?;
            for (what, value) in facts {
                writeln!(out, "{what}: {value}")?;
            }
            Ok(())
        }
        Event::Connected { .. } => Ok(()),
        Event::Resuming {
            version,
            name,
            from,
            total,
        } => {
            writeln!(out, "resuming V{version} {name} at statement {} of {total}", from + 1)
        }
        Event::Applying { version, name, .. } if style.verbose => writeln!(out, "applying {} ...", label(*version, name)),
        Event::Applying { .. } => Ok(()),
        Event::Planned { .. } => Ok(()),
        Event::Applied(a) => writeln!(
            out,
            "{} {} ({})",
            style.paint("32", "applied"),
            label(a.version, &a.name),
            applied_detail(a)
        ),
        Event::DroppedInvalidIndex { version, index } => {
            writeln!(
                out,
                "V{version}: dropped invalid index {index} left by an earlier failed CONCURRENTLY build; building it again"
            )
        }
        Event::Reconnecting { attempt, reason } => {
            writeln!(out, "connection lost ({reason}); reconnecting (attempt {attempt}) to re-read the history")
        }
        Event::Restarting { version, name, reason } => {
            writeln!(out, "{}: the transaction was rolled back ({reason}); starting it over", label(*version, name))
        }
        Event::StillRunning {
            version,
            statement,
            elapsed_s,
        } => writeln!(
            out,
            "V{version}: statement {statement} still running on the server: {elapsed_s} s (polling; it is not sent again)"
        ),
        Event::SkippedSessionSetting { version, statement } => writeln!(
            out,
            "V{version}: skipped `{statement}`: a session setting does not outlive one Data API call (set it in the cluster parameter group)"
        ),
        Event::Note { version, message } => writeln!(out, "V{version}: {message}"),
        Event::IndexProgress(p) => writeln!(out, "{p}"),
        Event::Warning { version, message } => writeln!(out, "V{version}: {}: {message}", style.paint("33", "warning")),
        Event::Stopping {
            signal,
            version,
            statement,
            total,
            excerpt,
        } => writeln!(
            out,
            "{signal}: stopping after the current statement: V{version} statement {statement} of {total} (`{excerpt}`)"
        ),
        Event::LockRetry {
            version,
            name,
            attempt,
            of,
            wait_ms,
        } => writeln!(
            out,
            "{}: lock_timeout on attempt {attempt} of {of}; rolled back, retrying in {}",
            label(*version, name),
            elapsed(*wait_ms)
        ),
    }
}

fn applied_detail(a: &Applied) -> String {
    let mut parts = Vec::new();
    if a.transaction == TxMode::NoTransaction {
        parts.push(format!(
            "no transaction, {} statement{}",
            a.statements,
            if a.statements == 1 { "" } else { "s" }
        ));
    }
    if a.resumed_from > 0 {
        parts.push(format!("resumed at statement {}", a.resumed_from + 1));
    }
    if a.out_of_order {
        parts.push("out of order".into());
    }
    if a.answer_lost {
        parts.push("committed; its answer was lost with the connection".into());
    }
    parts.push(elapsed(a.duration_ms));
    parts.join(", ")
}

/// The end of `up`: a summary line, or the dry-run script.
fn up(style: &Style, out: &mut dyn Write, u: &UpOutcome) -> io::Result<()> {
    let r = &u.report;
    if u.dry_run {
        if r.dry_run.is_empty() {
            return writeln!(out, "-- nothing to apply on {}", r.target);
        }
        writeln!(out, "-- dry run on {}: nothing is sent", r.target)?;
        for step in &r.dry_run {
            if step.version != 0 || step.kind == Kind::Repeatable {
                let mode = match step.transaction {
                    TxMode::Transaction => "one transaction",
                    TxMode::NoTransaction => "no transaction, statement by statement",
                };
                writeln!(out, "\n-- {} ({mode})", label(step.version, &step.name))?;
            }
            for n in &step.notes {
                writeln!(out, "-- note: {n}")?;
            }
            for line in &step.lines {
                match line {
                    Line::Sent(s) => writeln!(out, "{s};")?,
                    Line::Comment(c) => writeln!(out, "-- {c}")?,
                }
            }
        }
        return Ok(());
    }
    if style.quiet {
        return Ok(());
    }
    match (r.applied.len(), &r.short_of_target) {
        (0, Some(s)) if s.pending_above > 0 || s.highest_applied.is_some_and(|h| h > s.target) => {
            let at = match s.highest_applied {
                Some(h) => format!("{} is at V{h}", r.target),
                None => format!("nothing is applied on {}", r.target),
            };
            let above = match s.pending_above {
                0 => String::new(),
                n => format!("; {n} pending above V{}", s.target),
            };
            writeln!(out, "nothing to apply up to V{}: {at}{above}", s.target)
        }
        (0, _) => writeln!(out, "nothing to apply: {} is up to date", r.target),
        (n, _) => writeln!(out, "{n} migration(s) applied to {} in {}", r.target, elapsed(u.duration_ms)),
    }
}

fn state_color(s: State) -> &'static str {
    match s {
        State::Applied => "32",
        State::Pending => "33",
        State::Changed | State::Renamed | State::Missing | State::Failed => "31",
        State::Partial => "35",
        State::Outdated => "33",
        State::Undoing => "35",
    }
}

/// `status` as a table, with the backend's lines about the server above.
fn status(style: &Style, out: &mut dyn Write, s: &StatusOutcome) -> io::Result<()> {
    let (target, entries) = (&s.target, &s.entries);
    for (what, value) in &s.facts {
        writeln!(out, "{what}: {value}")?;
    }
    for p in &s.placeholders {
        let value = p.value.as_deref().unwrap_or("(none on this backend)");
        writeln!(out, "placeholder {} = {value} ({})", p.name, p.from)?;
    }
    if s.database_missing {
        writeln!(out, "database does not exist yet on {target}: every migration is pending")?;
    }
    let name_w = entries.iter().map(|e| e.name.len()).max().unwrap_or(4).max(4);
    let ver_w = entries.iter().map(|e| version_cell(e).len()).max().unwrap_or(7).max(7);
    writeln!(
        out,
        "{:<ver_w$}  {:<name_w$}  {:<8}  {:<20}  TIME",
        "VERSION", "NAME", "STATE", "APPLIED AT"
    )?;
    for e in entries {
        let state = format!("{:<8}", e.state.as_str());
        let time = e.execution_ms.map(|m| elapsed(m.max(0) as u64)).unwrap_or_default();
        writeln!(
            out,
            "{:<ver_w$}  {:<name_w$}  {}  {:<20}  {}",
            version_cell(e),
            e.name,
            style.paint(state_color(e.state), &state),
            e.applied_at.as_deref().unwrap_or("-"),
            time
        )?;
        match e.state {
            State::Partial | State::Failed => {
                let done = e.statements_done.unwrap_or(0);
                let total = e.statements_total.unwrap_or(0);
                writeln!(out, "{:ver_w$}  {done} of {total} statements done", "")?;
                if let Some(err) = &e.error {
                    writeln!(out, "{:ver_w$}  {err}", "")?;
                }
            }
            State::Changed => {
                writeln!(
                    out,
                    "{:ver_w$}  file checksum {} differs from applied {}",
                    "",
                    short_checksum(e.file_checksum.as_deref().unwrap_or("?")),
                    short_checksum(e.applied_checksum.as_deref().unwrap_or("?"))
                )?;
                if let Some(applied) = e.applied_name.as_deref().filter(|a| *a != e.name) {
                    writeln!(out, "{:ver_w$}  applied as {applied}; the file is named {}", "", e.name)?;
                }
            }
            State::Renamed => writeln!(
                out,
                "{:ver_w$}  applied as {}; the file is named {} (same checksum)",
                "",
                e.applied_name.as_deref().unwrap_or("?"),
                e.name
            )?,
            State::Outdated => writeln!(
                out,
                "{:ver_w$}  file checksum {} differs from applied {}: `up` applies it again",
                "",
                short_checksum(e.file_checksum.as_deref().unwrap_or("?")),
                short_checksum(e.applied_checksum.as_deref().unwrap_or("?"))
            )?,
            State::Undoing => {
                let u = e.undo.as_ref();
                let (done, total) = u.map_or((0, 0), |u| (u.statements_done, u.statements_total));
                writeln!(
                    out,
                    "{:ver_w$}  its undo stopped after {done} of {total} statements; `chatmigrate down` resumes it at statement {}",
                    "",
                    done + 1
                )?;
                if let Some(err) = u.and_then(|u| u.error.as_ref()) {
                    writeln!(out, "{:ver_w$}  {err}", "")?;
                }
            }
            State::Missing if e.kind == Kind::Repeatable => writeln!(out, "{:ver_w$}  no file R__{}.sql", "", e.name)?,
            State::Missing => writeln!(out, "{:ver_w$}  no file has this version", "")?,
            _ => {}
        }
        if e.out_of_order {
            writeln!(out, "{:ver_w$}  applied out of order: a higher version was applied before it", "")?;
        }
    }
    let parts: Vec<String> = summary(entries).into_iter().map(|(s, n)| format!("{n} {}", s.as_str())).collect();
    writeln!(
        out,
        "{} on {target}",
        if parts.is_empty() {
            "no migrations".to_string()
        } else {
            parts.join(", ")
        }
    )
}

/// The VERSION cell of `status`: the version, or `R` for a repeatable
/// migration (its NAME is the file's `R__{name}`).
fn version_cell(e: &Entry) -> String {
    match e.kind {
        Kind::Repeatable => "R".into(),
        Kind::Versioned => e.version.to_string(),
    }
}

/// `verify`: the drift (or that there is none), then the lint findings.
fn verify(style: &Style, out: &mut dyn Write, v: &VerifyOutcome) -> io::Result<()> {
    verify_drift(style, out, v)?;
    if let Some(r) = v.lint.as_ref().filter(|r| !r.findings.is_empty()) {
        writeln!(out)?;
        lint(style, out, r)?;
    }
    Ok(())
}

/// `verify`'s first part: the drift, or that there is none.
pub(super) fn verify_drift(style: &Style, out: &mut dyn Write, v: &VerifyOutcome) -> io::Result<()> {
    if v.drift.is_empty() {
        if !style.quiet {
            writeln!(out, "{}", v.message())?;
        }
    } else {
        for e in &v.drift {
            writeln!(out, "{}", drift_line(e))?;
        }
        writeln!(
            out,
            "{} drifted migration(s) on {}; accept changed or renamed files with `chatmigrate repair`",
            v.drift.len(),
            v.target
        )?;
    }
    Ok(())
}

/// One drifted migration, as `verify` prints it (checksums short; JSON has
/// them whole).
pub(super) fn drift_line(e: &Entry) -> String {
    let path = e.path.as_deref().unwrap_or("?");
    let applied_name = e.applied_name.as_deref().unwrap_or("?");
    match e.state {
        State::Changed if applied_name != e.name => format!(
            "changed: V{} {} ({path}): applied {} as `{applied_name}` but the file has {} and is named `{}`",
            e.version,
            e.name,
            short_checksum(e.applied_checksum.as_deref().unwrap_or("?")),
            short_checksum(e.file_checksum.as_deref().unwrap_or("?")),
            e.name
        ),
        State::Changed => format!(
            "changed: V{} {} ({path}): applied {} but the file has {}",
            e.version,
            e.name,
            short_checksum(e.applied_checksum.as_deref().unwrap_or("?")),
            short_checksum(e.file_checksum.as_deref().unwrap_or("?"))
        ),
        State::Renamed => format!(
            "renamed: V{} {} ({path}): applied as `{applied_name}`; the file is named `{}` (same checksum)",
            e.version, e.name, e.name
        ),
        _ if e.kind == Kind::Repeatable => format!("missing: R__{} is applied but no file R__{}.sql is in the set", e.name, e.name),
        _ => format!("missing: V{} {} is applied but no file has this version", e.version, e.name),
    }
}
