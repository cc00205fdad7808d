//! The one integration-test binary. Every test talks to the real PostgreSQL
//! 18 + pgvector started by scripts/test.sh (CHATMIGRATE_TEST_PG_URL), in a
//! database of its own, and runs the real `chatmigrate` binary.

mod cfn_endpoint;
mod common;
mod lambda_runtime_api;

mod aws_direct;
mod bad_inputs;
mod ci_action;
mod citus;
mod cli_commands;
mod config_errors;
mod connect_errors;
mod crash;
mod dataapi;
mod dataapi_server;
mod drift;
mod embedded;
mod files;
mod input_properties;
mod lambda;
mod library;
mod lint;
mod lint_formats;
mod lock_protocol;
mod probe;
mod proxy;
mod rds_data;
mod rds_data_variants;
mod running;
mod safety;
mod schema;
mod standby;
mod tls_front;
mod transports;
