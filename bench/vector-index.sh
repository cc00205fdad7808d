#!/usr/bin/env bash
# bench/vector-index.sh — how long the shipped HNSW index (migrations/V4) takes to build on a
# populated chat vector table: (a) as a tool without memory planning sends it, (b) with the
# settings chatmigrate plans; and whether pgvector's NOTICE "hnsw graph no longer fits into
# maintenance_work_mem" fires.
#
# On the local server of scripts/pg.sh (started here if it is not running, and then stopped
# again at the end; left alone if it was already running), for each row count of
# BENCH_VECTOR_ROWS ("20000 50000"):
#   1. a template database with the chat schema up to V3 (`chatmigrate up --target 3`: the
#      history and vector tables, pgvector), filled with that many random normalised
#      1024-dimension vectors generated server-side (setseed: the same rows every run; chat
#      summaries of 576 hex characters, which stay in the heap as real summaries do, while the
#      vectors go to TOAST), then VACUUM ANALYZE;
#   2. BENCH_RUNS (1) times, (a) and (b) each on a fresh copy of the template (CREATE DATABASE
#      ... TEMPLATE), alternating which goes first, with a CHECKPOINT before each build:
#        (a) unplanned: V4's CREATE INDEX CONCURRENTLY with the server's defaults
#            (maintenance_work_mem 64MB, max_parallel_maintenance_workers 2);
#        (b) planned: the same statement after the settings chatmigrate plans, sent in the same
#            session as chatmigrate will send them: `SET maintenance_work_mem = '<estimate + 10%,
#            capped>'` (the estimator, src/vector_index/memory.rs, run through
#            examples/vector_index_plan.rs on the table's reltuples, relpages and current size) and
#            `SET max_parallel_maintenance_workers = BENCH_INDEX_WORKERS`.
#            BENCH_VECTOR_B=up runs `chatmigrate up` instead: it applies the shipped V4, whose
#            build chatmigrate plans itself (V4 sets nothing of its own), with the default
#            index_build_memory ("auto", capped at 1GB) and index_build_workers (unset).
#      Each build's session runs with client_min_messages = debug1, so the output shows pgvector's
#      NOTICE (with its tuple) and PostgreSQL's "using N parallel workers";
#   3. prints a summary, also written to bench/out/vector-index-last.txt.
#
# Every database it creates is dropped on exit, whatever happens. A build of 50,000 rows takes
# minutes; with the defaults, many minutes.
#
# usage: bench/vector-index.sh      (from any directory)
# env:   BENCH_VECTOR_ROWS ("20000 50000"), BENCH_RUNS (1)
#        BENCH_VECTOR_B (manual | up; default manual), see (b)
#        BENCH_INDEX_MEMORY_CAP_MB (2048): the cap of the planned maintenance_work_mem
#        BENCH_INDEX_WORKERS (2): the max_parallel_maintenance_workers (b) sets
#        CHATMIGRATE_BIN: the binary for setup and `up` (default: build the working tree with
#        cargo into ${CARGO_TARGET_DIR:-target}, debug profile; the build time is the server's)
#        BENCH_PG_SH: scripts/pg.sh of the checkout whose server to use (default: this one's)
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$BENCH_DIR/.." && pwd -P)
PG_SH=${BENCH_PG_SH:-$ROOT/scripts/pg.sh}
OUT_DIR=$BENCH_DIR/out
ROWS_LIST=${BENCH_VECTOR_ROWS:-20000 50000}
RUNS=${BENCH_RUNS:-1}
MODE_B=${BENCH_VECTOR_B:-manual}
CAP_MB=${BENCH_INDEX_MEMORY_CAP_MB:-2048}
WORKERS=${BENCH_INDEX_WORKERS:-2}

die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}
note() { printf 'bench: %s\n' "$*" >&2; }

for v in RUNS CAP_MB; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[[ $WORKERS =~ ^[0-9]+$ ]] || die "BENCH_INDEX_WORKERS must be a whole number, got '$WORKERS'"
for n in $ROWS_LIST; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_VECTOR_ROWS must list positive integers, got '$n'"
done
[[ $MODE_B == manual || $MODE_B == up ]] || die "BENCH_VECTOR_B is manual or up, got '$MODE_B'"
unset DATABASE_URL PGDATABASE PGSSLMODE PGSSLROOTCERT PGOPTIONS CHATMIGRATE_CONFIG CHATMIGRATE_ENV

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmvector.XXXXXX")
DBS=()
started_server=0
PSQL=""
ADMIN_URL=""
psql_admin() { PGAPPNAME=cmbench_admin "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_URL" "$@"; }
psql_db() { PGAPPNAME=cmbench_admin "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$(url "$1")" "${@:2}"; }
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

# ---------------------------------------------------------------- binaries, server
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
note "building: cargo build --bin chatmigrate --example vector_index_plan (CARGO_TARGET_DIR=$target_dir)"
(cd "$ROOT" && CARGO_TARGET_DIR=$target_dir cargo build --quiet --bin chatmigrate --example vector_index_plan) >&2
PLAN=$target_dir/debug/examples/vector_index_plan
CM=${CHATMIGRATE_BIN:-$target_dir/debug/chatmigrate}
[[ -x $CM && -x $PLAN ]] || die "no executable chatmigrate at $CM or vector_index_plan at $PLAN"

if ! bash "$PG_SH" status >/dev/null 2>&1; then
	note "server not running: starting it (and stopping it at the end)"
	started_server=1
	bash "$PG_SH" start >&2
fi
eval "$(bash "$PG_SH" env)"
PSQL=$CHATMIGRATE_PG_BIN/psql
PG_LOG=$(dirname "$PG_SH")/../.pg/server.log
BASE_URL=${CHATMIGRATE_PG_URL%/*}
ADMIN_URL=$BASE_URL/postgres
url() { printf '%s/%s?sslmode=disable' "$BASE_URL" "$1"; }

DB_PREFIX=cmvec_$$_$RANDOM
RESULTS=$WORK/results.tsv
: >"$RESULTS"
V4_SQL="CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_st_chat_history_vector_hnsw ON st_chat_history_vector_table USING hnsw (chat_vector vector_l2_ops)"

# build LABEL DB SETTINGS...: one build in one session; appends a result row.
build() {
	local label=$1 db=$2 t0 t1 rc out=$WORK/build.out notice workers setting
	shift 2
	psql_admin -c CHECKPOINT
	local args=(-c "SET client_min_messages = debug1")
	for setting in "$@"; do args+=(-c "SET $setting"); done
	args+=(-c "SHOW maintenance_work_mem" -c "SHOW max_parallel_maintenance_workers" -c "$V4_SQL")
	t0=$EPOCHREALTIME
	PGAPPNAME=cmbench_vector "$PSQL" -X -v ON_ERROR_STOP=1 -d "$(url "$db")" "${args[@]}" >"$out" 2>&1 && rc=0 || rc=$?
	t1=$EPOCHREALTIME
	((rc == 0)) || {
		cat "$out" >&2
		die "$label on $db exited with $rc"
	}
	record "$label" "$db" "$t0" "$t1" "$out"
}

# build_up LABEL DB: `chatmigrate up` (applies V4). The database logs its sessions' messages
# from DEBUG1 up (ALTER DATABASE, this copy only), so the server log shows the NOTICE and the
# workers whatever chatmigrate prints.
build_up() {
	local label=$1 db=$2 t0 t1 rc out=$WORK/build.out off
	psql_admin -c "ALTER DATABASE \"$db\" SET log_min_messages = debug1"
	psql_admin -c CHECKPOINT
	off=$(stat -c %s "$PG_LOG")
	t0=$EPOCHREALTIME
	"$CM" --color never --database-url "$(url "$db")" up >"$out" 2>&1 && rc=0 || rc=$?
	t1=$EPOCHREALTIME
	((rc == 0)) || {
		cat "$out" >&2
		die "$label (chatmigrate up) on $db exited with $rc"
	}
	tail -c +$((off + 1)) "$PG_LOG" >>"$out"
	record "$label" "$db" "$t0" "$t1" "$out"
}

# record LABEL DB T0 T1 OUTPUT: the time, the NOTICE's tuple, the workers, the settings shown.
record() {
	local label=$1 db=$2 t0=$3 t1=$4 out=$5 notice workers size valid
	notice=$(grep -o 'no longer fits into maintenance_work_mem after [0-9]* tuples' "$out" | grep -o '[0-9]*' | head -n 1 || true)
	workers=$(grep -o 'using [0-9]* parallel workers' "$out" | grep -o '[0-9]*' | head -n 1 || true)
	size=$(psql_db "$db" -At -c "SELECT pg_size_pretty(pg_relation_size('idx_st_chat_history_vector_hnsw'))")
	valid=$(psql_db "$db" -At -c "SELECT indisvalid AND indisready FROM pg_index WHERE indexrelid = 'idx_st_chat_history_vector_hnsw'::regclass")
	[[ $valid == t ]] || die "$label on $db: the index is not valid"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rows" "$label" "$t0" "$t1" "${notice:--}" "${workers:-0}" "$size" >>"$RESULTS"
	note "$rows rows, $label: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s, NOTICE ${notice:-none}, ${workers:-0} workers"
}

PLANS=$WORK/plans.tsv
: >"$PLANS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for rows in $ROWS_LIST; do
	tmpl=${DB_PREFIX}_${rows}_tmpl
	DBS+=("$tmpl")
	psql_admin -c "CREATE DATABASE \"$tmpl\""
	note "$rows rows: schema up to V3 and data in $tmpl"
	"$CM" --color never --database-url "$(url "$tmpl")" up --target 3 >/dev/null
	psql_db "$tmpl" -v rows="$rows" <<-'SQL'
		SELECT setseed(0.14);
		INSERT INTO st_chat_history_vector_table (userid, theme, chatid, chat_summary, metadata, chat_vector)
		SELECT 'user_' || (g % 500), 'theme_' || (g % 12), g,
		       (SELECT string_agg(md5(g::text || ':' || k), '') FROM generate_series(1, 18) AS k),
		       jsonb_build_object('source', 'bench', 'n', g),
		       l2_normalize((SELECT array_agg(random_normal()::real) FROM generate_series(1, 1024) WHERE g > 0)::vector)
		FROM generate_series(1, :rows) AS g;
		VACUUM ANALYZE st_chat_history_vector_table;
	SQL
	# What chatmigrate reads before the build: the row estimate and the table's current size,
	# the server version and its maintenance_work_mem (kB).
	facts=$(psql_db "$tmpl" -At -F ' ' -c "SELECT c.reltuples, c.relpages, pg_relation_size(c.oid) / current_setting('block_size')::int,
		current_setting('server_version_num'), (SELECT setting FROM pg_settings WHERE name = 'maintenance_work_mem')
		FROM pg_class c WHERE c.oid = 'st_chat_history_vector_table'::regclass")
	read -r reltuples relpages blocks version current_kb <<<"$facts"
	plan=$("$PLAN" "$reltuples" "$relpages" "$blocks" 1024 16 "$version" "$current_kb" $((CAP_MB * 1024)))
	set_value=$(sed -n 's/.* set=\([^ ]*\).*/\1/p' <<<"$plan")
	printf '%s\t%s\t%s\n' "$rows" "$blocks" "$plan" >>"$PLANS"
	note "$rows rows: $plan"
	planned=("max_parallel_maintenance_workers = $WORKERS")
	[[ $set_value == - ]] || planned=("maintenance_work_mem = '$set_value'" "${planned[@]}")

	for ((r = 1; r <= RUNS; r++)); do
		order=(a b)
		((r % 2 == 0)) && order=(b a)
		for which in "${order[@]}"; do
			db=${DB_PREFIX}_${rows}_${which}_$r
			DBS+=("$db")
			psql_admin -c "CREATE DATABASE \"$db\" TEMPLATE \"$tmpl\""
			if [[ $which == a ]]; then
				build "(a) unplanned: server defaults" "$db" "maintenance_work_mem TO DEFAULT" "max_parallel_maintenance_workers TO DEFAULT"
			elif [[ $MODE_B == up ]]; then
				build_up "(b) chatmigrate up" "$db"
			else
				build "(b) planned: $(IFS=,; echo "${planned[*]}")" "$db" "${planned[@]}"
			fi
			psql_admin -c "DROP DATABASE \"$db\" WITH (FORCE)"
		done
	done
	psql_admin -c "DROP DATABASE \"$tmpl\" WITH (FORCE)"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
report() {
	printf 'chatmigrate vector index benchmark\n'
	printf '==================================\n'
	printf '  date          %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf '  machine       %s CPUs (nproc), %s\n' "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	printf '  load average  %s before, %s after (other work on the machine shows here)\n' "$LOAD_BEFORE" "$LOAD_AFTER"
	printf '  server        %s; pgvector %s\n' "$(psql_admin -At -c 'SELECT version()' | cut -d, -f1)" \
		"$(psql_admin -At -c "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")"
	printf '  settings      %s\n' "$(psql_admin -At -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('maintenance_work_mem', 'max_parallel_maintenance_workers', 'max_parallel_workers', 'max_worker_processes', 'shared_buffers', 'fsync')")"
	printf '  statement     %s\n' "$V4_SQL"
	printf '  (b)           %s\n' "$([[ $MODE_B == up ]] && echo "chatmigrate up ($("$CM" --version))" || echo "settings planned by the estimator, sent by hand (BENCH_VECTOR_B=up for chatmigrate up)")"
	printf '  runs          %s per row count, each build on a fresh copy of the same table\n' "$RUNS"
	printf '\nPlans (estimator input: reltuples, relpages, current blocks; cap %s MB)\n' "$CAP_MB"
	while IFS=$'\t' read -r rows blocks plan; do
		printf '  %6s rows, %5s heap blocks: %s\n' "$rows" "$blocks" "$plan"
	done <"$PLANS"
	printf '\nBuilds (seconds)\n'
	awk -F'\t' '{ printf "  %6s rows  %-72s %8.1f s  NOTICE after %-6s  workers %s  index %s\n", $1, $2, $4 - $3, $5, $6, $7 }' "$RESULTS"
	printf '\nRatio (a) / (b), per row count (medians)\n'
	awk -F'\t' '
		{ t = $4 - $3; k = ($2 ~ /^\(a\)/) ? "a" : "b"; n[$1 SUBSEP k]++; v[$1 SUBSEP k SUBSEP n[$1 SUBSEP k]] = t; if (!($1 in seen)) { seen[$1] = 1; order[++m] = $1 } }
		function med(r, k,   c, i, j, x, a) { c = n[r SUBSEP k]; for (i = 1; i <= c; i++) a[i] = v[r SUBSEP k SUBSEP i];
			for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
			return (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2 }
		END { for (i = 1; i <= m; i++) { r = order[i]; a = med(r, "a"); b = med(r, "b");
			printf "  %6s rows  (a) %8.1f s  (b) %8.1f s  ratio %.2fx\n", r, a, b, a / b } }' "$RESULTS"
}
mkdir -p "$OUT_DIR"
report | tee "$OUT_DIR/vector-index-last.txt"
cp "$RESULTS" "$OUT_DIR/vector-index-last.tsv"
note "written: $OUT_DIR/vector-index-last.txt"
