#!/usr/bin/env bash
# Sets up everything (including PostgreSQL) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
source scripts/postgres.sh
trap postgres_stop EXIT
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
