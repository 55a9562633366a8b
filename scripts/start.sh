#!/usr/bin/env bash
# One command from a fresh checkout to a running coordinator: installs dependencies, builds the web UI, and starts
# `shoal server` on its embedded SQLite database in ./.shoal-data (override with SHOAL_DATA), opening the web UI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run --silent build:web >/dev/null
exec node bin/shoal.js server --data "${SHOAL_DATA:-.shoal-data}" --port "${SHOAL_PORT:-8443}" --open "$@"
