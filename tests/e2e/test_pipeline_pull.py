"""The whole pipeline on the local stack with pull workers (`choreo worker ...`)."""

from __future__ import annotations

from tests.e2e.conftest import SONG_KEY
from tests.e2e.stack_driver import FAILED, PipelineRun, assert_completed

TIMEOUT_S = 150


def test_song_and_description_requests_become_videos(pipeline_run: PipelineRun) -> None:
    """A Path 1 song request and then a Path 2 description each end as one video and one event;
    a revision of the first (`choreo request revise`) too, its render reusing cached pieces."""
    for name in ("blueprint", "dispatcher", "status"):
        pipeline_run.start("worker", name)
    by_song = pipeline_run.request("song", "--audio-uri", SONG_KEY)
    pipeline_run.wait_for_events({by_song}, TIMEOUT_S)
    # The first request put the analysed song in the catalogue, for the description to pick.
    by_text = pipeline_run.request("describe", "energetic hip-hop dance")
    pipeline_run.wait_for_events({by_song, by_text}, TIMEOUT_S)
    assert_completed(pipeline_run, {by_song, by_text})
    revised = pipeline_run.request("revise", by_song, "--redo", "3-4")
    pipeline_run.wait_for_events({by_song, by_text, revised}, TIMEOUT_S)
    assert_completed(pipeline_run, {revised})
    assert pipeline_run.rendered_pieces(revised)["pieces_cached"] > 0
    codes = pipeline_run.stop_all()
    assert set(codes.values()) == {0}, f"workers did not stop cleanly on SIGTERM: {codes}"


def test_request_for_a_missing_song_fails_with_the_reason(pipeline_run: PipelineRun) -> None:
    """A song file that is not in storage fails the task and announces task.failed with why."""
    for name in ("blueprint", "status"):
        pipeline_run.start("worker", name)
    task_id = pipeline_run.request("song", "--audio-uri", "songs/not-uploaded.wav")
    pipeline_run.wait_for_events({task_id}, TIMEOUT_S)
    failures = [data for kind, data in pipeline_run.events if kind == FAILED]
    assert [f["task_id"] for f in failures] == [task_id]
    assert "not-uploaded.wav" in failures[0]["reason"], failures[0]
    state, error, _video = pipeline_run.states({task_id})[task_id]
    assert state == "failed"
    assert error is not None and "not-uploaded.wav" in error
