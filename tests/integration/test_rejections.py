"""Poison messages recorded in ``rejected_messages`` and listed by ``choreo rejected``."""

from __future__ import annotations

import json

import pytest
from psycopg_pool import ConnectionPool
from typer.testing import CliRunner

from choreo_cli.main import app
from lifecycle.rejections import (
    EXCERPT_BYTES,
    Rejection,
    kept_headers,
    list_rejections,
    record_rejection,
)

pytestmark = pytest.mark.integration


def _rejection(body: bytes, **changes: object) -> Rejection:
    fields: dict[str, object] = {
        "receiver": "status-recorder",
        "transport": "pull",
        "reason": "unknown event type com.x.v1",
        "body": body,
        "headers": {"ce-type": "com.x.v1"},
        "message_id": "m-1",
    }
    return Rejection(**(fields | changes))  # type: ignore[arg-type]


def test_the_same_bytes_count_deliveries_on_one_row(pool: ConnectionPool) -> None:
    """A sender stuck in a loop bumps one row; other bytes or receivers get their own."""
    with pool.connection() as conn:
        first = record_rejection(conn, _rejection(b"{}"))
        again = record_rejection(conn, _rejection(b"{}", message_id="m-2"))
        other = record_rejection(conn, _rejection(b"[]"))
        elsewhere = record_rejection(conn, _rejection(b"{}", receiver="dispatcher"))
        rows = {row.id: row for row in list_rejections(conn)}
        only = [row.id for row in list_rejections(conn, receiver="dispatcher")]
    assert first == again
    assert len({first, other, elsewhere}) == 3
    assert (rows[first].deliveries, rows[first].message_id) == (2, "m-2")
    assert only == [elsewhere]


def test_unreadable_bodies_and_headers_are_stored_escaped(pool: ConnectionPool) -> None:
    """NUL, invalid UTF-8 and huge bodies are kept as short, safe text; credentials never."""
    body = b"\x00\xff\x1b[31m" + b"a" * (EXCERPT_BYTES * 2)
    headers = kept_headers(
        {"Authorization": "Bearer secret", "Ce-Id": "x\x00", "Content-Type": "a/b", "Cookie": "c"}
    )
    with pool.connection() as conn:
        record_rejection(conn, _rejection(body, headers=headers, reason="bad\x00 reason"))
        [row] = list_rejections(conn)
    assert row.excerpt.startswith("\\x00\\xff\\x1b[31m")
    assert row.excerpt.endswith("...")
    assert len(row.excerpt) < EXCERPT_BYTES + 32
    assert row.headers == {"ce-id": "x\\x00", "content-type": "a/b"}
    assert row.reason == "bad\\x00 reason"
    assert row.body_bytes == len(body)


def test_choreo_rejected_lists_rows(
    pool: ConnectionPool, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's view: newest first, filtered by receiver, or as JSON lines."""
    with pool.connection() as conn:
        record_rejection(conn, _rejection(b"{nope", reason="body is not valid JSON"))
        record_rejection(conn, _rejection(b"{}", receiver="dispatcher", reason="missing id"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    listed = runner.invoke(app, ["rejected"])
    assert listed.exit_code == 0, listed.output
    assert "missing id" in listed.output.splitlines()[0]
    assert "body is not valid JSON" in listed.output
    one = runner.invoke(app, ["rejected", "--receiver", "status-recorder", "--json"])
    [line] = one.output.splitlines()
    assert json.loads(line)["excerpt"] == "{nope"
    bad = runner.invoke(app, ["rejected", "--since", "2024-01-01"])
    assert bad.exit_code == 1
    assert "needs a time zone offset" in bad.output
