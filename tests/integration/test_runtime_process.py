"""Worker processes on the emulator: SIGKILL mid-handler, SIGTERM drain, /healthz."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from tests.fixtures.messaging import (
    PubSubDriver,
    choreo_test_topology,
    create_queued_task,
    effect_count,
    requested_event,
)
from tests.fixtures.pubsub import PubSubProject

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
HANDLER = "tests.fixtures.messaging:subprocess_handler"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def driver(pubsub_project: PubSubProject) -> Iterator[PubSubDriver]:
    """choreo's topology (10 s ack deadlines) on the emulator, in this test's project."""
    driver = PubSubDriver(pubsub_project, choreo_test_topology(ack_deadline_s=10))
    yield driver
    driver.close()


def start_worker(
    database_url: str, project_id: str, marker: Path, sleep_s: float, health_port: int = 0
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PUBSUB_PROJECT_ID": project_id,
        "RUNTIME_TEST_MARKER": str(marker),
        "RUNTIME_TEST_SLEEP": str(sleep_s),
        "WORKER_HEALTH_PORT": str(health_port),
        "WORKER_SHUTDOWN_GRACE": "15",
        "OUTBOX_RELAY_ENABLED": "false",
        "WORKER_LEASE_EXTENSION": "10",
    }
    command = [sys.executable, "-m", "consumers.runtime", "worker", HANDLER, "blueprint-consumer"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"worker exited {process.returncode}: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_worker_killed_mid_handler_redelivers_and_effect_happens_once(
    driver: PubSubDriver, database_url: str, pool: ConnectionPool, tmp_path: Path
) -> None:
    """SIGKILL during a handler loses nothing: another worker gets the message, one effect."""
    event = requested_event("t-kill")
    with pool.connection() as conn:
        create_queued_task(conn, "t-kill")
    driver.publisher.publish(event)
    first = start_worker(database_url, driver.project_id, tmp_path / "first", sleep_s=60)
    try:
        wait_for_file(tmp_path / "first", first)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    second = start_worker(database_url, driver.project_id, tmp_path / "second", sleep_s=0)
    try:
        # The lease (10 s per extension) lapses, then the emulator redelivers: 10 to 30 s here.
        wait_for_file(tmp_path / "second", second, timeout_s=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with pool.connection() as conn:
                if effect_count(conn, event.id) == 1:
                    break
            time.sleep(0.1)
        time.sleep(1.0)  # a second effect, if any, would commit now
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 1
        attempts = conn.execute(
            "SELECT detail->>'attempt' FROM task_history WHERE detail->>'effect_of' = %s",
            (event.id,),
        ).fetchall()
    # A redelivery committed it; the emulator may count a lapsed delivery to the dead stream too.
    [(attempt,)] = attempts
    assert int(attempt) >= 2
    assert first.returncode == -signal.SIGKILL


def test_sigterm_lets_the_running_handler_finish_then_exits(
    driver: PubSubDriver, database_url: str, pool: ConnectionPool, tmp_path: Path
) -> None:
    """On SIGTERM the worker reports unhealthy, finishes the handler, acks, and exits 0."""
    event = requested_event("t-term")
    with pool.connection() as conn:
        create_queued_task(conn, "t-term")
    port = free_port()
    worker = start_worker(database_url, driver.project_id, tmp_path / "m", 2.0, health_port=port)
    try:
        driver.publisher.publish(event)
        wait_for_file(tmp_path / "m", worker)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert (response.status, json.load(response)) == (200, {"status": "ok"})
        worker.send_signal(signal.SIGTERM)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert refused.value.code == 503
        assert worker.wait(20) == 0, worker.stderr.read().decode()
    finally:
        worker.kill()
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 1
        done = conn.execute("SELECT count(*) FROM processed_events").fetchone()
    assert done == (1,)
    assert driver.pull("blueprint-consumer") == []


def test_restarted_workers_work_on_what_they_pull(
    driver: PubSubDriver, database_url: str, pool: ConnectionPool, tmp_path: Path
) -> None:
    """Kill -9 a busy worker twice while messages wait: every message is handled once, soon,
    and none burns its delivery attempts sitting in a dead worker's hands (WORKER_PULL_MODE)."""
    events = [requested_event(f"t-busy-{n}") for n in range(12)]
    with pool.connection() as conn:
        for event in events:
            create_queued_task(conn, event.data.task_id)
    os.environ["WORKER_MAX_MESSAGES"] = "2"
    try:
        for round_ in range(3):
            # Messages keep arriving across the kills, as requests do.
            for event in events[round_ * 4 : round_ * 4 + 4]:
                driver.publisher.publish(event)
            if round_ == 2:
                break
            busy = start_worker(database_url, driver.project_id, tmp_path / f"k{round_}", 1.0)
            try:
                wait_for_file(tmp_path / f"k{round_}", busy)
                time.sleep(2.0)
            finally:
                busy.send_signal(signal.SIGKILL)
                busy.wait(10)
        last = start_worker(database_url, driver.project_id, tmp_path / "last", sleep_s=0.2)
    finally:
        del os.environ["WORKER_MAX_MESSAGES"]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with pool.connection() as conn:
                if all(effect_count(conn, e.id) == 1 for e in events):
                    break
            time.sleep(0.5)
    finally:
        last.send_signal(signal.SIGTERM)
        last.wait(20)
    with pool.connection() as conn:
        handled = [effect_count(conn, e.id) for e in events]
        attempts = [
            int(row[0])
            for row in conn.execute(
                "SELECT detail->>'attempt' FROM task_history WHERE detail ? 'effect_of'"
            ).fetchall()
            if row[0] is not None
        ]
    assert handled == [1] * len(events), handled
    # Two kills cost a message in hand at most two attempts; never the five of a dead letter.
    assert max(attempts) <= 3, attempts
