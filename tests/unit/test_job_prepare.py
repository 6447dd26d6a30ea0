"""Which clips a render prepares and which move bodies ride along in the same decode."""

from __future__ import annotations

from pathlib import Path

import pytest

from job.ffmpeg_plan import EncodeSettings
from job.prepare import (
    MAX_BODIES_PER_RUN,
    frame_count,
    frame_rate,
    plan_clip_runs,
    worth_preparing,
)
from job.timeline import ClipFile, Piece, SourceSpan

INFO = {"streams": [{"codec_type": "video", "r_frame_rate": "30000/1001", "nb_frames": "210"}]}


def _setup(tmp_path: Path) -> tuple[dict[Path, tuple[ClipFile, dict]], ClipFile, ClipFile]:
    source_a, source_b = ClipFile(tmp_path / "a.mp4", "a" * 64), ClipFile(tmp_path / "b.mp4", "b")
    prepared_a, prepared_b = ClipFile(tmp_path / "pa.mp4", "a"), ClipFile(tmp_path / "pb.mp4", "b")
    sources = {prepared_a.path: (source_a, INFO), prepared_b.path: (source_b, INFO)}
    return sources, prepared_a, prepared_b  # type: ignore[return-value]


def _body(clip: ClipFile, move: int, start: float = 0.5, chunks: int = 2) -> list[Piece]:
    span = SourceSpan(clip, start, 1.0, False)
    return [Piece("segment", move, 30 * i, 30, (span,)) for i in range(chunks)]


def test_bodies_of_an_unprepared_clip_join_its_run_once(tmp_path: Path) -> None:
    """Missing chunks of a move ride with their clip; a second move with the same footage not."""
    sources, clip_a, clip_b = _setup(tmp_path)
    pieces = [*_body(clip_a, 0), *_body(clip_b, 1), *_body(clip_a, 2)]
    pair = (SourceSpan(clip_a, 3, 1, False), SourceSpan(clip_b, 0, 1, False))
    transition = Piece("transition", 3, 0, 20, pair, "fade")
    pieces.append(transition)
    keys = ["k0", "k1", "k2", "k3", "k0", "k1", "t"]
    batches = [[0, 1], [2, 3], [4, 5], [6]]
    runs = plan_clip_runs(batches, pieces, keys, [False, False, True, True, False, False, False],
                          sources)  # fmt: skip
    by_clip = {run.prepared: run for run in runs}
    assert set(by_clip) == {clip_a.path, clip_b.path}
    assert [body.keys for body in by_clip[clip_a.path].bodies] == [("k0", "k1")]
    assert by_clip[clip_b.path].bodies == []  # its body is cached: prepared for the transition
    assert by_clip[clip_a.path].source_fps == pytest.approx(29.97, abs=0.01)
    assert by_clip[clip_a.path].source_frames == 210


def test_prepared_clips_and_cached_pieces_need_no_run(tmp_path: Path) -> None:
    """A clip whose prepared copy exists is not prepared again; a fully cached render runs none."""
    sources, clip_a, clip_b = _setup(tmp_path)
    clip_a.path.write_bytes(b"prepared")
    pieces = [*_body(clip_a, 0), *_body(clip_b, 1)]
    runs = plan_clip_runs([[0, 1], [2, 3]], pieces, ["a", "b", "c", "d"], [False] * 4, sources)
    assert [run.prepared for run in runs] == [clip_b.path]
    assert plan_clip_runs([[0, 1], [2, 3]], pieces, list("abcd"), [True] * 4, sources) == []


def test_a_run_takes_a_bounded_number_of_bodies_and_only_from_its_own_start(tmp_path: Path) -> None:
    """Bodies past the cap, or starting before the clip (a lead-in), render from the copy later."""
    sources, clip_a, _ = _setup(tmp_path)
    pieces = [piece for move in range(MAX_BODIES_PER_RUN + 2) for piece in _body(clip_a, move,
              start=0.1 * move - 0.1)]  # fmt: skip
    keys = [f"k{i}" for i in range(len(pieces))]
    batches = [[2 * move, 2 * move + 1] for move in range(MAX_BODIES_PER_RUN + 2)]
    (run,) = plan_clip_runs(batches, pieces, keys, [False] * len(pieces), sources)
    assert len(run.bodies) == MAX_BODIES_PER_RUN
    assert all(body.chunks[0].sources[0].start_s >= 0 for body in run.bodies)


def test_only_the_missing_part_of_a_body_is_rendered(tmp_path: Path) -> None:
    """A body whose first chunk is cached contributes only the chunks after it."""
    sources, clip_a, _ = _setup(tmp_path)
    pieces = _body(clip_a, 0, chunks=3)
    (run,) = plan_clip_runs([[0, 1, 2]], pieces, ["a", "b", "c"], [True, False, False], sources)
    assert run.bodies[0].keys == ("b", "c")
    assert run.bodies[0].chunks == tuple(pieces[1:])


@pytest.mark.parametrize(
    ("stream", "rate", "frames"),
    [
        ({"r_frame_rate": "25/1", "nb_frames": "100"}, 25.0, 100),
        ({"r_frame_rate": "60/1", "duration": "2.5"}, 60.0, 150),
        ({"r_frame_rate": "240/1", "duration": "1.0"}, 240.0, 60),
        ({"r_frame_rate": "0/0"}, 0.0, 0),
        ({"r_frame_rate": "abc", "duration": "x"}, 0.0, 0),
    ],
)
def test_rate_and_frame_count_come_from_ffprobe(stream: dict, rate: float, frames: int) -> None:
    """Rates are fractions; counts fall back to duration x rate (capped like preparation)."""
    info = {"streams": [{"codec_type": "audio"}, {"codec_type": "video", **stream}]}
    assert frame_rate(info) == pytest.approx(rate)
    assert frame_count(info) == frames


def test_only_clips_larger_or_faster_than_the_output_are_prepared() -> None:
    """Decoding and scaling a large clip again per piece costs more than a prepared copy; a clip
    no larger than the output frame is read directly (preparing it is a full extra encode)."""
    settings = EncodeSettings(1280, 720, 30)

    def clip(width: object, height: object, rate: str = "30/1") -> dict[str, object]:
        stream = {"codec_type": "video", "width": width, "height": height, "r_frame_rate": rate}
        return {"streams": [{"codec_type": "audio"}, stream]}

    assert worth_preparing(clip(1920, 1080), settings)
    assert worth_preparing(clip(1280, 721), settings)
    assert not worth_preparing(clip(1280, 720), settings)
    assert not worth_preparing(clip(720, 1280), settings)  # as many pixels, shown smaller
    assert not worth_preparing(clip(480, 480, "60/1"), settings)
    assert worth_preparing(clip(480, 480, "120/1"), settings)
    assert worth_preparing(clip("?", 480), settings)  # unknown size: prepare, to be safe
