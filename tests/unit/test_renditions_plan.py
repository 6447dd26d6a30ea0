"""Practice renditions: the blueprint field, the loop spans, names and FFmpeg arguments (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from job.ffmpeg_plan import EncodeSettings
from job.renditions import (
    LoopSpan,
    keyframe_frames,
    loop_clip_args,
    loop_spans,
    loop_suffix,
    mirrored_blueprint,
    rendition_uri,
    slow_args,
    slow_suffix,
    with_counts,
)
from schemas.blueprint import BlueprintInvalid, parse_blueprint
from schemas.events import Rendition, VideoCompleted
from tests.fixtures.blueprints import MovePlan, build_blueprint

FPS = 24


def _document(**practice: Any) -> dict[str, Any]:
    moves = [
        MovePlan("moves/a.mp4", counts=4, mirror=index == 1,
                 transition="wipeleft" if index == 2 else "cut",
                 transition_s=0.25 if index == 2 else 0.0)
        for index in range(5)
    ]  # fmt: skip
    document = build_blueprint(moves, fps=FPS)
    for index, move in enumerate(document["moves_used"]):
        if index >= 2:
            move["section"] = {"label": "chorus", "index": 1, "repeat_of": None}
    if practice:
        document["video_output"]["practice"] = practice
    return document


def test_a_blueprint_without_practice_asks_for_no_rendition() -> None:
    """The field is optional: older blueprints parse and want nothing."""
    assert parse_blueprint(_document()).video_output.practice is None


def test_practice_switches_parse() -> None:
    """mirror, slow speeds, loops and page are read as given."""
    practice = parse_blueprint(
        _document(mirror=True, slow=[0.75, 0.5], loops=True, page=True)
    ).video_output.practice
    assert practice is not None and practice.wanted
    assert (practice.mirror, practice.slow, practice.loops, practice.page) == (
        True, [0.75, 0.5], True, True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("slow", "message"),
    [([0.6], "0.6 is not one of 0.75, 0.5"), ([0.5, 0.5], "each speed at most once")],
)
def test_an_unknown_or_repeated_slow_speed_is_refused_naming_it(
    slow: list[float], message: str
) -> None:
    """A speed off the list, or twice, is a blueprint error at video_output.practice.slow."""
    with pytest.raises(BlueprintInvalid) as caught:
        parse_blueprint(_document(slow=slow))
    assert "video_output.practice.slow" in str(caught.value)
    assert message in str(caught.value)


def test_renditions_are_named_beside_the_video() -> None:
    """``videos/t.mp4`` gives ``videos/t-mirror.mp4``, ``t-slow050.mp4``, ``t.html`` beside it."""
    assert rendition_uri("gs://b/videos/t.mp4", "-mirror.mp4") == "gs://b/videos/t-mirror.mp4"
    assert rendition_uri("videos/t.mp4", slow_suffix(0.5)) == "videos/t-slow050.mp4"
    assert rendition_uri("videos/t.mp4", ".html") == "videos/t.html"
    assert loop_suffix(LoopSpan("count", 7, "8-count 7", 0, 1)) == "-loop-count-007.mp4"


def test_the_mirror_flips_every_move_and_turns_wipes_around() -> None:
    """Each move's mirror is inverted; a wipe left becomes a wipe right; nothing else changes."""
    blueprint = parse_blueprint(_document())
    mirrored = mirrored_blueprint(blueprint)
    assert [m.mirror for m in mirrored.moves_used] == [not m.mirror for m in blueprint.moves_used]
    assert mirrored.moves_used[2].transition_in.type == "wiperight"
    assert mirrored.moves_used[0].clip_in_s == blueprint.moves_used[0].clip_in_s
    assert mirrored.video_output == blueprint.video_output


def test_with_counts_switches_only_the_count_overlay_on() -> None:
    """Loops need the counts; move names stay as asked."""
    overlays = with_counts(parse_blueprint(_document())).video_output.overlays
    assert (overlays.count_numbers, overlays.move_names) == (True, False)


def test_loop_spans_cover_sections_then_each_8_count() -> None:
    """Two sections (8 and 12 counts) and 20 beats give 2 section loops and 3 8-counts, the last
    one ending at the video's end; frames are at 24 fps, a beat is 12 frames at 120 BPM."""
    spans = loop_spans(parse_blueprint(_document()))
    sections = [(s.label, s.start_frame, s.end_frame) for s in spans if s.family == "section"]
    counts = [(s.number, s.start_frame, s.end_frame) for s in spans if s.family == "count"]
    assert sections == [("section 1 (verse)", 0, 96), ("section 2 (chorus)", 96, 240)]
    assert counts == [(1, 0, 96), (2, 96, 192), (3, 192, 240)]


def test_slow_copies_the_picture_and_slows_the_audio_keeping_its_pitch() -> None:
    """Timestamps stretched by 1/speed on a stream copy; atempo or rubberband on the audio."""
    args = slow_args(Path("/w/v.mp4"), Path("/w/s.mp4"), 0.5, rubberband=False)
    assert args[args.index("-itsscale") + 1] == "2.000000"
    assert args[args.index("-c:v") + 1] == "copy"
    assert args[args.index("-af") + 1] == "atempo=0.5"
    with_rubberband = slow_args(Path("/w/v.mp4"), Path("/w/s.mp4"), 0.75, rubberband=True)
    assert with_rubberband[with_rubberband.index("-af") + 1] == "rubberband=tempo=0.75"
    assert "file:/w/v.mp4" in args


def test_a_slow_speed_outside_0_1_is_refused() -> None:
    """1.5x is not a slow rendition."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        slow_args(Path("/w/v.mp4"), Path("/w/s.mp4"), 1.5, rubberband=False)


def test_a_loop_starting_on_a_keyframe_copies_the_picture() -> None:
    """Frames 96-192 at 24 fps: packets copied from an output seek a quarter frame early,
    exactly 96 frames, the audio re-encoded for 4 s."""
    span = LoopSpan("count", 2, "8-count 2", 96, 192)
    args = loop_clip_args(
        Path("/w/v.mp4"), Path("/w/l.mp4"), span, EncodeSettings(640, 360, FPS), copy=True
    )
    assert args.index("-ss") > args.index("-i"), "an output seek: no packet before the keyframe"
    assert args[args.index("-ss") + 1] == "3.989583"
    assert args[args.index("-c:v") + 1] == "copy"
    assert args[args.index("-frames:v") + 1] == "96"
    assert args[args.index("-t") + 1] == "4.000000"
    assert "libx264" not in args


def test_a_loop_starting_between_keyframes_is_encoded_from_an_accurate_seek() -> None:
    """Not on a keyframe: an input seek to the exact start, then x264."""
    span = LoopSpan("count", 2, "8-count 2", 100, 196)
    args = loop_clip_args(
        Path("/w/v.mp4"), Path("/w/l.mp4"), span, EncodeSettings(640, 360, FPS), copy=False
    )
    assert args.index("-ss") < args.index("-i")
    assert args[args.index("-ss") + 1] == "4.166667"
    assert "libx264" in args and args[args.index("-frames:v") + 1] == "96"


def test_keyframes_are_read_from_the_packet_flags() -> None:
    """ffprobe's ``time,flags`` lines: K marks a keyframe, rounded to the frame it starts."""
    listing = "0.000000,K_\n0.041667,__\n1.000042,K_\n1.041708,__\nN/A,K_\n"
    assert keyframe_frames(listing, FPS) == {0, 24}


def test_video_completed_lists_renditions_and_defaults_to_none() -> None:
    """The field is additive: an event without it has no renditions; a bad kind is refused."""
    base = {
        "task_id": "t", "video_uri": "videos/t.mp4", "duration_s": 1.0, "width": 64,
        "height": 64, "fps": 24, "size_bytes": 1, "completed_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    assert VideoCompleted.model_validate(base).renditions == []
    listed = VideoCompleted.model_validate(
        {**base, "renditions": [{"kind": "slow", "uri": "videos/t-slow050.mp4", "speed": 0.5}]}
    )
    assert listed.renditions == [Rendition(kind="slow", uri="videos/t-slow050.mp4", speed=0.5)]
    with pytest.raises(ValueError, match="kind"):
        VideoCompleted.model_validate({**base, "renditions": [{"kind": "gif", "uri": "v/t.gif"}]})
