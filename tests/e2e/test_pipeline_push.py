"""The whole pipeline on the local stack with emulator push subscriptions to `choreo serve ...`."""

from __future__ import annotations

from tests.e2e.conftest import SONG_KEY
from tests.e2e.stack_driver import PipelineRun, assert_completed, free_port

TIMEOUT_S = 150
PUSHED = {
    "blueprint": "blueprint-consumer",
    "dispatcher": "dispatcher",
    "status": "status-recorder",
}


def test_push_delivery_to_http_services_makes_the_videos(pipeline_run: PipelineRun) -> None:
    """Path 1 and Path 2 requests complete when the emulator pushes events to the HTTP services."""
    for name, subscription in PUSHED.items():
        service = pipeline_run.start("serve", name, port=free_port())
        pipeline_run.wait_healthy(service)
        project = pipeline_run.project
        project.subscriber.modify_push_config(
            request={
                "subscription": project.subscription_path(subscription),
                "push_config": {"push_endpoint": f"http://127.0.0.1:{service.port}/"},
            }
        )
    by_song = pipeline_run.request("song", "--audio-uri", SONG_KEY)
    pipeline_run.wait_for_events({by_song}, TIMEOUT_S)
    by_text = pipeline_run.request("describe", "calm pop for beginners")
    pipeline_run.wait_for_events({by_song, by_text}, TIMEOUT_S)
    assert_completed(pipeline_run, {by_song, by_text})
    codes = pipeline_run.stop_all()
    assert set(codes.values()) == {0}, f"services did not drain cleanly on SIGTERM: {codes}"
