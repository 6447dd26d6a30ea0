"""The one place where outcomes and errors become ack/nack and HTTP status codes.

=========================  ==========================================  ===============
what happened              pull subscription                           push / Eventarc
=========================  ==========================================  ===============
handled, or a duplicate    ack                                         200
permanent error            record the task failure, ``task.failed``    200
                           through the outbox, then ack
stale task state (CAS)     ack: another delivery already moved it      200
transient error            nack: Pub/Sub redelivers, dead-letters      503
                           after max attempts
unexpected exception       nack (a bug may be a deploy away from       500
                           fixed; the dead-letter topic keeps it)
undecodable message, or    ack, log, and record a ``rejected_messages`` 200 with the
a body over the size limit row: it can never succeed, and redelivery   reason
                           would only fill the dead letters
the rejection cannot be    nack: it comes back and is recorded later   503
recorded (database down)
=========================  ==========================================  ===============

Before any of this, the HTTP endpoint checks the OIDC token: 401 (no token) and 403 (a bad one)
are retried by Pub/Sub push and by Eventarc alike, so a misconfigured invoker loses nothing; the
dead-letter topic keeps what a long outage leaves behind. Pub/Sub push acks 102, 200, 201, 202 and
204 and retries everything else; Eventarc retries 408, 409, 429 and 5xx and drops the rest, which
is why nothing here answers another 4xx for a delivery that reached the handler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import psycopg
from psycopg_pool import PoolTimeout

from schemas.errors import PermanentError, TransientError
from schemas.task_state import StaleState


class Outcome(StrEnum):
    """What the runtime did with one delivery."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    FAILED_PERMANENTLY = "failed-permanently"
    STALE = "stale"
    RETRY = "retry"
    UNDECODABLE = "undecodable"


@dataclass(frozen=True)
class Verdict:
    """The outcome, whether to ack, the HTTP status, and the reason (for errors)."""

    outcome: Outcome
    ack: bool
    http_status: int
    reason: str = ""


def verdict_for(outcome: Outcome, reason: str = "", *, unexpected: bool = False) -> Verdict:
    """The ack decision and HTTP status of ``outcome``."""
    if outcome is Outcome.RETRY:
        return Verdict(outcome, ack=False, http_status=500 if unexpected else 503, reason=reason)
    return Verdict(outcome, ack=True, http_status=200, reason=reason)


def classify(error: BaseException) -> Outcome:
    """The outcome an exception raised by a handler leads to."""
    # Includes EventDecodeError raised by a handler decoding something nested: bad for good.
    if isinstance(error, PermanentError):
        return Outcome.FAILED_PERMANENTLY
    if isinstance(error, StaleState):
        return Outcome.STALE
    return Outcome.RETRY


def is_unexpected(error: BaseException) -> bool:
    """True for an exception that is not one of choreo's intents (a bug, or an unmapped error).

    PostgreSQL being unreachable (a pool timeout, a dropped connection) is expected: 503.
    """
    expected = TransientError | PermanentError | StaleState | PoolTimeout | psycopg.OperationalError
    return not isinstance(error, expected)


def error_code(error: BaseException) -> str:
    """A slug for ``task.failed.error_code``: the error's ``error_code`` or its class name."""
    explicit = getattr(error, "error_code", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    words = re.sub(r"(?<!^)(?=[A-Z])", "-", type(error).__name__).lower()
    return re.sub(r"[^a-z0-9-]+", "-", words).strip("-") or "error"
