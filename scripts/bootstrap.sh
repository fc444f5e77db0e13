#!/usr/bin/env bash
# Create .venv (Python 3.11 or 3.12) and install the project with its dev extras.
# Idempotent: pip runs only when pyproject.toml changed since the last install (its hash is
# stamped in .venv), so a second run costs a few milliseconds and prints nothing; the first
# install (~40 s on a fresh machine) shows its progress.
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

# pip's own output goes to a log (build backends print deprecation chatter; the log is shown
# when the install fails). Progress goes to stderr: on a terminal one line rewritten in place
# (step, package being collected or downloaded, count, seconds); otherwise (CI, pipes) a line
# when a phase starts and at most one status line every 15 s, so logs stay short.
PROGRESS_EVERY_S=15
log="$VENV/pip-install.log"

show_progress() {  # reads pip's output on stdin; $1 = step label ("2/2 graphsentry[dev]")
    local label="[${1%% *}] ${1#* }:" line phase="" last_phase="" name count=0 shown=$SECONDS
    local started=$SECONDS width=80 status
    if ((interactive)); then width="$(tput cols 2>/dev/null || echo 80)"; fi
    while IFS= read -r line; do
        case "$line" in
            "Collecting "*) count=$((count + 1)); phase="collecting"
                name="${line#Collecting }"; name="${name%%[ <>=!~;\[(]*}"
                status="collecting $name (package $count)" ;;
            *"Downloading "*) phase="collecting"
                status="downloading ${line##*Downloading } (package $count)" ;;
            "Obtaining "* | *"Installing build dependencies"* | *"Preparing "*"metadata"*)
                phase="preparing"; status="preparing the build" ;;
            *"Building editable"* | *"Building wheel"*) phase="building"
                status="building wheels" ;;
            "Installing collected packages:"*) phase="installing"
                count="$(tr -cd ',' <<<"$line" | wc -c)"; count=$((count + 1))
                status="installing $count package$( ((count == 1)) || echo s)" ;;
            *) continue ;;
        esac
        status="$label $status, $((SECONDS - started)) s"
        if ((interactive)); then
            status="bootstrap: $status"
            printf '\r\033[K%s' "${status:0:$((width - 1))}" >&2
        elif [[ "$phase" != "$last_phase" ]] || ((SECONDS - shown >= PROGRESS_EVERY_S)); then
            say "$status"
            shown=$SECONDS
        fi
        last_phase="$phase"
    done
    if ((interactive)); then printf '\r\033[K' >&2; fi
}

pip_step() {  # pip_step LABEL pip-arguments...
    local label="$1" rc
    shift
    set +e
    "$VENV/bin/python" -m pip "$@" --disable-pip-version-check --progress-bar off 2>&1 \
        | tee -a "$log" | show_progress "$label"
    rc="${PIPESTATUS[0]}"
    set -e
    return "$rc"
}

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$(install_hash)" ]]; then
    say "installing graphsentry[dev] into .venv (pyproject.toml changed or first run)"
    interactive=0
    if [[ -t 2 ]]; then interactive=1; fi
    started=$SECONDS
    : >"$log"
    if ! pip_step "1/2 pip" install --upgrade pip \
            || ! pip_step "2/2 graphsentry[dev]" install -e "${ROOT}[dev]"; then
        tail -n 40 "$log" >&2
        die "pip install failed (full log: $log)"
    fi
    install_hash >"$STAMP"
    say "installed in $((SECONDS - started)) s (pip's output: $log)"
fi
