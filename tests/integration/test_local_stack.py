"""`choreo stack` run as a user runs it: a subprocess with the environment it would have."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.stack import require_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STATUS_LINE = re.compile(
    r"^(postgres|pubsub|gcs)\s+(running|not answering|stopped)\s+pid=(\S+)\s+(\S+)$"
)


def choreo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the choreo CLI in a subprocess from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "choreo_cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env if env is not None else dict(os.environ),
        timeout=240,
        check=False,
    )


def pids(status_output: str) -> dict[str, str]:
    """Component name -> pid from `choreo stack status` output."""
    return {m[1]: m[3] for line in status_output.splitlines() if (m := STATUS_LINE.match(line))}


def free_port() -> int:
    """A TCP port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def other_stack_env() -> Iterator[dict[str, str]]:
    """Environment for a second, separate stack: its own directory and free ports."""
    # Not tmp_path: its parents are private to root, and PostgreSQL runs as the postgres user.
    stack_dir = Path(tempfile.mkdtemp(prefix="choreo-stack-test-"))
    stack_dir.chmod(0o755)
    yield {
        **os.environ,
        "STACK_DIR": str(stack_dir),
        "STACK_PG_PORT": str(free_port()),
        "STACK_PUBSUB_PORT": str(free_port()),
        "STACK_GCS_PORT": str(free_port()),
    }
    choreo("stack", "down", env={**os.environ, "STACK_DIR": str(stack_dir)})
    shutil.rmtree(stack_dir, ignore_errors=True)


def test_status_shows_every_component_running() -> None:
    """With the stack up, status prints one running line per component and exits 0."""
    require_env("DATABASE_URL")
    result = choreo("stack", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert list(pids(result.stdout)) == ["postgres", "pubsub", "gcs"]
    assert all(" running " in line for line in lines)
    assert all(pid.isdigit() for pid in pids(result.stdout).values())


def test_env_exports_point_at_the_running_stack() -> None:
    """env prints shell-quoted export lines whose DATABASE_URL reaches the stack's PostgreSQL."""
    result = choreo("stack", "env")
    assert result.returncode == 0, result.stderr
    exported = {}
    for line in result.stdout.splitlines():
        word, assignment = shlex.split(line)
        assert word == "export"
        name, _, value = assignment.partition("=")
        exported[name] = value
    assert set(exported) == {
        "DATABASE_URL",
        "PUBSUB_EMULATOR_HOST",
        "PUBSUB_PROJECT_ID",
        "STORAGE_EMULATOR_HOST",
        "PUSH_AUTH_ENABLED",
    }
    assert exported["PUBSUB_PROJECT_ID"] == "choreo-local"
    assert exported["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
    with psycopg.connect(exported["DATABASE_URL"], connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("choreo",)


def test_up_is_idempotent_when_already_running() -> None:
    """A second `up` leaves every component's process alone and finds the topology in place."""
    require_env("DATABASE_URL")
    before = pids(choreo("stack", "status").stdout)
    result = choreo("stack", "up")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("postgres", "pubsub", "gcs"):
        assert f"{name}: already running" in result.stdout
    assert " created" not in result.stdout
    assert pids(choreo("stack", "status").stdout) == before


def test_missing_binaries_are_named_with_how_to_install(
    other_stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Without java and gcloud on PATH, up exits 1 saying how to install them; nothing starts."""
    env = {**other_stack_env, "PATH": str(tmp_path)}
    result = choreo("stack", "up", env=env)
    assert result.returncode == 1
    assert "java not found on PATH" in result.stderr
    assert "apt-get install default-jre-headless" in result.stderr
    assert "gcloud not found on PATH" in result.stderr
    assert not (Path(env["STACK_DIR"]) / "pg").exists()
    assert not (Path(env["STACK_DIR"]) / "logs").exists()


def test_a_taken_port_is_named_with_its_variable(other_stack_env: dict[str, str]) -> None:
    """When another process holds the GCS port, up exits 1 naming STACK_GCS_PORT; nothing starts."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = choreo("stack", "up", env={**other_stack_env, "STACK_GCS_PORT": str(port)})
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 (for gcs) is in use" in result.stderr
    assert "set STACK_GCS_PORT" in result.stderr
    assert not (Path(other_stack_env["STACK_DIR"]) / "pg").exists()


def test_status_of_a_stopped_stack_exits_3(other_stack_env: dict[str, str]) -> None:
    """A stack that never ran reports every component stopped and exits 3."""
    result = choreo("stack", "status", env=other_stack_env)
    assert result.returncode == 3
    states = [m[2] for line in result.stdout.splitlines() if (m := STATUS_LINE.match(line))]
    assert states == ["stopped", "stopped", "stopped"]


@pytest.mark.slow
def test_up_then_down_on_a_separate_stack(other_stack_env: dict[str, str]) -> None:
    """up starts a whole second stack on other ports; down stops exactly it, and twice is fine."""
    up = choreo("stack", "up", env=other_stack_env)
    assert up.returncode == 0, up.stdout + up.stderr
    status = choreo("stack", "status", env=other_stack_env)
    assert status.returncode == 0, status.stdout
    started = pids(status.stdout)
    main_stack = pids(choreo("stack", "status").stdout)
    assert not set(started.values()) & set(main_stack.values())
    down = choreo("stack", "down", env=other_stack_env)
    assert down.returncode == 0, down.stderr
    assert choreo("stack", "status", env=other_stack_env).returncode == 3
    for pid in started.values():
        assert not Path(f"/proc/{pid}").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    again = choreo("stack", "down", env=other_stack_env)
    assert again.returncode == 0
    assert again.stdout.count("was not running") == 3
