#!/usr/bin/env bash
# scripts/test.sh — "command 2": run the test suite on a PostgreSQL of its own.
# Installs what is missing (scripts/deps.sh). The tests get their own server, data directory
# (.pg/test) and port (scripts/pg.sh --test), never the dev server of scripts/setup.sh: if the
# test server is not running, it is started in fast mode (fsync off) and stopped again on exit;
# one that was already running (`bash scripts/pg.sh --test start`, to save the start-up between
# runs) is left alone. The caller's database settings (DATABASE_URL, PG*, CHATMIGRATE_DEV_*,
# ...) are dropped, the test server's are exported (scripts/pg.sh --test env), then it runs
# `cargo test --locked "$@"` and exits with its code. scripts/setup.sh built the same units
# (`cargo test --no-run --locked`), so nothing is compiled again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*"; }

step "checking packages"
bash scripts/deps.sh

started=0
# shellcheck disable=SC2317 # invoked through the trap
stop_started() {
	if ((started)); then
		step "stopping the test server"
		bash scripts/pg.sh --test stop || true
	fi
}
trap stop_started EXIT
# Make Ctrl-C / kill still run the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

if ! bash scripts/pg.sh --test status >/dev/null 2>&1; then
	step "starting the test server (.pg/test, fast mode, stopped again at exit)"
	started=1
	bash scripts/pg.sh --test start
fi

# Nothing of the caller's shell may point the tests (or the binary they run) elsewhere, e.g.
# at the dev database after `eval "$(bash scripts/pg.sh env)"`.
unset DATABASE_URL PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGPASSFILE PGDATABASE PGSERVICE \
	PGSERVICEFILE PGOPTIONS PGSSLMODE PGSSLROOTCERT PGAPPNAME CHATMIGRATE_DEV_PASSWORD \
	CHATMIGRATE_ENV CHATMIGRATE_CONFIG CHATMIGRATE_PG_URL CHATMIGRATE_TEST_PG_URL CHATMIGRATE_RESOURCE_ARN \
	CHATMIGRATE_SECRET_ARN CHATMIGRATE_DATABASE CHATMIGRATE_MIGRATIONS CHATMIGRATE_LAMBDA_MARGIN
env_lines=$(bash scripts/pg.sh --test env)
eval "$env_lines"

step "cargo test --locked $*"
set +e
cargo test --locked "$@"
rc=$?
set -e
exit "$rc"
