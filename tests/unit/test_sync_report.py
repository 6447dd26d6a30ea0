"""The sync report's arithmetic: envelopes, alignment, cut matching and tolerances (no FFmpeg)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from job.errors import FfmpegFailed
from job.sync_measure import parse_scene_scores, scene_args
from job.sync_report import (
    Alignment,
    CutCheck,
    PlannedCut,
    SceneScores,
    SyncReport,
    Tolerances,
    align,
    audio_alignment,
    best_lag,
    match_cuts,
    onset_envelope,
    scan_windows,
    tolerance_failures,
)
from schemas.blueprint import BlueprintInvalid, parse_blueprint
from schemas.events import SyncSummary, VideoCompleted
from tests.fixtures.blueprints import MovePlan, build_blueprint

FPS = 24
LIMITS = Tolerances(cut_error_ms=1000 / FPS + 2, audio_offset_ms=40, min_audio_correlation=0.5,
                    duration_error_ms=1000 / FPS + 1)  # fmt: skip


def test_the_envelope_rises_where_the_sound_gets_louder_and_nowhere_else() -> None:
    """A step up in loudness is one positive step; steady and falling sound are zero."""
    quiet, loud = [100, -100] * 20, [3000, -3000] * 20
    envelope = onset_envelope(quiet + loud + loud + quiet, hop=40, window=40, rise=1)
    assert len(envelope) == 4
    assert [index for index, value in enumerate(envelope) if value > 0] == [1]
    assert envelope[1] == pytest.approx(2 * math.log(30), rel=0.01)


def test_the_default_envelope_spreads_an_onset_over_its_window() -> None:
    """With the 40 ms window and 20 ms rise, a step up shows only in the steps whose window
    takes it in, and nowhere after the sound has settled."""
    quiet, loud = [100, -100] * 400, [3000, -3000] * 400  # 100 ms each at 8 kHz
    envelope = onset_envelope(quiet + loud)
    rises = [index for index, value in enumerate(envelope) if value > 0]
    assert rises == list(range(13, 24))  # windows from 65 ms to 115 ms start overlap the step


def _noise(length: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    return [rng.random() ** 4 for _ in range(length)]


@pytest.mark.parametrize("shift", [37, -12, 0])
def test_alignment_finds_a_known_shift(shift: int) -> None:
    """A rendered envelope cut from the source ``shift`` steps late is found ``shift`` late,
    with a correlation of 1."""
    source = _noise(3000)
    base = 400
    rendered = [source[base + i - shift] for i in range(2000)]
    found = align(rendered, source, base, max_lag=200)
    assert found is not None
    assert found.lag == pytest.approx(shift, abs=0.01)
    assert found.strength == pytest.approx(1.0)


def test_a_shift_between_steps_is_interpolated() -> None:
    """Half a step of shift (the mean of two neighbours) reads as about half a step."""
    source = _noise(3000, seed=11)
    rendered = [(source[500 + i - 10] + source[500 + i - 11]) / 2 for i in range(1500)]
    found = best_lag(rendered, source, 500, range(0, 20))
    assert found is not None
    assert 10.2 < found.lag < 10.8


def test_a_flat_envelope_has_nothing_to_align() -> None:
    """A steady tone has no onsets: no offset is claimed."""
    assert align([0.0] * 500, _noise(1000), 200, max_lag=50) is None
    assert align(_noise(500), [0.0] * 1000, 200, max_lag=50) is None


def test_a_flash_near_a_cut_is_not_taken_for_the_cut() -> None:
    """A cut on time (0.02 over motion of 0.004-0.008) with a flash 0.3 s later (0.30): the cut
    at its planned frame is measured, not the flash. A cut rendered 0.3 s late, with nothing at
    its planned place, is still found where it is, and fails."""
    beats = [1.0, 1.5, 2.0, 2.5, 3.0]
    flash = match_cuts([PlannedCut(1, 2.0)], _scenes({48: 0.02, 55: 0.30}), beats, FPS)
    assert flash[0].measured_s == pytest.approx(2.0)
    assert flash[0].error_ms == pytest.approx(0.0, abs=0.1)
    late = match_cuts([PlannedCut(1, 2.0)], _scenes({55: 0.30}), beats, FPS)
    assert late[0].measured_s == pytest.approx(55 / FPS)
    assert late[0].drift_ms == pytest.approx((55 / FPS - 2.0) * 1000)


def test_silent_render_audio_against_a_song_with_onsets_is_out_of_step() -> None:
    """Render audio with no onsets where the song has them: lag 0 at correlation 0 (the
    min_audio_correlation tolerance fails it); a song without onsets there stays unmeasured."""
    song = [0.0] * 1000
    song[300] = song[420] = 2.0
    assert audio_alignment([0.0] * 500, song, 200, max_lag=50) == Alignment(0.0, 0.0)
    assert audio_alignment([0.0] * 500, [0.01] * 1000, 200, max_lag=50) is None
    found = audio_alignment(_noise(500, seed=4), _noise(1000, seed=4), 0, max_lag=50)
    assert found is not None and found.strength > 0.9


def _scenes(peaks: dict[int, float], frames: int = 240) -> SceneScores:
    rng = random.Random(5)  # noqa: S311 - test data, not a secret
    scores = [peaks.get(frame, 0.004 + 0.004 * rng.random()) for frame in range(frames)]
    return SceneScores(tuple(frame / FPS for frame in range(frames)), tuple(scores))


def test_cuts_are_timed_at_their_peak_against_the_nearest_beat() -> None:
    """A cut rendered on time measures 0 ms; one rendered two frames late measures +83 ms."""
    planned = [PlannedCut(1, 2.0), PlannedCut(2, 4.0)]
    scenes = _scenes({48: 0.03, 98: 0.5})
    beats = [0.5 * k for k in range(20)]
    on_time, late = match_cuts(planned, scenes, beats, FPS)
    assert (on_time.measured_s, on_time.beat_s, on_time.error_ms) == (2.0, 2.0, 0.0)
    assert late.measured_s == pytest.approx(98 / FPS)
    assert late.error_ms == pytest.approx(1000 * (98 / FPS - 4.0))


def test_a_cut_between_near_identical_frames_is_not_counted() -> None:
    """A cut whose score does not stand out from the motion around it is reported unseen."""
    planned = [PlannedCut(1, 2.0), PlannedCut(2, 4.0)]
    (unseen, unchanged) = match_cuts(planned, _scenes({48: 0.009}), [2.0, 4.0], FPS)
    assert unseen.measured_s is None and unseen.error_ms is None
    assert unseen.contrast < 2
    assert unchanged.measured_s is None


def _report(**changes: object) -> SyncReport:
    fields: dict[str, object] = {
        "fps": FPS, "timeline_s": 10.0, "duration_s": 10.0, "video_duration_s": 10.0,
        "audio_duration_s": 10.0,
        "cuts": (CutCheck(3, 2.0, 2.0, 2.0, 0.0, 0.5, 9.0),
                 CutCheck(5, 4.0, 4.125, 4.0, 125.0, 0.5, 9.0),
                 CutCheck(7, 6.0, None, None, None, 0.01, 1.1)),
        "transitions": 1, "audio_offset_ms": 3.0, "audio_correlation": 0.9, "tolerances": LIMITS,
    }  # fmt: skip
    fields.update(changes)
    return SyncReport(**fields)  # type: ignore[arg-type]


def test_a_cut_off_the_beat_fails_naming_the_move_and_the_figures() -> None:
    """The failure names the move, its measured time, the error and the tolerance."""
    (failure,) = tolerance_failures(_report())
    assert failure.startswith("1 of 2 measured cuts off the beat by more than 43.7 ms")
    assert "moves_used[5] at 4.125 s is +125.0 ms from the beat at 4.000 s" in failure


def test_a_cut_on_the_next_beat_fails_as_away_from_its_plan() -> None:
    """A cut rendered a whole beat late sits on a beat, but not on its own: named as such."""
    cuts = (CutCheck(3, 2.0, 2.5, 2.5, 0.0, 0.5, 9.0),)
    (failure,) = tolerance_failures(_report(cuts=cuts))
    assert failure.startswith("1 of 1 measured cuts on a beat but away from their planned frame")
    assert "moves_used[3] at 2.500 s is +500.0 ms from its planned 2.000 s" in failure


def test_audio_offset_weak_correlation_and_duration_fail_with_their_figures() -> None:
    """Each of the other tolerances names its figure; an unmeasured audio offset fails none."""
    good_cuts = (CutCheck(3, 2.0, 2.0, 2.0, 0.0, 0.5, 9.0),)
    late = tolerance_failures(_report(cuts=good_cuts, audio_offset_ms=201.5))
    assert late == ["audio is +201.5 ms off the song (onset correlation 0.90; tolerance 40 ms)"]
    weak = tolerance_failures(_report(cuts=good_cuts, audio_correlation=0.2))
    assert weak[0].startswith("audio does not follow the song: onset correlation 0.20")
    long = tolerance_failures(_report(cuts=good_cuts, duration_s=10.25))
    assert long[0].endswith("250.0 ms off (tolerance 42.7 ms)")
    unmeasured = _report(cuts=good_cuts, audio_offset_ms=None, audio_correlation=None)
    assert tolerance_failures(unmeasured) == []


def test_the_summary_is_what_video_completed_carries() -> None:
    """The report's summary fits ``SyncSummary``; the completion's history row carries it."""
    report = _report()
    summary = report.summary()
    assert (summary["cuts_planned"], summary["cuts_measured"]) == (3, 2)
    assert (summary["cut_error_max_ms"], summary["cut_error_median_ms"]) == (125.0, 62.5)
    done = VideoCompleted(
        task_id="t", video_uri="videos/t.mp4", duration_s=10.0, width=320, height=180, fps=24,
        size_bytes=10, completed_at=datetime.now(UTC),
        sync=SyncSummary(report_uri="videos/t-sync.json", **summary),
    )  # fmt: skip
    assert done.completion_detail()["sync"] == {"report_uri": "videos/t-sync.json", **summary}
    assert report.as_json()["cuts"][2]["measured_s"] is None
    assert any(line.startswith("cuts: 2 of 3 hard cuts seen") for line in report.lines())


def test_scene_scores_are_read_from_the_metadata_print_out() -> None:
    """Each frame's pts_time and score; a frame printed without a score scores 0."""
    text = (
        "frame:0    pts:0       pts_time:0\n"
        "frame:1    pts:1000    pts_time:0.0333333\nlavfi.scene_score=0.004999\n"
        "frame:2    pts:2000    pts_time:0.0666667\nlavfi.scene_score=0.9\n"
    )
    scenes = parse_scene_scores(text)
    assert scenes.times_s == (0.0, 0.0333333, 0.0666667)
    assert scenes.scores == (0.0, 0.004999, 0.9)
    with pytest.raises(FfmpegFailed, match="no frames"):
        parse_scene_scores("")


def test_the_blueprint_takes_sync_tolerances_and_refuses_bad_ones() -> None:
    """``video_output.sync`` is optional; a negative tolerance is refused by its path."""
    document = build_blueprint([MovePlan("moves/a.mp4")])
    assert parse_blueprint(document).video_output.sync is None
    document["video_output"]["sync"] = {"audio_offset_ms": 20, "cut_error_frames": 0.5}
    tolerances = parse_blueprint(document).video_output.sync
    assert tolerances is not None
    assert (tolerances.audio_offset_ms, tolerances.min_audio_correlation) == (20, 0.5)
    document["video_output"]["sync"] = {"audio_offset_ms": -1}
    with pytest.raises(BlueprintInvalid, match=r"video_output\.sync\.audio_offset_ms"):
        parse_blueprint(document)


def test_the_cut_search_decodes_only_around_the_cuts() -> None:
    """Each cut gets half a second and two frames either side; windows closer than a second
    merge, and none reaches past the video's ends."""
    windows = scan_windows([0.2, 5.0, 6.5, 20.0], fps=25, duration_s=20.3)
    assert windows == [
        (0.0, pytest.approx(0.78)),
        (pytest.approx(4.42), pytest.approx(7.08)),
        (pytest.approx(19.42), 20.3),
    ]
    assert scan_windows([], fps=25, duration_s=20.0) == []


def test_each_window_is_an_input_seeked_to_with_the_files_own_timestamps() -> None:
    """``-copyts`` keeps the file's timestamps; every window is one seeked input read as MP4
    through the file protocol, and prints its scores into its own file."""
    outs = [Path("/w/sync/scenes-0000.txt"), Path("/w/sync/scenes-0001.txt")]
    args = scene_args(Path("/w/video.mp4"), [(0.5, 1.75), (10.0, 11.0)], outs)
    assert args.index("-copyts") < args.index("-i")
    seeks = [args[i + 1] for i, arg in enumerate(args) if arg == "-ss"]
    assert seeks == ["0.500000", "10.000000"]
    assert args.count("file:/w/video.mp4") == 2
    assert args.count("mov") >= 4  # -f mov and -format_whitelist mov for each input
    graph = args[args.index("-filter_complex") + 1]
    assert "file=/w/sync/scenes-0001.txt[s1]" in graph
    assert graph.endswith("[s0][s1]concat=n=2:v=1:a=0[v]")
