"""The procedural demo library: coverage of styles and scales, playable clips, determinism."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from choreography.moves.demo_library import demo_drafts
from choreography.moves.model import DIFFICULTIES, ENERGIES
from choreography.moves.skeleton import JOINT_INDEX, NUM_JOINTS
from choreography.planner.candidates import motion_beats

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The demo library built once through the CLI, with its manifest entries."""
    out = tmp_path_factory.mktemp("demo")
    # A small size keeps the suite fast; the demo itself renders at 1280x720 (test_demo.py).
    result = CliRunner().invoke(app, ["moves", "demo-library", str(out), "--size", "320x180"])
    assert result.exit_code == 0, result.output
    entries: list[dict[str, Any]] = json.loads((out / "manifest.json").read_text())["moves"]
    return out, entries


def _probe(clip: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,pix_fmt,width,height,nb_frames,duration,r_frame_rate",
         "-of", "json", str(clip)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    stream: dict[str, Any] = json.loads(result.stdout)["streams"][0]
    return stream


def test_library_covers_styles_difficulties_and_energies(library: tuple[Path, list]) -> None:
    """At least 40 moves over 4 styles; every style x difficulty has all three energies."""
    _, entries = library
    assert len(entries) >= 40
    assert len({e["move_id"] for e in entries}) == len(entries)
    styles = {e["style"] for e in entries}
    assert len(styles) == 4
    cells = {(e["style"], e["difficulty"], e["energy"]) for e in entries}
    for style in styles:
        for difficulty in DIFFICULTIES:
            assert {energy for s, d, energy in cells if (s, d) == (style, difficulty)} == set(
                ENERGIES
            ), (style, difficulty)


def test_every_clip_is_playable_h264_of_the_move_length(library: tuple[Path, list]) -> None:
    """Each clip is H.264 yuv420p at 30 fps lasting counts x 60 / bpm within one frame."""
    out, entries = library
    for entry in entries:
        stream = _probe(out / entry["clip"])
        assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p"), entry["move_id"]
        assert (stream["width"], stream["height"]) == (320, 180)
        assert stream["r_frame_rate"] == "30/1"
        expected = entry["counts"] * 60.0 / entry["tempo_bpm"]
        assert abs(float(stream["duration"]) - expected) <= 1 / 30 + 1e-6, entry["move_id"]


def test_every_move_has_keypoints_matching_its_clip(library: tuple[Path, list]) -> None:
    """Keypoints are finite (frames, 16, 3) float32 with one frame per clip frame."""
    out, entries = library
    for entry in entries:
        keypoints = np.load(out / entry["keypoints"])
        assert keypoints.dtype == np.float32
        assert keypoints.shape[1:] == (NUM_JOINTS, 3)
        assert np.isfinite(keypoints).all()
        stream = _probe(out / entry["clip"])
        assert (
            keypoints.shape[0]
            == int(stream["nb_frames"])
            == round(float(stream["duration"]) * entry["fps"])
        )


def test_tempos_keep_the_speed_factor_small_for_typical_songs(library: tuple[Path, list]) -> None:
    """Moves are 8 counts recorded at 100-128 BPM, so 110-120 BPM songs need 0.85-1.15."""
    _, entries = library
    assert {e["counts"] for e in entries} == {8}
    for entry in entries:
        assert 100 <= entry["tempo_bpm"] <= 128
        assert 0.85 <= 115 / entry["tempo_bpm"] <= 1.15


def _mean_speed(keypoints: np.ndarray, fps: float) -> float:
    return float(np.linalg.norm(np.diff(keypoints, axis=0), axis=-1).mean() * fps)


def test_energy_orders_motion_speed_within_each_style() -> None:
    """Averaged over a style, high-energy moves move faster than medium, medium than low."""
    by_cell: dict[tuple[str, str], list[float]] = {}
    for draft in demo_drafts():
        speed = _mean_speed(draft.keypoints, draft.fps)
        by_cell.setdefault((draft.style, draft.energy), []).append(speed)
    for style in {style for style, _ in by_cell}:
        low, medium, high = (np.mean(by_cell[(style, e)]) for e in ENERGIES)
        assert low < medium < high, (style, low, medium, high)


def test_advanced_moves_turn_and_beginner_moves_do_not() -> None:
    """Advanced moves include a full turn (the hip line rotates); beginner moves face front."""
    for draft in demo_drafts():
        hips = draft.keypoints[:, JOINT_INDEX["l_hip"]] - draft.keypoints[:, JOINT_INDEX["r_hip"]]
        yaw = np.unwrap(np.arctan2(hips[:, 2], hips[:, 0]))
        turned = float(np.ptp(yaw))
        if draft.difficulty == "advanced":
            assert turned > 5.0, draft.move_id
        elif draft.difficulty == "beginner":
            assert turned < 0.1, draft.move_id


def test_every_move_pauses_on_its_counts() -> None:
    """Every move has a joint-speed minimum within 2 frames of at least 75 % of its counts."""
    for draft in demo_drafts():
        beats = np.asarray(motion_beats(draft.keypoints, draft.fps))
        # Count 0 is the first frame, where no local minimum can be detected.
        counts = np.arange(1, draft.counts) * 60.0 / draft.tempo_bpm
        nearest = np.abs(beats[None, :] - counts[:, None]).min(axis=1) * draft.fps
        assert np.mean(nearest <= 2.0) >= 0.75, (draft.move_id, nearest.round(1).tolist())


def test_library_is_deterministic_for_a_seed() -> None:
    """The same seed gives identical keypoints; another seed gives different ones."""
    first, again, other = demo_drafts(7), demo_drafts(7), demo_drafts(8)
    assert [d.move_id for d in first] == [d.move_id for d in again] == [d.move_id for d in other]
    assert all(np.array_equal(a.keypoints, b.keypoints) for a, b in zip(first, again, strict=True))
    assert not all(
        np.array_equal(a.keypoints, b.keypoints) for a, b in zip(first, other, strict=True)
    )


def test_library_counts_per_style_are_balanced(library: tuple[Path, list]) -> None:
    """Each style has the same number of moves, split evenly over difficulties."""
    _, entries = library
    per_style = Counter(e["style"] for e in entries)
    assert len(set(per_style.values())) == 1
    per_cell = Counter((e["style"], e["difficulty"]) for e in entries)
    assert len(set(per_cell.values())) == 1
