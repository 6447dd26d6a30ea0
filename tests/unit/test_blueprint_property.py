"""Properties: any blueprint built on a beat grid validates; single rule breaks are caught."""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.blueprint import (
    SPEED_FACTOR_MAX,
    SPEED_FACTOR_MIN,
    TRANSITION_TYPES,
    BlueprintInvalid,
    parse_blueprint,
)

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def grid_blueprints(draw: st.DrawFn) -> dict[str, Any]:
    """A blueprint whose cuts sit on a generated, slightly jittered beat grid."""
    bpm = draw(st.floats(60, 180))
    fps = draw(st.sampled_from([12, 24, 25, 30, 50, 60]))
    period = 60 / bpm
    counts = draw(st.lists(st.sampled_from([2, 4, 8]), min_size=1, max_size=10))
    lead_in = draw(st.integers(0, 16))
    beat_count = lead_in + sum(counts) + draw(st.integers(1, 16))
    first = draw(st.floats(0.01, 1))
    jitter = draw(st.lists(st.floats(-0.004, 0.004), min_size=beat_count, max_size=beat_count))
    beats = [round(first + index * period + jitter[index], 3) for index in range(beat_count)]
    start = beats[lead_in]
    moves, beat = [], lead_in
    for index, count in enumerate(counts):
        t0, t1 = round(beats[beat] - start, 3), round(beats[beat + count] - start, 3)
        speed = round(draw(st.floats(SPEED_FACTOR_MIN, SPEED_FACTOR_MAX)), 4)
        clip_in = round(draw(st.floats(0, 5)), 3)
        moves.append(
            {
                "move_id": f"move-{index}",
                "name": f"Move {index}",
                "clip_uri": f"moves/generated/move-{index}.mp4",
                "clip_in_s": clip_in,
                "clip_out_s": round(clip_in + (t1 - t0) * speed, 4),
                "timeline_start_s": t0,
                "timeline_end_s": t1,
                "counts": count,
                "speed_factor": speed,
                "mirror": draw(st.booleans()),
                "transition_in": {"type": "cut", "duration_s": 0.0},
                "section": {"label": "verse", "index": 0, "repeat_of": None},
                "reason": {"text": "generated"},
            }
        )
        beat += count
    for previous, move in itertools.pairwise(moves):
        kind = draw(st.sampled_from(TRANSITION_TYPES))
        limit = min(
            previous["timeline_end_s"] - previous["timeline_start_s"],
            move["timeline_end_s"] - move["timeline_start_s"],
        )
        duration = math.floor(draw(st.floats(0.05, 1.0)) * min(limit / 2, 2.0) * 1000) / 1000
        if kind != "cut" and duration > 0:
            move["transition_in"] = {"type": kind, "duration_s": duration}
    return {
        "schema_version": 1,
        "task_id": "task-generated",
        "created_at": "2024-06-11T14:03:27+00:00",
        "request": {
            "path": "song",
            "constraints": {
                "difficulty": "beginner",
                "energy": "medium",
                "style": "hiphop",
                "duration_s": 30.0,
            },
        },
        "song": {
            "title": "Generated",
            "audio_uri": "songs/generated.mp3",
            "duration_s": round(beats[-1] + period, 3),
            "tempo_bpm": bpm,
            "beats_s": beats,
            "downbeats_s": beats[::4],
            "window": {"start_s": start, "end_s": beats[beat]},
        },
        "moves_used": moves,
        "video_output": {
            "uri": "videos/task-generated.mp4",
            "width": 1280,
            "height": 720,
            "fps": fps,
            "codec": "h264",
            "audio_fade_in_s": 0.0,
            "audio_fade_out_s": 0.0,
            "overlays": {"count_numbers": True, "move_names": False},
        },
    }


def _problem_paths(document: dict[str, Any]) -> set[str]:
    try:
        parse_blueprint(document)
    except BlueprintInvalid as error:
        return {problem.path for problem in error.problems}
    raise AssertionError("the mutated blueprint was accepted")


@SETTINGS
@given(grid_blueprints())
def test_any_blueprint_on_the_beat_grid_validates(document: dict[str, Any]) -> None:
    """Moves placed back to back on beats, with in-band speeds and short transitions, pass."""
    blueprint = parse_blueprint(document)
    assert len(blueprint.moves_used) == len(document["moves_used"])


@SETTINGS
@given(grid_blueprints(), st.data())
def test_shifting_one_cut_is_a_gap_or_overlap(
    document: dict[str, Any], data: st.DataObject
) -> None:
    """Moving one interior cut by more than the tolerance is reported at that move's start."""
    moves = document["moves_used"]
    if len(moves) < 2:
        moves.append(copy.deepcopy(moves[0]))
    index = data.draw(st.integers(1, len(moves) - 1))
    # Stay inside the move so the rule under test, not "end before start", is what fires.
    span = moves[index]["timeline_end_s"] - moves[index]["timeline_start_s"]
    delta = data.draw(st.floats(0.002, 0.9 * span)) * data.draw(st.sampled_from([-1, 1]))
    moves[index]["timeline_start_s"] = round(moves[index]["timeline_start_s"] + delta, 4)
    assert f"moves_used[{index}].timeline_start_s" in _problem_paths(document)


@SETTINGS
@given(grid_blueprints(), st.data())
def test_speed_outside_the_band_is_rejected(document: dict[str, Any], data: st.DataObject) -> None:
    """Any speed factor outside [SPEED_FACTOR_MIN, SPEED_FACTOR_MAX] names that move's speed."""
    index = data.draw(st.integers(0, len(document["moves_used"]) - 1))
    speed = data.draw(
        st.floats(0.01, SPEED_FACTOR_MIN, exclude_max=True)
        | st.floats(SPEED_FACTOR_MAX, 10, exclude_min=True)
    )
    document["moves_used"][index]["speed_factor"] = speed
    assert f"moves_used[{index}].speed_factor" in _problem_paths(document)


UNSAFE_PREFIXES = ["../", "/", "%2e%2e/", "%252e%252e/", "..%2f", "..\\", "http://h/", "file:///"]


@SETTINGS
@given(
    grid_blueprints(),
    st.data(),
    st.sampled_from(UNSAFE_PREFIXES),
    st.from_regex(r"[a-z0-9_-]{1,12}(/[a-z0-9_-]{1,12}){0,3}", fullmatch=True),
)
def test_unsafe_clip_uris_are_rejected(
    document: dict[str, Any], data: st.DataObject, prefix: str, rest: str
) -> None:
    """A clip URI starting with any traversal or foreign-scheme prefix is rejected at that clip."""
    index = data.draw(st.integers(0, len(document["moves_used"]) - 1))
    document["moves_used"][index]["clip_uri"] = prefix + rest
    assert _problem_paths(document) == {f"moves_used[{index}].clip_uri"}
