//! The one integration-test binary. Every test talks to the real PostgreSQL
//! 18 + pgvector started by scripts/test.sh (CHATMIGRATE_TEST_PG_URL), in a
//! database of its own, and runs the real `chatmigrate` binary.

mod common;

mod adopt;
mod aws_direct;
mod bad_inputs;
mod citus;
mod cli_commands;
mod config_errors;
mod connect_errors;
mod crash;
mod dataapi;
mod dataapi_server;
mod drift;
mod files;
mod gate;
mod input_properties;
mod library;
mod lint;
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
