#!/usr/bin/env bash
# bench/run.sh — how fast chatmigrate applies many small migrations, and what it sends.
#
# On the local server of scripts/pg.sh (started here if it is not running, and then stopped
# again at the end; left alone if it was already running), in one run:
#   1. generates BENCH_MIGRATIONS (1000) migrations V{n}__t{n}.sql (CREATE TABLE + CREATE
#      INDEX each) into a temp dir, plus all.sql, their concatenation;
#   2. BENCH_RUNS (5) times, each on fresh databases (created and dropped here), times
#        floor    psql -X -q -1 -v ON_ERROR_STOP=1 -f all.sql   (one connection, one transaction)
#        up       chatmigrate up from empty
#        no-op    chatmigrate up with everything applied     (BENCH_QUICK_RUNS (10) times a run)
#        status   chatmigrate status with everything applied (BENCH_QUICK_RUNS times a run)
#      no-op and status also with ?sslmode=disable in the URL: the default on 127.0.0.1 is
#      prefer, which builds a TLS connector (loading the system CA bundle) before connecting;
#      plus baselines: `chatmigrate --help` (process start-up, no database) and
#      `psql -c 'SELECT 1'` (start-up + connect + one query);
#   3. counts what chatmigrate sends for up-from-empty, no-op up and status, from the server
#      log, with log_statement='all' set on one dedicated database only (ALTER DATABASE; the
#      server's own settings are not touched). See bench/bench.py for how round trips are
#      counted. The server default log_statement is 'none', so a "statement:" entry in the
#      counting window comes from a session on a database with log_statement set: ours, unless
#      someone else set it on theirs at the same time (other test runs on the server are fine);
#   4. prints a summary, also written to bench/out/last.txt (raw samples: bench/out/last-*.tsv),
#      with the CPU time of each command and the ratio of the no-op `up` and `status` to
#      `psql -c 'SELECT 1'`, measured beside each other in the same runs (target: at most 2x).
#
# Every database it creates is dropped on exit, whatever happens.
#
# usage: bench/run.sh          (from any directory)
# env:   CHATMIGRATE_BIN   binary to measure; default: build the working tree with
#                          CARGO_TARGET_DIR=${BENCH_TARGET_DIR:-/work/bench-target} cargo build --release
#        BENCH_RUNS (5), BENCH_QUICK_RUNS (10), BENCH_MIGRATIONS (1000)
#        BENCH_CHECKPOINT (1): CHECKPOINT before each timed apply (less noise from a checkpoint
#                          landing inside a measurement); 0 to skip
#        BENCH_DROP_EACH (0): 1 drops each run's databases right after the run instead of at the
#                          end. Off by default: on ext4 without a journal (this VM's root file
#                          system) the inode allocator skips inodes freed in the last 1-5 minutes
#                          (fs/ext4/ialloc.c recently_deleted()), so creating the ~5000 files of
#                          1000 tables gets several times slower right after a DROP DATABASE has
#                          deleted ~5000 others; that measures the file system, not chatmigrate.
#                          Other test runs dropping databases on the same disk still show up.
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME with a '.' decimal separator

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$BENCH_DIR/.." && pwd -P)
PG_SH=$ROOT/scripts/pg.sh
PG_LOG=$ROOT/.pg/server.log
OUT_DIR=$BENCH_DIR/out
RUNS=${BENCH_RUNS:-5}
QUICK=${BENCH_QUICK_RUNS:-10}
N=${BENCH_MIGRATIONS:-1000}
CHECKPOINT=${BENCH_CHECKPOINT:-1}
DROP_EACH=${BENCH_DROP_EACH:-0}

die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}
note() { printf 'bench: %s\n' "$*" >&2; }

for v in RUNS QUICK N; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[[ $DROP_EACH == [01] && $CHECKPOINT == [01] ]] || die "BENCH_DROP_EACH and BENCH_CHECKPOINT are 0 or 1"
command -v python3 >/dev/null || die "python3 is needed (bench/bench.py)"

# Settings of the caller must not redirect chatmigrate: the URL and --migrations say it all,
# and it runs in the temp dir, away from the repository's chatmigrate.toml.
unset DATABASE_URL PGDATABASE PGSSLMODE PGSSLROOTCERT PGOPTIONS CHATMIGRATE_CONFIG CHATMIGRATE_ENV

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmbench.XXXXXX")
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
			psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
				note "warning: could not drop database $db"
		done
	fi
	cd "$ROOT" && rm -rf "$WORK"
	if ((started_server)); then
		note "stopping the server this run started"
		bash "$PG_SH" stop >&2 || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- server, binary
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
[[ -r $PG_LOG ]] || die "cannot read the server log $PG_LOG"

if [[ -n ${CHATMIGRATE_BIN:-} ]]; then
	CM=$CHATMIGRATE_BIN
	built="given (CHATMIGRATE_BIN)"
else
	target_dir=${BENCH_TARGET_DIR:-/work/bench-target}
	note "building: CARGO_TARGET_DIR=$target_dir cargo build --release"
	(cd "$ROOT" && CARGO_TARGET_DIR=$target_dir cargo build --release --quiet) >&2
	CM=$target_dir/release/chatmigrate
	built="built from the working tree now ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(
		[[ -z $(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock dialects 2>/dev/null) ]] || echo ', uncommitted changes'
	))"
fi
[[ -x $CM ]] || die "no executable chatmigrate at $CM"

# ---------------------------------------------------------------- data
note "generating $N migrations in $WORK"
python3 "$BENCH_DIR/bench.py" gen "$WORK" "$N"
MIG=$WORK/migrations
cd "$WORK"

TIMES=$WORK/times.tsv
COUNTS=$WORK/counts.jsonl
INFO=$WORK/info.tsv
: >"$TIMES"
: >"$COUNTS"

# Database names: unique per run, so concurrent runs (or test suites) never collide.
DB_PREFIX=cmbench_$$_$RANDOM
db_url() { printf '%s/%s' "$BASE_URL" "$1"; }
create_db() {
	DBS+=("$1")
	psql_admin -c "CREATE DATABASE \"$1\""
}
drop_db() { psql_admin -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"; }
# After a timed run: drop now only with BENCH_DROP_EACH=1; the exit trap drops the rest.
done_with_db() { if [[ $DROP_EACH == 1 ]]; then drop_db "$1"; fi; }
checkpoint() { if [[ $CHECKPOINT == 1 ]]; then psql_admin -c CHECKPOINT; fi; }

# The URL as a user would write it (sslmode left to chatmigrate's default: prefer on loopback)...
cm() { "$CM" --color never --database-url "$(db_url "$1")" --migrations "$MIG" "${@:2}"; }
# ...and with TLS ruled out (no TLS connector is built at all).
cm_notls() { "$CM" --color never --database-url "$(db_url "$1")?sslmode=disable" --migrations "$MIG" "${@:2}"; }
floor() { PGAPPNAME=cmbench_floor "$PSQL" -X -q -1 -v ON_ERROR_STOP=1 -d "$(db_url "$1")" -f "$WORK/all.sql"; }
select1() { PGAPPNAME=cmbench_select1 "$PSQL" -X -q -d "$ADMIN_URL" -c 'SELECT 1'; }

# tm LABEL REP CMD...: time one run of CMD (output discarded, stderr kept for a failure) and
# append LABEL, REP, the two $EPOCHREALTIME stamps (microsecond resolution, no fork) and the
# command's user and system CPU seconds (bash's `time`, millisecond resolution) to times.tsv.
# A failing command stops the benchmark.
tm() {
	local label=$1 rep=$2 t0 t1 rc cpu TIMEFORMAT='%3U %3S'
	shift 2
	t0=$EPOCHREALTIME
	{ time "$@" >/dev/null 2>"$WORK/cmd.err"; } 2>"$WORK/cpu" && rc=0 || rc=$?
	t1=$EPOCHREALTIME
	if ((rc != 0)); then
		cat "$WORK/cmd.err" >&2
		die "$label (run $rep) exited with $rc"
	fi
	read -r cpu <"$WORK/cpu"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$rep" "$t0" "$t1" "${cpu% *}" "${cpu#* }" >>"$TIMES"
}

L_FLOOR="floor: psql -1 -f all.sql ($N)"
L_UP="up from empty ($N)"
L_NOOP="up, no-op ($N applied)"
L_STATUS="status ($N applied)"
L_NOOP_NOTLS="up, no-op, sslmode=disable"
L_STATUS_NOTLS="status, sslmode=disable"
L_HELP="chatmigrate --help (start-up)"
L_SELECT1="psql -c 'SELECT 1' (connect)"

# Warm-up (page cache, first connection), not recorded.
"$CM" --help >/dev/null
select1 >/dev/null

# ---------------------------------------------------------------- timing
run_floor() {
	local db=${DB_PREFIX}_floor_$1
	create_db "$db"
	checkpoint
	tm "$L_FLOOR" "$1" floor "$db"
	done_with_db "$db"
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= RUNS; r++)); do
	note "run $r/$RUNS"
	for ((i = 1; i <= QUICK; i++)); do
		tm "$L_HELP" "$r" "$CM" --help
		tm "$L_SELECT1" "$r" select1
	done

	# floor and up alternate which goes first, so a drift in load does not favour one.
	if ((r % 2 == 1)); then run_floor "$r"; fi

	db=${DB_PREFIX}_up_$r
	create_db "$db"
	checkpoint
	tm "$L_UP" "$r" cm "$db" up
	for ((i = 1; i <= QUICK; i++)); do
		tm "$L_NOOP" "$r" cm "$db" up
	done
	for ((i = 1; i <= QUICK; i++)); do
		tm "$L_STATUS" "$r" cm "$db" status
	done
	for ((i = 1; i <= QUICK; i++)); do
		tm "$L_NOOP_NOTLS" "$r" cm_notls "$db" up
		tm "$L_STATUS_NOTLS" "$r" cm_notls "$db" status
	done
	done_with_db "$db"

	if ((r % 2 == 0)); then run_floor "$r"; fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- counting
# Statement logging on the dedicated database only. It slows the server down, so nothing
# here is timed.
CDB=${DB_PREFIX}_count
create_db "$CDB"
psql_admin -c "ALTER DATABASE \"$CDB\" SET log_statement = 'all'" \
	-c "ALTER DATABASE \"$CDB\" SET log_min_duration_statement = -1"

xacts() {
	psql_admin -At -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$CDB'"
}
# Waits until no session is left on the counting database: its backends have written their
# last log lines and flushed their statistics.
wait_idle() {
	local i left
	for ((i = 0; i < 200; i++)); do
		left=$(psql_admin -At -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$CDB'")
		[[ $left == 0 ]] && return 0
		sleep 0.05
	done
	note "warning: sessions still open on $CDB"
}
# count PHASE CMD...: run CMD and record what the server logged meanwhile.
count() {
	local phase=$1 off x0 x1
	shift
	wait_idle
	x0=$(xacts)
	off=$(stat -c %s "$PG_LOG")
	"$@" >/dev/null 2>"$WORK/cmd.err" || {
		cat "$WORK/cmd.err" >&2
		die "$phase failed"
	}
	wait_idle
	sleep 0.2 # the statistics of a backend that just exited
	x1=$(xacts)
	python3 "$BENCH_DIR/bench.py" logslice "$PG_LOG" "$off" "$phase" "$((x1 - x0))" >>"$COUNTS"
}
note "counting statements (log_statement='all' on $CDB)"
count "up from empty ($N)" cm "$CDB" up
count "up, no-op ($N applied)" cm "$CDB" up
count "status ($N applied)" cm "$CDB" status
drop_db "$CDB"

# ---------------------------------------------------------------- report
# The file system of the cluster, and whether it has a journal (a jbd2 instance for its device).
fs_info() {
	local src fstype dev journal=unknown
	read -r src fstype < <(findmnt -no SOURCE,FSTYPE -T "$ROOT/.pg/data" 2>/dev/null || echo '? ?')
	dev=${src##*/}
	if [[ $fstype == ext4 ]]; then
		journal=none
		if compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then journal=yes; fi
	fi
	printf '%s on %s, journal %s; databases dropped %s\n' "$fstype" "$src" "$journal" \
		"$([[ $DROP_EACH == 1 ]] && echo 'after each run' || echo 'at the end')"
}
{
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf 'machine\t%s CPUs (nproc), %s, %s\n' "$(nproc)" \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -sr)"
	printf 'load average\t%s before timing, %s after (other work on the machine shows here)\n' "$LOAD_BEFORE" "$LOAD_AFTER"
	printf 'file system\t%s\n' "$(fs_info)"
	printf 'server\t%s\n' "$(psql_admin -At -c 'SELECT version()')"
	printf 'server settings\t%s\n' "$(psql_admin -At -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN ('ssl', 'fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'log_line_prefix', 'log_statement')")"
	printf 'connection\tTCP 127.0.0.1, SCRAM password auth; server without TLS; sslmode default (prefer) unless labelled\n'
	printf 'openssl\t%s\n' "$(openssl version 2>/dev/null || echo '?')"
	printf 'chatmigrate\t%s (%s): %s\n' "$("$CM" --version)" "$built" "$CM"
	printf 'migrations\t%s\n' "$N"
	printf 'runs\t%s (fresh database each; no-op/status/start-up/connect: %s per run)\n' "$RUNS" "$QUICK"
} >"$INFO"

mkdir -p "$OUT_DIR"
python3 "$BENCH_DIR/bench.py" report "$WORK" | tee "$OUT_DIR/last.txt"
cp "$TIMES" "$OUT_DIR/last-times.tsv"
cp "$COUNTS" "$OUT_DIR/last-counts.jsonl"
note "written: $OUT_DIR/last.txt"
