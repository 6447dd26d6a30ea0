"""Request producers on PostgreSQL and the Pub/Sub emulator: API, CLI and HTTP (a real server)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from google.cloud import pubsub_v1
from psycopg_pool import ConnectionPool
from typer.testing import CliRunner

from choreo_cli.main import app
from lifecycle.blueprints import insert_blueprint
from lifecycle.task_store import create_task, get_task
from producers.pubsub_publisher import PubSubPublisher
from producers.request_http import create_producer_app
from producers.requests import (
    RequestRejected,
    TaskConflict,
    submit_description_request,
    submit_song_request,
)
from producers.song_registry import GcsObjectReader
from schemas.blueprint import Practice
from schemas.event_codec import from_pubsub
from tests.fixtures.blueprints import MovePlan, build_blueprint
from tests.fixtures.pubsub import PubSubProject

pytestmark = pytest.mark.integration

TOPIC = "choreography-requests"
READER = "requests-reader"


@pytest.fixture
def requests_topic(pubsub_project: PubSubProject) -> PubSubProject:
    """The requests topic with a subscription to read back what was published."""
    pubsub_project.publisher.create_topic(name=pubsub_project.topic_path(TOPIC))
    pubsub_project.subscriber.create_subscription(
        request={
            "name": pubsub_project.subscription_path(READER),
            "topic": pubsub_project.topic_path(TOPIC),
            "ack_deadline_seconds": 10,
        }
    )
    return pubsub_project


@pytest.fixture
def publisher(requests_topic: PubSubProject) -> Iterator[PubSubPublisher]:
    """The real Pub/Sub publisher adapter bound to this test's project."""
    options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    client = pubsub_v1.PublisherClient(publisher_options=options)
    adapter = PubSubPublisher(client, requests_topic.project_id)
    yield adapter
    adapter.close()


def published(project: PubSubProject, *, settle_s: float = 0.5) -> list[Any]:
    """Every message on the reader subscription (acknowledged), after a short settle."""
    time.sleep(settle_s)
    path = project.subscription_path(READER)
    out: list[Any] = []
    while True:
        response = project.subscriber.pull(
            request={"subscription": path, "max_messages": 50, "return_immediately": True}
        )
        if not response.received_messages:
            return out
        out += [
            from_pubsub(m.message.data, dict(m.message.attributes))
            for m in response.received_messages
        ]
        project.subscriber.acknowledge(
            request={
                "subscription": path,
                "ack_ids": [m.ack_id for m in response.received_messages],
            }
        )


def add_song(pool: ConnectionPool, song_id: str) -> None:
    """Put a song in the catalogue."""
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO songs (song_id, audio_uri, content_sha256) VALUES (%s, %s, %s)",
            (
                song_id,
                f"gs://choreo-songs/{song_id}.mp3",
                song_id.encode().hex().ljust(64, "0")[:64],
            ),
        )


def counts(pool: ConnectionPool) -> tuple[int, int]:
    """(tasks, outbox rows)."""
    with pool.connection() as conn:
        tasks = conn.execute("SELECT count(*) FROM tasks").fetchone()
        outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()
    assert tasks is not None and outbox is not None
    return int(tasks[0]), int(outbox[0])


def test_song_request_creates_a_queued_task_and_one_event(
    pool: ConnectionPool, publisher: PubSubPublisher, requests_topic: PubSubProject
) -> None:
    """Path 1 stores a queued task and publishes exactly one request event carrying it."""
    add_song(pool, "song-abc")
    task_id = submit_song_request(
        pool, song_id="song-abc", constraints={"style": "hip-hop"}, publisher=publisher
    )
    with pool.connection() as conn:
        task = get_task(conn, task_id)
    assert (task.state, task.path) == ("queued", "song")
    [delivery] = published(requests_topic)
    event = delivery.event
    assert event.data.task_id == task_id
    assert event.data.song is not None and event.data.song.song_id == "song-abc"
    assert event.data.constraints is not None and event.data.constraints.style == "hip-hop"


def test_description_request_creates_a_queued_task_and_one_event(
    pool: ConnectionPool, publisher: PubSubPublisher, requests_topic: PubSubProject
) -> None:
    """Path 2 stores a queued task and publishes exactly one event with the description."""
    task_id = submit_description_request(
        pool, "energetic hip-hop for beginners, 2 minutes", publisher=publisher
    )
    with pool.connection() as conn:
        assert get_task(conn, task_id).path == "describe"
    [delivery] = published(requests_topic)
    assert delivery.event.data.description == "energetic hip-hop for beginners, 2 minutes"
    assert delivery.ordering_key is None or delivery.ordering_key == task_id


def test_a_bad_request_names_the_fields_and_stores_nothing(
    pool: ConnectionPool, publisher: PubSubPublisher, requests_topic: PubSubProject
) -> None:
    """Invalid constraints and an unknown song are rejected by field; no task, no outbox row."""
    with pytest.raises(RequestRejected) as rejected:
        submit_song_request(
            pool,
            audio_uri="gs://choreo-songs/a.mp3",
            constraints={"difficulty": "expert", "style": "Hip Hop"},
            publisher=publisher,
        )
    assert {e.field for e in rejected.value.errors} == {
        "constraints.difficulty",
        "constraints.style",
    }
    with pytest.raises(RequestRejected) as unknown:
        submit_song_request(pool, song_id="no-such-song", publisher=publisher)
    assert [e.field for e in unknown.value.errors] == ["song.song_id"]
    assert counts(pool) == (0, 0)
    assert published(requests_topic, settle_s=0.2) == []


def test_a_duplicate_submission_is_idempotent(
    pool: ConnectionPool, publisher: PubSubPublisher, requests_topic: PubSubProject
) -> None:
    """The same request with the same task id twice gives one task and one event; a different
    request with that id is a conflict."""
    first = submit_song_request(
        pool, audio_uri="gs://choreo-songs/x.mp3", task_id="t-dup", publisher=publisher
    )
    again = submit_song_request(
        pool, audio_uri="gs://choreo-songs/x.mp3", task_id="t-dup", publisher=publisher
    )
    assert first == again == "t-dup"
    with pytest.raises(TaskConflict):
        submit_song_request(pool, audio_uri="gs://choreo-songs/other.mp3", task_id="t-dup")
    assert counts(pool) == (1, 1)
    assert len(published(requests_topic)) == 1


def test_the_cli_prints_the_task_id(
    pool: ConnectionPool,
    requests_topic: PubSubProject,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`choreo request describe --json` submits and prints the task id, with the practice
    renditions --practice asks for; bad input (a bad --practice word too) exits 1."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PUBSUB_PROJECT_ID", requests_topic.project_id)
    result = CliRunner().invoke(
        app,
        ["request", "describe", "slow salsa", "--difficulty", "beginner", "--json",
         "--practice", "mirror, 0.5x,page"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    task_id = json.loads(result.stdout)["task_id"]
    [delivery] = published(requests_topic)
    assert delivery.event.data.task_id == task_id
    output = delivery.event.data.constraints.output
    assert output.practice == Practice(mirror=True, slow=[0.5], page=True)
    assert (output.width, output.fps) == (None, None)
    bad = CliRunner().invoke(
        app, ["request", "song", "--song-id", "x", "--audio-uri", "gs://bkt/a"]
    )
    assert bad.exit_code == 1
    assert "song: " in bad.output
    word = CliRunner().invoke(app, ["request", "song", "--song-id", "x", "--practice", "mirrored"])
    assert word.exit_code == 1 and "Traceback" not in word.output
    assert "error: --practice: 'mirrored' is not a practice rendition" in word.output
    assert counts(pool) == (1, 1)


class Server:
    """A uvicorn server on a free port in a background thread."""

    def __init__(self, asgi_app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            asgi_app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def producer_http(
    pool: ConnectionPool, publisher: PubSubPublisher, gcs_client: Any
) -> Iterator[httpx.Client]:
    """The producer app served by uvicorn; an HTTP client on it."""
    producer = create_producer_app(
        pool, publisher=publisher, reader=GcsObjectReader(gcs_client), songs_bucket="unused"
    )
    with Server(producer) as client:
        yield client


def test_http_accepts_a_request_with_202(
    producer_http: httpx.Client, pool: ConnectionPool, requests_topic: PubSubProject
) -> None:
    """POST /requests answers 202 with the task id, and the event is published."""
    response = producer_http.post(
        "/requests",
        json={"path": "describe", "description": "fast house", "constraints": {"energy": "high"}},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["created"] is True and body["published"] is True
    [delivery] = published(requests_topic)
    assert delivery.event.data.task_id == body["task_id"]


def test_http_rejects_bad_requests_with_field_errors(
    producer_http: httpx.Client, pool: ConnectionPool
) -> None:
    """POST /requests answers 400 with a list of {field, message}, 409 on a taken task id."""
    bad = producer_http.post(
        "/requests", json={"path": "song", "song": {}, "constraints": {"fps": 1}}
    )
    assert bad.status_code == 400
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"song", "constraints.fps"}
    assert all(e["message"] for e in bad.json()["errors"])
    not_json = producer_http.post(
        "/requests", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["errors"][0]["field"] == "body"
    ok = {"task_id": "t-409", "path": "describe", "description": "waltz"}
    assert producer_http.post("/requests", json=ok).status_code == 202
    taken = producer_http.post("/requests", json={**ok, "description": "tango"})
    assert taken.status_code == 409
    assert taken.json()["errors"][0]["field"] == "task_id"
    assert counts(pool) == (1, 1)


ODD_REQUESTS = {
    "nul-in-description": (
        b'{"path": "describe", "description": "salsa\\u0000now"}',
        "description",
        "control character NUL (U+0000)",
    ),
    "escape-in-client": (
        b'{"path": "describe", "description": "salsa", "client": {"name": "a\\u001b[31m"}}',
        "client.name",
        "control character ESC (U+001B)",
    ),
    "lone-surrogate": (
        b'{"path": "describe", "description": "\\ud800"}',
        "description",
        "lone surrogate U+D800",
    ),
    "huge-integer": (
        b'{"path": "describe", "description": "x", "constraints": {"duration_s": 1'
        + b"0" * 5000
        + b"}}",
        "constraints.duration_s",
        "out of range",
    ),
    "nan": (
        b'{"path": "describe", "description": "x", "constraints": {"duration_s": NaN}}',
        "constraints.duration_s",
        "not a finite number",
    ),
    "deep": (b"[" * 10_000 + b"]" * 10_000, "body", "nested more than 64 levels"),
    "home-key": (
        b'{"path": "song", "song": {"audio_uri": "~/.ssh/id_rsa"}}',
        "song.audio_uri",
        "home-directory prefixes",
    ),
}


@pytest.mark.parametrize("case", ODD_REQUESTS, ids=str)
def test_odd_characters_and_numbers_are_a_400_naming_the_field(
    case: str, producer_http: httpx.Client, pool: ConnectionPool
) -> None:
    """NUL, control characters, surrogates, huge numbers, deep nesting: 400, nothing stored."""
    body, field, hint = ODD_REQUESTS[case]
    response = producer_http.post(
        "/requests", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 413), response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and hint in e["message"] for e in errors), errors
    assert counts(pool) == (0, 0)


def planned_parent(pool: ConnectionPool, task_id: str = "t-parent") -> None:
    """A task with a stored 4-bar blueprint (four 1-bar moves), as the consumer leaves it."""
    document = build_blueprint(
        [MovePlan(clip_uri=f"moves/m{i}.mp4", counts=4) for i in range(4)], task_id=task_id
    )
    with pool.connection() as conn:
        create_task(conn, task_id, "song", {"path": "song"})
        insert_blueprint(conn, task_id, "1", document)


def test_the_cli_revises_a_planned_task(
    pool: ConnectionPool,
    requests_topic: PubSubProject,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`choreo request revise` publishes a revision (--no-allow-repeats an override like
    --style) and prints its task id (exit 0); an unknown
    parent, bad BARS and bars past the blueprint exit 1 naming the problem, no traceback."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PUBSUB_PROJECT_ID", requests_topic.project_id)
    planned_parent(pool)
    ok = CliRunner().invoke(
        app,
        ["request", "revise", "t-parent", "--keep", "1-2", "--redo", "3", "--style", "pop",
         "--no-allow-repeats"],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    task_id = ok.stdout.strip()
    [delivery] = published(requests_topic)
    revision = delivery.event.data
    assert delivery.event.type == "com.choreo.choreography.revision.requested.v1"
    assert (revision.task_id, revision.parent_task_id) == (task_id, "t-parent")
    assert [s.text() for s in revision.redo] == ["3"] and revision.constraints.style == "pop"
    assert revision.constraints.allow_repeats is False
    with pool.connection() as conn:
        task = get_task(conn, task_id)
    assert task.path == "revise" and task.request["parent_task_id"] == "t-parent"
    refusals = [
        (["t-none", "--redo", "1"], "error: parent_task_id: no task 't-none'"),
        (["t-parent", "--redo", "2-x"], "error: redo: '2-x' is not a bar or a range of bars"),
        (["t-parent", "--keep", "1-3", "--redo", "3-4"], "error: redo: bars 3 are in both"),
        (["t-parent", "--redo", "4-9"], "--redo bars 5-9 are past the end of task"),
        (["t-parent", "--redo", "1", "--difficulty", "pro"], "error: constraints.difficulty"),
    ]
    for args, message in refusals:
        result = CliRunner().invoke(app, ["request", "revise", *args])
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    assert counts(pool) == (2, 1)


def test_http_accepts_a_revision_with_202_and_refuses_a_bad_one(
    producer_http: httpx.Client, pool: ConnectionPool, requests_topic: PubSubProject
) -> None:
    """POST /revisions answers 202 and publishes the revision; 400 names the field."""
    planned_parent(pool)
    body = {"parent_task_id": "t-parent", "keep": [{"first": 1, "last": 1}], "redo": "2-4"}
    response = producer_http.post("/revisions", json=body)
    assert response.status_code == 202, response.text
    [delivery] = published(requests_topic)
    assert delivery.event.data.task_id == response.json()["task_id"]
    bad = producer_http.post("/revisions", json={"parent_task_id": "t-parent", "redo": "0"})
    assert bad.status_code == 400
    assert bad.json()["errors"] == [
        {"field": "redo", "message": "bar 0 does not exist (bars are numbered from 1)"}
    ]
