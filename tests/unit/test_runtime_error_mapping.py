"""The one error mapping: outcomes to ack/nack and HTTP status, exceptions to outcomes."""

from __future__ import annotations

import pytest

from delivery.error_mapping import (
    Outcome,
    classify,
    error_code,
    is_unexpected,
    verdict_for,
)
from delivery.oidc import CertificatesUnavailable
from producers.publishing import PublishFailed
from schemas.errors import InvalidInput, NotFound, TransientError
from schemas.event_envelope import EventDecodeError
from schemas.task_state import StaleState, State


@pytest.mark.parametrize(
    ("outcome", "ack", "status"),
    [
        (Outcome.PROCESSED, True, 200),
        (Outcome.DUPLICATE, True, 200),
        (Outcome.FAILED_PERMANENTLY, True, 200),
        (Outcome.STALE, True, 200),
        (Outcome.RETRY, False, 503),
        (Outcome.UNDECODABLE, True, 200),
    ],
)
def test_each_outcome_has_one_ack_decision_and_status(
    outcome: Outcome, ack: bool, status: int
) -> None:
    """The table in error_mapping's docstring, as code."""
    verdict = verdict_for(outcome)
    assert (verdict.ack, verdict.http_status) == (ack, status)


def test_unexpected_retry_is_a_500() -> None:
    """A bug is retried like a transient error but reported as 500, not 503."""
    assert verdict_for(Outcome.RETRY, "boom", unexpected=True).http_status == 500


@pytest.mark.parametrize(
    ("error", "outcome", "unexpected"),
    [
        (InvalidInput("bad"), Outcome.FAILED_PERMANENTLY, False),
        (NotFound("no song"), Outcome.FAILED_PERMANENTLY, False),
        (EventDecodeError("nested"), Outcome.FAILED_PERMANENTLY, False),
        (TransientError("down"), Outcome.RETRY, False),
        (PublishFailed("broker"), Outcome.RETRY, False),
        (CertificatesUnavailable("x"), Outcome.RETRY, False),
        (StaleState("t", frozenset({State.QUEUED}), State.ANALYZING), Outcome.STALE, False),
        (KeyError("bug"), Outcome.RETRY, True),
    ],
)
def test_exceptions_are_classified(error: Exception, outcome: Outcome, unexpected: bool) -> None:
    """Permanent errors fail the task, transient and unknown ones retry, stale CAS acks."""
    assert (classify(error), is_unexpected(error)) == (outcome, unexpected)


def test_error_codes_are_slugs() -> None:
    """error_code turns class names into slugs and prefers an explicit error_code."""
    assert error_code(NotFound("x")) == "not-found"
    assert error_code(InvalidInput("x")) == "invalid-input"
    explicit = InvalidInput("x")
    explicit.error_code = "unknown-song"  # type: ignore[attr-defined]
    assert error_code(explicit) == "unknown-song"
