#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, start the local stack, run every
# check (lint, format, types, import rules, tests with coverage), and stop what it started.
# Exits non-zero on any failure. Usage: bash infra/local/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/../.."

bash infra/local/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

# The container images, built before pytest (minutes; cached under CHOREO_IMAGES_DIR): the image
# tests (tests/integration/test_images.py) then fail, not skip, when one is missing.
echo "== container images"
bash infra/local/images.sh
export CHOREO_IMAGES_BUILT=1

# The suite talks to real components: start them, and stop them however we leave.
choreo stack up
trap 'choreo stack down || true' EXIT
eval "$(choreo stack env)"

echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== import rules"; lint-imports
echo "== pytest"
rm -f .coverage .coverage.*
# pytest exits 5 when it collects nothing: that must fail, and with `set -e` it does.
pytest --cov --cov-report=term --cov-fail-under=80 --durations=40 "$@"
