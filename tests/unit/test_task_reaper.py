"""The reaper's settings-to-deadline mapping and its state-to-stage table (no database)."""

from __future__ import annotations

import pytest

from lifecycle.task_reaper import LOST, STAGE_OF, TaskReaper, deadlines
from schemas.events import TaskFailed
from schemas.settings import ReaperSettings
from schemas.task_state import TERMINAL, State


def test_every_unfinished_state_has_a_stage_and_a_reason() -> None:
    """Each non-terminal state maps to a TaskFailed stage the v1 schema accepts."""
    unfinished = set(State) - TERMINAL
    assert set(STAGE_OF) == set(LOST) == unfinished
    allowed = set(TaskFailed.model_fields["stage"].annotation.__args__)  # type: ignore[union-attr]
    assert set(STAGE_OF.values()) <= allowed


def test_deadlines_follow_the_settings_and_zero_turns_a_state_off() -> None:
    """REAPER_STAGE_TIMEOUT covers analyzing, planned, dispatched; 0 drops a state."""
    settings = ReaperSettings(
        REAPER_QUEUED_TIMEOUT=0, REAPER_STAGE_TIMEOUT=120, REAPER_RENDERING_TIMEOUT=600
    )
    assert deadlines(settings) == {
        State.ANALYZING: 120,
        State.PLANNED: 120,
        State.DISPATCHED: 120,
        State.RENDERING: 600,
    }


def test_a_reaper_refuses_deadlines_for_terminal_states() -> None:
    """Completed and failed tasks are never reaped, whatever the caller passes."""
    with pytest.raises(ValueError, match="terminal"):
        TaskReaper(None, {State.COMPLETED: 10})  # type: ignore[arg-type]
