//! `chatmigrate wait`: wait until the target accepts a query, as dbmate's
//! `wait` does, on every backend: a server that is starting (connections
//! refused), an Aurora cluster that resumes (Data API
//! DatabaseResumingException, held connects), a failover. It connects as
//! every command does (`backend::connect`, which retries through
//! `retry.rs` with its progress line) and runs the connect-time probe, a
//! query; the deadline is `--timeout` (default: `resume_timeout`). A
//! database that does not exist yet counts as ready: the server answered,
//! and `up --create-database` is the next step. Errors that waiting does not
//! cure (a wrong password, a bad setting) stop at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::backend::{self, Purpose};
use crate::cli::WaitArgs;
use crate::error::{Error, Result};
use crate::render::{Done, Outcome};
use crate::retry::Progress;
use crate::value::{self, Origin};

pub async fn run(ctx: &super::Setup, args: &WaitArgs) -> Result<Outcome> {
    let mut cfg = ctx.cfg.clone();
    let timeout = match &args.timeout {
        Some(t) => value::duration("--timeout", Origin::Flag, t, value::WAIT_TIMEOUT)?,
        None => cfg.resume_timeout,
    };
    // Every kind of "not yet" is retried, a refused connection too, which
    // other commands give up on after refused_timeout (a wrong port is more
    // likely there than a server starting). The retries' own deadline lies
    // past --timeout (they stop short of theirs, rather than sleep past it):
    // --timeout itself ends the wait, an attempt in flight included.
    let retries_until = timeout + Duration::from_secs(2);
    cfg.resume_timeout = retries_until;
    cfg.refused_timeout = retries_until;
    cfg.pg.connect_timeout = cfg.pg.connect_timeout.min(timeout);
    // The last reason an attempt failed, from the progress lines.
    let last = Arc::new(Mutex::new(None::<String>));
    let (seen, print) = (last.clone(), cfg.progress.clone());
    cfg.progress = Progress::new(move |w| {
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(w.cause.clone());
        print.report(w);
    });
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, backend::connect(&cfg, Purpose::READ)).await;
    let waited = started.elapsed();
    let (target, database_exists) = match outcome {
        Ok(Ok(b)) => {
            let target = b.target();
            b.close().await;
            (target, true)
        }
        Ok(Err(Error::DatabaseMissing { .. })) => (cfg.target_display(), false),
        // What waiting does not cure (a wrong password, a replica that stays one).
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            let last = last.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(gave_up(&cfg, timeout, last.unwrap_or_else(|| "no answer".into())));
        }
    };
    let message = if database_exists {
        format!("{target} accepts queries{}", after(waited))
    } else {
        format!(
            "{}: the server accepts queries{}; database `{}` does not exist yet (`chatmigrate up --create-database` creates it)",
            target,
            after(waited),
            cfg.pg.dbname
        )
    };
    Ok(Outcome::Done(Done::new(
        message,
        json!({"target": target, "database_exists": database_exists, "waited_ms": waited.as_millis() as u64}),
    )))
}

/// ` (after 3.2 s)` once the wait was noticeable.
fn after(waited: Duration) -> String {
    if waited < Duration::from_secs(1) {
        String::new()
    } else {
        format!(" (after {})", crate::value::elapsed(waited.as_millis() as u64))
    }
}

fn gave_up(cfg: &crate::config::Config, timeout: Duration, last: String) -> Error {
    let hint = (crate::backend::def(cfg.backend).unreachable_hint)(cfg);
    Error::WaitTimeout {
        target: cfg.target_display(),
        secs: timeout.as_secs(),
        last,
        hint,
    }
}
