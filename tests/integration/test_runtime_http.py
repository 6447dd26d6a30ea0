"""The push / Eventarc HTTP entrypoint, served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from psycopg_pool import ConnectionPool

from consumers.runtime.handler import EventHandler, EventProcessor
from consumers.runtime.http_app import create_app
from lifecycle.rejections import list_rejections
from lifecycle.task_store import get_task
from schemas.errors import InvalidInput, TransientError
from schemas.event_codec import (
    to_eventarc_http,
    to_http_binary,
    to_http_structured,
    to_pubsub,
    to_push_body,
)
from schemas.event_envelope import ChoreoEvent
from schemas.task_state import State
from tests.fixtures.messaging import (
    EFFECT_CONSUMER,
    Served,
    create_queued_task,
    effect_count,
    effect_handler,
    free_port,
    requested_event,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "google-cloudevents"
PUSH_SAMPLES = sorted(
    [
        *(CORPUS / "examples/binary/pubsub").glob("*.json"),
        *(CORPUS / "testdata/google/events/cloud/pubsub/v1").glob("*.json"),
    ]
)
SUBSCRIPTION = "projects/p/subscriptions/blueprint-consumer"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def all_forms(event: ChoreoEvent) -> dict[str, tuple[dict[str, str], bytes]]:
    """Every HTTP form one event can arrive in."""
    push = {"message_id": "m-1", "subscription": SUBSCRIPTION, "publish_time": NOW}
    return {
        "binary": to_http_binary(event),
        "structured": to_http_structured(event),
        "push-binary": to_push_body(event, **push),
        "push-structured": to_push_body(event, structured=True, **push),
        "eventarc": to_eventarc_http(event, topic="choreography-requests", **push),
    }


def test_every_form_reaches_the_handler_as_one_event(
    serve: Callable[..., Served], pool: ConnectionPool
) -> None:
    """Binary, structured, push and Eventarc forms of one event: one effect, then duplicates."""
    event = requested_event("t-forms")
    with pool.connection() as conn:
        create_queued_task(conn, "t-forms")
    served = serve()
    outcomes = {}
    for name, (headers, body) in all_forms(event).items():
        response = served.post(headers, body)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["event_id"] == event.id
        outcomes[name] = response.json()["outcome"]
    assert outcomes["binary"] == "processed"
    assert set(list(outcomes.values())[1:]) == {"duplicate"}
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 1


@pytest.mark.parametrize("sample", PUSH_SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("wrapper", ["push", "eventarc"])
def test_real_push_and_eventarc_shapes_carrying_our_event_decode(
    sample: Path, wrapper: str, serve: Callable[..., Served], pool: ConnectionPool
) -> None:
    """Google's sample MessagePublishedData bodies, carrying one of our messages, are handled."""
    event = requested_event("t-sample")
    with pool.connection() as conn:
        create_queued_task(conn, "t-sample")
    body = json.loads(sample.read_text())
    data, attributes = to_pubsub(event)
    body["message"]["data"] = base64.b64encode(data).decode()
    body["message"]["attributes"] = attributes
    headers = {"content-type": "application/json"}
    if wrapper == "eventarc":
        headers |= {
            "ce-id": "m-1",
            "ce-source": "//pubsub.googleapis.com/projects/p/topics/choreography-requests",
            "ce-specversion": "1.0",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-time": "2021-02-05T04:06:14.109Z",
        }
    response = serve().post(headers, json.dumps(body).encode())
    assert (response.status_code, response.json()["outcome"]) == (200, "processed")
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 1


MALFORMED = {
    "not-json": ({"content-type": "application/json"}, b"{nope", "body is not valid JSON"),
    "bad-base64": (
        {"content-type": "application/json"},
        b'{"message": {"data": "***", "messageId": "1"}, "subscription": "s"}',
        "message.data is not valid base64",
    ),
    "unknown-type": (
        {"ce-id": "1", "ce-source": "//t", "ce-specversion": "1.0", "ce-type": "com.x.v1"},
        b"{}",
        "unknown event type com.x.v1",
    ),
    "invalid-payload": (
        {
            "ce-id": "1",
            "ce-source": "//t",
            "ce-specversion": "1.0",
            "ce-type": "com.choreo.choreography.requested.v1",
            "ce-time": "2026-01-01T00:00:00Z",
            "content-type": "application/json",
        },
        b'{"path": "song"}',
        "data.task_id",
    ),
    "no-cloudevent": ({"content-type": "application/json"}, b'{"hello": 1}', "not a CloudEvent"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=str)
def test_malformed_body_is_acked_recorded_and_has_no_effect(
    case: str, serve: Callable[..., Served], pool: ConnectionPool
) -> None:
    """Poison: 200 (a retry would fail the same way), its reason, a rejected_messages row."""
    headers, body, reason = MALFORMED[case]
    served = serve()
    response = served.post(headers, body)
    assert response.status_code == 200
    assert response.json()["outcome"] == "undecodable"
    assert reason in response.json()["reason"]
    assert served.post(headers, body).status_code == 200  # the same poison again
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM processed_events").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        [row] = list_rejections(conn)
    assert (row.receiver, row.transport, row.deliveries) == (EFFECT_CONSUMER, "http /", 2)
    assert reason in row.reason
    assert row.body_bytes == len(body)
    assert "authorization" not in row.headers


def test_oversize_body_is_acked_and_recorded_without_being_read(
    pool: ConnectionPool,
) -> None:
    """A declared or streamed body over HTTP_MAX_BODY_BYTES: 200, recorded with its size."""
    app = create_app(EventProcessor(pool, effect_handler()), None, max_body_bytes=1000)
    with Served(app) as served:
        declared = served.post({"content-type": "application/json"}, b"x" * 5000)

        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b"y" * 100

        streamed = requests.post(served.url + "/", data=chunks(), timeout=10)
    assert declared.status_code == streamed.status_code == 200
    assert "body of 5000 bytes exceeds HTTP_MAX_BODY_BYTES=1000" in declared.json()["reason"]
    assert "more than 1000 bytes" in streamed.json()["reason"]
    with pool.connection() as conn:
        rows = list_rejections(conn)
    declared_row, streamed_row = sorted(rows, key=lambda row: row.id)
    assert (declared_row.body_bytes, declared_row.excerpt) == (5000, "")
    assert streamed_row.body_bytes > 1000
    assert streamed_row.excerpt.startswith("yyyy")


def test_poison_is_retried_when_it_cannot_be_recorded(database_url: str) -> None:
    """With the database gone, poison gets 503 (the transport retries) instead of vanishing."""
    dead = ConnectionPool(
        database_url.replace(database_url.split("@")[1].split("/", maxsplit=1)[0], "127.0.0.1:9"),
        min_size=0,
        max_size=1,
        timeout=1,
        open=True,
    )
    try:
        with Served(create_app(EventProcessor(dead, effect_handler()))) as served:
            response = served.post({"content-type": "application/json"}, b"{nope")
    finally:
        dead.close()
    assert response.status_code == 503
    assert "recording the rejection failed" in response.json()["reason"]


def _raising(error: Exception) -> EventHandler:
    def fail(_delivery: Any) -> None:
        raise error

    return effect_handler(fail)


@pytest.mark.parametrize(
    ("error", "status", "outcome"),
    [
        (TransientError("database busy"), 503, "retry"),
        (RuntimeError("a bug"), 500, "retry"),
        (InvalidInput("song-1 has no beats"), 200, "failed-permanently"),
    ],
    ids=["transient", "unexpected", "permanent"],
)
def test_handler_errors_map_to_status_codes(
    error: Exception, status: int, outcome: str, serve: Callable[..., Served], pool: ConnectionPool
) -> None:
    """Transient -> 503, unexpected -> 500 (both retried), permanent -> 200 with the task failed."""
    event = requested_event("t-err")
    with pool.connection() as conn:
        create_queued_task(conn, "t-err")
    response = serve(_raising(error)).post(*to_http_binary(event))
    assert (response.status_code, response.json()["outcome"]) == (status, outcome)
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 0
        state = get_task(conn, "t-err").state
    assert state == (State.FAILED if status == 200 else State.QUEUED)


def test_sigterm_drains_the_in_flight_request_then_exits(
    database_url: str, pool: ConnectionPool, tmp_path: Path
) -> None:
    """On SIGTERM the server finishes the running request (200) and exits cleanly."""
    event = requested_event("t-drain")
    with pool.connection() as conn:
        create_queued_task(conn, "t-drain")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HTTP_HOST": "127.0.0.1",
        "PORT": str(port),
        "RUNTIME_TEST_MARKER": str(tmp_path / "entered"),
        "RUNTIME_TEST_SLEEP": "2",
        "OUTBOX_RELAY_ENABLED": "false",
    }
    command = [sys.executable, "-m", "consumers.runtime", "http"]
    server = subprocess.Popen(
        [*command, "tests.fixtures.messaging:subprocess_handler"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    result: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert health.status_code == 200

        def send() -> None:
            headers, body = to_http_binary(event)
            url = f"http://127.0.0.1:{port}/"
            result["response"] = requests.post(url, headers=headers, data=body, timeout=20)

        sender = threading.Thread(target=send)
        sender.start()
        while not (tmp_path / "entered").exists():
            assert time.monotonic() < deadline + 30, "handler never started"
            time.sleep(0.02)
        server.send_signal(signal.SIGTERM)
        sender.join(20)
        assert server.wait(20) == 0
    finally:
        server.kill()
    assert result["response"].status_code == 200
    assert result["response"].json()["outcome"] == "processed"
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 1
