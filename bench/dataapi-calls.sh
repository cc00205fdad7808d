#!/usr/bin/env bash
# bench/dataapi-calls.sh — how many Data API calls the shipped chat schema costs.
#
# Runs the integration test rds_data::calls_per_migration, which applies the chat schema with
# `up --create-database` through the test suite's Data API server (the real aws-sdk-rdsdata
# client; the SQL runs on the test server of scripts/pg.sh --test) twice: with the defaults, and
# with lock_timeout = "off" and group_commit = false. The test pins the counts (so a change
# that adds a call fails it); this script writes its table to bench/out/dataapi-calls.txt and
# prints it.
#
# usage: bench/dataapi-calls.sh        (starts the test server if needed and leaves it running)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
bash scripts/pg.sh --test start >/dev/null
eval "$(bash scripts/pg.sh --test env)"
mkdir -p bench/out
out=$ROOT/bench/out/dataapi-calls.txt
CHATMIGRATE_BENCH_OUT=$out cargo test --quiet --test integration rds_data::calls_per_migration_for_the_chat_schema -- --exact >&2
cat "$out"
