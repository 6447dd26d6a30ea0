"""A burst of requests through pull workers: every task completes, each job runs once."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from producers.requests import submit_song_request
from tests.e2e.conftest import SONG_KEY
from tests.e2e.stack_driver import PipelineRun, assert_completed

BURST = 20
TIMEOUT_S = 300


def test_twenty_requests_in_a_burst_all_complete_once(pipeline_run: PipelineRun) -> None:
    """Twenty song requests submitted at once all complete with one job run and one event each.

    The burst goes through the producer's Python API without a publisher: each request is a task
    row plus an outbox row, and the workers' outbox relays publish them, as they would after a
    producer crash. (The CLI path is what the Path 1 / Path 2 tests drive; twenty CLI start-ups
    at once would measure Python imports on two cores, not the pipeline.)
    """
    for name in ("blueprint", "dispatcher", "status"):
        pipeline_run.start("worker", name)
    with ConnectionPool(pipeline_run.database_url, min_size=1, max_size=2) as pool:
        task_ids = {submit_song_request(pool, audio_uri=SONG_KEY) for _ in range(BURST)}
    assert len(task_ids) == BURST
    pipeline_run.wait_for_events(task_ids, TIMEOUT_S)
    assert_completed(pipeline_run, task_ids)
