//! Test support for the integration tests: what a test needs to run the
//! real binary against a real server, and the peers the tests put between
//! the two. Nothing here is a test; the tests of the peers themselves live
//! beside the other tests (e.g. `dataapi_server.rs`).
//!
//! Everyday helpers, re-exported here (`use crate::support::*`):
//! - [`db`]: the test PostgreSQL, a database per test ([`Db`], dropped even
//!   when the test fails unless `CHATMIGRATE_TEST_KEEP=1`), SQL from the test
//!   ([`query_url`]), a session that holds locks ([`Holder`]);
//! - [`dir`]: a temporary migrations directory ([`Dir`]);
//! - [`cli`]: the binary, run in the foreground or background with a clean
//!   environment ([`run_in`], [`cm`], [`spawn_in`]), and its output ([`Run`]);
//! - [`wait_until`]: polling with a deadline.
//!
//! The documentation's console examples: [`doc`] reads them from the
//! Markdown, runs them in one shell per document and compares the output
//! with run-time values masked.
//!
//! Peers, used by path (`crate::support::dataapi::…`):
//! - [`dataapi`]: an RDS Data API and Secrets Manager server speaking AWS's
//!   wire protocol to the real aws-sdk clients, running the SQL on the test
//!   PostgreSQL, with AWS's limits, faults, and the variants of other
//!   implementations;
//! - [`both`]: a Data API server plus a config that reaches one database
//!   both directly and through it;
//! - [`proxy`]: a scripted TCP fault proxy in front of the test PostgreSQL;
//! - [`tls_front`]: TLS termination with a test CA and RDS IAM-token checks
//!   at the door (the test server is built without TLS);
//! - [`wire_log`]: a proxy that records every query string a client sends,
//!   as the server receives it (the one-script tests);
//! - [`standby`]: a primary and a streaming hot standby of their own;
//! - [`citus`]: the live Citus coordinator of `CHATMIGRATE_TEST_CITUS_URL`;
//! - [`backends`]: the contract-story [`backends::Backend`] trait and its
//!   three implementations (direct PostgreSQL, the Data API, Citus);
//! - [`lambda_runtime_api`]: the AWS Lambda Runtime API (next invocation,
//!   response, invocation error, init error) that drives `chatmigrate lambda`;
//! - [`cfn_endpoint`]: a CloudFormation `ResponseURL` (pre-signed S3 PUT)
//!   that records the custom resource's answers.

pub mod backends;
pub mod both;
pub mod cfn_endpoint;
pub mod citus;
pub mod cli;
pub mod dataapi;
pub mod db;
pub mod dir;
pub mod doc;
pub mod lambda_runtime_api;
pub mod proxy;
pub mod standby;
pub mod tls_front;
pub mod wire_log;

pub use cli::{cm, cm_embedded, finish, run_in, signal, spawn_in, Run, AWS_ENV};
pub use db::{port, query_url, server_password, server_url, with_db, Db, Holder};
pub use dir::Dir;

/// Polls until `f` is true (panics after `secs`).
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
