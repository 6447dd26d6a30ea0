"""The task state machine: the states a task moves through and the legal edges between them.

Pure (no I/O): the task store, the consumers and the video job all check edges here, so an
illegal transition is refused the same way everywhere, before anything touches the database.

    queued -> analyzing -> planned -> dispatched -> rendering -> completed
       \\__________\\___________\\___________\\_____________\\------> failed

``completed`` and ``failed`` are terminal: nothing leaves them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from enum import StrEnum

from schemas.errors import ChoreoError, InvalidInput, PermanentError


class State(StrEnum):
    """Where a task is; the value is what the ``tasks.state`` column stores."""

    QUEUED = "queued"
    ANALYZING = "analyzing"
    PLANNED = "planned"
    DISPATCHED = "dispatched"
    RENDERING = "rendering"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL: frozenset[State] = frozenset({State.COMPLETED, State.FAILED})

# The happy path, in order; each state's one forward successor is the next in this tuple.
HAPPY_PATH: tuple[State, ...] = (
    State.QUEUED,
    State.ANALYZING,
    State.PLANNED,
    State.DISPATCHED,
    State.RENDERING,
    State.COMPLETED,
)


def _edges() -> dict[State, frozenset[State]]:
    edges: dict[State, frozenset[State]] = {}
    for here, successor in itertools.pairwise(HAPPY_PATH):
        edges[here] = frozenset({successor, State.FAILED})
    for terminal in TERMINAL:
        edges[terminal] = frozenset()
    return edges


LEGAL_EDGES: dict[State, frozenset[State]] = _edges()

# A stable order for messages and checks: the happy path, then failed.
STATE_ORDER: dict[State, int] = {
    **{state: index for index, state in enumerate(HAPPY_PATH)},
    State.FAILED: len(HAPPY_PATH),
}


class IllegalTransition(PermanentError):
    """A transition the state machine does not allow (e.g. out of a terminal state)."""

    def __init__(self, from_state: State, to_state: State) -> None:
        successors = sorted(LEGAL_EDGES[from_state], key=STATE_ORDER.__getitem__)
        allowed = ", ".join(successors) or "nothing (terminal state)"
        super().__init__(
            f"illegal task transition {from_state} -> {to_state}; from {from_state} the task "
            f"may move to: {allowed}"
        )
        self.from_state = from_state
        self.to_state = to_state


class StaleState(ChoreoError):
    """A compare-and-set missed: the task is no longer in the state the caller expected.

    Neither transient nor permanent by itself: a task already past the expected state usually
    means another worker (or an earlier delivery of the same event) did the work, which the
    caller acknowledges as a duplicate; the caller decides.
    """

    def __init__(self, task_id: str, expected: frozenset[State], actual: State) -> None:
        ordered = sorted(expected, key=STATE_ORDER.__getitem__)
        wanted = ", ".join(ordered)
        super().__init__(f"task {task_id!r} is in state {actual}, expected one of: {wanted}")
        self.task_id = task_id
        self.expected = expected
        self.actual = actual


def parse_state(value: str) -> State:
    """Return the ``State`` named by ``value``, or raise ``InvalidInput`` listing valid names."""
    try:
        return State(value)
    except ValueError:
        valid = ", ".join(state.value for state in State)
        raise InvalidInput(f"unknown task state {value!r}; valid states: {valid}") from None


def is_legal(from_state: State, to_state: State) -> bool:
    """Whether the state machine allows moving from ``from_state`` to ``to_state``."""
    return to_state in LEGAL_EDGES[from_state]


def check_transition(expected: Iterable[State], to_state: State) -> frozenset[State]:
    """Return ``expected`` as a set; raise ``IllegalTransition`` if any edge to ``to_state`` is."""
    # Every expected source must be legal, not just one: a compare-and-set over several sources
    # must never be able to land on an illegal edge, whichever source the row is actually in.
    sources = frozenset(expected)
    if not sources:
        raise InvalidInput("expected states must not be empty")
    for source in sorted(sources, key=STATE_ORDER.__getitem__):
        if not is_legal(source, to_state):
            raise IllegalTransition(source, to_state)
    return sources
