#!/usr/bin/env bash
# Prepare everything the tests need: .venv with the project installed, PostgreSQL and Kafka.
# Idempotent: a second run only checks that both servers answer. --venv-only stops after .venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
VENV="$ROOT/.venv"
STAMP="$ROOT/.local/venv.stamp"
cd "$ROOT"
mkdir -p .local
started=$SECONDS

find_python() {
    local py
    for py in python3.11 python3; do
        if command -v "$py" >/dev/null \
            && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    echo "up: ERROR: no python3 >= 3.11 on PATH" >&2
    return 1
}

# The install is skipped while pyproject.toml and the interpreter are those of the last install.
ensure_venv() {
    exec 8>"$ROOT/.local/venv.lock"
    flock -w 600 8 || { echo "up: ERROR: another up.sh holds .local/venv.lock" >&2; return 1; }
    if [[ ! -x "$VENV/bin/python" ]]; then
        local py
        py="$(find_python)"
        echo "up: creating .venv with $($py -V 2>&1)"
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            # Debian's own python3 keeps venv in a separate package.
            [[ $EUID -eq 0 ]] || { echo "up: ERROR: $py -m venv failed (apt-get install python3-venv?)" >&2; return 1; }
            rm -rf "$VENV"
            echo "up: installing python3-venv"
            (
                flock -w 900 7
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            ) 7>"$ROOT/.local/apt.lock" >>"$ROOT/.local/apt.log" 2>&1
            "$py" -m venv "$VENV"
        fi
    fi
    local want
    want="$(cat pyproject.toml <("$VENV/bin/python" -VV) | sha256sum | cut -d' ' -f1)"
    if [[ "$(cat "$STAMP" 2>/dev/null)" == "$want" && -x "$VENV/bin/pytest" ]]; then
        exec 8>&-
        return 0
    fi
    echo "up: pip install -e '.[test,dev]' (log: .local/pip.log)"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -e '.[test,dev]' \
        >.local/pip.log 2>&1; then
        tail -30 .local/pip.log >&2
        echo "up: ERROR: pip install failed" >&2
        return 1
    fi
    echo "$want" >"$STAMP"
    exec 8>&-
}

ensure_venv
if [[ "${1:-}" == "--venv-only" ]]; then
    exit 0
fi

# The two servers start in parallel: the JVM's start-up dominates and overlaps with initdb.
"$HERE/postgres.sh" start 8>&- &
pg=$!
"$HERE/kafka.sh" start 8>&- &
kf=$!
rc=0
wait "$pg" || rc=1
wait "$kf" || rc=1
if [[ $rc -ne 0 ]]; then
    echo "up: ERROR: infrastructure did not come up (see the lines above)" >&2
    exit 1
fi
echo "up: ready in $((SECONDS - started))s: postgres $("$HERE/postgres.sh" url), kafka $("$HERE/kafka.sh" bootstrap)"
