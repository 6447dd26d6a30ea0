#!/usr/bin/env bash
# The embedded default in one command: set up the venv (infra/local/setup.sh), then run
# `choreo demo` with any arguments given (--song FILE, --describe TEXT, --style, --verbose).
# No cloud, no servers: embedded PostgreSQL, in-process bus, local storage, data in .choreo/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/local/setup.sh
exec .venv/bin/choreo demo "$@"
