"""The ``blueprints`` table: one blueprint document per task, written once, read by the dispatcher.

Both functions run in the caller's transaction: the blueprint consumer inserts the row in the
same transaction as ``analyzing -> planned`` and the ``blueprint.ready`` outbox row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def insert_blueprint(
    conn: psycopg.Connection[Any], task_id: str, schema_version: str, document: Mapping[str, Any]
) -> bool:
    """Insert the task's blueprint; False (nothing written) when the task already has one."""
    inserted = conn.execute(
        "INSERT INTO blueprints (task_id, schema_version, document) VALUES (%s, %s, %s) "
        "ON CONFLICT (task_id) DO NOTHING RETURNING task_id",
        (task_id, schema_version, Jsonb(dict(document))),
    ).fetchone()
    return inserted is not None


def get_blueprint_document(conn: psycopg.Connection[Any], task_id: str) -> dict[str, Any] | None:
    """The task's stored blueprint document (JSON data), or None when it has none."""
    row = conn.execute("SELECT document FROM blueprints WHERE task_id = %s", (task_id,)).fetchone()
    if row is None:
        return None
    document: dict[str, Any] = row[0]
    return document
