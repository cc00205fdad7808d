//! Runs one invocation's command in this process, exactly as the CLI runs
//! it with `--format json`: the same configuration (the function's
//! `--config`/`CHATMIGRATE_CONFIG`, `CHATMIGRATE_ENV` or the event's `env`,
//! and the environment variables), the same engine, the same JSON. Only
//! `up` differs: it stops at the invocation's deadline ([`Deadline`]), and
//! then the outcome is [`InvocationOutcome::Incomplete`] with what remains.
//!
//! Progress lines (what `up` prints in text mode, and every wait) go to
//! stderr, which Lambda sends to CloudWatch Logs.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

use super::deadline::Deadline;
use super::request::{Command, Invocation};
use crate::cli::{Global, LintArgs, StatusArgs};
use crate::config::{Config, Overrides, ProcessEnv};
use crate::error::{Error, Result};
use crate::render::{self, Style, UpOutcome};
use crate::runner::{self, Applied, Event, UpOptions, UpReport, DEADLINE};
use crate::value::{self, Origin};

/// What one invocation's command came to.
#[derive(Debug)]
pub enum InvocationOutcome {
    /// It ran: the JSON `--format json` prints and the CLI's exit code (0,
    /// or 1 for "found something": drift, lint errors, `status` with
    /// `exit_code` and something not applied). `up` also gives its report.
    Done { json: Value, code: i32, up: Option<UpReport> },
    /// `up` stopped at the deadline (see [`Incomplete`]).
    Incomplete(Incomplete),
    /// It failed as the CLI fails with exit 2.
    Failed(Error),
}

/// `up` stopped at the invocation's deadline; the next `up` goes on.
#[derive(Debug, Clone)]
pub struct Incomplete {
    pub target: String,
    pub applied: Vec<Applied>,
    /// What was still to apply (`None` when the deadline came before the
    /// history was read: connecting, or waiting for the lock).
    pub remaining: Option<Vec<(i64, String)>>,
    /// Where it stopped, in words.
    pub stopped: String,
    /// What the run said about itself (a statement left running ...).
    pub notes: Vec<String>,
    pub created_database: bool,
}

impl Incomplete {
    /// One line: where it stopped and what remains.
    pub fn message(&self) -> String {
        let remaining = match &self.remaining {
            Some(r) if r.is_empty() => "nothing remains".to_string(),
            Some(r) => format!("remaining: {}", list(r.iter().map(|(v, n)| crate::migration::label(*v, n)))),
            None => "the history was not read yet".to_string(),
        };
        format!(
            "incomplete: stopped at the invocation's deadline on {}: {} applied in this invocation; {}; {remaining}",
            self.target,
            self.applied.len(),
            self.stopped
        )
    }

    pub fn hint(&self) -> String {
        "invoke the function again: `up` goes on where this one stopped (a statement left running on the server is waited for, never sent twice); or give the function more time".into()
    }

    /// The JSON document: the error object of `--format json` (kind
    /// `incomplete`) with what was applied and what remains.
    pub fn json(&self) -> Value {
        json!({
            "ok": false,
            "complete": false,
            "error": {"kind": "incomplete", "message": self.message(), "hint": self.hint()},
            "target": self.target,
            "created_database": self.created_database,
            "applied": self.applied,
            "remaining": self.remaining.as_ref().map(|r| r.iter().map(|(v, n)| json!({"version": v, "name": n})).collect::<Vec<_>>()),
            "notes": self.notes,
        })
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.len() > 12 {
        format!("{}, … ({} in all)", items[..10].join(", "), items.len())
    } else {
        items.join(", ")
    }
}

/// The JSON style: what `--format json` renders.
const JSON: Style = Style {
    format: render::Format::Json,
    color: false,
    quiet: false,
    verbose: false,
};

/// The text style of the log lines.
const LOG: Style = Style {
    format: render::Format::Text,
    color: false,
    quiet: false,
    verbose: false,
};

/// An outcome's JSON document, as `--format json` prints it.
fn json_of(o: &render::Outcome) -> std::result::Result<Value, String> {
    let mut buf = Vec::new();
    render::outcome(&JSON, &mut buf, o).map_err(|e| e.to_string())?;
    serde_json::from_slice(&buf).map_err(|e| e.to_string())
}

/// Resolves the configuration for this invocation, as the CLI does.
pub fn config(g: &Global, inv: &Invocation, last_wait: &Arc<Mutex<Option<String>>>) -> Result<Config> {
    let mut o = Overrides {
        config_path: g.config.clone(),
        env: inv.env.clone().or_else(|| g.env.clone()),
        database_url: g.database_url.clone(),
        migrations: g.migrations.clone(),
        placeholders: g
            .placeholders
            .iter()
            .map(|p| crate::placeholders::parse_flag(p))
            .collect::<Result<_>>()?,
        create_database: inv.create_database,
        allow_out_of_order: inv.allow_out_of_order,
        ..Overrides::default()
    };
    if let Some(w) = &inv.lock_wait {
        o.lock_wait = Some(value::duration("lock_wait", Origin::ConfigKey, w, value::LOCK_WAIT).map_err(Error::from)?);
    }
    let mut cfg = Config::load(&o, &ProcessEnv)?;
    let last = last_wait.clone();
    cfg.progress = crate::retry::Progress::new(move |w| {
        eprintln!("{w}");
        if let Ok(mut l) = last.lock() {
            *l = Some(w.what.clone());
        }
    });
    Ok(cfg)
}

/// Runs the invocation's command.
pub async fn run(g: &Global, inv: &Invocation, deadline: Deadline) -> InvocationOutcome {
    let last_wait = Arc::new(Mutex::new(None));
    let cfg = match config(g, inv, &last_wait) {
        Ok(c) => c,
        Err(e) => return InvocationOutcome::Failed(e),
    };
    let ctx = super::super::Setup { cfg, style: JSON };
    let outcome = match &inv.command {
        Command::Up { target, dry_run } => return up(&ctx.cfg, *target, *dry_run, deadline, &last_wait).await,
        Command::Status { exit_code } => super::super::status::run(&ctx, &StatusArgs { exit_code: *exit_code }).await,
        Command::Verify => super::super::verify::run(&ctx).await,
        Command::Lint { pending } => {
            let args = LintArgs {
                paths: Vec::new(),
                pending: *pending,
            };
            super::super::lint::run(&ctx, &args).await
        }
    };
    let mut outcome = match outcome {
        Ok(o) => o,
        Err(e) => return InvocationOutcome::Failed(e),
    };
    // `verify` fails with a file that does not parse, after the drift.
    if let render::Outcome::Verify(v) = &mut outcome {
        if let Some(e) = v.unreadable.take() {
            return InvocationOutcome::Failed(*e);
        }
    }
    match json_of(&outcome) {
        Ok(json) => InvocationOutcome::Done {
            json,
            code: outcome.exit_code(),
            up: None,
        },
        Err(e) => InvocationOutcome::Failed(Error::Other(format!("the JSON of `{}` does not parse: {e}", inv.command.name()))),
    }
}

/// What `up`'s events tell about a run that may stop before its end.
#[derive(Default)]
struct Seen {
    target: Option<String>,
    applied: Vec<Applied>,
    planned: Option<Vec<(i64, String)>>,
    running: Option<String>,
    notes: Vec<String>,
    created_database: bool,
}

async fn up(
    cfg: &Config,
    target: Option<i64>,
    dry_run: bool,
    deadline: Deadline,
    last_wait: &Arc<Mutex<Option<String>>>,
) -> InvocationOutcome {
    let started = Instant::now();
    let opts = UpOptions {
        target,
        dry_run,
        handle_signals: false,
        stop_before: Some(deadline.stop_before),
    };
    let seen = Mutex::new(Seen::default());
    // The log gets a long build's progress at most every 10 s.
    let mut view = render::EventView::new(&LOG);
    let mut on_event = |ev: &Event| {
        let _ = view.event(&mut std::io::stderr().lock(), ev);
        let Ok(mut s) = seen.lock() else { return };
        match ev {
            Event::Connected { target, .. } => s.target = Some(target.clone()),
            Event::CreatedDatabase { .. } => s.created_database = true,
            Event::Planned { pending } => s.planned = Some(pending.clone()),
            Event::Applying { version, name, .. } | Event::Resuming { version, name, .. } => {
                s.running = Some(crate::migration::label(*version, name))
            }
            Event::Applied(a) => {
                s.applied.push(a.clone());
                s.running = None;
            }
            Event::Note { version, message } => s.notes.push(format!("V{version}: {message}")),
            _ => {}
        }
    };
    let run = runner::up(cfg, &opts, &mut on_event);
    let result = tokio::time::timeout_at(deadline.answer_by.into(), run).await;
    let s = seen.into_inner().unwrap_or_default();
    let incomplete = |stopped: String| {
        let remaining = s.planned.as_ref().map(|p| {
            p.iter()
                .filter(|(v, n)| !s.applied.iter().any(|a| a.version == *v && a.name == *n))
                .cloned()
                .collect::<Vec<_>>()
        });
        InvocationOutcome::Incomplete(Incomplete {
            target: s.target.clone().unwrap_or_else(|| cfg.target_display()),
            applied: s.applied.clone(),
            remaining,
            stopped,
            notes: s.notes.clone(),
            created_database: s.created_database,
        })
    };
    match result {
        Ok(Ok(r)) => {
            let o = render::Outcome::Up(UpOutcome {
                report: r.clone(),
                dry_run,
                duration_ms: started.elapsed().as_millis() as u64,
            });
            match json_of(&o) {
                Ok(json) => InvocationOutcome::Done {
                    json,
                    code: 0,
                    up: Some(r),
                },
                Err(e) => InvocationOutcome::Failed(Error::Other(format!("the JSON of `up` does not parse: {e}"))),
            }
        }
        Ok(Err(Error::Interrupted { signal, stopped, .. })) if signal == DEADLINE => incomplete(stopped),
        Ok(Err(e)) => InvocationOutcome::Failed(e),
        Err(_) => {
            // Abandoned one second before the deadline: the run did not stop
            // by itself (a connect, a lock wait or a rollback took too long).
            let doing = match (&s.running, last_wait.lock().ok().and_then(|l| l.clone())) {
                (Some(m), _) => format!("{m} was still running (a transaction not committed is rolled back by the server)"),
                (None, Some(w)) => format!("it was still waiting for {w}"),
                (None, None) if s.target.is_none() => "it was still connecting".to_string(),
                (None, None) => "it was still preparing the run".to_string(),
            };
            incomplete(doing)
        }
    }
}
