"""Chaos harness: requests flow while processes are killed and the stack is restarted.

    .venv/bin/python bench/chaos.py --requests 100 --fault-window 240 --workers 1

Starts a private local stack on its own ports and data directory (PostgreSQL, the Pub/Sub
emulator, the GCS emulator), migrates, applies the topology with a watch subscription on
``video-done``, imports the demo move library and a synthesized song, then runs the pipeline
as separate processes: ``choreo worker blueprint|dispatcher|status`` and ``choreo runner`` (one
or more of each) and one ``choreo relay``. It submits ``--requests`` requests (song and
describe paths mixed) over ``--submit-over`` seconds, and for ``--fault-window`` seconds
injects one fault every ``--fault-every`` seconds (a random pick of the ``--faults`` kinds):

- ``kill-worker``: kill -9 a random worker (or the runner, or the relay), restarted 2-5 s later;
- ``kill-job``: kill -9 a running video job (its runner starts it again);
- ``pg-fast`` / ``pg-immediate``: ``pg_ctl stop -m fast|immediate``, started again 2-5 s later;
- ``pubsub-restart``: the emulator stopped and started again (topology re-applied);
- ``gcs-restart``: the GCS emulator stopped and started again.

Then it waits for every task to be terminal (``--drain-timeout``) and counts, from the database,
the storage and its own subscription: tasks lost (not terminal), failed (with reasons),
duplicate blueprints, video objects, job executions and job starts, distinct ``video-done``
event ids per task, dead-lettered messages, and the drain time. It prints a table, writes JSON
(``--out``), and exits 1 on any loss or duplicate. The test suite runs a short variant
(tests/e2e/test_chaos.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from choreo_cli.local_stack import (  # noqa: E402
    GcsEmulator,
    PostgresServer,
    PubSubEmulator,
    StackPaths,
    database_url,
    start_stack,
    stop_stack,
)
from lifecycle.migrations import migrate  # noqa: E402
from producers.topology_apply import apply_topology, pubsub_admin_clients  # noqa: E402
from schemas.settings import StackSettings  # noqa: E402
from schemas.topology import build_topology  # noqa: E402

CHOREO = str(ROOT / ".venv" / "bin" / "choreo")
LIBRARY = ROOT / ".choreo" / "bench" / "library"
SONG_KEY = "songs/chaos-song.wav"
SONG_ID = "chaos-song"
WATCH = "chaos-watch"
PROJECT = "chaos-local"
COMPLETED = "com.choreo.video.completed.v1"
FAILED = "com.choreo.task.failed.v1"
FAULTS = ("kill-worker", "kill-job", "pg-fast", "pg-immediate", "pubsub-restart", "gcs-restart")
DEAD_LETTER_SUBS = (
    "choreography-requests-dead-letter-sub",
    "blueprint-ready-dead-letter-sub",
    "video-done-dead-letter-sub",
)
DESCRIPTIONS = (
    "energetic hip-hop for beginners",
    "smooth pop, intermediate",
    "high energy dance for advanced dancers",
)


@dataclass
class Proc:
    """One pipeline process: how to start it, the running process, and its log."""

    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self, env: dict[str, str]) -> None:
        """Start (or restart) the process, appending to its log."""
        sink = self.log.open("ab")
        self.process = subprocess.Popen(
            self.argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        sink.close()

    def kill(self) -> None:
        """kill -9 the process (not its jobs: they run in sessions of their own)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Chaos:
    """The run: its stack, processes and what happened."""

    args: argparse.Namespace
    scratch: Path
    stack: StackSettings
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The private stack's database."""
        return database_url(self.stack)

    @property
    def storage(self) -> Path:
        """The local storage root."""
        return self.scratch / "storage"

    def say(self, message: str) -> None:
        """Progress, on stderr."""
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # Set-up ---------------------------------------------------------------------------------

    def set_up(self) -> None:
        """Stack, schema, topology, library, song, environment."""
        self.say(f"starting a private stack under {self.stack.stack_dir}")
        start_stack(self.stack, self.say)
        migrate(self.url)
        self.apply_topology()
        self.env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.stack.pubsub_port}",
            "PUBSUB_PROJECT_ID": PROJECT,
            "STORAGE_BACKEND": "local",
            "STORAGE_ROOT": str(self.storage),
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.stack.gcs_port}",
            "JOB_CACHE_DIR": str(self.scratch / "job-cache"),
            "LOCAL_JOB_LOG_DIR": str(self.scratch / "job-logs"),
            "LOCAL_RUNNER_EMBEDDED": "false",
            "LOCAL_JOB_CONCURRENCY": str(self.args.job_concurrency),
            "LOCAL_JOB_LEASE": "6",
            "JOB_PUBLISH": "direct",
            "JOB_X264_PRESET": "ultrafast",
            "WORKER_HEALTH_PORT": "0",
            "OUTBOX_POLL_INTERVAL": "0.2",
            "REAPER_INTERVAL": "10",
            "REAPER_QUEUED_TIMEOUT": str(self.args.queued_deadline),
            "REAPER_STAGE_TIMEOUT": "60",
            "REAPER_RENDERING_TIMEOUT": "120",
            "RECOVERY_MAX_ATTEMPTS": "5",
            "DB_CONNECT_TIMEOUT": "3",
            "LOG_JSON": "true",
            "LOG_LEVEL": "INFO",
        }
        library = self.args.library
        if not (library / "manifest.json").exists():
            self.say(f"rendering the demo move library into {library} (once)")
            subprocess.run([CHOREO, "moves", "demo-library", str(library)], check=True)
        self.say("importing the move library")
        subprocess.run(
            [CHOREO, "moves", "import", str(library)],
            env=self.env,
            check=True,
            capture_output=True,
        )
        from choreo_cli.demo.song_synth import synthesize_song, write_wav  # noqa: PLC0415

        song = synthesize_song(
            120.0, "syncopated", (("intro", 2), ("verse", 3), ("chorus", 3)), seed=3
        )
        (self.storage / SONG_KEY).parent.mkdir(parents=True, exist_ok=True)
        write_wav(self.storage / SONG_KEY, song.y, song.sr)
        digest = hashlib.sha256((self.storage / SONG_KEY).read_bytes()).hexdigest()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO songs (song_id, title, audio_uri, content_sha256) "
                "VALUES (%s, 'chaos song', %s, %s) ON CONFLICT DO NOTHING",
                (SONG_ID, SONG_KEY, digest),
            )
        logs = self.scratch / "logs"
        logs.mkdir(exist_ok=True)
        for kind in ("blueprint", "dispatcher", "status"):
            for index in range(self.args.workers):
                name = f"worker-{kind}-{index}"
                self.procs.append(Proc(name, [CHOREO, "worker", kind], logs / f"{name}.log"))
        for index in range(self.args.workers):
            self.procs.append(
                Proc(f"runner-{index}", [CHOREO, "runner"], logs / f"runner-{index}.log")
            )
        self.procs.append(Proc("relay", [CHOREO, "relay"], logs / "relay.log"))
        for proc in self.procs:
            proc.start(self.env)

    def apply_topology(self) -> None:
        """Topics, subscriptions (dead-letter policies included) and the watch subscription."""
        host = f"127.0.0.1:{self.stack.pubsub_port}"
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        publisher, subscriber = pubsub_admin_clients(host)
        try:
            apply_topology(build_topology(), PROJECT, publisher=publisher, subscriber=subscriber)
            watch = subscriber.subscription_path(PROJECT, WATCH)
            try:
                subscriber.create_subscription(
                    request={
                        "name": watch,
                        "topic": publisher.topic_path(PROJECT, "video-done"),
                        "ack_deadline_seconds": 30,
                    }
                )
            except Exception as error:  # already there after a restart that kept it
                if "AlreadyExists" not in type(error).__name__:
                    raise
        finally:
            subscriber.close()

    # Load and faults --------------------------------------------------------------------------

    def submit(self) -> list[str]:
        """``--requests`` requests, mixed paths, spread over ``--submit-over`` seconds."""
        from lifecycle.database import open_pool  # noqa: PLC0415
        from producers.requests import (  # noqa: PLC0415
            submit_description_request,
            submit_song_request,
        )
        from schemas.settings import DatabaseSettings  # noqa: PLC0415

        pool = open_pool(DatabaseSettings(DATABASE_URL=self.url))  # type: ignore[call-arg]
        task_ids: list[str] = []
        gap = self.args.submit_over / max(1, self.args.requests)
        try:
            for number in range(self.args.requests):
                for _ in range(60):  # PostgreSQL may be down for a fault: keep trying
                    try:
                        if number % 3 == 2:
                            description = DESCRIPTIONS[number % len(DESCRIPTIONS)]
                            task_id = submit_description_request(
                                pool, f"{description}, about 15 seconds", song_id=SONG_ID
                            )
                        else:
                            task_id = submit_song_request(pool, audio_uri=SONG_KEY)
                        break
                    except Exception as error:
                        self.say(f"submit {number} failed ({type(error).__name__}); retrying")
                        time.sleep(1)
                else:
                    raise RuntimeError("could not submit a request for a minute")
                task_ids.append(task_id)
                if gap:
                    time.sleep(gap)
        finally:
            pool.close()
        return task_ids

    def inject(self, stop: threading.Event) -> None:
        """One fault every ``--fault-every`` seconds until the window closes."""
        low, high = self.args.fault_every
        ends = time.monotonic() + self.args.fault_window
        while not stop.wait(self.rng.uniform(low, high)) and time.monotonic() < ends:
            kind = self.rng.choice(self.args.faults)
            started = time.monotonic()
            try:
                detail = getattr(self, "fault_" + kind.replace("-", "_"))()
            except Exception as error:
                detail = f"fault failed: {type(error).__name__}: {error}"
            record = {"at_s": round(started - self.t0, 1), "fault": kind, "detail": detail,
                      "took_s": round(time.monotonic() - started, 1)}  # fmt: skip
            self.faults.append(record)
            self.say(f"fault {kind}: {detail}")

    def fault_kill_worker(self) -> str:
        proc = self.rng.choice(self.procs)
        proc.kill()
        time.sleep(self.rng.uniform(2, 5))
        proc.start(self.env)
        proc.restarts += 1
        return proc.name

    def fault_kill_job(self) -> str:
        with psycopg.connect(self.url, connect_timeout=3) as conn:
            rows = conn.execute(
                "SELECT execution_name, pid FROM job_executions "
                "WHERE state = 'running' AND pid IS NOT NULL"
            ).fetchall()
        if not rows:
            return "no job running"
        name, pid = self.rng.choice(rows)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return f"{name} had just ended"
        return name

    def _postgres(self) -> PostgresServer:
        return PostgresServer(self.stack, StackPaths.from_settings(self.stack))

    def fault_pg_fast(self) -> str:
        return self._restart_pg("fast")

    def fault_pg_immediate(self) -> str:
        return self._restart_pg("immediate")

    def _restart_pg(self, mode: str) -> str:
        server = self._postgres()
        server._run_pg("pg_ctl", "-D", str(server.data_dir), "-m", mode, "-w", "stop")
        time.sleep(self.rng.uniform(2, 5))
        server.start(60)
        return f"stopped -m {mode}, started again"

    def fault_pubsub_restart(self) -> str:
        emulator = PubSubEmulator(self.stack.pubsub_port, StackPaths.from_settings(self.stack))
        emulator.stop()
        time.sleep(self.rng.uniform(2, 5))
        emulator.start(90)
        self.apply_topology()
        return "restarted, topology applied"

    def fault_gcs_restart(self) -> str:
        emulator = GcsEmulator(self.stack.gcs_port, StackPaths.from_settings(self.stack))
        emulator.stop()
        time.sleep(self.rng.uniform(2, 5))
        emulator.start(30)
        return "restarted"

    # Watching and counting ------------------------------------------------------------------

    def collect(self) -> None:
        """Pull and ack what the watch subscription has."""
        from google.cloud import pubsub_v1  # noqa: PLC0415

        subscriber = pubsub_v1.SubscriberClient()
        try:
            path = subscriber.subscription_path(PROJECT, WATCH)
            response = subscriber.pull(
                request={"subscription": path, "max_messages": 500}, timeout=10
            )
            received = list(response.received_messages)
            for item in received:
                attributes = item.message.attributes
                data = json.loads(item.message.data)
                self.events.append(
                    (attributes.get("ce-type", ""), attributes.get("ce-id", ""), data["task_id"])
                )
            if received:
                subscriber.acknowledge(
                    request={"subscription": path, "ack_ids": [r.ack_id for r in received]}
                )
        except Exception as error:
            self.say(f"watch pull failed: {type(error).__name__}")
        finally:
            subscriber.close()

    def watch(self, stop: threading.Event) -> None:
        """Collect ``video-done`` events all along (an emulator restart drops what it holds)."""
        while not stop.wait(2.0):
            self.collect()

    def open_tasks(self, task_ids: list[str]) -> int:
        """How many of the tasks are not terminal yet (-1 when PostgreSQL does not answer)."""
        try:
            with psycopg.connect(self.url, connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM tasks WHERE task_id = ANY(%s) "
                    "AND state NOT IN ('completed', 'failed')",
                    (task_ids,),
                ).fetchone()
        except psycopg.OperationalError:
            return -1
        return int(row[0]) if row else -1

    def drain(self, task_ids: list[str]) -> float | None:
        """Wait until every task is terminal; seconds after the faults stopped (None: never)."""
        deadline = time.monotonic() + self.args.drain_timeout
        last_report = 0.0
        while time.monotonic() < deadline:
            self.collect()
            remaining = self.open_tasks(task_ids)
            if remaining == 0:
                return time.monotonic()
            if time.monotonic() - last_report > 15:
                self.say(f"{remaining} task(s) not terminal yet")
                last_report = time.monotonic()
            time.sleep(2)
        return None

    def dead_letters(self) -> dict[str, int]:
        """Messages waiting in each dead-letter subscription (pulled, not acked)."""
        from google.cloud import pubsub_v1  # noqa: PLC0415

        subscriber = pubsub_v1.SubscriberClient()
        counts: dict[str, int] = {}
        try:
            for name in DEAD_LETTER_SUBS:
                path = subscriber.subscription_path(PROJECT, name)
                response = subscriber.pull(
                    request={"subscription": path, "max_messages": 1000}, timeout=10
                )
                counts[name] = len(response.received_messages)
        finally:
            subscriber.close()
        return counts

    def count(self, task_ids: list[str]) -> dict[str, Any]:
        """Everything that was lost or doubled, from the database, storage and the watch."""
        with psycopg.connect(self.url) as conn:
            states = dict(
                conn.execute(
                    "SELECT task_id, state FROM tasks WHERE task_id = ANY(%s)", (task_ids,)
                ).fetchall()
            )
            reasons = conn.execute(
                "SELECT error_stage, left(error, 160), count(*) FROM tasks "
                "WHERE task_id = ANY(%s) AND state = 'failed' GROUP BY 1, 2 ORDER BY 3 DESC",
                (task_ids,),
            ).fetchall()
            planned = Counter(
                dict(
                    conn.execute(
                        "SELECT task_id, count(*) FROM task_history WHERE to_state = 'planned' "
                        "AND from_state <> 'planned' AND task_id = ANY(%s) GROUP BY 1",
                        (task_ids,),
                    ).fetchall()
                )
            )
            executions = Counter(
                dict(
                    conn.execute(
                        "SELECT task_id, count(*) FROM job_executions WHERE task_id = ANY(%s) "
                        "GROUP BY 1",
                        (task_ids,),
                    ).fetchall()
                )
            )
            attempts = dict(
                conn.execute(
                    "SELECT task_id, attempts FROM job_executions WHERE task_id = ANY(%s)",
                    (task_ids,),
                ).fetchall()
            )
            recoveries = conn.execute(
                "SELECT coalesce(sum(recoveries), 0) FROM tasks WHERE task_id = ANY(%s)",
                (task_ids,),
            ).fetchone()
            blueprints = conn.execute(
                "SELECT count(*) FROM blueprints WHERE task_id = ANY(%s)", (task_ids,)
            ).fetchone()
        videos = sorted((self.storage / "videos").glob("*.mp4"))
        completed_events = Counter(task for kind, _id, task in self.events if kind == COMPLETED)
        distinct_completed = Counter(
            task for kind, event_id, task in set(self.events) if kind == COMPLETED
        )
        completed = [t for t in task_ids if states.get(t) == "completed"]
        failed = [t for t in task_ids if states.get(t) == "failed"]
        lost = [t for t in task_ids if states.get(t) not in ("completed", "failed")]
        return {
            "submitted": len(task_ids),
            "completed": len(completed),
            "failed": len(failed),
            "lost": len(lost),
            "lost_tasks": {t: states.get(t) for t in lost},
            "failure_reasons": [list(r) for r in reasons],
            "blueprints": int(blueprints[0]) if blueprints else 0,
            "tasks_planned_twice": sum(1 for n in planned.values() if n > 1),
            "video_objects": len(videos),
            "video_objects_without_completed_task": len({v.stem for v in videos} - set(completed)),
            "tasks_with_two_executions": sum(1 for n in executions.values() if n > 1),
            "job_starts": sum(attempts.values()),
            "tasks_with_a_restarted_job": sum(1 for n in attempts.values() if n > 1),
            "completed_events_received": sum(completed_events.values()),
            "tasks_with_two_distinct_completed_events": sum(
                1 for n in distinct_completed.values() if n > 1
            ),
            "completed_tasks_without_event": len(set(completed) - set(completed_events)),
            "recoveries": int(recoveries[0]) if recoveries else 0,
        }

    def stop_all(self) -> None:
        """Stop the pipeline processes, their jobs, and the private stack."""
        for proc in self.procs:
            proc.stop()
        try:
            with psycopg.connect(self.url, connect_timeout=3) as conn:
                pids = conn.execute(
                    "SELECT pid FROM job_executions WHERE state = 'running' AND pid IS NOT NULL"
                ).fetchall()
            for (pid,) in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        except psycopg.Error:
            pass
        stop_stack(self.stack, lambda _message: None)

    t0: float = 0.0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--submit-over", type=float, default=0.0, help="seconds (0: a burst)")
    parser.add_argument("--fault-window", type=float, default=240.0, help="seconds of faults")
    parser.add_argument("--fault-every", type=float, nargs=2, default=(15.0, 25.0))
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated kinds")
    parser.add_argument("--workers", type=int, default=1, help="processes of each kind")
    parser.add_argument("--job-concurrency", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument(
        "--queued-deadline", type=float, default=60.0, help="REAPER_QUEUED_TIMEOUT for the run"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port-base", type=int, default=56100)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--library", type=Path, default=LIBRARY, help="a demo move bundle")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    args.faults = [f for f in args.faults.split(",") if f]
    unknown = sorted(set(args.faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown fault kinds {unknown}; choose from {', '.join(FAULTS)}")
    return args


def table(result: dict[str, Any]) -> str:
    """The figures as an aligned text table."""
    rows = [(k, v) for k, v in result["counts"].items() if not isinstance(v, dict | list)]
    rows += [
        ("faults injected", len(result["faults"])),
        ("drain after faults (s)", result["drain_s"]),
        ("dead letters", sum(result["dead_letters"].values())),
        ("verdict", "PASS" if result["ok"] else "FAIL"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.replace('_', ' '):<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    """Run it; 0 when nothing was lost or doubled."""
    args = parse(argv)
    scratch = Path(tempfile.mkdtemp(prefix="choreo-chaos-"))
    scratch.chmod(0o755)  # PostgreSQL runs as its own OS user and must reach its data dir
    stack = StackSettings(
        stack_dir=scratch / "stack",
        pg_port=args.port_base,
        pubsub_port=args.port_base + 1,
        gcs_port=args.port_base + 2,
    )
    chaos = Chaos(args, scratch, stack, rng=random.Random(args.seed))

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds into the finally below: the stack is stopped

    signal.signal(signal.SIGTERM, on_term)
    try:
        chaos.set_up()
        chaos.say(f"pipeline up; {args.requests} requests, faults for {args.fault_window:.0f} s")
        time.sleep(5)  # the workers load their libraries
        chaos.t0 = time.monotonic()
        stop = threading.Event()
        injector = threading.Thread(target=chaos.inject, args=(stop,), daemon=True)
        injector.start()
        watching = threading.Event()
        watcher = threading.Thread(target=chaos.watch, args=(watching,), daemon=True)
        watcher.start()
        task_ids = chaos.submit()
        injector.join()
        faults_over = time.monotonic()
        chaos.say("faults over; draining")
        drained = chaos.drain(task_ids)
        time.sleep(3)
        watching.set()
        watcher.join(30)
        chaos.collect()
        counts = chaos.count(task_ids)
        dead = chaos.dead_letters()
    finally:
        chaos.stop_all()
    ok = (
        counts["lost"] == 0
        and counts["tasks_planned_twice"] == 0
        and counts["video_objects_without_completed_task"] == 0
        and counts["tasks_with_two_executions"] == 0
        and counts["tasks_with_two_distinct_completed_events"] == 0
    )
    result = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "counts": counts,
        "faults": chaos.faults,
        "dead_letters": dead,
        "drain_s": None if drained is None else round(max(0.0, drained - faults_over), 1),
        "total_s": round(time.monotonic() - chaos.t0, 1),
        "ok": ok,
    }
    print(table(result))
    out = args.out or ROOT / "bench" / "results" / f"chaos-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"kept {scratch}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
