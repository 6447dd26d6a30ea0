"""Run the video job as a local subprocess: the embedded default and the local stack's launcher.

``launch`` queues ``python -m job`` with the same environment contract as on Cloud Run (the
dispatcher process's own environment, which carries ``DATABASE_URL``, ``PUBSUB_EMULATOR_HOST``
and ``STORAGE_*``, plus ``BLUEPRINT_JSON`` or ``BLUEPRINT_URI`` and ``JOB_TASK_ID``) and returns
the execution name at once: the dispatcher records it and acks without waiting for the render.
At most ``concurrency`` jobs run at a time on a thread pool that supervises them; each gets
``timeout_s`` before its whole process group is stopped. When a job ends, ``on_exit`` hears how
(the dispatcher uses it to fail a task the job could not finish itself).

Queued and running jobs live in this process only: a dispatcher that stops takes its queue with
it (running jobs, in their own session, carry on and record their own outcome).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from consumers.dispatcher.launcher import LaunchRequest, LaunchUnavailable

log = logging.getLogger(__name__)

JOB_COMMAND: tuple[str, ...] = (sys.executable, "-m", "job")
# Variables that belong to one execution, never inherited from the dispatcher's environment.
PER_EXECUTION = frozenset({"BLUEPRINT_JSON", "BLUEPRINT_URI", "JOB_TASK_ID"})
TAIL_LINES = 40
STOP_GRACE_S = 5.0
DROPPED = "the local runner closed before the job started"


@dataclass(frozen=True)
class JobExit:
    """How one local execution ended: exit code (None if it never started or was killed late)."""

    task_id: str
    execution_name: str
    returncode: int | None
    timed_out: bool = False
    start_error: str = ""
    last_error: str = ""


ExitHandler = Callable[[JobExit], None]


class LocalJobRunner:
    """A ``JobLauncher`` running ``python -m job`` subprocesses with a concurrency limit."""

    def __init__(
        self,
        *,
        base_env: Mapping[str, str],
        on_exit: ExitHandler,
        concurrency: int = 1,
        timeout_s: float = 1800.0,
        queue_limit: int = 32,
        command: Sequence[str] = JOB_COMMAND,
        cwd: Path | None = None,
    ) -> None:
        self.base_env = {k: v for k, v in base_env.items() if k not in PER_EXECUTION}
        self.on_exit = on_exit
        self.timeout_s = timeout_s
        self.queue_limit = queue_limit
        self.command = tuple(command)
        self.cwd = cwd
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._concurrency = concurrency
        self._pending = 0
        self._running: dict[str, subprocess.Popen[str]] = {}
        self._futures: dict[str, Future[None]] = {}
        self._idle = threading.Condition()
        self._closed = False
        self._stopping = False
        self._requests: dict[str, LaunchRequest] = {}

    def launch(self, request: LaunchRequest) -> str:
        """Queue the job; its execution name ``local-<task_id>-<random>``."""
        with self._idle:
            if self._closed:
                raise LaunchUnavailable("the local job runner is shutting down")
            if self._pending >= self._concurrency + self.queue_limit:
                raise LaunchUnavailable(
                    f"{self._pending} local jobs running or waiting "
                    f"(LOCAL_JOB_CONCURRENCY={self._concurrency}, "
                    f"LOCAL_JOB_QUEUE_LIMIT={self.queue_limit}); try again later"
                )
            self._pending += 1
            name = f"local-{request.task_id}-{secrets.token_hex(4)}"
            self._requests[name] = request
            self._futures[name] = self._executor.submit(self._supervise, request, name)
        return name

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no job is queued or running (and its exit handled); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self, *, stop_running: bool = False) -> None:
        """Refuse launches, drop queued jobs, optionally stop running ones; wait for the rest.

        Every launched job gets exactly one ``on_exit``: a dropped one as never started.
        """
        with self._idle:
            self._closed = True
            self._stopping = stop_running
            queued = list(self._futures.items())
            running = list(self._running.values())
        for name, future in queued:
            if future.cancel():
                request = self._requests[name]
                self._report(JobExit(request.task_id, name, None, start_error=DROPPED))
                self._done_with(name)
        if stop_running:
            for process in running:
                _stop(process)
        self._executor.shutdown(wait=True)

    def _supervise(self, request: LaunchRequest, name: str) -> None:
        try:
            self._report(self._run(request, name))
        finally:
            self._done_with(name)

    def _report(self, ended: JobExit) -> None:
        try:
            self.on_exit(ended)
        except Exception:
            extra = {"task_id": ended.task_id, "execution": ended.execution_name}
            log.exception("handling the job's exit failed", extra=extra)

    def _done_with(self, name: str) -> None:
        with self._idle:
            self._futures.pop(name, None)
            self._requests.pop(name, None)
            self._pending -= 1
            self._idle.notify_all()

    def _run(self, request: LaunchRequest, name: str) -> JobExit:
        env = {**self.base_env, **request.env}
        # Started under the lock, so close() either sees the process or stops it from starting.
        with self._idle:
            if self._stopping:
                return JobExit(request.task_id, name, None, start_error=DROPPED)
            try:
                # A session of its own, so a timeout stops the job's FFmpeg children too.
                process = subprocess.Popen(
                    self.command,
                    env=env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                    start_new_session=True,
                )
            except OSError as error:
                log.error("video job did not start: %s", error, extra=_ids(request, name))
                return JobExit(request.task_id, name, None, start_error=str(error))
            self._running[name] = process
        log.info("video job started", extra={**_ids(request, name), "pid": process.pid})
        assert process.stderr is not None  # noqa: S101 - stderr=PIPE
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        reader = threading.Thread(target=_forward, args=(process.stderr, tail), daemon=True)
        reader.start()
        timed_out = False
        try:
            process.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(process)
        reader.join(STOP_GRACE_S)
        with self._idle:
            self._running.pop(name, None)
        ended = JobExit(
            request.task_id, name, process.returncode, timed_out, last_error=last_error(tail)
        )
        level = logging.INFO if process.returncode == 0 else logging.WARNING
        log.log(level, "video job ended", extra={**_ids(request, name), "exit": ended.returncode})
        return ended


def last_error(lines: Sequence[str]) -> str:
    """The message of the last ERROR log line the job wrote (else its last line), shortened."""
    fallback = ""
    for line in reversed(lines):
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if str(record.get("severity", "")).upper() in {"ERROR", "CRITICAL"}:
                return str(record.get("message", text))[:500]
            fallback = fallback or str(record.get("message", text))
        else:
            fallback = fallback or text
    return fallback[:500]


def _forward(stream: IO[str], tail: collections.deque[str]) -> None:
    # The job's log lines go on to this process's stderr (one log stream, as on Cloud Run).
    for line in stream:
        tail.append(line)
        sys.stderr.write(line)
    stream.close()


def _stop(process: subprocess.Popen[str]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _ids(request: LaunchRequest, name: str) -> dict[str, str]:
    return {"task_id": request.task_id, "execution": name}
