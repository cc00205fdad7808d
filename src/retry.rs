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
//! [`Progress`] once the wait passes a second, then at most once a second;
//! with [`Policy::pending`] it also reports while one attempt has no answer
//! yet (a connect that a resuming server holds). [`report_while`] does the
//! same for any other wait (the lock, a statement finishing after SIGINT).
//! [`Backoff`] is also used for polling the migration lock, retrying 55P03,
//! and the CREATE DATABASE race.

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
    /// Attempts made so far (0: a wait that is not a retry, e.g. for a lock).
    pub attempts: u32,
    /// The last failure, shortened (an error code, never a secret), or what
    /// the wait is about.
    pub cause: String,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "waiting for {}: {} s (", self.what, self.elapsed.as_secs())?;
        if self.attempts > 0 {
            write!(f, "attempt {}: ", self.attempts)?;
        }
        write!(f, "{})", self.cause)
    }
}

/// When the next progress line is due: quiet for the first second of a wait
/// (a quick retry is not news), then at most one line a second.
#[derive(Debug, Clone)]
struct Pace {
    start: Instant,
    last: Option<Instant>,
}

impl Pace {
    fn new(start: Instant) -> Pace {
        Pace { start, last: None }
    }

    /// Whether a line is due now, counting `ahead` (a backoff about to be
    /// slept) as part of the wait; records the line if so.
    fn due(&mut self, ahead: Duration) -> bool {
        let due = match self.last {
            None => self.start.elapsed() + ahead >= Duration::from_secs(1),
            Some(t) => t.elapsed() >= Duration::from_secs(1),
        };
        if due {
            self.last = Some(Instant::now());
        }
        due
    }

    /// When to look again while something is pending.
    fn next_check(&self) -> Instant {
        match self.last {
            None => self.start + Duration::from_secs(1),
            Some(t) => t + Duration::from_secs(1),
        }
    }
}

/// Awaits `fut`; while it is pending, reports `line(elapsed)` once the wait
/// (counted from `since`) passes a second, then at most once a second.
pub async fn report_while<T>(
    fut: impl std::future::Future<Output = T>,
    progress: &Progress,
    since: Instant,
    mut line: impl FnMut(Duration) -> Waiting,
) -> T {
    let mut pace = Pace::new(since);
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            v = &mut fut => return v,
            _ = tokio::time::sleep_until(pace.next_check().into()) => {
                if pace.due(Duration::ZERO) {
                    progress.report(&line(since.elapsed()));
                }
            }
        }
    }
}

/// Where progress lines go (the CLI prints them to stderr; a library caller
/// chooses). The default drops them.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ProgressFn>>);

type ProgressFn = dyn Fn(&Waiting) + Send + Sync;

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
    /// What an attempt that has no answer yet waits for ("the database to
    /// accept connections"): reported like the waits between attempts.
    /// `None`: an attempt in progress is not reported (a statement that
    /// simply runs long).
    pub pending: Option<&'static str>,
}

impl Policy {
    pub fn resume(deadline: Duration) -> Policy {
        Policy {
            deadline,
            first: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            pending: None,
        }
    }

    /// Reports an attempt that is still waiting for its answer as a wait for `what`.
    pub fn pending(self, what: &'static str) -> Policy {
        Policy {
            pending: Some(what),
            ..self
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
    let mut pace = Pace::new(start);
    let mut bounded_used = 0u32;
    for attempt in 1.. {
        let fut = op(attempt);
        tokio::pin!(fut);
        // An attempt is "pending" once it has had no answer for a second
        // (a refused or reset connect answers at once and is not reported so).
        let pending_from = Instant::now() + Duration::from_secs(1);
        let outcome = loop {
            let Some(what) = policy.pending else {
                break fut.as_mut().await;
            };
            tokio::select! {
                biased;
                r = fut.as_mut() => break r,
                _ = tokio::time::sleep_until(pace.next_check().max(pending_from).into()) => {
                    if pace.due(Duration::ZERO) {
                        progress.report(&Waiting {
                            what: what.to_string(),
                            elapsed: start.elapsed(),
                            attempts: attempt,
                            cause: "no answer yet".into(),
                        });
                    }
                }
            }
        };
        let error = match outcome {
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
        if pace.due(delay) {
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
    fn an_attempt_without_an_answer_is_reported_while_it_waits() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let progress = Progress::new(move |w| s.lock().unwrap().push(w.to_string()));
        let policy = Policy::resume(Duration::from_secs(10)).pending("the database to accept connections");
        let r = rt().block_on(retry(
            &policy,
            &progress,
            |n| async move {
                if n == 1 {
                    // A connect that a resuming server holds, then lets go.
                    tokio::time::sleep(Duration::from_millis(2300)).await;
                    Err(n)
                } else {
                    Ok(n)
                }
            },
            |_| (Class::Resuming, "the database to accept connections", "EOF".into()),
        ));
        assert_eq!(r.unwrap(), 2);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[..2],
            [
                "waiting for the database to accept connections: 1 s (attempt 1: no answer yet)",
                "waiting for the database to accept connections: 2 s (attempt 1: no answer yet)"
            ],
            "{seen:?}"
        );
        // Quick failures are not "no answer yet", and nothing is reported
        // for an attempt that is not pending.
        let seen2 = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen2.clone();
        let progress = Progress::new(move |w| s2.lock().unwrap().push(w.to_string()));
        let r = rt().block_on(retry(
            &policy,
            &progress,
            |n| async move {
                if n < 7 {
                    Err(n)
                } else {
                    Ok(n)
                }
            },
            |_| (Class::Transient, "the database to accept connections", "connection refused".into()),
        ));
        assert_eq!(r.unwrap(), 7);
        assert!(
            seen2.lock().unwrap().iter().all(|l| l.ends_with(": connection refused)")),
            "{seen2:?}"
        );
    }

    #[test]
    fn report_while_says_what_it_waits_for_at_most_once_a_second() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let progress = Progress::new(move |w| s.lock().unwrap().push(w.to_string()));
        let v = rt().block_on(report_while(
            async {
                tokio::time::sleep(Duration::from_millis(2200)).await;
                7
            },
            &progress,
            Instant::now(),
            |elapsed| Waiting {
                what: "the migration lock".into(),
                elapsed,
                attempts: 0,
                cause: "another runner holds it".into(),
            },
        ));
        assert_eq!(v, 7);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "waiting for the migration lock: 1 s (another runner holds it)",
                "waiting for the migration lock: 2 s (another runner holds it)"
            ]
        );
        // Done within a second: nothing to say.
        let quiet = Arc::new(std::sync::Mutex::new(0));
        let q = quiet.clone();
        let progress = Progress::new(move |_| *q.lock().unwrap() += 1);
        rt().block_on(report_while(async {}, &progress, Instant::now(), |_| unreachable!()));
        assert_eq!(*quiet.lock().unwrap(), 0);
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
