#!/usr/bin/env bash
# README's test command (via `make test`): bootstrap .venv, start the local stack, run
# ruff, mypy and pytest (extra arguments go to pytest). Every step runs; the exit code is
# that of the first step that failed. Services this script started are stopped at exit
# unless GRAPHSENTRY_KEEP_STACK=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV_BIN="$ROOT/.venv/bin"
MYPY_TARGETS=(detectors dataflows graphsentry schemas)

"$ROOT/scripts/bootstrap.sh"

# The backtest report test renders the HTML in a real headless browser: Debian's Chromium.
if ! command -v chromium >/dev/null 2>&1 && [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Debian's chromium for the HTML report test" >&2
    mkdir -p "$ROOT/.state/logs"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium; } >"$ROOT/.state/logs/apt-chromium.log" 2>&1 \
        || echo "test: chromium install failed (see .state/logs/apt-chromium.log); the report test will be skipped" >&2
fi

# Remember which services are not running yet: those are the ones to stop at exit.
started=()
for service in kafka redis; do
    scripts/stack.sh running "$service" || started+=("$service")
done

# shellcheck disable=SC2317  # called by the EXIT trap
stop_started() {
    if ((${#started[@]})) && [[ "${GRAPHSENTRY_KEEP_STACK:-0}" != 1 ]]; then
        scripts/stack.sh down "${started[@]}" || true
    fi
}
trap stop_started EXIT

stack_env="$(scripts/stack.sh up)"
while IFS='=' read -r name value; do
    case "$name" in
        KAFKA_BOOTSTRAP | REDIS_URL) export "$name=$value" ;;
    esac
done <<<"$stack_env"
[[ -n "${KAFKA_BOOTSTRAP:-}" && -n "${REDIS_URL:-}" ]] \
    || { echo "test: stack.sh up did not report KAFKA_BOOTSTRAP and REDIS_URL" >&2; exit 1; }
echo "test: using KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP REDIS_URL=$REDIS_URL" >&2

first_failure=0
run_step() {
    local name="$1" rc=0
    shift
    echo "== $name" >&2
    "$@" || rc=$?
    if ((rc != 0)); then
        echo "test: $name failed (exit $rc)" >&2
        ((first_failure != 0)) || first_failure=$rc
    fi
}

run_step "ruff" "$VENV_BIN/ruff" check .
run_step "mypy" "$VENV_BIN/mypy" "${MYPY_TARGETS[@]}"
run_step "pytest" "$VENV_BIN/python" -m pytest "$@"
exit "$first_failure"
