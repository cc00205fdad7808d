#!/usr/bin/env bash
# The steps of the GitHub Action (action.yml at the repository's root), as a
# script so that they can be run and tested outside GitHub.
#
#   ci-action.sh install   put chatmigrate on PATH (GITHUB_PATH):
#                          INPUT_VERSION=source builds this checkout with cargo,
#                          a tag downloads that release's binary;
#                          CHATMIGRATE_BIN=/path/to/chatmigrate uses that one.
#   ci-action.sh run       run `chatmigrate [--format F] [--env E] [--config C] COMMAND...`
#                          in the current directory; writes the outputs
#                          `exit-code`, (format json) `json` and (format sarif)
#                          `sarif-file` to GITHUB_OUTPUT, a summary to
#                          GITHUB_STEP_SUMMARY, and exits with chatmigrate's
#                          exit code. With format sarif the log goes to
#                          $RUNNER_TEMP/chatmigrate.sarif, not to the log.
#
# Inputs come as INPUT_COMMAND, INPUT_ENV, INPUT_CONFIG, INPUT_FORMAT and
# INPUT_VERSION (see action.yml). Nothing here prints a secret: chatmigrate
# itself redacts passwords.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
action_path="${CHATMIGRATE_ACTION_PATH:-$here}"
asset="chatmigrate-x86_64-unknown-linux-gnu.tar.gz"

die() { echo "::error title=chatmigrate::$*" >&2; echo "error: $*" >&2; exit 2; }

install() {
  local bin_dir
  if [[ -n "${CHATMIGRATE_BIN:-}" ]]; then
    [[ -x "$CHATMIGRATE_BIN" ]] || die "CHATMIGRATE_BIN=$CHATMIGRATE_BIN is not an executable file"
    bin_dir="$(cd "$(dirname "$CHATMIGRATE_BIN")" && pwd)"
  elif [[ "${INPUT_VERSION:-source}" == "source" ]]; then
    command -v cargo >/dev/null || die "version: source needs cargo on the runner (or give a release tag as version)"
    echo "building chatmigrate from $action_path (cargo build --release --locked)"
    cargo build --release --locked --manifest-path "$action_path/Cargo.toml" --bin chatmigrate
    bin_dir="$action_path/target/release"
  else
    local repo="${CHATMIGRATE_ACTION_REPOSITORY:-}"
    [[ -n "$repo" ]] || die "version ${INPUT_VERSION}: the action's repository is unknown (github.action_repository is empty)"
    bin_dir="${RUNNER_TEMP:-/tmp}/chatmigrate-${INPUT_VERSION}"
    mkdir -p "$bin_dir"
    local url="https://github.com/$repo/releases/download/${INPUT_VERSION}/$asset"
    echo "downloading $url"
    curl -fsSL --retry 3 -o "$bin_dir/$asset" "$url" || die "cannot download $url: is ${INPUT_VERSION} a release of $repo with the asset $asset?"
    if curl -fsSL --retry 3 -o "$bin_dir/$asset.sha256" "$url.sha256"; then
      (cd "$bin_dir" && sha256sum -c "$asset.sha256") || die "$asset does not match its .sha256"
    else
      echo "::warning title=chatmigrate::no $asset.sha256 in release ${INPUT_VERSION}; the download is not verified"
    fi
    tar -xzf "$bin_dir/$asset" -C "$bin_dir"
  fi
  [[ -x "$bin_dir/chatmigrate" ]] || die "no chatmigrate binary in $bin_dir"
  "$bin_dir/chatmigrate" --version
  if [[ -n "${GITHUB_PATH:-}" ]]; then
    echo "$bin_dir" >> "$GITHUB_PATH"
  fi
}

run() {
  local bin="chatmigrate"
  if [[ -n "${CHATMIGRATE_BIN:-}" ]]; then bin="$CHATMIGRATE_BIN"; fi
  local args=()
  local format="${INPUT_FORMAT:-text}"
  case "$format" in
    "") format=text ;;
    text) ;;
    json|github|sarif) args+=(--format "$format") ;;
    *) die "format must be text, json, github or sarif, not ${INPUT_FORMAT}" ;;
  esac
  if [[ -n "${INPUT_ENV:-}" ]]; then args+=(--env "$INPUT_ENV"); fi
  if [[ -n "${INPUT_CONFIG:-}" ]]; then args+=(--config "$INPUT_CONFIG"); fi
  local command=()
  read -r -a command <<< "${INPUT_COMMAND:-up}"
  [[ ${#command[@]} -gt 0 ]] || die "command is empty; e.g. up, status --exit-code, verify"
  local out
  out="$(mktemp)"
  echo "chatmigrate ${args[*]} ${command[*]}"
  local code=0
  "$bin" "${args[@]}" "${command[@]}" > "$out" || code=$?
  local sarif=""
  if [[ "$format" == "sarif" && -s "$out" && $code -le 1 ]]; then
    sarif="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/chatmigrate.sarif"
    cp "$out" "$sarif"
    echo "SARIF log written to $sarif ($(grep -c '"ruleId"' "$sarif" || true) result(s))"
  else
    cat "$out"
  fi
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    echo "exit-code=$code" >> "$GITHUB_OUTPUT"
    if [[ "$format" == "json" ]]; then
      local delim="CHATMIGRATE_JSON_$RANDOM$RANDOM"
      { echo "json<<$delim"; cat "$out"; echo "$delim"; } >> "$GITHUB_OUTPUT"
    fi
    if [[ -n "$sarif" ]]; then
      echo "sarif-file=$sarif" >> "$GITHUB_OUTPUT"
    fi
  fi
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    local verdict="ok"
    case $code in 0) ;; 1) verdict="found something (exit 1)" ;; *) verdict="failed (exit $code)" ;; esac
    {
      echo "### chatmigrate ${command[*]}: $verdict"
      echo
      if [[ -n "$sarif" ]]; then
        echo "SARIF log: \`$sarif\`"
      else
        echo '```'
        # Annotations are shown on the files; the summary keeps the rest.
        { grep -v '^::' "$out" || true; } | head -c 60000
        echo '```'
      fi
    } >> "$GITHUB_STEP_SUMMARY"
  fi
  rm -f "$out"
  exit "$code"
}

case "${1:-}" in
  install) install ;;
  run) run ;;
  *) echo "usage: $0 install|run" >&2; exit 2 ;;
esac
