"""Which pipeline stage a failure happened in, for ``tasks.error_stage`` and ``task.failed``.

A handler that spans several stages wraps each step in :func:`failure_stage`; an exception
leaving the block carries the stage (the innermost block wins, and a stage set where the error
was raised is kept). The runtime reads it with :func:`stage_of` and falls back to the handler's
default stage for untagged errors. The values are those of ``TaskFailed.stage`` (v1 schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar, cast

from lifecycle.task_failure import FAILURE_STAGES as STAGES
from lifecycle.task_failure import FailureStage

Stage = FailureStage

_ATTRIBUTE = "failure_stage"
E = TypeVar("E", bound=BaseException)


def tagged(error: E, stage: Stage) -> E:
    """``error`` carrying ``stage`` unless it already carries one (``raise tagged(...)``)."""
    if getattr(error, _ATTRIBUTE, None) not in STAGES:
        setattr(error, _ATTRIBUTE, stage)
    return error


@contextmanager
def failure_stage(stage: Stage) -> Iterator[None]:
    """Tag any exception leaving the block with ``stage`` unless it already has one."""
    try:
        yield
    except Exception as error:
        tagged(error, stage)
        raise


def stage_of(error: BaseException, default: Stage) -> Stage:
    """The stage ``error`` was tagged with, or ``default`` when it has no valid tag."""
    stage = getattr(error, _ATTRIBUTE, None)
    return cast(Stage, stage) if stage in STAGES else default
