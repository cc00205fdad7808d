//! The live Citus coordinator of `CHATMIGRATE_TEST_CITUS_URL` (a
//! coordinator's URL, with password), for the tests that need a real Citus.
//! Without the variable those tests print why they are skipped and pass.
//!
//! The cluster is shared: [`live`] serialises this process's tests on it and
//! drops what they create in its database (the chat tables, chatmigrate's
//! history, the `cmt_*` test tables) before each one. Tests that can stay
//! out of the way (the contract story) use [`url_or_skip`] and a schema of
//! their own instead.

use std::sync::{Mutex, MutexGuard};

use super::cli::{run_in, Run};
use super::db::query_url;
use super::dir::Dir;

/// The coordinator's URL, or `None` after printing why `test` is skipped.
pub fn url_or_skip(test: &str) -> Option<String> {
    match std::env::var("CHATMIGRATE_TEST_CITUS_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!("skipping {test}: CHATMIGRATE_TEST_CITUS_URL is not set (docs/testing.md, docs/citus.md)");
            None
        }
    }
}

/// `chatmigrate.toml` with one environment, `citus`, plus `extra` keys.
pub fn citus_config(dir: &Dir, extra: &str) -> std::path::PathBuf {
    dir.write("chatmigrate.toml", format!("[environments.citus]\nbackend = \"citus\"\n{extra}"))
}

static LIVE: Mutex<()> = Mutex::new(());

/// The live coordinator, one test at a time, its chat tables and history
/// dropped; `None` (and a line on stderr) without CHATMIGRATE_TEST_CITUS_URL.
pub struct Live {
    pub url: String,
    /// Where the tests write migrations and configs (`chatmigrate.toml`: environment `citus`).
    pub dir: Dir,
    _guard: MutexGuard<'static, ()>,
}

/// The live cluster to this test alone while the guard lives: the live
/// tests share one database, and one test's DDL (a CONCURRENTLY build, a
/// distribution) makes another's statements wait past their lock_timeout.
pub fn exclusive() -> MutexGuard<'static, ()> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn live(test: &str) -> Option<Live> {
    let url = url_or_skip(test)?;
    let guard = exclusive();
    let l = Live {
        url,
        dir: Dir::new(),
        _guard: guard,
    };
    l.reset();
    citus_config(&l.dir, "");
    Some(l)
}

impl Live {
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        query_url(&self.url, sql)
    }

    pub fn scalar(&self, sql: &str) -> String {
        self.query(sql)[0][0].clone().unwrap_or_default()
    }

    /// Drops what the tests create (one statement per query string: Citus
    /// sends DDL's query string on to the workers).
    pub fn reset(&self) {
        for t in [
            "st_chat_history_vector_table",
            "st_chat_history_table",
            "st_chat_theme_table",
            "chatmigrate_history",
            "chatmigrate_history_log",
            "chatmigrate_history_lease",
            "chatmigrate_history_repeatable",
            "cmt_docs",
            "cmt_docs_par",
            "cmt_vec",
            "cmt_gen_1",
            "cmt_gen_2",
            "cmt_gen_3",
            "cmt_gen_4",
        ] {
            self.query(&format!("DROP TABLE IF EXISTS {t} CASCADE"));
        }
        for t in ["cmt_kind", "cmt_kind_par"] {
            self.query(&format!("DROP TYPE IF EXISTS {t} CASCADE"));
        }
    }

    /// Runs the binary on the coordinator (or `url`) as backend citus.
    pub fn run_on(&self, url: &str, args: &[&str]) -> Run {
        let mut full = vec!["--env", "citus", "--database-url", url];
        full.extend_from_slice(args);
        run_in(self.dir.path(), &full, &[])
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_on(&self.url, args)
    }

    /// `user@host:port/db` as chatmigrate prints the target at `url`.
    pub fn target(&self, url: &str) -> String {
        target(url)
    }

    /// The first active worker's URL (or CHATMIGRATE_TEST_CITUS_WORKER_URL).
    pub fn worker_url(&self) -> String {
        if let Ok(u) = std::env::var("CHATMIGRATE_TEST_CITUS_WORKER_URL") {
            return u;
        }
        let w = &self.query(
            "SELECT nodename, nodeport::text FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND isactive ORDER BY nodeid LIMIT 1",
        )[0];
        let (host, port) = (w[0].clone().unwrap(), w[1].clone().unwrap());
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let (userinfo, hostpart) = rest.split_once('@').unwrap();
        let after = &hostpart[hostpart.find(['/', '?']).unwrap_or(hostpart.len())..];
        format!("{scheme}://{userinfo}@{host}:{port}{after}")
    }

    pub fn workers(&self) -> Vec<String> {
        self.query(
            "SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND isactive ORDER BY nodeid",
        )
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
    }
}

/// `user@host:port/db` as chatmigrate prints the target of a postgres:// URL.
pub fn target(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let (userinfo, hostpart) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let hostpart = hostpart.split('?').next().unwrap();
    let (hostport, db) = hostpart.split_once('/').unwrap();
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    format!("{user}@{hostport}/{db}")
}

/// Runs `statements` one query string each, on one connection, and returns
/// the rows of the last (Citus sends a command's query string on to the
/// workers, so several commands never share one string here).
pub fn query_each(url: &str, statements: &[&str]) -> Vec<Vec<Option<String>>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let h = tokio::spawn(conn);
        let mut rows = Vec::new();
        for s in statements {
            rows = client
                .simple_query(s)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e:?}"))
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                    _ => None,
                })
                .collect();
        }
        drop(client);
        let _ = h.await;
        rows
    })
}
