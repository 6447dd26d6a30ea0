"""The images' entrypoints, run as the images run them: ``python -m <package>``, no CLI.

Each service starts on the local stack and answers ``/healthz``; SIGTERM stops it with exit 0.
A configuration that cannot start is one line on stderr and exit 1, never a traceback. The
operator one-shots (``python -m producers.ops``) migrate the real database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.messaging import answers_health, free_port
from tests.fixtures.stack import require_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["producers", "consumers.status_recorder", "consumers.dispatcher"]


def _env(**extra: str) -> dict[str, str]:
    require_env("DATABASE_URL")
    require_env("PUBSUB_EMULATOR_HOST")
    return {**os.environ, "PUSH_AUTH_ENABLED": "false", "LOG_JSON": "true", **extra}


@pytest.mark.parametrize("module", SERVICES)
def test_service_entrypoint_serves_health_and_stops_on_sigterm(module: str) -> None:
    """``python -m <module>`` serves /healthz on PORT and exits 0 on SIGTERM."""
    port = free_port()
    env = _env(PORT=str(port), HTTP_HOST="127.0.0.1", DISPATCHER_BACKEND="local")
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert answers_health(port, process, timeout_s=60.0), (
            process.stderr.read().decode() if process.stderr else ""
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("module", SERVICES)
def test_a_bad_configuration_is_one_line_and_exit_1(module: str) -> None:
    """Push auth on without its audience: refused before serving, one line, no traceback."""
    env = _env(PUSH_AUTH_ENABLED="true", PUSH_AUTH_AUDIENCE="", PUSH_AUTH_SERVICE_ACCOUNT="")
    done = subprocess.run(
        [sys.executable, "-m", module],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    lines = [line for line in done.stderr.decode().splitlines() if line.startswith("error:")]
    assert done.returncode == 1
    assert len(lines) == 1 and "PUSH_AUTH_AUDIENCE" in lines[0]
    assert "Traceback" not in done.stderr.decode()


def test_ops_migrate_runs_on_the_real_database() -> None:
    """``python -m producers.ops migrate`` applies nothing twice: the stack is already migrated."""
    done = subprocess.run(
        [sys.executable, "-m", "producers.ops", "migrate"],
        check=False,
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_ops_without_a_database_is_one_line() -> None:
    """An unreachable DATABASE_URL is one line naming it, exit 1."""
    env = _env(
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/none", DB_CONNECT_TIMEOUT="2"
    )
    done = subprocess.run(
        [sys.executable, "-m", "producers.ops", "migrate"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
