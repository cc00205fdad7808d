#!/usr/bin/env bash
# bench/adopt.sh — the cost of reading a schema, and of `chatmigrate adopt` (issue 13).
#
#   1. makes a database of BENCH_TABLES (1000) tables with 3 indexes each (a primary key and
#      two btree indexes, 5 columns, one CHECK) and reads its schema BENCH_RUNS (10) times
#      with `chatmigrate --format json diff` against an empty migration set: the catalog
#      queries and the milliseconds of the live read come from its `introspection` field
#      (counted by chatmigrate as it sends them); target: a constant number of queries, under
#      1 s (the time is the server's: PostgreSQL's pg_get_indexdef / pg_get_constraintdef /
#      pg_get_expr for every object, measured on the dev machine under whatever load it has);
#   2. times `chatmigrate adopt` end to end (process start to exit, scratch database created,
#      migrated, read and dropped) on the built-in chat schema made by hand (the shipped SQL
#      run with psql, no history), BENCH_RUNS times (the history is dropped between runs);
#      target: under 2 s;
#   3. the same for the seed's hand-made database (tests/integration/seed), where
#      adopt finds the 4 differences and exits 1;
#   4. prints a summary, also written to bench/out/adopt-last.txt.
#
# On the local server of scripts/pg.sh (started here if it is not running, and stopped again at
# the end). Every database it creates is dropped on exit.
#
# usage: bench/adopt.sh     env: CHATMIGRATE_BIN (default: build --release into
#        ${BENCH_TARGET_DIR:-/work/bench-target}), BENCH_RUNS, BENCH_TABLES,
#        BENCH_PG_SH (scripts/pg.sh of the checkout whose server to use; default: this one's)
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$BENCH_DIR/.." && pwd -P)
PG_SH=${BENCH_PG_SH:-$ROOT/scripts/pg.sh}
OUT_DIR=$BENCH_DIR/out
RUNS=${BENCH_RUNS:-10}
TABLES=${BENCH_TABLES:-1000}

die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}
note() { printf 'bench: %s\n' "$*" >&2; }
for v in RUNS TABLES; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
command -v python3 >/dev/null || die "python3 is needed"
unset DATABASE_URL PGDATABASE PGSSLMODE PGSSLROOTCERT PGOPTIONS CHATMIGRATE_CONFIG CHATMIGRATE_ENV

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmadopt.XXXXXX")
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
BASE_URL=${CHATMIGRATE_TEST_PG_URL%/*}
ADMIN_URL=$BASE_URL/postgres
psql_db() { PGAPPNAME=cmbench_admin "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$BASE_URL/$1" "${@:2}"; }
cd "$WORK"

# 1. A schema of $TABLES tables with 3 indexes each.
BIG=cmadopt_$$_big
DBS+=("$BIG")
psql_admin -c "CREATE DATABASE \"$BIG\""
note "making $TABLES tables with 3 indexes each"
psql_db "$BIG" -c "DO \$\$ BEGIN FOR i IN 1..$TABLES LOOP
  EXECUTE format('CREATE TABLE t%s (id bigserial PRIMARY KEY, owner text NOT NULL, kind text DEFAULT %L, n integer CHECK (n >= 0), at timestamptz NOT NULL DEFAULT now())', i, 'plain');
  EXECUTE format('CREATE INDEX t%s_owner ON t%s (owner)', i, i);
  EXECUTE format('CREATE INDEX t%s_at ON t%s (at) WHERE n > 0', i, i);
END LOOP; END \$\$"
mkdir -p "$WORK/none"
: >"$WORK/read.tsv"
for ((i = 1; i <= RUNS; i++)); do
	"$CM" --database-url "$BASE_URL/$BIG?sslmode=disable" --migrations "$WORK/none" --format json diff >"$WORK/diff.json"
	python3 - "$WORK/diff.json" >>"$WORK/read.tsv" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
live = d["introspection"]["live"]
print(live["queries"], live["ms"], len(d["differences"]), sep="\t")
EOF
done

# 2. adopt on the chat schema made by hand.
CHAT=cmadopt_$$_chat
DBS+=("$CHAT")
psql_admin -c "CREATE DATABASE \"$CHAT\""
for f in "$ROOT"/migrations/V*.sql; do
	# One statement per command: V4 builds an index CONCURRENTLY.
	python3 - "$f" >"$WORK/split.sql" <<'EOF'
import sys
text = open(sys.argv[1]).read()
for s in text.split(";\n"):
    body = "\n".join(l for l in s.splitlines() if not l.startswith("--")).strip()
    if body:
        print(body + ";")
EOF
	psql_db "$CHAT" -f "$WORK/split.sql" >/dev/null
done
ms() { python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$1" "$2"; }
: >"$WORK/adopt.tsv"
for ((i = 1; i <= RUNS; i++)); do
	psql_db "$CHAT" -c "DROP TABLE IF EXISTS chatmigrate_history, chatmigrate_history_log, chatmigrate_history_lease" 2>/dev/null
	t0=$EPOCHREALTIME
	"$CM" --database-url "$BASE_URL/$CHAT?sslmode=disable" adopt >"$WORK/adopt.out"
	t1=$EPOCHREALTIME
	grep -q "recorded 4 migration(s)" "$WORK/adopt.out" || die "adopt did not record: $(cat "$WORK/adopt.out")"
	printf 'matches\t%s\n' "$(ms "$t0" "$t1")" >>"$WORK/adopt.tsv"
done

# 3. adopt on the seed's hand-made database (4 differences, exit 1).
SEED=cmadopt_$$_seed
DBS+=("$SEED")
psql_admin -c "CREATE DATABASE \"$SEED\""
for f in "$ROOT"/tests/integration/seed/*.sql; do
	psql_db "$SEED" -f "$f" >/dev/null
done
for ((i = 1; i <= RUNS; i++)); do
	t0=$EPOCHREALTIME
	rc=0
	"$CM" --database-url "$BASE_URL/$SEED?sslmode=disable" adopt >"$WORK/seed.out" || rc=$?
	t1=$EPOCHREALTIME
	[[ $rc == 1 ]] || die "adopt on the seed's database exited $rc: $(cat "$WORK/seed.out")"
	printf 'differs\t%s\n' "$(ms "$t0" "$t1")" >>"$WORK/adopt.tsv"
done

mkdir -p "$OUT_DIR"
python3 - "$WORK" "$TABLES" "$RUNS" "$("$CM" --version)" "$built" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF' | tee "$OUT_DIR/adopt-last.txt"
import statistics, sys, time
work, tables, runs, version, built, cpus, load = sys.argv[1:8]
read = [l.split("\t") for l in open(f"{work}/read.tsv").read().splitlines()]
adopt = [l.split("\t") for l in open(f"{work}/adopt.tsv").read().splitlines()]
def mmm(xs):
    xs = sorted(int(x) for x in xs)
    return f"min {xs[0]} / median {int(statistics.median(xs))} / max {xs[-1]} ms"
print("chatmigrate adopt benchmark")
print("===========================")
print(f"date          {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
print(f"machine       {cpus} CPUs, load average {load}")
print(f"chatmigrate   {version} ({built})")
print(f"runs          {runs} per measurement, each a fresh process")
print()
queries = sorted(set(r[0] for r in read))
print(f"schema read, {tables} tables x 3 indexes ({read[0][2]} objects reported as differences):")
print(f"  catalog queries sent: {', '.join(queries)} per run (counted by chatmigrate as it sends them; the probe and the history read come before)")
print(f"  time of the read:     {mmm(r[1] for r in read)}  (target: under 1 s)")
print()
print("adopt, end to end (process start to exit, scratch database created, migrated, read, dropped):")
print(f"  chat schema made by hand, matches, records V1..V4: {mmm(r[1] for r in adopt if r[0] == 'matches')}  (target: under 2 s)")
print(f"  the seed's hand-made database, 4 differences:      {mmm(r[1] for r in adopt if r[0] == 'differs')}")
EOF
note "written: $OUT_DIR/adopt-last.txt"
