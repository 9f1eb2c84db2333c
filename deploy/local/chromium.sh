#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/browser), at /usr/bin/chromium.
# Idempotent: does nothing when it is already there. Test tools' own browser downloads do not work
# on a closed network, so the tests drive this binary and nothing else.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHROMIUM=/usr/bin/chromium

say() { echo "chromium: $*"; }
die() { echo "chromium: ERROR: $*" >&2; exit 1; }

[[ -x "$CHROMIUM" ]] && exit 0
[[ $EUID -eq 0 ]] || die "$CHROMIUM is missing; run as root or: apt-get install chromium"
mkdir -p "$ROOT/.local"
# One apt at a time (postgres.sh and kafka.sh may be installing too); 'apt-get update' once per
# hour at most, shared with them through the same stamp.
(
    flock -w 900 8 || die "timed out waiting for the apt lock"
    [[ -x "$CHROMIUM" ]] && exit 0
    stamp="$ROOT/.local/apt-updated"
    if [[ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]]; then
        say "apt-get update"
        apt-get update -qq >>"$ROOT/.local/apt.log" 2>&1 \
            || { tail -20 "$ROOT/.local/apt.log" >&2; die "apt-get update failed"; }
        touch "$stamp"
    fi
    say "installing Debian's chromium package (log: .local/apt.log)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >>"$ROOT/.local/apt.log" 2>&1 \
        || { tail -20 "$ROOT/.local/apt.log" >&2; die "apt-get install chromium failed"; }
) 8>"$ROOT/.local/apt.lock"
[[ -x "$CHROMIUM" ]] || die "apt-get installed chromium but $CHROMIUM is still missing"
say "$("$CHROMIUM" --version 2>/dev/null || echo "installed at $CHROMIUM")"
