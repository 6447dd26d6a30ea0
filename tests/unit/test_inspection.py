"""``choreo blueprint inspect``: the assembled-motion figures with a library, without one n/a."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from choreography.moves.bundle import MANIFEST_NAME, MoveDraft, manifest_entry
from choreography.moves.skeleton import JOINT_INDEX, rest_pose
from choreography.planner.inspection import inspect_blueprint
from schemas.blueprint import parse_blueprint
from tests.fixtures.blueprints import MovePlan, build_blueprint


def write_library(folder: Path) -> Path:
    """A two-move bundle (manifest and keypoints, no clips): a held pose and a wrist swing."""
    (folder / "keypoints").mkdir(parents=True)
    t = np.arange(240) / 60.0
    held = np.repeat(rest_pose()[None], t.size, axis=0)
    swing = held.copy()
    swing[:, JOINT_INDEX["l_wrist"], 0] += (0.3 * np.cos(2 * np.pi * t)).astype(np.float32)
    entries = []
    for index, keypoints in enumerate((held, swing)):
        draft = MoveDraft(
            move_id=f"move-{index:03d}",
            name=f"Move {index}",
            style="salsa",
            difficulty="beginner",
            energy="medium",
            tempo_bpm=120.0,
            counts=4,
            keypoints=keypoints,
            fps=60.0,
        )
        np.save(folder / "keypoints" / f"{draft.move_id}.npy", keypoints)
        entries.append(manifest_entry(draft))
    (folder / MANIFEST_NAME).write_text(json.dumps({"version": 1, "moves": entries}))
    return folder


def write_blueprint(path: Path) -> Path:
    """Two 2-count moves back to back at 120 BPM, ids matching the library's."""
    plans = [MovePlan("moves/salsa/move-000.mp4"), MovePlan("moves/salsa/move-001.mp4")]
    path.write_text(json.dumps(build_blueprint(plans)))
    return path


def test_with_a_library_the_assembled_figures_and_each_cut_are_printed(tmp_path: Path) -> None:
    """Given --library, inspect prints the assembled BAS, sliding, variety and one line per cut."""
    library = write_library(tmp_path / "lib")
    blueprint = parse_blueprint(write_blueprint(tmp_path / "bp.json").read_bytes())
    lines = inspect_blueprint(blueprint, png=None, song=None, library=library)
    text = "\n".join(lines)
    for figure in ("BAS, assembled", "cut pose jumps", "foot sliding", "variety", "cut   1 at"):
        assert figure in text
    assert "2 distinct moves" in text
    assert sum(line.strip().startswith("cut ") and " at " in line for line in lines) == 1


def test_the_cli_without_a_library_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --library or DATABASE_URL, the keypoint figures are n/a and no cut is listed."""
    monkeypatch.setenv("DATABASE_URL", "")
    path = write_blueprint(tmp_path / "bp.json")
    result = CliRunner().invoke(app, ["blueprint", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "n/a (needs the move library)" in result.output
    assert "BAS, assembled" not in result.output


def test_the_cli_names_a_blueprint_move_the_library_lacks(tmp_path: Path) -> None:
    """A library without one of the blueprint's moves fails with exit 2 naming the move."""
    library = write_library(tmp_path / "lib")
    manifest = json.loads((library / MANIFEST_NAME).read_text())
    manifest["moves"] = manifest["moves"][:1]
    (library / MANIFEST_NAME).write_text(json.dumps(manifest))
    path = write_blueprint(tmp_path / "bp.json")
    result = CliRunner().invoke(app, ["blueprint", "inspect", str(path), "--library", str(library)])
    assert result.exit_code == 2
    assert "move-001" in result.output


def test_moves_placed_off_the_requested_level_are_said(tmp_path: Path) -> None:
    """A blueprint whose request lists substitutions prints one "not as asked" line for each."""
    document = build_blueprint([MovePlan("moves/salsa/move-000.mp4")])
    document["request"]["substitutions"] = [
        {"field": "energy", "requested": "high", "given": "low", "placements": 1,
         "move_ids": ["move-000"], "reason": "no high-energy move fits the song's tempo"},
    ]  # fmt: skip
    blueprint = parse_blueprint(json.dumps(document).encode())
    lines = inspect_blueprint(blueprint, png=None, song=None, library=None)
    expected = (
        "not as asked: energy: asked high, given low in 1 placement (move-000): "
        "no high-energy move fits the song's tempo"
    )
    assert expected in lines
