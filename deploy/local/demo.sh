#!/usr/bin/env bash
# The one demo command: installs the project into .venv if needed, then runs the embedded default
# (SQLite + SQL-log bus + every service + the carrier simulator, one process). Arguments go to
# `throughline demo`, e.g. deploy/local/demo.sh --port 8080
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/deploy/local/up.sh" --venv-only
cd "$ROOT"
exec "$ROOT/.venv/bin/throughline" demo "$@"
