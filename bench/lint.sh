#!/usr/bin/env bash
# bench/lint.sh — how fast `chatmigrate lint` is, and what linting adds to `up`.
#
#   1. generates one migration of BENCH_LINT_STATEMENTS (10000) statements (bench.py genlint)
#      and times `chatmigrate lint` on it, BENCH_RUNS (10) times, for plain PostgreSQL and for a
#      Citus environment; target: under 1 s;
#   2. on the local server of scripts/pg.sh (started here if it is not running, and then
#      stopped again at the end), applies the built-in chat schema to a fresh database, then
#      times, BENCH_RUNS times each:
#        up, no-op         `up` with nothing pending: plans from the history and returns before
#                          any file is split or linted (the gate costs nothing here);
#        lint (4 files)    `lint` of the same set: what linting everything would add (an upper
#                          bound of the gate's cost, including process start-up);
#        --help            process start-up alone;
#      and the same `up` / `lint` pair on BENCH_MIGRATIONS (1000) generated migrations
#      (bench.py gen);
#   3. prints a summary, also written to bench/out/lint-last.txt.
#
# Every database it creates is dropped on exit.
#
# usage: bench/lint.sh      env: CHATMIGRATE_BIN (default: build --release into
#        ${BENCH_TARGET_DIR:-/work/bench-target}), BENCH_RUNS, BENCH_LINT_STATEMENTS, BENCH_MIGRATIONS,
#        BENCH_PG_SH (scripts/pg.sh of the checkout whose server to use; default: this one's)
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$BENCH_DIR/.." && pwd -P)
PG_SH=${BENCH_PG_SH:-$ROOT/scripts/pg.sh}
OUT_DIR=$BENCH_DIR/out
RUNS=${BENCH_RUNS:-10}
STATEMENTS=${BENCH_LINT_STATEMENTS:-10000}
N=${BENCH_MIGRATIONS:-1000}

die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}
note() { printf 'bench: %s\n' "$*" >&2; }
for v in RUNS STATEMENTS N; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
command -v python3 >/dev/null || die "python3 is needed (bench/bench.py)"
unset DATABASE_URL PGDATABASE PGSSLMODE PGSSLROOTCERT PGOPTIONS CHATMIGRATE_CONFIG CHATMIGRATE_ENV

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmlint.XXXXXX")
DBS=()
started_server=0
PSQL=""
ADMIN_URL=""
psql_admin() { PGAPPNAME=cmbench_admin "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_URL" "$@"; }
cleanup() {
	local rc=$? db
	trap - EXIT INT TERM
	if [[ -n $PSQL ]]; then
		for db in "${DBS[@]}"; do
			psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || note "warning: could not drop $db"
		done
	fi
	rm -rf "$WORK"
	if ((started_server)); then
		note "stopping the server this run started"
		bash "$PG_SH" stop >&2 || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n ${CHATMIGRATE_BIN:-} ]]; then
	CM=$CHATMIGRATE_BIN
	built="given (CHATMIGRATE_BIN)"
else
	target_dir=${BENCH_TARGET_DIR:-/work/bench-target}
	note "building: CARGO_TARGET_DIR=$target_dir cargo build --release"
	(cd "$ROOT" && CARGO_TARGET_DIR=$target_dir cargo build --release --quiet) >&2
	CM=$target_dir/release/chatmigrate
	built="built from the working tree now ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
fi
[[ -x $CM ]] || die "no executable chatmigrate at $CM"

if ! bash "$PG_SH" status >/dev/null 2>&1; then
	note "server not running: starting it (and stopping it at the end)"
	started_server=1
	bash "$PG_SH" start >&2
fi
eval "$(bash "$PG_SH" env)"
PSQL=$CHATMIGRATE_PG_BIN/psql
# CHATMIGRATE_PG_URL: the dev server (fsync on); an older scripts/pg.sh named it CHATMIGRATE_TEST_PG_URL.
PG_URL=${CHATMIGRATE_PG_URL:-${CHATMIGRATE_TEST_PG_URL:-}}
BASE_URL=${PG_URL%/*}
ADMIN_URL=$BASE_URL/postgres

note "generating a migration of $STATEMENTS statements and $N migrations"
python3 "$BENCH_DIR/bench.py" genlint "$WORK/lint" "$STATEMENTS"
python3 "$BENCH_DIR/bench.py" gen "$WORK/many" "$N"
cd "$WORK"

TIMES=$WORK/times.tsv
: >"$TIMES"
# tm LABEL OK_CODES CMD...: time one run; an exit code outside OK_CODES stops the benchmark.
tm() {
	local label=$1 ok=$2 t0 t1 rc
	shift 2
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>"$WORK/cmd.err" && rc=0 || rc=$?
	t1=$EPOCHREALTIME
	[[ ",$ok," == *",$rc,"* ]] || {
		cat "$WORK/cmd.err" >&2
		die "$label exited with $rc"
	}
	printf '%s\t%s\t%s\t%s\n' "$label" 1 "$t0" "$t1" >>"$TIMES"
}

# 1. The 10,000-statement file. Exit 1: it has findings (one per hundred statements).
"$CM" --migrations "$WORK/lint" lint >"$WORK/lint.out" 2>&1 || true
findings=$(tail -n 1 "$WORK/lint.out")
"$CM" --help >/dev/null
# The same file for a Citus environment (5 more rules, Citus state asked per statement).
mkdir -p "$WORK/citus"
printf '[environments.citus]\nbackend = "citus"\nmigrations = ["%s"]\n' "$WORK/lint" >"$WORK/citus/chatmigrate.toml"
for ((i = 1; i <= RUNS; i++)); do
	tm "lint, 1 file of $STATEMENTS statements" 1 "$CM" --migrations "$WORK/lint" lint
	tm "lint, the same, backend citus" 1 "$CM" --config "$WORK/citus/chatmigrate.toml" --env citus lint
done

# 2. The lint's share of `up`.
DB=cmlint_$$_$RANDOM
DBS+=("$DB" "${DB}_many")
psql_admin -c "CREATE DATABASE \"$DB\"" -c "CREATE DATABASE \"${DB}_many\""
url="$BASE_URL/$DB?sslmode=disable"
url_many="$BASE_URL/${DB}_many?sslmode=disable"
"$CM" --database-url "$url" up >/dev/null
"$CM" --database-url "$url_many" --migrations "$WORK/many/migrations" up >/dev/null
for ((i = 1; i <= RUNS; i++)); do
	tm "--help (start-up)" 0 "$CM" --help
	tm "up, no-op (chat schema, 4 applied)" 0 "$CM" --database-url "$url" up
	tm "lint (chat schema, 4 files)" 0 "$CM" --database-url "$url" lint
	tm "up, no-op ($N applied)" 0 "$CM" --database-url "$url_many" --migrations "$WORK/many/migrations" up
	tm "lint ($N files)" 0 "$CM" --database-url "$url_many" --migrations "$WORK/many/migrations" lint
done

{
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf 'machine\t%s CPUs (nproc), %s\n' "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	printf 'load average\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'chatmigrate\t%s (%s): %s\n' "$("$CM" --version)" "$built" "$CM"
	printf 'lint file\t%s statements, %s bytes; lint says: %s\n' "$STATEMENTS" "$(stat -c %s "$WORK/lint/V1__lint_bench.sql")" "$findings"
	printf 'runs\t%s per measurement, each a fresh process\n' "$RUNS"
	printf 'note\tup with nothing pending returns before splitting or linting any file; the lint rows are what linting the whole set would add\n'
} >"$WORK/info.tsv"
mkdir -p "$OUT_DIR"
python3 "$BENCH_DIR/bench.py" report "$WORK" | sed 's/^chatmigrate benchmark$/chatmigrate lint benchmark/; s/^=====================$/==========================/' | tee "$OUT_DIR/lint-last.txt"
cp "$TIMES" "$OUT_DIR/lint-last-times.tsv"
note "written: $OUT_DIR/lint-last.txt"
