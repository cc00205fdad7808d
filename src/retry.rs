//! Retry and resume policy, written once and used by every backend.
//!
//! Every failure a backend sees is put in one of four [`Class`]es:
//!
//! - **resuming**: the database is waking up (Data API
//!   `DatabaseResumingException`, a `StatementTimeoutException` on the
//!   wake-up probe; a direct connect that is held, EOFs, resets or answers
//!   57P03 "starting up"); a 28000 gets one retry (bounded), as it can be
//!   a resume artifact or an expired IAM token;
//! - **transient**: the request was refused before it did anything
//!   (throttling, 503, a 5xx on an idempotent call);
//! - **ambiguous**: a non-idempotent request may or may not have happened (a
//!   connection lost during COMMIT, a 500/504 or a hung response on a
//!   statement): never re-sent, resolved by reading history or the catalog;
//! - **fatal**: an SQL error, a configuration or permission error, an
//!   authentication failure after one refresh.
//!
//! [`retry`] re-runs an operation while its error is resuming or transient,
//! with jittered exponential backoff capped at 1 s (so work starts within a
//! second of the database becoming reachable), inside one deadline
//! (`resume_timeout`, default 120 s), and reports a progress line through
//! [`Progress`] once the wait passes a second, then at most once a second. [`Backoff`] is also used for polling the
//! migration lock, retrying 55P03, and the CREATE DATABASE race.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a failure is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The database is resuming: wait and retry within the deadline.
    Resuming,
    /// Refused before doing anything: back off and retry within the deadline.
    Transient,
    /// Transient, but retried at most this many times (a Secrets Manager
    /// timeout; a fresh IAM token or secret after an auth failure).
    Bounded(u32),
    /// Outcome unknown: never re-sent; the caller resolves it.
    Ambiguous,
    /// Stop and report.
    Fatal,
}

/// One progress report while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// What we wait for, e.g. "Aurora to resume" or "throttling to pass".
    pub what: String,
    /// Time since the first attempt.
    pub elapsed: Duration,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failure, shortened (an error code, never a secret).
    pub cause: String,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "waiting for {}: {} s (attempt {}: {})",
            self.what,
            self.elapsed.as_secs(),
            self.attempts,
            self.cause
        )
    }
}

/// Where progress lines go (the CLI prints them to stderr; a library caller
/// chooses). The default drops them.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Report>>);

type Report = dyn Fn(&Waiting) + Send + Sync;

impl Progress {
    pub fn new(f: impl Fn(&Waiting) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(f)))
    }

    pub fn report(&self, w: &Waiting) {
        if let Some(f) = &self.0 {
            f(w)
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Progress(set)" } else { "Progress(none)" })
    }
}

/// The deadline and the backoff shape.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Total time allowed for resuming and transient retries.
    pub deadline: Duration,
    pub first: Duration,
    /// Never wait longer than this between attempts.
    pub cap: Duration,
}

impl Policy {
    pub fn resume(deadline: Duration) -> Policy {
        Policy {
            deadline,
            first: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        }
    }
}

/// Why [`retry`] gave up.
#[derive(Debug)]
pub struct GaveUp<E> {
    /// The last error.
    pub error: E,
    pub class: Class,
    pub attempts: u32,
    pub elapsed: Duration,
    /// True when the deadline (or the bounded count) ran out; false when the
    /// error was ambiguous or fatal.
    pub exhausted: bool,
}

/// Runs `op` until it succeeds, its error is ambiguous or fatal, or the
/// policy's deadline passes. `classify` says how to treat an error and gives
/// a short cause for the progress line; `what` names the wait ("Aurora to
/// resume").
pub async fn retry<T, E, F, Fut>(
    policy: &Policy,
    progress: &Progress,
    mut op: F,
    classify: impl Fn(&E) -> (Class, &'static str, String),
) -> Result<T, GaveUp<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut backoff = Backoff::new(policy.first, policy.cap);
    let mut last_report: Option<Instant> = None;
    let mut bounded_used = 0u32;
    for attempt in 1.. {
        let error = match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let (class, what, cause) = classify(&error);
        let give_up = |exhausted| GaveUp {
            error,
            class,
            attempts: attempt,
            elapsed: start.elapsed(),
            exhausted,
        };
        match class {
            Class::Ambiguous | Class::Fatal => return Err(give_up(false)),
            Class::Bounded(n) if bounded_used >= n => return Err(give_up(true)),
            Class::Bounded(_) => bounded_used += 1,
            Class::Resuming | Class::Transient => {}
        }
        let delay = backoff.delay();
        if start.elapsed() + delay > policy.deadline {
            return Err(give_up(true));
        }
        // Quiet for the first second (a quick retry is not news), then at
        // most one line a second.
        let due = match last_report {
            None => start.elapsed() + delay >= Duration::from_secs(1),
            Some(t) => t.elapsed() >= Duration::from_secs(1),
        };
        if due {
            last_report = Some(Instant::now());
            progress.report(&Waiting {
                what: what.to_string(),
                elapsed: start.elapsed(),
                attempts: attempt,
                cause,
            });
        }
        tokio::time::sleep(delay).await;
    }
    unreachable!("the loop returns")
}

/// Jittered exponential backoff: each delay is drawn from [d/2, d), and d
/// doubles up to `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff { next: first, cap }
    }

    /// The delay before the next attempt.
    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.cap);
        d / 2 + jitter(d / 2)
    }
}

/// A pseudo-random duration below `max`, without a random-number dependency
/// (clock nanoseconds mixed with the process id, enough to spread runners).
pub fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let ms = max.as_millis().max(1) as u32;
    Duration::from_millis(u64::from((nanos ^ std::process::id().wrapping_mul(2654435761)) % ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        for want in [100, 200, 400, 400] {
            let d = b.delay().as_millis() as u64;
            assert!(d >= want / 2 && d < want, "{d} not in [{}, {want})", want / 2);
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn resuming_is_retried_until_success_and_reported() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let progress = Progress::new(move |w| s.lock().unwrap().push(w.to_string()));
        let policy = Policy::resume(Duration::from_secs(5));
        let r = rt().block_on(retry(
            &policy,
            &progress,
            |n| async move {
                if n < 6 {
                    Err(n)
                } else {
                    Ok(n)
                }
            },
            |_| (Class::Resuming, "Aurora to resume", "DatabaseResumingException".into()),
        ));
        assert_eq!(r.unwrap(), 6);
        let seen = seen.lock().unwrap();
        assert!(seen[0].starts_with("waiting for Aurora to resume: "), "{seen:?}");
        assert!(seen[0].ends_with(": DatabaseResumingException)"), "{seen:?}");
        assert!(seen.len() <= 2, "at most one line a second: {seen:?}");
    }

    #[test]
    fn fatal_and_ambiguous_stop_at_once_and_deadline_ends_resuming() {
        let policy = Policy::resume(Duration::from_millis(300));
        let r = rt().block_on(retry(
            &policy,
            &Progress::default(),
            |_| async { Err::<(), _>("x") },
            |_| (Class::Ambiguous, "", String::new()),
        ));
        let g = r.unwrap_err();
        assert_eq!((g.attempts, g.exhausted), (1, false));
        let r = rt().block_on(retry(
            &policy,
            &Progress::default(),
            |_| async { Err::<(), _>("x") },
            |_| (Class::Resuming, "", String::new()),
        ));
        let g = r.unwrap_err();
        assert!(g.exhausted && g.attempts > 1 && g.elapsed <= Duration::from_millis(300), "{g:?}");
        let r = rt().block_on(retry(
            &policy,
            &Progress::default(),
            |_| async { Err::<(), _>("x") },
            |_| (Class::Bounded(1), "", String::new()),
        ));
        assert_eq!(r.unwrap_err().attempts, 2);
    }
}
