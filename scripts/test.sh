#!/usr/bin/env bash
# scripts/test.sh — "command 2": run the test suite against the local PostgreSQL.
# Installs the dependencies (scripts/deps.sh); if the server is not running, starts it in
# fast mode (CHATMIGRATE_PG_FAST=1: fsync etc. off) and stops it again on exit — a server
# that was already running is left alone. Exports CHATMIGRATE_PG_BIN, CHATMIGRATE_TEST_PG_URL
# and PG* (scripts/pg.sh env), then runs `cargo test --locked "$@"` and exits with its code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*"; }

step "checking packages"
bash scripts/deps.sh

started=0
# shellcheck disable=SC2317 # invoked through the trap
stop_started() {
	if ((started)); then
		step "stopping postgres"
		bash scripts/pg.sh stop || true
	fi
}
trap stop_started EXIT
# Make Ctrl-C / kill still run the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

# port_busy PORT: something already accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! bash scripts/pg.sh status >/dev/null 2>&1; then
	# Another checkout's server (e.g. the dev one from scripts/setup.sh) may hold the default
	# port: unless CHATMIGRATE_PG_PORT is set, take the first free port from 54329 on.
	if [[ -z ${CHATMIGRATE_PG_PORT:-} ]]; then
		port=54329
		while port_busy "$port" && ((port < 54379)); do
			port=$((port + 1))
		done
		export CHATMIGRATE_PG_PORT=$port
	fi
	step "starting postgres on port $CHATMIGRATE_PG_PORT (fast mode, stopped again at exit)"
	started=1
	CHATMIGRATE_PG_FAST=1 bash scripts/pg.sh start
fi

env_lines=$(bash scripts/pg.sh env)
eval "$env_lines"

step "cargo test --locked $*"
set +e
cargo test --locked "$@"
rc=$?
set -e
exit "$rc"
