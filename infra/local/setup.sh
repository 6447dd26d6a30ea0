#!/usr/bin/env bash
# Install what a fresh machine lacks: ffmpeg (Debian), uv, and the project's virtual environment
# (.venv) with every extra and the dev tools, and the ingest environment (.venv-ingest) that runs
# MediaPipe Pose. Idempotent; fast when everything is present.
set -euo pipefail
cd "$(dirname "$0")/../.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing: ${need_apt[*]} (install with: sudo apt-get install -y ${need_apt[*]})" >&2
    exit 1
  fi
  echo "== installing ${need_apt[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Chromium runs the practice page's browser test (tests/integration/test_practice_page_browser.py),
# driven over the DevTools protocol on a pipe. Without root it is only reported: the test skips.
if ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing: chromium, the browser test will skip (install with: sudo apt-get install -y chromium)" >&2
  else
    echo "== installing chromium from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "== installing uv"
  python3 -m pip install -q uv
fi
UV=$(command -v uv || echo "python3 -m uv")

if [[ ! -x .venv/bin/python ]]; then
  $UV venv -q .venv --python 3.11
fi
echo "== installing choreo and its dev tools into .venv"
$UV pip install -q -p .venv -e '.[all]' --group dev

# The ingest environment: MediaPipe Pose for `choreo moves import-video`, in a virtual environment
# of its own because MediaPipe 0.10.21 needs protobuf<5 and the project protobuf 7 (see
# infra/ingest/requirements.txt). The main process runs it through INGEST_PYTHON.
if [[ ! -x .venv-ingest/bin/python ]]; then
  $UV venv -q .venv-ingest --python 3.11
fi
echo "== installing the ingest environment (MediaPipe Pose) into .venv-ingest"
$UV pip install -q -p .venv-ingest -r infra/ingest/requirements.txt
