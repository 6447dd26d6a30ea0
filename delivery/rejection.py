"""Poison: a delivery that can never be handled is logged, recorded, then acknowledged.

One function for every receiver (the consumers' runtime and the producer's storage trigger): the
verdict acks (HTTP 200) once the ``rejected_messages`` row is written; if it cannot be written
(the database is down) the verdict retries, so the poison comes back and is recorded later rather
than lost without a trace.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg_pool import ConnectionPool

from delivery.error_mapping import Outcome, Verdict, verdict_for
from lifecycle.rejections import Rejection, record_rejection

log = logging.getLogger(__name__)


def reject(pool: ConnectionPool[Any], error: Exception, rejection: Rejection) -> Verdict:
    """Log and record ``rejection``; the ack verdict, or a retry if the row cannot be written."""
    extra = {
        "receiver": rejection.receiver,
        "transport": rejection.transport,
        "message_id": rejection.message_id,
        "body_bytes": rejection.body_bytes or len(rejection.body),
    }
    log.error("rejected message: %s", error, extra={**extra, "outcome": Outcome.UNDECODABLE})
    try:
        with pool.connection() as conn:
            record_rejection(conn, rejection)
    except Exception as record_error:
        log.exception("could not record a rejected message; it will come back", extra=extra)
        return verdict_for(Outcome.RETRY, f"recording the rejection failed: {record_error}")
    return verdict_for(Outcome.UNDECODABLE, str(error))
