//! PostgreSQL sessions behind the fake Data API: a fresh connection per call
//! outside a transaction, one pinned connection per transaction id, the
//! "still running a query" rule, forgetting a transaction (with the reason a
//! later call is told), and the idle reaper that rolls back transactions
//! nobody has used for `transaction_idle_timeout`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls};

use super::wire::ApiError;

pub const NOT_FOUND: &str = "The transaction ID wasn't found.";
pub const EXPIRED: &str = "Transaction may be expired.";
pub const ABORTED: &str = "Transaction has been aborted due to an error from a previous call.";
pub const TERMINATED: &str = "One previous call resulted in a termination of your transaction.";

/// One PostgreSQL connection.
pub struct Session {
    pub client: Client,
    /// The backend pid (what StatementTimeoutException calls dbConnectionId).
    pub pid: i32,
    conn: Mutex<Option<JoinHandle<()>>>,
}

impl Session {
    /// Connects to `database` with the server URL's credentials.
    pub async fn connect(base: &Config, database: &str) -> Result<Arc<Session>, ApiError> {
        let mut cfg = base.clone();
        cfg.dbname(database).application_name("dataapi-test-server");
        let (client, conn) = cfg.connect(NoTls).await.map_err(|e| match e.as_db_error() {
            Some(_) => ApiError::from_pg(&e).connecting(),
            None => ApiError::internal(format!("Could not connect to the database: {e}")),
        })?;
        let handle = tokio::spawn(async move {
            let _ = conn.await;
        });
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| ApiError::from_pg(&e))?
            .get(0);
        Ok(Arc::new(Session {
            client,
            pid,
            conn: Mutex::new(Some(handle)),
        }))
    }

    /// Drops this handle and, if it was the last one, waits (bounded) until the
    /// connection is closed, so that the session's locks are gone.
    pub async fn close(self: Arc<Self>) {
        let handle = self.conn.lock().unwrap().take();
        drop(self);
        if let Some(h) = handle {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
    }
}

/// Rolls back whatever the session has open and closes it.
pub async fn rollback_and_close(session: Arc<Session>) {
    let _ = tokio::time::timeout(Duration::from_secs(5), session.client.batch_execute("ROLLBACK")).await;
    session.close().await;
}

struct Tx {
    session: Arc<Session>,
    busy: bool,
    last_used: Instant,
}

#[derive(Default)]
struct State {
    live: HashMap<String, Tx>,
    /// Transactions the server ended on its own, with what later calls are told.
    gone: HashMap<String, &'static str>,
}

/// The open Data API transactions.
#[derive(Default)]
pub struct Transactions {
    state: Mutex<State>,
}

impl Transactions {
    pub fn insert(&self, id: String, session: Arc<Session>) {
        let tx = Tx {
            session,
            busy: false,
            last_used: Instant::now(),
        };
        self.state.lock().unwrap().live.insert(id, tx);
    }

    /// Claims the transaction for one call: 404 if unknown or gone, 400
    /// "Transaction is still running a query" if another call holds it.
    pub fn checkout(&self, id: &str) -> Result<Arc<Session>, ApiError> {
        let mut st = self.state.lock().unwrap();
        if let Some(tx) = st.live.get_mut(id) {
            if tx.busy {
                return Err(ApiError::database_error("Transaction is still running a query"));
            }
            tx.busy = true;
            return Ok(tx.session.clone());
        }
        Err(ApiError::transaction_not_found(st.gone.get(id).copied().unwrap_or(NOT_FOUND)))
    }

    /// Releases the transaction after a call; its idle time starts now.
    pub fn checkin(&self, id: &str) {
        if let Some(tx) = self.state.lock().unwrap().live.get_mut(id) {
            tx.busy = false;
            tx.last_used = Instant::now();
        }
    }

    /// Forgets the transaction (later calls are told `reason`, or "not found" if
    /// None) and hands back its session for the caller to end.
    pub fn finish(&self, id: &str, reason: Option<&'static str>) -> Option<Arc<Session>> {
        let mut st = self.state.lock().unwrap();
        if let Some(r) = reason {
            st.gone.insert(id.to_string(), r);
        }
        st.live.remove(id).map(|tx| tx.session)
    }

    /// Removes the transactions idle for at least `idle` (not counting time in a call).
    fn take_expired(&self, idle: Duration) -> Vec<Arc<Session>> {
        let mut st = self.state.lock().unwrap();
        let now = Instant::now();
        let ids: Vec<String> = st
            .live
            .iter()
            .filter(|(_, tx)| !tx.busy && now.duration_since(tx.last_used) >= idle)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| {
                st.gone.insert(id.clone(), EXPIRED);
                st.live.remove(&id).map(|tx| tx.session)
            })
            .collect()
    }

    /// How many transactions are open.
    pub fn count(&self) -> usize {
        self.state.lock().unwrap().live.len()
    }

    /// Removes every transaction (server shutdown).
    pub fn take_all(&self) -> Vec<Arc<Session>> {
        self.state.lock().unwrap().live.drain().map(|(_, tx)| tx.session).collect()
    }
}

/// Rolls back transactions idle for `idle`, checking a few times per `idle`.
pub async fn reap(txs: Arc<Transactions>, idle: Duration) {
    let tick = (idle / 5).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        for s in txs.take_expired(idle) {
            tokio::spawn(rollback_and_close(s));
        }
    }
}
