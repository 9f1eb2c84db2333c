#!/usr/bin/env bash
# Stop the local PostgreSQL and Kafka started by up.sh (their data stays in .local).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rc=0
"$HERE/kafka.sh" stop &
kf=$!
"$HERE/postgres.sh" stop || rc=1
wait "$kf" || rc=1
exit $rc
