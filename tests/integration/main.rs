//! The one integration-test binary. Every test talks to the real PostgreSQL
//! 18 + pgvector started by scripts/test.sh (CHATMIGRATE_TEST_PG_URL), in a
//! database of its own, and runs the real `chatmigrate` binary. The helpers
//! and the peers the tests put in between (Data API server, fault proxy, TLS
//! front, standby, live Citus) live in tests/support/; `contract` runs one
//! story against every backend. docs/testing.md describes the layout.

#[path = "../support/mod.rs"]
mod support;

mod adopt;
mod aws_direct;
mod bad_inputs;
mod ci_action;
mod citus;
mod citus_production;
mod cli_commands;
mod closed_stdout;
mod config_errors;
mod connect_errors;
mod connection_faults;
mod contract;
mod crash;
mod dataapi_server;
mod dev_database;
mod docs;
mod down;
mod drift;
mod embedded;
mod files;
mod fixtures;
mod gate;
mod help;
mod index_progress;
mod input_properties;
mod kinds;
mod lambda;
mod lambda_package;
mod library;
mod lint;
mod lint_formats;
mod lock_protocol;
mod one_script;
mod placeholders;
mod probe;
mod rds_data;
mod rds_data_variants;
mod repeatable;
mod running;
mod safety;
mod schema;
mod transports;
mod vector_index;
mod wait;
