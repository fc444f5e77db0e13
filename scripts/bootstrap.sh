#!/usr/bin/env bash
# Create .venv (Python 3.11 or 3.12) and install the project with its dev extras.
# Idempotent and quiet: pip runs only when pyproject.toml changed since the last install
# (its hash is stamped in .venv), so a second run costs a few milliseconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.graphsentry-install.sha256"

say() { echo "bootstrap: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Prints "3.11" for a usable interpreter, nothing otherwise (pyenv shims of versions
# that are not activated exit non-zero, which lands here too).
supported_version() {
    "$1" -c 'import sys; v = sys.version_info[:2]; print("%d.%d" % v) if v in ((3, 11), (3, 12)) else None' \
        2>/dev/null || true
}

find_python() {
    local candidate
    for candidate in ${GRAPHSENTRY_PYTHON:-} python3.11 python3.12 \
        "$HOME"/.pyenv/versions/3.11*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && [[ -n "$(supported_version "$candidate")" ]]; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

install_hash() { sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1; }

if [[ -x "$VENV/bin/python" && -z "$(supported_version "$VENV/bin/python")" ]]; then
    say "existing .venv has an unsupported or broken interpreter; recreating it"
    rm -rf "$VENV"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    PYTHON="$(find_python)" || die "need Python 3.11 or 3.12 (tried \$GRAPHSENTRY_PYTHON, python3.11, python3.12, pyenv versions, python3); found: $(python3 --version 2>&1 || echo none)"
    say "creating .venv with $PYTHON ($(supported_version "$PYTHON"))"
    "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed (on Debian: apt-get install python3-venv)"
fi

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$(install_hash)" ]]; then
    say "installing graphsentry[dev] into .venv (pyproject.toml changed or first run)"
    # Build backends print deprecation chatter even under --quiet: keep it in a log and
    # show it only when the install fails.
    log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip \
            && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "${ROOT}[dev]"; \
         } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "pip install failed (full log: $log)"
    fi
    install_hash >"$STAMP"
fi
