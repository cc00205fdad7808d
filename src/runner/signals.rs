//! SIGINT and SIGTERM during `up`: caught only once a run is about to take
//! the lock (a no-op run installs nothing), seen by the run loop between
//! migrations and by the migration in flight (a transaction is cancelled
//! and rolls back; a no-transaction statement finishes first). A deadline
//! (`UpOptions::stop_before`, a Lambda invocation's) reads as one more
//! signal, [`DEADLINE`], at every place one is heard; there a statement
//! that outlives its call is left running instead of awaited.

use std::time::Instant;

use tokio::sync::watch;

use crate::error::{Error, Result};

/// The name of the signal that arrived (`None` until one does).
pub(crate) type Signals = watch::Receiver<Option<&'static str>>;

/// The `signal` of [`Error::Interrupted`](crate::Error::Interrupted) when the deadline of
/// [`Migrator::stop_before`](crate::Migrator::stop_before) (or `UpOptions::stop_before`) came.
pub const DEADLINE: &str = "the deadline";

/// `inner`'s signals, and [`DEADLINE`] at `stop_before` unless a signal
/// came first. The task that watches ends with the run (when every
/// receiver is gone): a Lambda function serves many runs in one process.
pub(crate) fn with_deadline(inner: Signals, stop_before: Option<Instant>) -> Signals {
    let Some(at) = stop_before else {
        return inner;
    };
    let (tx, rx) = watch::channel(*inner.borrow());
    let mut inner = inner;
    tokio::spawn(async move {
        let deadline = tokio::time::sleep_until(at.into());
        tokio::pin!(deadline);
        // A run that does not handle signals has a closed `inner`.
        let mut open = true;
        while tx.borrow().is_none() {
            tokio::select! {
                () = &mut deadline => {
                    let _ = tx.send(Some(DEADLINE));
                }
                changed = inner.changed(), if open => match changed {
                    Ok(()) => {
                        let _ = tx.send(*inner.borrow_and_update());
                    }
                    Err(_) => open = false,
                },
                () = tx.closed() => return,
            }
        }
        // Receivers keep seeing the value until the run is over.
        tx.closed().await;
    });
    rx
}

/// Resolves once the deadline has come (never without one, nor after
/// another signal).
pub(crate) async fn deadline_came(mut rx: Signals) {
    loop {
        match *rx.borrow_and_update() {
            Some(DEADLINE) => return,
            Some(_) => std::future::pending::<()>().await,
            None => {}
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves to the signal's name once SIGINT or SIGTERM arrives (never, when
/// signals are not handled).
pub(crate) fn watch(enabled: bool) -> Signals {
    let (tx, rx) = watch::channel(None);
    if enabled {
        tokio::spawn(async move {
            #[cfg(unix)]
            let name = {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                }
            };
            #[cfg(not(unix))]
            let name = {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            };
            let _ = tx.send(Some(name));
            // Keep the sender alive so receivers keep seeing the value.
            std::future::pending::<()>().await;
        });
    }
    rx
}

/// The signal's name, once one has arrived (pending forever otherwise).
pub(crate) async fn signalled(rx: &mut Signals) -> &'static str {
    loop {
        if let Some(s) = *rx.borrow_and_update() {
            return s;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs `fut` unless a signal comes first (only where dropping `fut` is
/// harmless: waiting for the lock): then [`Error::Interrupted`], with
/// `applied` migrations done and what `stopped`.
pub(crate) async fn or_signal<T>(
    fut: impl std::future::Future<Output = Result<T>>,
    rx: &mut Signals,
    applied: usize,
    stopped: &str,
) -> Result<T> {
    tokio::select! {
        r = fut => r,
        s = signalled(rx) => Err(Error::Interrupted { signal: s.into(), applied, stopped: stopped.into() }),
    }
}
