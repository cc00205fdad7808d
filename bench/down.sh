#!/usr/bin/env bash
# bench/down.sh — `chatmigrate down` of many small migrations against `up` of the same set:
# wall time and round trips per migration.
#
# On the tests' server of scripts/pg.sh (`--test`; started here if it is not running, and
# stopped again at the end), it:
#   1. generates BENCH_MIGRATIONS (1000) migrations V{n}__t{n}.sql (CREATE TABLE t{n}) with
#      their undo files V{n}__t{n}.undo.sql (DROP TABLE t{n}) in a temp dir;
#   2. creates a database with log_statement = 'all' (ALTER DATABASE: that database only);
#   3. runs `up` (all of them), then `down --target 0` (all of them), BENCH_RUNS (3) times,
#      timing each and counting the "statement:" entries the server logged for the
#      database during it: the direct backend sends each request as one simple-protocol
#      query, so each entry is one round trip;
#   4. prints the numbers per run and per migration.
# The database is dropped on exit.
#
# usage: bench/down.sh
# env:   CHATMIGRATE_BIN (default: $CARGO_TARGET_DIR or target, /release/chatmigrate if built,
#        else /debug/chatmigrate), BENCH_MIGRATIONS (1000), BENCH_RUNS (3)
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
N=${BENCH_MIGRATIONS:-1000}
RUNS=${BENCH_RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${CHATMIGRATE_BIN:-}
if [[ -z $BIN ]]; then
	BIN=$TARGET/release/chatmigrate
	[[ -x $BIN ]] || BIN=$TARGET/debug/chatmigrate
fi
[[ -x $BIN ]] || { echo "bench: no binary at $BIN (cargo build first, or set CHATMIGRATE_BIN)" >&2; exit 1; }
unset DATABASE_URL PGDATABASE PGSSLMODE CHATMIGRATE_CONFIG CHATMIGRATE_ENV

started=0
if ! bash "$ROOT/scripts/pg.sh" --test status >/dev/null 2>&1; then
	bash "$ROOT/scripts/pg.sh" --test start >&2
	started=1
fi
SERVER=$(bash "$ROOT/scripts/pg.sh" --test url)
LOG=$ROOT/.pg/test/server.log
DB=cmbench_down_$$
URL="${SERVER%/*}/$DB?sslmode=disable"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmdown.XXXXXX")
psql_() { bash "$ROOT/scripts/pg.sh" --test psql -X -q -v ON_ERROR_STOP=1 "$@"; }
cleanup() {
	psql_ -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
	rm -rf "$WORK"
	if ((started)); then bash "$ROOT/scripts/pg.sh" --test stop >&2 || true; fi
}
trap cleanup EXIT

mkdir -p "$WORK/m"
for ((i = 1; i <= N; i++)); do
	printf 'CREATE TABLE t%d (id int);\n' "$i" >"$WORK/m/V${i}__t${i}.sql"
	printf 'DROP TABLE t%d;\n' "$i" >"$WORK/m/V${i}__t${i}.undo.sql"
done
psql_ -c "CREATE DATABASE $DB" -c "ALTER DATABASE $DB SET log_statement = 'all'"

# Round trips: "statement:" entries logged while the command ran. Only database $DB has
# log_statement set (the server's default is none), so they are chatmigrate's (as in
# bench/run.sh; run it while no one else sets log_statement on the tests' server).
count() { # from-byte
	tail -c +"$(($1 + 1))" "$LOG" | grep -c "LOG:  statement: " || true
}
run() { # label args...
	local label=$1
	shift
	local from t0 t1 n
	from=$(stat -c %s "$LOG")
	t0=$EPOCHREALTIME
	(cd "$WORK" && "$BIN" --database-url "$URL" --migrations "$WORK/m" "$@" >/dev/null)
	t1=$EPOCHREALTIME
	sleep 0.3
	n=$(count "$from")
	awk -v l="$label" -v a="$t0" -v b="$t1" -v n="$n" -v m="$N" \
		'BEGIN { printf "%-5s %8.0f ms  %6d round trips  %.2f ms and %.3f round trips per migration\n", l, (b-a)*1000, n, (b-a)*1000/m, n/m }'
}
echo "bench: $N migrations, $BIN"
for ((r = 1; r <= RUNS; r++)); do
	run up up
	run down down --target 0
done
