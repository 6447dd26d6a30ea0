"""`choreo status` names a revision's parent, bars and overrides in one line."""

from __future__ import annotations

from choreo_cli.status import revision_line


def test_a_revision_task_names_its_parent_bars_and_overrides() -> None:
    """The stored revision request reads as ``revision of P: redo R, keep K, overrides``."""
    request = {
        "parent_task_id": "t-1",
        "keep": [{"first": 1, "last": 8}],
        "redo": [{"first": 9, "last": 16}, {"first": 25, "last": 25}],
        "constraints": {"style": "pop"},
    }
    assert revision_line("revise", request) == "revision of t-1: redo 9-16,25, keep 1-8, style pop"


def test_other_tasks_have_no_revision_line() -> None:
    """A song or describe task shows no revision line."""
    assert revision_line("song", {"path": "song"}) is None
