#!/usr/bin/env bash
# scripts/setup.sh — "command 1": from a fresh machine to a migrated dev database.
# Installs the dependencies (scripts/deps.sh), starts the local PostgreSQL 18 + pgvector
# (scripts/pg.sh start), builds chatmigrate, then runs `chatmigrate --env dev up
# --create-database` and `status` against the [environments.dev] of chatmigrate.toml.
# Safe to run again. Stop the server with: scripts/pg.sh stop
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*"; }

step "installing packages"
bash scripts/deps.sh

step "starting postgres"
bash scripts/pg.sh start
if [[ ${CHATMIGRATE_PG_PORT:-54329} != 54329 ]]; then
	echo "warning: chatmigrate.toml's dev environment uses port 54329, not CHATMIGRATE_PG_PORT=$CHATMIGRATE_PG_PORT" >&2
fi

step "building"
cargo build

# [environments.dev] in chatmigrate.toml reads its password from this variable.
CHATMIGRATE_DEV_PASSWORD=$(cat .pg/password)
export CHATMIGRATE_DEV_PASSWORD
chatmigrate=${CARGO_TARGET_DIR:-target}/debug/chatmigrate

step "chatmigrate up"
"$chatmigrate" --env dev up --create-database

step "chatmigrate status"
"$chatmigrate" --env dev status

step "done: postgres stays running (scripts/pg.sh status|url|env|stop)"
