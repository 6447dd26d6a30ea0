"""Property-based fuzzing of the HTTP endpoints against a real database.

The push / Eventarc endpoint must answer every body with 200 (handled, or poison acknowledged
and recorded), never 4xx (Pub/Sub push would retry it to the dead letters) or 5xx; the request
API answers 202, 400 or 409, never 500. Strategies come from ``bench/fuzz.py``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool
from starlette.testclient import TestClient

from bench.fuzz import VALID_REQUEST, documents, http_events, push_wrappers
from consumers.runtime.handler import EventHandler, EventProcessor
from consumers.runtime.http_app import create_app
from lifecycle.rejections import list_rejections
from producers.request_http import create_producer_app
from schemas.text import visible

pytestmark = pytest.mark.integration
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
bodies = st.one_of(
    http_events(),
    push_wrappers().map(lambda body: ([("content-type", "application/json")], body)),
)


def _sendable(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    # HTTP carries header bytes (latin-1 as text); what no client could send is dropped.
    kept = []
    for name, value in headers:
        try:
            raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
        except UnicodeEncodeError:
            continue
        if (
            name.isascii()
            and name
            and all(c.isprintable() and c not in ' :()<>@,;"/[]?={}' for c in name)
        ):
            kept.append((raw_name, raw_value.replace(b"\r", b"").replace(b"\n", b"")))
    return kept


def test_push_endpoint_answers_200_to_anything(pool: ConnectionPool) -> None:
    """Fuzzed events and garbage: 200 every time; every poison answer has a recorded row."""
    # A handler with no effect of its own: fuzzed task ids need no task row, and what is
    # measured is the runtime (decode, dedupe, verdict, poison records), not a consumer.
    handler = EventHandler("fuzz-consumer", "analysis", lambda conn, event, delivery: None)
    client = TestClient(create_app(EventProcessor(pool, handler)))
    outcomes: Counter[str] = Counter()
    poison: set[str] = set()

    @FUZZ
    @given(bodies)
    def check(message: tuple[list[tuple[str, str]], bytes]) -> None:
        headers, body = message
        response = client.post("/", headers=_sendable(headers), content=body)
        assert response.status_code == 200, (response.status_code, response.text)
        outcome = response.json()["outcome"]
        outcomes[outcome] += 1
        if outcome == "undecodable":
            poison.add(response.json()["reason"])

    check()
    assert outcomes["undecodable"] > 0 and outcomes["processed"] + outcomes["duplicate"] > 0
    with pool.connection() as conn:
        recorded = {row.reason for row in list_rejections(conn, limit=10_000)}
    assert {visible(reason.strip())[:2000] for reason in poison} <= recorded


def test_request_api_never_fails_with_a_500(pool: ConnectionPool) -> None:
    """Fuzzed request documents: 202, 400 naming a field, 409 or 413; never a server error."""
    app = create_producer_app(pool, publisher=None, reader=_no_reader(), songs_bucket="songs")
    client = TestClient(app)
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(documents(VALID_REQUEST))
    def check(body: bytes) -> None:
        response = client.post("/requests", content=body)
        assert response.status_code in (202, 400, 409, 413), (response.status_code, response.text)
        statuses[response.status_code] += 1
        if response.status_code == 400:
            assert all(error["field"] and error["message"] for error in response.json()["errors"])

    check()
    assert statuses[202] > 0 and statuses[400] > 0


def _no_reader() -> Any:
    class NoReader:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("the request API reads no objects")

    return NoReader()
