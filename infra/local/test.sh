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
rm -f .coverage .coverage.* .coverage-e2e* .coverage-rest*
# pytest exits 5 when it collects nothing: that must fail, and with `set -e` it does.
if [ "$#" -gt 0 ]; then
  echo "== pytest $*"
  pytest --cov --cov-report=term --cov-fail-under=80 --durations=40 "$@"
  exit 0
fi
# The whole suite: the end-to-end tests (tests/e2e: their own pipeline processes, databases,
# Pub/Sub projects and buckets; the chaos run its own stack) run in a second pytest beside the
# rest, which share nothing with them but the stack's servers. Most of their time is spent
# waiting on the pipeline, so the two cores overlap them: about 8 minutes saved. Each half keeps
# its own coverage data (COVERAGE_FILE, inherited by the processes it starts); they are combined
# and held to 80 % together.
# numba issue #10128 (choreography/music/librosa_beat.py): processes compiling the same cached
# librosa gufunc at once can leave a cache that crashes (SIGSEGV) whoever loads it next. The two
# halves start analysing at once on a fresh clone, so fill the cache first, in one process.
echo "== numba cache (choreo warmup)"
choreo warmup
e2e_log=$(mktemp -t choreo-e2e.XXXXXX.log)
echo "== pytest tests/e2e (beside the rest; its output follows theirs, live in $e2e_log)"
COVERAGE_FILE=.coverage-e2e pytest tests/e2e --cov --cov-report= --cov-fail-under=0 \
  --durations=15 >"$e2e_log" 2>&1 &
e2e_pid=$!
trap 'kill "$e2e_pid" 2>/dev/null || true; choreo stack down || true' EXIT
echo "== pytest (everything but tests/e2e)"
rest=0
COVERAGE_FILE=.coverage-rest pytest --ignore=tests/e2e --cov --cov-report= --cov-fail-under=0 \
  --durations=40 || rest=$?
e2e=0
wait "$e2e_pid" || e2e=$?
echo "== pytest tests/e2e output"
cat "$e2e_log"
echo "== coverage of both"
coverage combine .coverage-e2e .coverage-rest
coverage report --fail-under=80 || cover=$?
echo "pytest: rest exit $rest, tests/e2e exit $e2e, coverage exit ${cover:-0}"
[ "$rest" = 0 ] && [ "$e2e" = 0 ] && [ "${cover:-0}" = 0 ]
