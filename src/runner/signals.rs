//! SIGINT and SIGTERM during `up`: caught only once a run is about to take
//! the lock (a no-op run installs nothing), seen by the run loop between
//! migrations and by the migration in flight (a transaction is cancelled
//! and rolls back; a no-transaction statement finishes first).

use tokio::sync::watch;

use crate::error::{Error, Result};

/// The name of the signal that arrived (`None` until one does).
pub(crate) type Signals = watch::Receiver<Option<&'static str>>;

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
