"""Drive the whole pipeline on the local stack: services as subprocesses, requests via the CLI.

One :class:`PipelineRun` per test: its own database, Pub/Sub project (topology applied, plus a
watch subscription on ``video-done``), storage root and log folder. Services are the real
``choreo worker|serve`` commands; they are stopped with SIGTERM and their logs are kept for the
failure message.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

CHOREO = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "choreo")
WATCH_SUBSCRIPTION = "e2e-watch"
COMPLETED = "com.choreo.video.completed.v1"
FAILED = "com.choreo.task.failed.v1"
STOP_TIMEOUT_S = 30


@dataclass
class Service:
    """A running ``choreo`` service subprocess and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    def tail(self, lines: int = 25) -> str:
        """The last lines of the log, for failure messages."""
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.name} (exit {self.process.poll()}) ---\n" + "\n".join(text[-lines:])


@dataclass
class PipelineRun:
    """Everything one e2e test runs against, and the events it has seen on ``video-done``."""

    env: dict[str, str]
    database_url: str
    storage_root: Path
    logs: Path
    project: Any
    services: list[Service] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def start(self, command: str, name: str, *, port: int | None = None) -> Service:
        """Start ``choreo <command> <name>`` (``serve`` gets its own PORT on 127.0.0.1)."""
        env = dict(self.env)
        if port is not None:
            env.update(PORT=str(port), HTTP_HOST="127.0.0.1")
        log = self.logs / f"{command}-{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [CHOREO, command, name], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        service = Service(f"{command} {name}", process, log, port)
        self.services.append(service)
        return service

    def wait_healthy(self, service: Service, timeout_s: float = 60) -> None:
        """Wait until an HTTP service answers ``/healthz`` with 200."""
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{service.port}/healthz"
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise AssertionError(f"{service.name} exited early\n{service.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{service.name} never became healthy\n{service.tail()}")

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM every service, wait for each; their exit codes."""
        for service in self.services:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for service in self.services:
            try:
                codes[service.name] = service.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                service.process.kill()
                codes[service.name] = service.process.wait(5)
        return codes

    def request(self, *args: str) -> str:
        """Run ``choreo request ...`` as a user would; the task id it prints."""
        done = subprocess.run(
            [CHOREO, "request", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"choreo request {args} failed: {done.stderr[-800:]}"
        return done.stdout.strip().splitlines()[-1]

    def request_async(self, *args: str) -> subprocess.Popen[str]:
        """Start ``choreo request ...`` without waiting (for bursts)."""
        return subprocess.Popen(
            [CHOREO, "request", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def collect_events(self) -> None:
        """Pull and ack whatever the watch subscription has now."""
        path = self.project.subscription_path(WATCH_SUBSCRIPTION)
        response = self.project.subscriber.pull(
            request={"subscription": path, "max_messages": 100}, timeout=10
        )
        received = list(response.received_messages)
        for message in received:
            kind = message.message.attributes.get("ce-type", "")
            self.events.append((kind, json.loads(message.message.data)))
        if received:
            self.project.subscriber.acknowledge(
                request={"subscription": path, "ack_ids": [r.ack_id for r in received]}
            )

    def wait_for_events(self, task_ids: set[str], timeout_s: float) -> None:
        """Collect until every task has a terminal event, then a little longer for duplicates."""
        deadline = time.monotonic() + timeout_s
        while not task_ids <= {data["task_id"] for _, data in self.events}:
            dead = [s for s in self.services if s.process.poll() is not None]
            if dead:
                raise AssertionError("a service exited\n" + "\n".join(s.tail() for s in dead))
            if time.monotonic() > deadline:
                seen = {data["task_id"] for _, data in self.events}
                states = self.states(task_ids)
                raise AssertionError(
                    f"no terminal event for {sorted(task_ids - seen)} in {timeout_s:.0f} s; "
                    f"states {states}\n" + "\n".join(s.tail() for s in self.services)
                )
            self.collect_events()
        # A duplicate would follow the first within a relay poll or a redelivery: look again.
        time.sleep(2.0)
        self.collect_events()

    def event_counts(self) -> Counter[tuple[str, str]]:
        """How many events of each (type, task) were seen."""
        return Counter((kind, data["task_id"]) for kind, data in self.events)

    def states(self, task_ids: set[str]) -> dict[str, tuple[str, str | None, str | None]]:
        """(state, error, video_uri) of each task."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT task_id, state, error, video_uri FROM tasks WHERE task_id = ANY(%s)",
                (list(task_ids),),
            ).fetchall()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def history_counts(self, task_id: str) -> Counter[str]:
        """How many times the task entered each state."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT to_state FROM task_history WHERE task_id = %s", (task_id,)
            ).fetchall()
        return Counter(row[0] for row in rows)

    def job_runs(self) -> Counter[str]:
        """Video job runs per task, from the job's own log lines (one log file per execution)."""
        runs: Counter[str] = Counter()
        for log in sorted((self.logs / "jobs").glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if '"logger": "job.' not in line or '"inputs fetched"' not in line:
                    continue
                runs[json.loads(line[line.index("{") :]).get("task_id", "?")] += 1
        return runs

    def rendered_pieces(self, task_id: str) -> dict[str, Any]:
        """The job's ``pieces ready`` log line for the task (pieces, pieces_cached, ...)."""
        for log in sorted((self.logs / "jobs").glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if '"pieces ready"' not in line:
                    continue
                record: dict[str, Any] = json.loads(line[line.index("{") :])
                if record.get("task_id") == task_id:
                    return record
        raise AssertionError(f"no 'pieces ready' line for {task_id} in {self.logs / 'jobs'}")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subprocess_env(**values: str) -> dict[str, str]:
    """This process's environment with ``values`` on top and quiet, JSON logging."""
    env = dict(os.environ)
    env.update(values)
    return env


def assert_completed(run: PipelineRun, task_ids: set[str]) -> None:
    """Each task completed once: a playable video, one ``video.completed``, one job run."""
    states = run.states(task_ids)
    counts = run.event_counts()
    runs = run.job_runs()
    for task_id in task_ids:
        state, error, video_uri = states[task_id]
        assert state == "completed", f"{task_id} is {state}: {error}"
        assert video_uri is not None
        video = run.storage_root / video_uri
        assert video.is_file(), f"{task_id}: no video at {video}"
        assert probe_duration(video) > 10, f"{task_id}: {video} is not a playable video"
        assert counts[(COMPLETED, task_id)] == 1, f"{task_id}: {counts}"
        assert counts[(FAILED, task_id)] == 0, f"{task_id}: {counts}"
        entered = run.history_counts(task_id)
        assert entered["dispatched"] == 1, f"{task_id} dispatched {entered['dispatched']} times"
        assert entered["rendering"] == 1, f"{task_id} rendered {entered['rendering']} times"
        assert runs[task_id] == 1, f"{task_id}: {runs[task_id]} job executions"


def probe_duration(video: Path) -> float:
    """The video's duration per ffprobe (0 when it cannot be read)."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", video],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    try:
        return float(done.stdout.strip())
    except ValueError:
        return 0.0
