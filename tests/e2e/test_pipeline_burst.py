"""A burst of requests through pull workers: every task completes, each job runs once."""

from __future__ import annotations

from tests.e2e.conftest import SONG_KEY
from tests.e2e.stack_driver import PipelineRun, assert_completed

BURST = 20
TIMEOUT_S = 240


def test_twenty_requests_in_a_burst_all_complete_once(pipeline_run: PipelineRun) -> None:
    """Twenty song requests sent at once all complete with one job run and one event each."""
    for name in ("blueprint", "dispatcher", "status"):
        pipeline_run.start("worker", name)
    pending = [pipeline_run.request_async("song", "--audio-uri", SONG_KEY) for _ in range(BURST)]
    task_ids = set()
    for process in pending:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-800:]
        task_ids.add(out.strip().splitlines()[-1])
    assert len(task_ids) == BURST
    pipeline_run.wait_for_events(task_ids, TIMEOUT_S)
    assert_completed(pipeline_run, task_ids)
