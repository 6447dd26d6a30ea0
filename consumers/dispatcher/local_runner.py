"""The local job runner: runs the recorded video job executions as ``python -m job`` processes.

Its queue is the ``job_executions`` table, not memory. Each pass it:

1. checks the jobs it watches: one that ended is settled (:mod:`.job_exits`): finished, started
   again (a killed or crashed run, up to ``JOB_MAX_ATTEMPTS`` starts), or its task failed;
2. renews its lease on the jobs it watches (the heartbeat), every third of ``LOCAL_JOB_LEASE``;
3. claims more work while it has free slots (``LOCAL_JOB_CONCURRENCY``), ``FOR UPDATE SKIP
   LOCKED``: a queued execution is started; a running one whose runner's lease lapsed (that
   runner died) is adopted when its process is still alive on this host, else started again.

A job runs in its own session with its output in a log file of its own
(``LOCAL_JOB_LOG_DIR/<execution>.log``), so a runner that dies takes nothing with it: the job
carries on, keeps its log, and the next runner adopts it. ``choreo runner`` runs one on its own;
the dispatcher process runs one too unless ``LOCAL_RUNNER_EMBEDDED=false``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from consumers.dispatcher.job_exits import JobExit, settle_exit
from lifecycle.executions import (
    ExecutionRow,
    claim_local,
    mark_started,
    release_leases,
    renew_leases,
)

log = logging.getLogger(__name__)

JOB_COMMAND: tuple[str, ...] = (sys.executable, "-m", "job")
# Variables that belong to one execution, never inherited from the runner's environment.
PER_EXECUTION = frozenset({"BLUEPRINT_JSON", "BLUEPRINT_URI", "JOB_TASK_ID", "JOB_EXECUTION"})
TAIL_LINES = 40
STOP_GRACE_S = 5.0


@dataclass
class Watched:
    """A job this runner watches: its own child, or an adopted orphan (``process`` None)."""

    row: ExecutionRow
    pid: int
    pid_started: int | None
    log_path: Path
    started: float
    process: subprocess.Popen[bytes] | None = None
    sink: IO[bytes] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The execution name."""
        return self.row.execution_name


class LocalJobRunner:
    """Claims recorded executions and runs them as subprocesses, surviving its own death."""

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        base_env: Mapping[str, str],
        log_dir: Path,
        concurrency: int = 1,
        timeout_s: float = 1800.0,
        lease_s: float = 15.0,
        max_attempts: int = 3,
        poll_interval_s: float = 0.5,
        command: Sequence[str] = JOB_COMMAND,
        cwd: Path | None = None,
        runner_id: str | None = None,
    ) -> None:
        self.pool = pool
        self.base_env = {k: v for k, v in base_env.items() if k not in PER_EXECUTION}
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.poll_interval_s = poll_interval_s
        self.command = tuple(command)
        self.cwd = cwd
        self.host = socket.gethostname()
        self.runner_id = runner_id or f"{self.host}:{os.getpid()}:{secrets.token_hex(3)}"
        self.watched: dict[str, Watched] = {}
        self._last_heartbeat = float("-inf")
        self._lock = threading.Lock()

    # The loop ---------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        """Run passes until ``stop``; database outages are waited out, never fatal."""
        log.info("job runner started", extra={"runner": self.runner_id})
        while not stop.is_set():
            try:
                busy = self.step()
            except (psycopg.OperationalError, PoolTimeout) as error:
                log.warning("job runner cannot reach PostgreSQL: %s", error)
                busy = False
            except Exception:
                # A bug must not end the loop silently: log it and go on after a pause.
                log.exception("job runner pass failed")
                busy = False
            if not busy:
                stop.wait(self.poll_interval_s)

    def step(self) -> bool:
        """One pass: settle ended jobs, heartbeat, claim work; True if it started or adopted one."""
        with self._lock:
            self._check_watched()
            self._heartbeat()
            return self._claim_more()

    def wait_idle(self, timeout_s: float) -> bool:
        """Run passes until nothing is queued or watched (tests, the demo); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.step()
            if not self.watched and not self._open_executions():
                return True
            time.sleep(self.poll_interval_s)
        return False

    def close(self, *, stop_running: bool = False) -> None:
        """Stop watching; by default running jobs carry on and the next runner adopts them.

        ``stop_running`` (the demo, which owns its process tree) stops them first; their
        executions are then settled like any killed run (started again by the next runner).
        """
        with self._lock:
            if stop_running:
                for watched in list(self.watched.values()):
                    _stop(watched)
                self._check_watched()
            try:
                with self.pool.connection() as conn:
                    release_leases(conn, self.runner_id)
            except (psycopg.Error, PoolTimeout) as error:
                log.warning("could not release the job leases: %s", error)
            for watched in self.watched.values():
                if watched.sink is not None:
                    watched.sink.close()
            self.watched.clear()

    # Watching ---------------------------------------------------------------------------------

    def _check_watched(self) -> None:
        for watched in list(self.watched.values()):
            ended = self._ended(watched)
            if ended is None:
                continue
            settled = settle_exit(self.pool, ended, max_attempts=self.max_attempts)
            extra = {"task_id": watched.row.task_id, "execution": watched.name}
            log.log(
                logging.INFO if ended.returncode == 0 else logging.WARNING,
                "video job ended: %s",
                settled,
                extra={**extra, "exit": ended.returncode},
            )
            if watched.sink is not None:
                watched.sink.close()
            del self.watched[watched.name]

    def _ended(self, watched: Watched) -> JobExit | None:
        timed_out = time.monotonic() - watched.started > self.timeout_s
        if timed_out:
            _stop(watched)
        if watched.process is not None:
            code = watched.process.poll()
            if code is None:
                return None
        elif _alive(watched.pid, watched.pid_started):
            return None
        else:
            code = None  # an adopted job: not our child, its exit status is not ours to read
        return JobExit(
            watched.row.task_id,
            watched.name,
            code,
            timed_out=timed_out,
            last_error=last_error(_tail(watched.log_path)),
        )

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < self.lease_s / 3:
            return
        with self.pool.connection() as conn:
            held = renew_leases(conn, self.runner_id, list(self.watched), self.lease_s)
        self._last_heartbeat = now
        if held < len(self.watched):
            log.warning(
                "lost the lease on %d job(s); another runner took them over",
                len(self.watched) - held,
                extra={"runner": self.runner_id},
            )

    # Claiming ---------------------------------------------------------------------------------

    def _claim_more(self) -> bool:
        claimed = False
        while len(self.watched) < self.concurrency:
            with self.pool.connection() as conn:
                row = claim_local(conn, self.runner_id, self.lease_s)
            if row is None:
                break
            claimed = True
            if row.was == "running" and self._adopt(row):
                continue
            self._start(row)
        return claimed

    def _adopt(self, row: ExecutionRow) -> bool:
        """Watch a job whose runner died, if its process is still alive here."""
        if row.host != self.host or row.pid is None or not _alive(row.pid, row.pid_started):
            return False
        log_path = Path(row.log_path) if row.log_path else self._log_path(row.execution_name)
        self.watched[row.execution_name] = Watched(
            row, row.pid, row.pid_started, log_path, time.monotonic()
        )
        log.warning(
            "adopted a running video job whose runner was lost",
            extra={"task_id": row.task_id, "execution": row.execution_name, "pid": row.pid},
        )
        return True

    def _start(self, row: ExecutionRow) -> None:
        if row.was == "running":
            # Its runner died and took the process with it (or the host changed): a lost run.
            ended = JobExit(row.task_id, row.execution_name, None, lost=True)
            settled = settle_exit(self.pool, ended, max_attempts=self.max_attempts)
            log.warning("video job was lost with its runner: %s", settled, extra=_ids(row))
            if settled != "started again":
                return
        if row.attempts >= self.max_attempts:
            ended = JobExit(row.task_id, row.execution_name, None, exhausted=True)
            settle_exit(self.pool, ended, max_attempts=self.max_attempts)
            return
        log_path = self._log_path(row.execution_name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sink = log_path.open("ab")
        env = {**self.base_env, **row.env, "JOB_EXECUTION": row.execution_name}
        try:
            # A session of its own: the job outlives this runner, and a timeout stops its FFmpeg.
            process = subprocess.Popen(
                self.command,
                env=env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            sink.close()
            log.error("video job did not start: %s", error, extra=_ids(row))
            ended = JobExit(row.task_id, row.execution_name, None, start_error=str(error))
            settle_exit(self.pool, ended, max_attempts=self.max_attempts)
            return
        started = _start_time(process.pid)
        with self.pool.connection() as conn:
            mark_started(
                conn,
                row.execution_name,
                runner=self.runner_id,
                host=self.host,
                pid=process.pid,
                pid_started=started,
                log_path=str(log_path),
                lease_s=self.lease_s,
            )
        self.watched[row.execution_name] = Watched(
            row, process.pid, started, log_path, time.monotonic(), process, sink
        )
        log.info(
            "video job started",
            extra={**_ids(row), "pid": process.pid, "attempt": row.attempts + 1,
                   "log": str(log_path)},
        )  # fmt: skip

    def _log_path(self, execution: str) -> Path:
        return self.log_dir / f"{execution}.log"

    def _open_executions(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM job_executions "
                "WHERE launcher = 'local' AND state IN ('queued', 'running')"
            ).fetchone()
        return int(row[0]) if row else 0


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


def _tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 64 * 1024))
            return stream.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat from field 3 (state) on; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat[stat.rindex(")") + 2 :].split()


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def _alive(pid: int, started: int | None) -> bool:
    """Whether ``pid`` is still the process that was started (not a zombie, not a reused pid)."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started


def _stop(watched: Watched) -> None:
    """SIGTERM the job's process group, then SIGKILL after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(watched.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            if watched.process is not None and watched.process.poll() is not None:
                return
            if watched.process is None and not _alive(watched.pid, watched.pid_started):
                return
            time.sleep(0.05)


def _ids(row: ExecutionRow) -> dict[str, str]:
    return {"task_id": row.task_id, "execution": row.execution_name}
