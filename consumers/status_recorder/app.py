"""Composition root of the status recorder (``video-done`` subscription ``status-recorder``).

``python -m consumers.runtime worker consumers.status_recorder.app:status_recorder
status-recorder`` (or ``http consumers.status_recorder.app:status_recorder``). It needs nothing
beyond the runtime's pool, so the handler is a plain value: the runtime's connection, wrapped in
the PostgreSQL unit of work (:func:`lifecycle.unit_of_work.on_connection`), is all it gets.
"""

from __future__ import annotations

from consumers.runtime.handler import EventHandler
from consumers.status_recorder.handler import CONSUMER, record_status
from lifecycle.unit_of_work import on_connection

SOURCE_STATUS_RECORDER = "//choreo/status-recorder"


def status_recorder() -> EventHandler:
    """The status recorder as the runtime runs it."""
    # Stage "render": a permanent error here concerns a task whose video step has ended.
    return EventHandler(
        consumer=CONSUMER,
        stage="render",
        handle=on_connection(record_status),
        source=SOURCE_STATUS_RECORDER,
    )
