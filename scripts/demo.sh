#!/usr/bin/env bash
# `make demo`: make sure .venv is ready, then run the packaged demo (arguments passed on).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/graphsentry" demo "$@"
