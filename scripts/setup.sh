#!/usr/bin/env bash
# scripts/setup.sh — "command 1": from a fresh machine to a migrated dev database.
#   1. installs what is missing (scripts/deps.sh: apt packages when root, the .venv with
#      PostgreSQL 18 + pgvector);
#   2. starts the dev server (scripts/pg.sh start): on the port kept in .pg/port, or the first
#      free one from 54329 (CHATMIGRATE_PG_PORT chooses another);
#   3. builds with `cargo test --no-run --locked`: target/debug/chatmigrate and the test
#      binaries, with the dependency features of the tests, so scripts/test.sh compiles nothing
#      again. (A plain `cargo build` leaves out what the dev-dependencies add — tokio's
#      rt-multi-thread, hyper's server, rustix's fs, and debug info for tempfile, a build
#      dependency of pg_query that the tests use too — and test.sh would then rebuild 40
#      crates, pg_query's C code among them: 6 min on 2 cores.)
#   4. runs `chatmigrate --env dev up --create-database`, then `status`, with the connection of
#      `eval "$(bash scripts/pg.sh env)"` (PGPORT, CHATMIGRATE_DEV_PASSWORD), which is what
#      chatmigrate.toml's dev environment reads.
# Safe to run again. The server keeps running; stop it with: bash scripts/pg.sh stop
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*"; }

step "installing packages"
bash scripts/deps.sh

step "starting the dev server"
bash scripts/pg.sh start

step "building (cargo test --no-run: the binary and the test binaries)"
cargo test --locked --no-run

# The dev environment's port (PGPORT) and password (CHATMIGRATE_DEV_PASSWORD).
env_lines=$(bash scripts/pg.sh env)
eval "$env_lines"
chatmigrate=${CARGO_TARGET_DIR:-target}/debug/chatmigrate
[[ $chatmigrate == /* ]] || chatmigrate=./$chatmigrate

step "chatmigrate up"
"$chatmigrate" --env dev up --create-database

step "chatmigrate status"
"$chatmigrate" --env dev status

step "done: the dev server stays running on 127.0.0.1:$PGPORT (bash scripts/pg.sh stop|status|psql)"
# shellcheck disable=SC2016 # printed as it is, for the user to run
printf '    to use it from your shell: eval "$(bash scripts/pg.sh env)"; alias cm=%s\n' "$chatmigrate"
