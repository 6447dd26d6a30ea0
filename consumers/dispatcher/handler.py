"""The dispatcher's use case: on ``blueprint.ready``, record exactly one video job for the task.

Runs inside the runtime's transaction (with the ``processed_events`` record), through the ports
of :mod:`lifecycle.ports` (a :class:`~lifecycle.ports.UnitOfWork` on that transaction), in this
order:

1. lock the task row (``tasks.lock``, ``SELECT ... FOR UPDATE``): a concurrent delivery, even
   with another CloudEvent id, waits here and then sees the first one's outcome;
2. a task already ``dispatched`` or later, or one carrying an ``execution_name``, is a redelivery:
   nothing is recorded (the one execution it has is the only one it will get);
3. load and check the stored blueprint (``blueprints.read``): missing or invalid is permanent;
4. compute the execution's environment (``BLUEPRINT_JSON`` or, above ``BLUEPRINT_ENV_MAX_BYTES``,
   a stored ``BLUEPRINT_URI``) and its deterministic name;
5. CAS ``planned -> dispatched`` recording ``execution_name`` (``tasks.transition``), and record
   the execution (``executions.record``, a ``job_executions`` row), committed with the dedupe
   record.

Nothing is launched here, and no connection is held across a remote call: the message is acked
only once the execution is durable, and the runner (local) or the launcher (Cloud Run) starts it
from the row (:mod:`consumers.dispatcher.job_runner`, :mod:`consumers.dispatcher.cloud_run`).
The job's own claim (``dispatched -> rendering``) needs the execution name recorded here.
"""

from __future__ import annotations

import json
import logging

from consumers.dispatcher.launcher import BlueprintStash, job_environment
from lifecycle.ports import BlueprintStore, Launcher, TaskLock, UnitOfWork, execution_name_for
from schemas.blueprint import parse_blueprint
from schemas.errors import InvalidInput, NotFound, TransientError
from schemas.event_envelope import ChoreoEvent, Delivery
from schemas.events import BlueprintReady
from schemas.task_state import STATE_ORDER, State

log = logging.getLogger(__name__)
CONSUMER = "dispatcher"


class TaskNotPlanned(TransientError):
    """``blueprint.ready`` for a task not planned yet (retried, then dead-lettered)."""


class Dispatcher:
    """Records the one video job execution of a planned task."""

    def __init__(
        self, stash: BlueprintStash, *, max_env_bytes: int, launcher: Launcher = "local"
    ) -> None:
        self.launcher: Launcher = launcher
        self.stash = stash
        self.max_env_bytes = max_env_bytes

    def handle(self, work: UnitOfWork, event: ChoreoEvent, delivery: Delivery[ChoreoEvent]) -> None:
        """Dispatch the task named by a ``blueprint.ready`` event (see the module docstring)."""
        ready = event.data
        if not isinstance(ready, BlueprintReady):
            raise InvalidInput(f"the dispatcher handles blueprint.ready, not {event.type}")
        task_id = ready.task_id
        context = {"task_id": task_id, "event_id": event.id}
        if not _needs_launch(work.tasks, task_id, context):
            return
        text = blueprint_json(work.blueprints, task_id)
        job_env = job_environment(task_id, text, max_env_bytes=self.max_env_bytes, stash=self.stash)
        execution = execution_name_for(task_id, self.launcher)
        work.tasks.transition(
            task_id,
            State.PLANNED,
            State.DISPATCHED,
            execution_name=execution,
            detail={
                "event_id": event.id,
                "execution": execution,
                "launcher": self.launcher,
                "blueprint_via": job_env.via,
                "blueprint_bytes": job_env.size_bytes,
            },
        )
        work.executions.record(
            task_id, execution, self.launcher, {**job_env.env, "JOB_EXECUTION": execution}
        )
        log.info(
            "video job recorded",
            extra={**context, "execution": execution, "blueprint_via": job_env.via},
        )


def _needs_launch(tasks: TaskLock, task_id: str, context: dict[str, str]) -> bool:
    locked = tasks.lock(task_id)
    if locked is None:
        raise NotFound(f"no task with task_id {task_id!r}")
    state, execution = locked
    if execution is not None or STATE_ORDER[state] > STATE_ORDER[State.PLANNED]:
        log.info(
            "task already %s (execution %s): redelivery, no second launch",
            state,
            execution,
            extra=context,
        )
        return False
    if state is not State.PLANNED:
        raise TaskNotPlanned(f"task {task_id!r} is {state}, not planned: no blueprint to run yet")
    return True


def blueprint_json(blueprints: BlueprintStore, task_id: str) -> str:
    """The task's stored blueprint as compact JSON, checked against the blueprint contract."""
    document = blueprints.read(task_id)
    if document is None:
        raise NotFound(f"no blueprint stored for task {task_id!r}")
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    # Shape only: storage roots and buckets are the job's to check, where they are configured.
    blueprint = parse_blueprint(text)
    if blueprint.task_id != task_id:
        raise InvalidInput(
            f"blueprint stored for task {task_id!r} names task_id {blueprint.task_id!r}"
        )
    return text
