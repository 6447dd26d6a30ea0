"""One-shot operator jobs the images run: ``python -m producers.ops migrate|reap|topology``.

- ``migrate``: apply every pending schema migration (safe to run twice, or from two processes).
- ``reap [--publish]``: fail every task past its state's deadline (``REAPER_*_TIMEOUT``); with
  ``--publish``, one outbox relay pass after, so ``task.failed`` goes out at once.
- ``topology [--no-buckets]``: create the topics, subscriptions (and buckets); exit 3 on drift.

The Cloud Run migrate and reaper jobs (``infra/terraform``) and compose's ``setup`` run these in a
service image, which carries no command line. ``choreo db migrate``, ``choreo tasks reap`` and
``choreo topology apply`` are the same operations with a friendlier face. A bad configuration or
an unreachable service is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lifecycle.database import open_pool
from lifecycle.migrations import migrate
from lifecycle.task_reaper import TaskReaper
from producers.outbox_relay import relay_once
from producers.pubsub_publisher import build_pubsub_publisher
from producers.topology_apply import apply_all
from schemas.errors import ChoreoError
from schemas.logs import configure_logging
from schemas.settings import (
    CoreSettings,
    DatabaseSettings,
    PublisherSettings,
    PubSubSettings,
    ReaperSettings,
    StorageSettings,
)
from schemas.topology import build_topology

EXIT_ERROR = 1
EXIT_DRIFT = 3


def run_migrate() -> int:
    """Apply pending migrations; print each one."""
    database = DatabaseSettings()
    applied = migrate(database.database_url, connect_timeout_s=database.connect_timeout_s)
    for migration in applied:
        print(f"applied {migration.label}")
    if not applied:
        print("database schema is up to date: nothing to apply")
    return 0


def run_reap(*, publish: bool, dry_run: bool = False) -> int:
    """One reaper pass (``dry_run``: only list); with ``publish``, one relay pass after it when
    anything was failed. ``choreo tasks reap`` runs this too."""
    pool = open_pool(DatabaseSettings(), name="choreo-reaper")
    try:
        reaper = TaskReaper.from_settings(pool, ReaperSettings())
        stale = reaper.find_stale() if dry_run else reaper.reap()
        verb = "would fail" if dry_run else "failed"
        for task in stale:
            print(f"{verb} {task.task_id}  {task.state} -> failed ({task.stage}): {task.reason}")
        print(f"{len(stale)} task(s) {verb}" if stale else "no stale tasks")
        if publish and stale and not dry_run:
            publisher = build_pubsub_publisher(PubSubSettings(), PublisherSettings())
            try:
                done = relay_once(pool, publisher)
            finally:
                publisher.close()
            print(f"published {done.published}, failed {done.failed}, deferred {done.deferred}")
    finally:
        pool.close()
    return 0


def run_topology(*, buckets: bool) -> int:
    """Apply the topology; 3 when drift remains."""
    pubsub, storage = PubSubSettings(), StorageSettings()
    report = apply_all(
        build_topology(storage),
        pubsub.project_id,
        pubsub_host=pubsub.emulator_host,
        storage_host=storage.emulator_host if buckets else None,
    )
    for line in report.lines():
        print(line)
    return EXIT_DRIFT if report.drifted else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the operation and run it; a ChoreoError is one line and exit 1."""
    parser = argparse.ArgumentParser(prog="python -m producers.ops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply pending schema migrations")
    reap = commands.add_parser("reap", help="fail tasks whose worker was lost")
    reap.add_argument("--publish", action="store_true", help="then one outbox relay pass")
    topology = commands.add_parser("topology", help="create topics, subscriptions and buckets")
    topology.add_argument("--no-buckets", action="store_true", help="skip the buckets")
    args = parser.parse_args(argv)
    core = CoreSettings()
    configure_logging(core.log_level, json_lines=core.log_json)
    try:
        if args.command == "migrate":
            return run_migrate()
        if args.command == "reap":
            return run_reap(publish=args.publish)
        return run_topology(buckets=not args.no_buckets)
    except ChoreoError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
