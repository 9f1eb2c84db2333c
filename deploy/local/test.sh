#!/usr/bin/env bash
# The one test command: brings up PostgreSQL and Kafka (deploy/local/up.sh), then runs pytest
# against them. Arguments go to pytest, e.g. deploy/local/test.sh tests/integration -k kafka
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
cd "$ROOT"

"$HERE/up.sh"
# Browser tests skip locally without Chromium and fail under CI=true; they say why.
"$HERE/chromium.sh" || echo "test: WARNING: Chromium is not installed; tests/browser cannot run" >&2

THROUGHLINE_TEST_PG_URL="$("$HERE/postgres.sh" url)"
THROUGHLINE_TEST_KAFKA="$("$HERE/kafka.sh" bootstrap)"
# The fault tests start their own PostgreSQL cluster and Kafka broker (which they crash) from
# the same binaries and jars, never the shared servers above.
THROUGHLINE_TEST_PG_BIN="$("$HERE/postgres.sh" bindir)"
THROUGHLINE_TEST_KAFKA_LIBS="$ROOT/.local/kafka/libs"
export THROUGHLINE_TEST_PG_URL THROUGHLINE_TEST_KAFKA THROUGHLINE_TEST_PG_BIN THROUGHLINE_TEST_KAFKA_LIBS
echo "test: THROUGHLINE_TEST_PG_URL=$THROUGHLINE_TEST_PG_URL"
echo "test: THROUGHLINE_TEST_KAFKA=$THROUGHLINE_TEST_KAFKA"
echo "test: THROUGHLINE_TEST_PG_BIN=$THROUGHLINE_TEST_PG_BIN"
echo "test: THROUGHLINE_TEST_KAFKA_LIBS=$THROUGHLINE_TEST_KAFKA_LIBS"

mkdir -p test-artifacts
rc=0
"$ROOT/.venv/bin/pytest" -p no:cacheprovider -q -rs --junitxml=test-artifacts/junit.xml "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
    echo "test: ERROR: pytest collected no tests; that is a failure here, not a pass" >&2
fi
exit $rc
