#!/usr/bin/env bash
# Builds chatmigrate as an AWS Lambda function for the provided.al2023
# runtime: target/lambda/<arch>/bootstrap.zip holding `bootstrap` (the
# release binary, stripped) and, with --include, files that land next to it
# in /var/task (a chatmigrate.toml, migration directories).
#
#   bash scripts/package-lambda.sh [--arch x86_64|arm64] [--include PATH]...
#   bash scripts/package-lambda.sh --check FILE   # only the checks below, on FILE
#
# How (docs/deploy.md):
# - cargo-zigbuild with zig (both from PyPI, in the project-local venv
#   .venv-lambda/, installed on first use) links against glibc 2.34, Amazon
#   Linux 2023's, whatever this machine's glibc is; the target comes from
#   rustup (`rustup target add` on first use). The script then reads the
#   binary's GLIBC_ symbol versions and refuses one that needs more.
# - OpenSSL (native-tls, for the direct backend's TLS) is built from source
#   and linked statically (feature `vendored-openssl`): the binary needs no
#   libssl of the image, and no OpenSSL of a given version. The Data API
#   and AWS calls use rustls. pg_query's C code is compiled by zig cc for
#   the target like any C. A static musl build would also do, but musl's
#   allocator is several times slower for the parser's many small
#   allocations, and glibc is in every Lambda image anyway.
# - Measured on the 2-core development machine (x86_64, shared with other
#   builds, load 4 to 9): a cold release build takes about 40 minutes of wall
#   time per architecture (8 minutes after a change to chatmigrate alone);
#   bootstrap is 32.2 MB stripped for x86_64 (zip 11.8 MB) and 29.5 MB for
#   arm64 (zip 11.6 MB). Started against the test suite's Runtime API, it
#   asks for its first invocation 3 to 6 ms after it starts (x86_64; arm64
#   cannot run here).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

arch=x86_64
includes=()
check=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) arch="${2:-}"; shift 2 ;;
    --arch=*) arch="${1#--arch=}"; shift ;;
    --include) includes+=("${2:-}"); shift 2 ;;
    --include=*) includes+=("${1#--include=}"); shift ;;
    --check) check="${2:-}"; [[ -n "$check" ]] || { echo "error: --check needs a FILE" >&2; exit 2; }; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; echo "hint: bash scripts/package-lambda.sh [--arch x86_64|arm64] [--include PATH]..." >&2; exit 2 ;;
  esac
done
case "$arch" in
  x86_64) triple=x86_64-unknown-linux-gnu ;;
  arm64|aarch64) arch=arm64; triple=aarch64-unknown-linux-gnu ;;
  *) echo "error: --arch $arch: expected x86_64 or arm64" >&2; exit 2 ;;
esac
for p in "${includes[@]}"; do
  [[ -e "$p" ]] || { echo "error: --include $p: no such file or directory" >&2; exit 2; }
done

glibc=2.34          # Amazon Linux 2023
zig_version=0.17.1  # pinned (PyPI ziglang)
zigbuild_version=0.24.1

# check_binary FILE: the binary runs on provided.al2023: no GLIBC_ symbol
# version above Amazon Linux 2023's, no shared library beyond glibc's own
# (and libgcc_s), stripped. Sets needed_glibc and libs; exits 1 otherwise.
check_binary() {
  local bin="$1"
  [[ -f "$bin" ]] || { echo "error: $bin: no such file" >&2; exit 2; }
  if ! readelf -h "$bin" >/dev/null 2>&1; then
    echo "error: $bin is not an ELF binary" >&2
    exit 1
  fi
  needed_glibc=$(readelf -V --wide "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1 || true)
  if [[ -z "$needed_glibc" ]]; then
    echo "error: $bin has no GLIBC_ version symbols: not a glibc binary?" >&2
    exit 1
  fi
  if [[ "$(printf '%s\n%s\n' "$needed_glibc" "$glibc" | sort -V | tail -1)" != "$glibc" ]]; then
    echo "error: $bin needs GLIBC_$needed_glibc, newer than Amazon Linux 2023's $glibc" >&2
    echo "hint: build with scripts/package-lambda.sh (cargo zigbuild --target <triple>.$glibc), not a plain cargo build on a newer system" >&2
    exit 1
  fi
  libs=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  local lib
  for lib in $libs; do
    case "$lib" in
      libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libgcc_s.so.*|ld-linux*.so.*) ;;
      *)
        echo "error: $bin needs $lib, which provided.al2023 may not have" >&2
        echo "hint: link it statically (OpenSSL: the vendored-openssl feature, as this script builds)" >&2
        exit 1
        ;;
    esac
  done
  if readelf -S --wide "$bin" | grep -q ' \.symtab '; then
    echo "error: $bin is not stripped" >&2
    exit 1
  fi
  echo "$bin: needs GLIBC_$needed_glibc at most (Amazon Linux 2023 has $glibc); libraries: ${libs% }; stripped"
}

if [[ -n "$check" ]]; then
  check_binary "$check"
  exit 0
fi

venv="$root/.venv-lambda"
if [[ ! -x "$venv/bin/cargo-zigbuild" ]] || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  echo "installing ziglang $zig_version and cargo-zigbuild $zigbuild_version into $venv (PyPI)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "ziglang==$zig_version" "cargo-zigbuild==$zigbuild_version"
fi
export PATH="$venv/bin:$PATH"

if ! rustup target list --installed | grep -qx "$triple"; then
  echo "rustup target add $triple"
  rustup target add "$triple"
fi

# pg_query's bindings are generated by bindgen with this machine's libclang.
# cargo-zigbuild hands it zig's headers through `-nostdinc -Xclang -c-isystem`,
# which an older libclang (Debian's 14) does not apply: stdbool.h is then not
# found. Give zig's glibc headers as plain -isystem (cargo-zigbuild appends
# its own flags to this variable), after libclang's own builtin headers.
zig_lib="$("$venv/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "lib"))')"
case "$arch" in x86_64) zig_arch=x86 ;; arm64) zig_arch=aarch64 ;; esac
clang_include="$(ls -d /usr/lib/llvm-*/lib/clang/*/include 2>/dev/null | sort -V | tail -1 || true)"
# One set of compiler builtin headers only: two would share include guards
# (stdint.h's #include_next would then never reach glibc's).
bindgen_args=(-isystem "${clang_include:-$zig_lib/include}"
  -isystem "$zig_lib/libc/include/$zig_arch-linux-gnu"
  -isystem "$zig_lib/libc/include/generic-glibc"
  -isystem "$zig_lib/libc/include/$zig_arch-linux-any"
  -isystem "$zig_lib/libc/include/any-linux-any")
# bindgen reads the variable spelt with the target's dashes first, then with
# underscores; cargo-zigbuild sets both.
bindgen_env=("BINDGEN_EXTRA_CLANG_ARGS_$triple=${bindgen_args[*]}" "BINDGEN_EXTRA_CLANG_ARGS_${triple//-/_}=${bindgen_args[*]}")

target_dir="${CARGO_TARGET_DIR:-$root/target}"
echo "building bootstrap for provided.al2023 $arch ($triple, glibc $glibc)"
started=$(date +%s)
env "${bindgen_env[@]}" CARGO_PROFILE_RELEASE_STRIP=symbols nice -n 19 cargo zigbuild --release --locked \
  --features vendored-openssl --bin chatmigrate --target "$triple.$glibc"
echo "built in $(( $(date +%s) - started )) s"
bin="$target_dir/$triple/release/chatmigrate"

check_binary "$bin"

stage="$root/target/lambda/$arch"
rm -rf "$stage"
mkdir -p "$stage"
cp "$bin" "$stage/bootstrap"
chmod 755 "$stage/bootstrap"
python3 - "$stage/bootstrap.zip" "$stage/bootstrap" "${includes[@]}" <<'PY'
import os, sys, zipfile
out, bootstrap, *includes = sys.argv[1:]
def add(z, path, name):
    info = zipfile.ZipInfo.from_file(path, name)
    info.compress_type = zipfile.ZIP_DEFLATED
    if os.path.isfile(path):
        with open(path, "rb") as f:
            z.writestr(info, f.read(), compresslevel=9)
with zipfile.ZipFile(out, "w") as z:
    info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 << 16)
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(bootstrap, "rb") as f:
        z.writestr(info, f.read(), compresslevel=9)
    for inc in includes:
        inc = inc.rstrip("/")
        base = os.path.dirname(os.path.abspath(inc))
        if os.path.isdir(inc):
            for dirpath, _, files in os.walk(inc):
                for fn in sorted(files):
                    p = os.path.join(dirpath, fn)
                    add(z, p, os.path.relpath(os.path.abspath(p), base))
        else:
            add(z, inc, os.path.basename(inc))
PY
size() { stat -c %s "$1"; }
echo "bootstrap: $(size "$stage/bootstrap") bytes"
echo "package:   $stage/bootstrap.zip, $(size "$stage/bootstrap.zip") bytes"
