//! All rendering: human text and JSON for every command, the error line and
//! its hint, colours (auto / always / never, NO_COLOR honoured). Renderers
//! write to any `io::Write` so tests can capture them. Secrets never reach
//! here: targets are `user@host:port/db`, URLs are redacted at parse time.

use std::io::{self, Write};

use serde_json::json;

use crate::error::Error;
use crate::lint::{self, Finding, Level};
use crate::plan::{Entry, State};
use crate::runner::{Applied, Event, UpReport};

/// Output settings shared by every command.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub json: bool,
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Human-friendly duration: `12 ms`, `3.4 s`, `2 min 5 s`.
pub fn duration_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// Prints an error as `error: ...` + `hint: ...` on stderr (and as JSON on
/// stdout with `--format json`). A lint refusal is followed by its report,
/// exactly as `chatmigrate lint` prints it (JSON: under `"lint"`).
pub fn error(style: &Style, e: &Error) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{} {e}", style.paint("1;31", "error:"));
    if let Some(h) = e.hint() {
        let _ = writeln!(err, "{} {h}", style.paint("1;36", "hint:"));
    }
    if let Error::Lint(report) = e {
        let _ = writeln!(err);
        let _ = lint_findings(&mut err, &report.findings, style.color);
        let _ = writeln!(err, "{}", lint_summary(report));
    }
    if style.json {
        error_json(e);
    }
}

/// The JSON error object on stdout: `{"ok":false,"error":{"kind",...}}`.
pub fn error_json(e: &Error) {
    let mut v = json!({"ok": false, "error": {"kind": e.kind(), "message": e.to_string(), "hint": e.hint()}});
    if let Error::Lint(report) = e {
        v["lint"] = lint_json(report);
    }
    let _ = writeln!(io::stdout().lock(), "{v}");
}

/// The findings, as `chatmigrate lint` prints them: for each, a line
/// `file:line:col: level[rule]: message`, the statement's first line, and the
/// help (several lines when it shows SQL), then a blank line.
pub fn lint_findings(out: &mut dyn Write, findings: &[Finding], color: bool) -> io::Result<()> {
    let style = Style {
        json: false,
        color,
        quiet: false,
        verbose: false,
    };
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
pub fn lint_summary(r: &lint::Report) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let found = match (r.errors(), r.warnings()) {
        (0, 0) => "no problems".to_string(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    };
    format!("{found} in {} ({})", plural(r.files, "file"), plural(r.rules.len(), "rule"))
}

/// The JSON document of a lint run (docs/lint.md; a test pins its shape).
pub fn lint_json(r: &lint::Report) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = r
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule,
                "level": f.level,
                "path": f.location.path,
                "line": f.location.line,
                "column": f.location.col,
                "excerpt": f.excerpt,
                "message": f.message,
                "help": f.help,
            })
        })
        .collect();
    json!({
        "format": 1,
        "files": r.files,
        "rules": r.rules,
        "summary": {"errors": r.errors(), "warnings": r.warnings()},
        "findings": findings,
    })
}

/// `chatmigrate lint`: the findings and a summary line, or JSON
/// (`{"ok": true, ...lint_json}`: the run worked, whatever it found).
pub fn lint(style: &Style, out: &mut dyn Write, r: &lint::Report) -> io::Result<()> {
    if style.json {
        let mut v = lint_json(r);
        v["ok"] = json!(true);
        return writeln!(out, "{v}");
    }
    lint_findings(out, &r.findings, style.color)?;
    if !style.quiet || !r.findings.is_empty() {
        writeln!(out, "{}", lint_summary(r))?;
    }
    Ok(())
}

/// A progress line while waiting (Aurora resuming, throttling), to stderr
/// so it never mixes with JSON on stdout; silent with --quiet.
pub fn waiting(style: &Style, w: &crate::retry::Waiting) {
    if !style.quiet {
        eprintln!("{w}");
    }
}

/// One line per event while `up` runs (text mode only).
pub fn up_event(style: &Style, out: &mut dyn Write, ev: &Event) -> io::Result<()> {
    if style.json || style.quiet {
        return Ok(());
    }
    match ev {
        Event::CreatedDatabase { name } => writeln!(out, "created database {name}"),
        Event::Connected {
            target,
            backend,
            capabilities,
            facts,
        } if style.verbose => {
            let lock = match capabilities.lock {
                crate::backend::LockKind::SessionAdvisory => "lease row held by a session advisory lock",
                crate::backend::LockKind::LeaseRow => "lease row renewed by a heartbeat",
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
        Event::Applying { version, name, .. } if style.verbose => writeln!(out, "applying V{version} {name} ..."),
        Event::Applying { .. } => Ok(()),
        Event::Applied(a) => writeln!(
            out,
            "{} V{} {} ({})",
            style.paint("32", "applied"),
            a.version,
            a.name,
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
            writeln!(out, "V{version} {name}: the transaction was rolled back ({reason}); starting it over")
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
            "V{version} {name}: lock_timeout on attempt {attempt} of {of}; rolled back, retrying in {}",
            duration_ms(*wait_ms)
        ),
    }
}

fn applied_detail(a: &Applied) -> String {
    let mut parts = Vec::new();
    if a.transaction == crate::migration::TxMode::NoTransaction {
        parts.push(format!("no transaction, {} statements", a.statements));
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
    parts.push(duration_ms(a.duration_ms));
    parts.join(", ")
}

/// The end of `up`: a summary line, or the dry-run script, or JSON.
pub fn up_report(style: &Style, out: &mut dyn Write, r: &UpReport, dry_run: bool, total_ms: u64) -> io::Result<()> {
    if style.json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        v["ok"] = json!(true);
        v["dry_run"] = if dry_run {
            serde_json::to_value(&r.dry_run).unwrap_or_default()
        } else {
            json!(null)
        };
        v["duration_ms"] = json!(total_ms);
        return writeln!(out, "{v}");
    }
    if dry_run {
        if r.dry_run.is_empty() {
            return writeln!(out, "-- nothing to apply on {}", r.target);
        }
        writeln!(out, "-- dry run on {}: nothing is sent", r.target)?;
        for step in &r.dry_run {
            if step.version != 0 {
                let mode = match step.transaction {
                    crate::migration::TxMode::Transaction => "one transaction",
                    crate::migration::TxMode::NoTransaction => "no transaction, statement by statement",
                };
                writeln!(out, "\n-- V{} {} ({mode})", step.version, step.name)?;
            }
            for n in &step.notes {
                writeln!(out, "-- note: {n}")?;
            }
            for s in &step.sql {
                writeln!(out, "{s};")?;
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
        (n, _) => writeln!(out, "{n} migration(s) applied to {} in {}", r.target, duration_ms(total_ms)),
    }
}

fn state_color(s: State) -> &'static str {
    match s {
        State::Applied => "32",
        State::Pending => "33",
        State::Changed | State::Renamed | State::Missing | State::Failed => "31",
        State::Partial => "35",
    }
}

/// Counts per state, in a fixed order.
pub fn summary(entries: &[Entry]) -> Vec<(State, usize)> {
    [
        State::Applied,
        State::Pending,
        State::Changed,
        State::Renamed,
        State::Missing,
        State::Partial,
        State::Failed,
    ]
    .into_iter()
    .map(|s| (s, entries.iter().filter(|e| e.state == s).count()))
    .filter(|(_, n)| *n > 0)
    .collect()
}

/// `status` as a table, or JSON. `facts` are the backend's lines about the
/// server (Citus: release and workers), shown above the table.
pub fn status(
    style: &Style,
    out: &mut dyn Write,
    target: &str,
    database_missing: bool,
    facts: &[(String, String)],
    entries: &[Entry],
) -> io::Result<()> {
    if style.json {
        let counts: serde_json::Map<String, serde_json::Value> = summary(entries)
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), json!(n)))
            .collect();
        let mut v = json!({"ok": true, "target": target, "database_exists": !database_missing, "migrations": entries, "summary": counts});
        if !facts.is_empty() {
            let server: serde_json::Map<String, serde_json::Value> = facts.iter().map(|(k, val)| (k.clone(), json!(val))).collect();
            v["server"] = json!(server);
        }
        return writeln!(out, "{v}");
    }
    for (what, value) in facts {
        writeln!(out, "{what}: {value}")?;
    }
    if database_missing {
        writeln!(out, "database does not exist yet on {target}: every migration is pending")?;
    }
    let name_w = entries.iter().map(|e| e.name.len()).max().unwrap_or(4).max(4);
    let ver_w = entries.iter().map(|e| e.version.to_string().len()).max().unwrap_or(7).max(7);
    writeln!(
        out,
        "{:<ver_w$}  {:<name_w$}  {:<8}  {:<20}  TIME",
        "VERSION", "NAME", "STATE", "APPLIED AT"
    )?;
    for e in entries {
        let state = format!("{:<8}", e.state.as_str());
        let time = e.execution_ms.map(|m| duration_ms(m.max(0) as u64)).unwrap_or_default();
        writeln!(
            out,
            "{:<ver_w$}  {:<name_w$}  {}  {:<20}  {}",
            e.version,
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
                    crate::migration::short_checksum(e.file_checksum.as_deref().unwrap_or("?")),
                    crate::migration::short_checksum(e.applied_checksum.as_deref().unwrap_or("?"))
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

/// A one-line result for commands that change bookkeeping (baseline, repair, new).
pub fn done(style: &Style, out: &mut dyn Write, message: &str, data: serde_json::Value) -> io::Result<()> {
    if style.json {
        let mut v = data;
        v["ok"] = json!(true);
        v["message"] = json!(message);
        writeln!(out, "{v}")
    } else if !style.quiet {
        writeln!(out, "{message}")
    } else {
        Ok(())
    }
}
