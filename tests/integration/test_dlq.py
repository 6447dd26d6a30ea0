"""Dead-letter tooling on the Pub/Sub emulator and PostgreSQL: list, replay, dry run, cap, lock,
crash safety and purge, with messages really dead-lettered by a subscription that gave up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from producers.dlq import DeadLetterQueue
from producers.dlq_replay import ReplayOptions, audit_rows, replay, subscription_lock
from producers.pubsub_publisher import PubSubPublisher
from schemas.event_codec import from_pubsub, new_event, to_pubsub
from schemas.events import (
    REVISION_REQUESTED_V1,
    SOURCE_PRODUCER,
    ChoreographyRequested,
    EventPayload,
    RevisionRequested,
    SongRef,
)
from schemas.topology import build_topology
from tests.fixtures.pubsub import PubSubProject

pytestmark = pytest.mark.integration

TOPIC = "choreography-requests"
DEAD_TOPIC = "choreography-requests-dead-letter"
CONSUMER = "blueprint-consumer"
DEAD_SUB = "choreography-requests-dead-letter-sub"
OBSERVER = "replay-observer"
ROOT = Path(__file__).resolve().parents[2]


class Emulator:
    """One test's topics and subscriptions, named as in the topology, with short deadlines."""

    def __init__(self, project: PubSubProject) -> None:
        self.project = project
        self.publisher = _publisher(project.project_id)
        sub = project.subscriber
        for topic in (TOPIC, DEAD_TOPIC):
            project.publisher.create_topic(name=project.topic_path(topic))
        sub.create_subscription(
            request={
                "name": project.subscription_path(CONSUMER),
                "topic": project.topic_path(TOPIC),
                "ack_deadline_seconds": 10,
                "dead_letter_policy": {
                    "dead_letter_topic": project.topic_path(DEAD_TOPIC),
                    "max_delivery_attempts": 5,
                },
            }
        )
        # 10 s (the minimum) so a lease left by a killed replay expires within the test.
        sub.create_subscription(
            request={
                "name": project.subscription_path(DEAD_SUB),
                "topic": project.topic_path(DEAD_TOPIC),
                "ack_deadline_seconds": 10,
            }
        )

    def publish(
        self,
        task_id: str,
        extra: dict[str, str] | None = None,
        *,
        payload: EventPayload | None = None,
    ) -> dict[str, Any]:
        """Publish a request event (or ``payload``) with extra attributes; what went on the
        wire."""
        payload = payload or ChoreographyRequested(
            task_id=task_id,
            path="song",
            song=SongRef(song_id="song-1"),
            requested_at=datetime.now(UTC),
        )
        data, attributes = to_pubsub(new_event(payload, source=SOURCE_PRODUCER))
        attributes.update(extra or {})
        self.publisher.publish_raw(TOPIC, data, attributes, task_id)
        return {"data": data, "attributes": attributes, "ordering_key": task_id}

    def poison(self, count: int) -> None:
        """Nack every delivery on the consumer subscription until ``count`` were dead-lettered."""
        # The emulator forwards a message that used its attempts on the next pull of its
        # subscription, so keep pulling (and nacking) until the dead letters are all there.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            received = self.pull(CONSUMER)
            if received:
                self.release(CONSUMER, received)
            elif len(self.wait_for(DEAD_SUB, count, timeout_s=0.3, check=False)) >= count:
                return
        pytest.fail(f"{count} message(s) were not dead-lettered within 60 s")

    def release(self, subscription: str, received: list[Any]) -> None:
        """Nack ``received`` (deadline 0): delivered again at once."""
        self.project.subscriber.modify_ack_deadline(
            request={
                "subscription": self.project.subscription_path(subscription),
                "ack_ids": [m.ack_id for m in received],
                "ack_deadline_seconds": 0,
            }
        )

    def pull(self, subscription: str, *, ack: bool = False) -> list[Any]:
        """One immediate pull; acknowledged when ``ack``."""
        path = self.project.subscription_path(subscription)
        response = self.project.subscriber.pull(
            request={"subscription": path, "max_messages": 50, "return_immediately": True}
        )
        received = list(response.received_messages)
        if ack and received:
            self.project.subscriber.acknowledge(
                request={"subscription": path, "ack_ids": [m.ack_id for m in received]}
            )
        return received

    def wait_for(
        self, subscription: str, count: int, *, timeout_s: float = 30, check: bool = True
    ) -> list[Any]:
        """Pull until ``count`` messages are held (then release them); fail after ``timeout_s``."""
        held: dict[str, Any] = {}
        deadline = time.monotonic() + timeout_s
        while len(held) < count and time.monotonic() < deadline:
            for message in self.pull(subscription):
                held[message.message.message_id] = message
            time.sleep(0.1)
        if held:
            self.release(subscription, list(held.values()))
        assert not check or len(held) >= count, (
            f"{subscription}: {len(held)} of {count} messages arrived"
        )
        return list(held.values())

    def observe(self) -> None:
        """Subscribe an observer to the source topic (sees replays, not the original)."""
        self.project.subscriber.create_subscription(
            request={
                "name": self.project.subscription_path(OBSERVER),
                "topic": self.project.topic_path(TOPIC),
                "ack_deadline_seconds": 10,
            }
        )

    def queue(self, **kwargs: Any) -> DeadLetterQueue:
        """The replay tool's view of the dead-letter subscription."""
        return DeadLetterQueue(self.project.subscriber, self.project.project_id, DEAD_SUB, **kwargs)


@pytest.fixture
def emulator(pubsub_project: PubSubProject) -> Iterator[Emulator]:
    """Topics and subscriptions for this test in its own emulator project."""
    emulator = Emulator(pubsub_project)
    yield emulator
    emulator.publisher.close()


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection on this test's database, as the replay tool uses."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, database_url: str
) -> dict[str, str]:
    """Environment for `choreo dlq` pointing at this test's project and database."""
    env = {
        "PUBSUB_PROJECT_ID": emulator.project.project_id,
        "DATABASE_URL": database_url,
        "USER": "test-operator",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _publisher(project_id: str) -> PubSubPublisher:
    from google.cloud import pubsub_v1  # noqa: PLC0415

    client = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    return PubSubPublisher(client, project_id)


def _replay(conn: psycopg.Connection, emulator: Emulator, **options: Any) -> Any:
    publisher = _publisher(emulator.project.project_id)
    try:
        return replay(
            conn,
            emulator.queue(),
            publisher,
            build_topology(),
            ReplayOptions(actor="tester", **options),
        )
    finally:
        publisher.close()


def test_list_shows_the_dead_letter_and_leaves_it(emulator: Emulator, cli_env: Any) -> None:
    """`choreo dlq list` shows a dead-lettered message's facts and it is still there after."""
    emulator.publish("task-list", {"x-origin": "test"})
    emulator.poison(1)
    result = CliRunner().invoke(app, ["dlq", "list", DEAD_SUB, "--json"])
    assert result.exit_code == 0, result.output
    import json  # noqa: PLC0415

    [shown] = json.loads(result.output)
    assert shown["task_id"] == "task-list"
    assert shown["event_type"] == "com.choreo.choreography.requested.v1"
    assert shown["source_subscription"] == CONSUMER
    assert shown["delivery_count"] == 5
    assert shown["attributes"]["x-origin"] == "test"
    again = CliRunner().invoke(app, ["dlq", "list", DEAD_SUB])
    assert "1 message(s)" in again.output
    emulator.wait_for(DEAD_SUB, 1)


def test_replay_is_byte_exact_and_the_fixed_handler_processes_it_once(
    emulator: Emulator, conn: psycopg.Connection
) -> None:
    """Replay republishes data, attributes (bookkeeping stripped, counter 1) and ordering key."""
    original = emulator.publish("task-exact", {"x-keep": "me", "Mixed-Case": "v a l"})
    emulator.poison(1)
    emulator.observe()
    report = _replay(conn, emulator)
    assert [t.outcome for t in report.touched] == ["replayed"]
    [copy] = emulator.wait_for(OBSERVER, 1)
    assert copy.message.data == original["data"]
    assert copy.message.ordering_key == "task-exact"
    assert dict(copy.message.attributes) == {**original["attributes"], "choreo-replay-count": "1"}
    assert emulator.pull(DEAD_SUB) == []
    # The fixed handler: decode and acknowledge what the consumer subscription delivers.
    handled = [
        from_pubsub(m.message.data, dict(m.message.attributes))
        for m in emulator.wait_for(CONSUMER, 1)
    ]
    emulator.pull(CONSUMER, ack=True)
    assert [d.event.data.task_id for d in handled] == ["task-exact"]
    time.sleep(0.5)
    assert emulator.pull(CONSUMER) == []
    [row] = audit_rows(conn)
    assert (row["action"], row["outcome"], row["to_topic"]) == ("replay", "replayed", TOPIC)


def test_a_revision_that_always_fails_is_dead_lettered_and_replayed_as_itself(
    emulator: Emulator, cli_env: Any, conn: psycopg.Connection
) -> None:
    """A revision nacked on every delivery (its handling failing transiently, as when storage
    or the database is down) lands on the requests' dead-letter topic; `choreo dlq list` names
    its type and `choreo dlq replay` republishes it byte-exact to choreography-requests, where
    it decodes as the same revision."""
    import json  # noqa: PLC0415

    revision = RevisionRequested.model_validate(
        {
            "task_id": "task-rev",
            "parent_task_id": "task-parent",
            "keep": [{"first": 1, "last": 8}],
            "redo": [{"first": 9, "last": 16}],
            "constraints": {"style": "pop"},
            "requested_at": datetime.now(UTC),
        }
    )
    original = emulator.publish("task-rev", payload=revision)
    emulator.poison(1)
    listed = CliRunner().invoke(app, ["dlq", "list", DEAD_SUB, "--json"])
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.output)
    assert (shown["task_id"], shown["event_type"]) == ("task-rev", REVISION_REQUESTED_V1)
    assert (shown["source_subscription"], shown["delivery_count"]) == (CONSUMER, 5)
    emulator.wait_for(DEAD_SUB, 1)
    emulator.observe()
    replayed = CliRunner().invoke(app, ["dlq", "replay", DEAD_SUB])
    assert replayed.exit_code == 0, replayed.output
    [copy] = emulator.wait_for(OBSERVER, 1)
    assert (copy.message.data, copy.message.ordering_key) == (original["data"], "task-rev")
    again = from_pubsub(copy.message.data, dict(copy.message.attributes))
    assert again.event.type == REVISION_REQUESTED_V1 and again.event.data == revision
    assert emulator.pull(DEAD_SUB) == []
    [row] = audit_rows(conn)
    assert (row["action"], row["outcome"], row["to_topic"]) == ("replay", "replayed", TOPIC)


def test_dry_run_changes_nothing(emulator: Emulator, conn: psycopg.Connection) -> None:
    """A dry run leaves the message in place, publishes nothing and audits `dry-run`."""
    emulator.publish("task-dry")
    emulator.poison(1)
    emulator.observe()
    report = _replay(conn, emulator, dry_run=True)
    assert [t.action for t in report.touched] == ["dry-run"]
    assert emulator.wait_for(DEAD_SUB, 1)
    assert emulator.pull(OBSERVER) == []
    assert [r["action"] for r in audit_rows(conn)] == ["dry-run"]


def test_the_replay_cap_refuses_and_keeps_the_message(
    emulator: Emulator, conn: psycopg.Connection
) -> None:
    """A message replayed `cap` times already is refused, audited `refused` and stays put."""
    emulator.publish("task-capped", {"choreo-replay-count": "3"})
    emulator.publish("task-fresh", {"choreo-replay-count": "2"})
    emulator.poison(2)
    emulator.observe()
    report = _replay(conn, emulator, cap=3)
    outcomes = sorted((t.action, t.outcome.split(" (")[0]) for t in report.touched)
    assert outcomes == [("refused", "replay cap reached"), ("replay", "replayed")]
    [left] = emulator.wait_for(DEAD_SUB, 1)
    assert left.message.ordering_key == "task-capped"
    [copy] = emulator.wait_for(OBSERVER, 1)
    assert copy.message.attributes["choreo-replay-count"] == "3"


def test_a_replay_that_refuses_any_message_exits_4(emulator: Emulator, cli_env: Any) -> None:
    """Refusing part or all of the messages exits 4 and says how many were left in place."""
    emulator.publish("task-capped", {"choreo-replay-count": "3"})
    emulator.publish("task-fresh")
    emulator.poison(2)
    partial = CliRunner().invoke(app, ["dlq", "replay", DEAD_SUB])
    assert partial.exit_code == 4, partial.output
    assert "1 replay, 1 refused" in partial.stdout
    assert "1 of 2 message(s) refused and left in place" in partial.stderr
    emulator.wait_for(DEAD_SUB, 1)
    every = CliRunner().invoke(app, ["dlq", "replay", DEAD_SUB])
    assert every.exit_code == 4, every.output
    assert "1 of 1 message(s) refused" in every.stderr


def test_filters_select_by_type_task_and_attribute(
    emulator: Emulator, conn: psycopg.Connection
) -> None:
    """--task-id and --attr narrow a replay to the matching message only."""
    from producers.dlq import DeadLetterFilter  # noqa: PLC0415

    emulator.publish("task-a", {"batch": "1"})
    emulator.publish("task-b", {"batch": "2"})
    emulator.poison(2)
    selection = DeadLetterFilter(task_id="task-b", attributes={"batch": "2"})
    report = _replay(conn, emulator, selection=selection)
    assert len(report.touched) == 1
    [left] = emulator.wait_for(DEAD_SUB, 1)
    assert left.message.ordering_key == "task-a"


def test_a_second_concurrent_replay_is_refused(
    emulator: Emulator, conn: psycopg.Connection, cli_env: Any, database_url: str
) -> None:
    """While one replay holds the subscription's advisory lock, another exits with status 3."""
    emulator.publish("task-lock")
    emulator.poison(1)
    with (
        psycopg.connect(database_url, autocommit=True) as other,
        subscription_lock(other, emulator.queue()),
    ):
        result = CliRunner().invoke(app, ["dlq", "replay", DEAD_SUB])
    assert result.exit_code == 3, result.output
    assert "another replay or purge" in result.output
    assert emulator.wait_for(DEAD_SUB, 1)
    assert audit_rows(conn) == []


def test_a_replay_killed_between_republish_and_ack_loses_nothing(
    emulator: Emulator, conn: psycopg.Connection, database_url: str
) -> None:
    """SIGKILL after the republish: the copy is out, the dead letter comes back, replay again."""
    emulator.publish("task-crash")
    emulator.poison(1)
    emulator.observe()
    script = textwrap.dedent(
        """
        import os, signal, sys
        import psycopg
        from google.cloud import pubsub_v1
        from producers.topology_apply import pubsub_admin_clients
        from producers.dlq import DeadLetterQueue
        from producers.dlq_replay import ReplayOptions, replay
        from producers.pubsub_publisher import PubSubPublisher
        from schemas.topology import build_topology

        class KilledAfterPublish(PubSubPublisher):
            def publish_raw(self, *args, **kwargs):
                super().publish_raw(*args, **kwargs)
                os.kill(os.getpid(), signal.SIGKILL)

        project, url = sys.argv[1], sys.argv[2]
        _, subscriber = pubsub_admin_clients(os.environ["PUBSUB_EMULATOR_HOST"])
        options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
        client = pubsub_v1.PublisherClient(publisher_options=options)
        publisher = KilledAfterPublish(client, project)
        queue = DeadLetterQueue(subscriber, project, sys.argv[3], lease_s=10)
        with psycopg.connect(url, autocommit=True) as conn:
            replay(conn, queue, publisher, build_topology(), ReplayOptions(actor="crash"))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, emulator.project.project_id, database_url, DEAD_SUB],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == -9, run.stderr
    assert len(emulator.wait_for(OBSERVER, 1)) == 1
    # The killed run never acknowledged: the dead letter is back once its lease expires.
    emulator.wait_for(DEAD_SUB, 1, timeout_s=30)
    report = _replay(conn, emulator)
    assert [t.outcome for t in report.touched] == ["replayed"]
    copies = emulator.wait_for(OBSERVER, 2)
    assert {c.message.ordering_key for c in copies} == {"task-crash"}
    assert emulator.pull(DEAD_SUB) == []


def test_purge_needs_confirmation(
    emulator: Emulator, conn: psycopg.Connection, cli_env: Any
) -> None:
    """Purge refuses a wrong confirmation and deletes (audited) only when confirmed."""
    emulator.publish("task-purge")
    emulator.poison(1)
    refused = CliRunner().invoke(app, ["dlq", "purge", DEAD_SUB], input="nope\n")
    assert refused.exit_code == 1
    assert "nothing purged" in refused.output
    assert emulator.wait_for(DEAD_SUB, 1)
    confirmed = CliRunner().invoke(app, ["dlq", "purge", DEAD_SUB], input=f"{DEAD_SUB}\n")
    assert confirmed.exit_code == 0, confirmed.output
    time.sleep(0.3)
    assert emulator.pull(DEAD_SUB) == []
    [row] = audit_rows(conn)
    assert (row["action"], row["actor"], row["outcome"]) == ("purge", "test-operator", "purged")


def test_a_publish_error_of_any_kind_is_audited_and_keeps_the_message(
    emulator: Emulator, conn: psycopg.Connection
) -> None:
    """Finding 6: a publisher raising a non-choreo error ends the run with a 'failed' audit row,
    and the dead letter stays for the next replay."""

    class Broken:
        def publish_raw(self, *args: Any, **kwargs: Any) -> str:
            raise KeyError("a bug below the publisher")

    emulator.publish("task-broken-pub")
    emulator.poison(1)
    report = replay(
        conn,
        emulator.queue(),
        Broken(),  # type: ignore[arg-type]
        build_topology(),
        ReplayOptions(actor="tester"),
    )
    assert report.failed
    [row] = audit_rows(conn)
    assert (row["action"], row["outcome"]) == ("replay", "failed")
    assert "KeyError" in row["detail"]["error"]
    emulator.wait_for(DEAD_SUB, 1)


def test_the_audit_row_is_written_before_the_ack(
    emulator: Emulator, conn: psycopg.Connection
) -> None:
    """Finding 6: when the message is acknowledged its audit row already says it was replayed."""
    emulator.publish("task-audit-first")
    emulator.poison(1)
    queue = emulator.queue()
    seen_at_ack: list[list[str]] = []
    original_ack = queue.ack

    def ack(message: Any) -> None:
        seen_at_ack.append([row["outcome"] for row in audit_rows(conn)])
        original_ack(message)

    queue.ack = ack  # type: ignore[method-assign]
    publisher = _publisher(emulator.project.project_id)
    try:
        replay(conn, queue, publisher, build_topology(), ReplayOptions(actor="tester"))
    finally:
        publisher.close()
    assert seen_at_ack == [["replayed"]]
