"""A pull worker never holds more messages than its database pool can serve (finding 5)."""

from __future__ import annotations

from consumers.runtime.bootstrap import capped_to_pool
from schemas.settings import DatabaseSettings, WorkerSettings


def test_messages_in_hand_are_capped_by_the_pool() -> None:
    """WORKER_MAX_MESSAGES=10 with DB_POOL_MAX_SIZE=5: three in hand (the relay and the
    recoverer keep two connections), so no message waits for a connection and burns an attempt."""
    capped = capped_to_pool(
        WorkerSettings(WORKER_MAX_MESSAGES=10),  # type: ignore[call-arg]
        DatabaseSettings(DB_POOL_MAX_SIZE=5),  # type: ignore[call-arg]
        reserved=2,
    )
    assert capped.max_messages == 3


def test_a_setting_within_the_pool_is_kept_and_one_slot_is_the_floor() -> None:
    """A value the pool can serve is left alone; a tiny pool still leaves one message in hand."""
    kept = capped_to_pool(
        WorkerSettings(WORKER_MAX_MESSAGES=2),  # type: ignore[call-arg]
        DatabaseSettings(DB_POOL_MAX_SIZE=5),  # type: ignore[call-arg]
        reserved=2,
    )
    floor = capped_to_pool(
        WorkerSettings(WORKER_MAX_MESSAGES=4),  # type: ignore[call-arg]
        DatabaseSettings(DB_POOL_MAX_SIZE=1),  # type: ignore[call-arg]
        reserved=2,
    )
    assert (kept.max_messages, floor.max_messages) == (2, 1)
