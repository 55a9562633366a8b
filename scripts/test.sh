#!/usr/bin/env bash
# The whole test suite: installs what it needs, starts a throwaway PostgreSQL, builds the web UI, type-checks,
# lints, then runs every test file (unit, integration, browser, namespace bed) with node's test runner.
# Usage: npm test                 (everything)
#        npm test -- FILE...      (only these test files, still with PostgreSQL and the web build)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
if [ "$(uname -s)" = Linux ] && [ ! -f build/shoal_udp.node ]; then
  echo "shoal: build/shoal_udp.node did not build (see above); the multicast tests need it" >&2
  exit 1
fi

pg_started=0
cleanup() {
  if [ "$pg_started" = 1 ]; then bash scripts/postgres.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -z "${SHOAL_TEST_PG_URL:-}" ] && [ -f scripts/postgres.sh ]; then
  if url=$(bash scripts/postgres.sh start); then
    export SHOAL_TEST_PG_URL="$url"
    pg_started=1
    echo "shoal: PostgreSQL for tests at ${SHOAL_TEST_PG_URL}"
  else
    echo "shoal: could not start PostgreSQL; PostgreSQL tests will say they are skipped" >&2
  fi
fi

if [ -f web/index.html ]; then
  echo "shoal: building the web UI"
  npm run --silent build:web >/dev/null
fi

echo "shoal: type-checking"
npx tsc --noEmit -p .
echo "shoal: linting"
npx eslint --quiet .

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
fi
echo "shoal: running ${#files[@]} test files"
node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
