"""The task state machine on its own: which edges are legal, and how illegal ones are refused."""

from __future__ import annotations

import itertools

import pytest

from schemas.errors import InvalidInput, PermanentError
from schemas.task_state import (
    HAPPY_PATH,
    LEGAL_EDGES,
    TERMINAL,
    IllegalTransition,
    StaleState,
    State,
    check_transition,
    is_legal,
    parse_state,
)

EXPECTED_EDGES = {
    (State.QUEUED, State.ANALYZING),
    (State.ANALYZING, State.PLANNED),
    (State.PLANNED, State.DISPATCHED),
    (State.DISPATCHED, State.RENDERING),
    (State.RENDERING, State.COMPLETED),
    (State.QUEUED, State.FAILED),
    (State.ANALYZING, State.FAILED),
    (State.PLANNED, State.FAILED),
    (State.DISPATCHED, State.FAILED),
    (State.RENDERING, State.FAILED),
}


def test_legal_edges_are_exactly_the_happy_path_plus_failing_from_non_terminal_states() -> None:
    """Exactly the ten documented edges are legal; every other pair of states is refused."""
    legal = {pair for pair in itertools.product(State, State) if is_legal(*pair)}
    assert legal == EXPECTED_EDGES


def test_every_state_has_an_entry_in_the_edge_table() -> None:
    """The edge table covers every state, so a lookup never raises KeyError."""
    assert set(LEGAL_EDGES) == set(State)


def test_terminal_states_have_no_way_out() -> None:
    """Completed and failed are final: no edge leaves them, not even to failed."""
    assert {State.COMPLETED, State.FAILED} == TERMINAL
    for terminal in TERMINAL:
        for target in State:
            assert not is_legal(terminal, target)


def test_happy_path_walks_from_queued_to_completed() -> None:
    """Each happy-path step is a legal edge, starting at queued and ending at completed."""
    assert HAPPY_PATH[0] is State.QUEUED
    assert HAPPY_PATH[-1] is State.COMPLETED
    for here, successor in itertools.pairwise(HAPPY_PATH):
        assert check_transition({here}, successor) == {here}


def test_no_state_moves_to_itself() -> None:
    """A self-loop is not a transition: repeating one is reported, not silently accepted."""
    for state in State:
        assert not is_legal(state, state)


def test_illegal_edge_raises_a_permanent_error_naming_both_states() -> None:
    """completed -> rendering raises IllegalTransition, a PermanentError naming both states."""
    with pytest.raises(IllegalTransition) as raised:
        check_transition({State.COMPLETED}, State.RENDERING)
    assert isinstance(raised.value, PermanentError)
    assert raised.value.from_state is State.COMPLETED
    assert raised.value.to_state is State.RENDERING
    assert "completed -> rendering" in str(raised.value)
    assert "terminal" in str(raised.value)


def test_skipping_a_state_is_illegal() -> None:
    """queued -> planned skips analyzing and is refused, listing the legal successors."""
    with pytest.raises(IllegalTransition, match="analyzing, failed"):
        check_transition({State.QUEUED}, State.PLANNED)


def test_several_expected_states_must_all_be_legal_sources() -> None:
    """A compare-and-set over {planned, completed} -> failed is refused because of completed."""
    assert check_transition({State.QUEUED, State.RENDERING}, State.FAILED) == {
        State.QUEUED,
        State.RENDERING,
    }
    with pytest.raises(IllegalTransition) as raised:
        check_transition({State.PLANNED, State.COMPLETED}, State.FAILED)
    assert raised.value.from_state is State.COMPLETED


def test_empty_expected_set_is_invalid_input() -> None:
    """An empty set of expected states could never match, so it is refused as invalid input."""
    with pytest.raises(InvalidInput, match="must not be empty"):
        check_transition(set(), State.FAILED)


def test_parse_state_accepts_column_values_and_lists_valid_ones_otherwise() -> None:
    """parse_state maps column text to State and rejects unknown text naming the valid states."""
    assert parse_state("rendering") is State.RENDERING
    with pytest.raises(InvalidInput, match=r"'done'.*queued, analyzing"):
        parse_state("done")


def test_stale_state_names_actual_and_expected_states() -> None:
    """StaleState carries and names the state the task is really in and what was expected."""
    error = StaleState("t-1", frozenset({State.ANALYZING, State.QUEUED}), State.FAILED)
    assert error.actual is State.FAILED
    assert str(error) == "task 't-1' is in state failed, expected one of: queued, analyzing"
