"""Importing move bundles into a real PostgreSQL: updates not duplicates, bad entries reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from choreography.moves.bundle import MoveDraft, write_bundle
from choreography.moves.ingest import import_bundle
from choreography.moves.library_store import MoveFilters, count_moves, get_move, list_moves
from choreography.moves.procedural_motion import MotionRecipe, generate_keypoints
from lifecycle.database import connect
from schemas.errors import InvalidInput, NotFound

pytestmark = pytest.mark.integration


def _draft(move_id: str, style: str, energy: str, legs: str = "bounce") -> MoveDraft:
    recipe = MotionRecipe(legs, "wave", "beginner", energy, 120.0, counts=4)
    return MoveDraft(
        move_id=move_id, name=move_id.title(), style=style, difficulty="beginner", energy=energy,
        tempo_bpm=120.0, counts=4, keypoints=generate_keypoints(recipe), fps=30.0,
        description="test move", tags=("test", legs),
    )  # fmt: skip


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-move bundle with real rendered clips."""
    out = tmp_path_factory.mktemp("bundle")
    drafts = [_draft("pop-bounce", "pop", "low"), _draft("salsa-step", "salsa", "high", "rock"),
              _draft("pop-touch", "pop", "high", "step-touch")]  # fmt: skip
    write_bundle(out, drafts)
    return out


def _library_version(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT version FROM move_library").fetchone()
    assert row is not None
    return int(row[0])


def test_import_twice_updates_instead_of_duplicating(
    bundle: Path, database_url: str, tmp_path: Path
) -> None:
    """A second import of the same bundle reports updates and leaves one row per move."""
    with connect(database_url) as conn:
        first = import_bundle(bundle, conn, tmp_path)
        second = import_bundle(bundle / "manifest.json", conn, tmp_path)
        assert [o.status for o in first.outcomes] == ["imported"] * 3
        assert [o.status for o in second.outcomes] == ["updated"] * 3
        assert count_moves(conn) == 3
    assert (tmp_path / "moves" / "salsa" / "salsa-step.mp4").stat().st_size > 0
    assert (tmp_path / "moves" / "pop" / "pop-bounce.mp4").read_bytes() == (
        bundle / "clips" / "pop-bounce.mp4"
    ).read_bytes()


def test_import_bumps_library_version(bundle: Path, database_url: str, tmp_path: Path) -> None:
    """Importing bumps move_library.version, so search indexes know to rebuild."""
    before = _library_version(database_url)
    with connect(database_url) as conn:
        import_bundle(bundle, conn, tmp_path)
    assert _library_version(database_url) > before


def test_stored_move_reads_back_identical(bundle: Path, database_url: str, tmp_path: Path) -> None:
    """get_move returns the imported metadata and bit-identical keypoints and poses."""
    with connect(database_url) as conn:
        import_bundle(bundle, conn, tmp_path)
        move = get_move(conn, "salsa-step")
        row = conn.execute(
            "SELECT energy, channels, frames, octet_length(start_pose) FROM moves "
            "WHERE move_id = 'salsa-step'"
        ).fetchone()
        with pytest.raises(NotFound, match="nope"):
            get_move(conn, "nope")
    original = np.load(bundle / "keypoints" / "salsa-step.npy")
    assert np.array_equal(move.keypoints, original)
    assert (move.style, move.energy, move.counts, move.tempo_bpm) == ("salsa", "high", 4, 120.0)
    assert move.clip_uri == "moves/salsa/salsa-step.mp4"
    assert move.tags == ("test", "rock")
    assert row is not None
    assert row[1:] == (3, original.shape[0], 16 * 3 * 4)
    assert row[0] > 2 / 3


def test_list_and_count_filter_by_style_energy_and_tags(
    bundle: Path, database_url: str, tmp_path: Path
) -> None:
    """Filters select by style, energy level and tags; limit caps the list."""
    with connect(database_url) as conn:
        import_bundle(bundle, conn, tmp_path)
        pop = list_moves(conn, MoveFilters(styles=["pop"]))
        assert [m.move_id for m in pop] == ["pop-bounce", "pop-touch"]
        assert count_moves(conn, MoveFilters(energies=["high"])) == 2
        assert count_moves(conn, MoveFilters(styles=["pop"], energies=["low"])) == 1
        assert count_moves(conn, MoveFilters(tags_all=["test", "rock"])) == 1
        assert len(list_moves(conn, MoveFilters(limit=1))) == 1
        with pytest.raises(InvalidInput, match="energy"):
            count_moves(conn, MoveFilters(energies=["loud"]))


def _bad_batch(bundle: Path, out: Path) -> Path:
    """A copy of the bundle's manifest with four broken entries around two good ones."""
    good = json.loads((bundle / "manifest.json").read_text())["moves"]
    (out / "garbage.npy").write_bytes(b"this is not a numpy file")

    def absolute(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "clip": str(bundle / entry["clip"]),
                "keypoints": str(bundle / entry["keypoints"])}  # fmt: skip

    first, second, third = (absolute(e) for e in good)
    missing_field = {k: v for k, v in third.items() if k != "energy"}
    entries = [
        first,
        {**second, "move_id": "no-clip", "clip": "clips/absent.mp4"},
        {**second, "move_id": "bad-keypoints", "keypoints": "garbage.npy"},
        {**second, "move_id": "disco-move", "style": "disco"},
        {**missing_field, "move_id": "no-energy"},
        second,
    ]
    manifest = out / "batch.json"
    manifest.write_text(json.dumps({"version": 1, "moves": entries}))
    return manifest


def test_bad_entries_are_reported_and_the_rest_imports(
    bundle: Path, database_url: str, tmp_path: Path
) -> None:
    """Missing clip, unreadable keypoints, unknown style and missing field are each skipped."""
    manifest = _bad_batch(bundle, tmp_path)
    with connect(database_url) as conn:
        report = import_bundle(manifest, conn, tmp_path / "storage")
        assert count_moves(conn) == 2
    assert [o.status for o in report.outcomes] == [
        "imported", "skipped", "skipped", "skipped", "skipped", "imported"
    ]  # fmt: skip
    details = {o.move_id: o.detail for o in report.with_status("skipped")}
    assert details["no-clip"].startswith("clip: file not found")
    assert "absent.mp4" in details["no-clip"]
    assert details["bad-keypoints"].startswith("keypoints: cannot read")
    assert "garbage.npy" in details["bad-keypoints"]
    assert details["disco-move"].startswith("style: unknown style 'disco'")
    assert details["no-energy"].startswith("energy: missing field")
    assert not report.all_imported
    assert not (tmp_path / "storage" / "moves" / "salsa" / "disco-move.mp4").exists()


def test_import_command_exit_code_and_summary(
    bundle: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`choreo moves import` exits 0 when all import, 1 when some are skipped, and summarises."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STORAGE_ROOT", str(tmp_path / "storage"))
    monkeypatch.setenv("LOG_JSON", "false")
    runner = CliRunner()
    ok = runner.invoke(app, ["moves", "import", str(bundle)])
    assert ok.exit_code == 0, ok.output
    assert "3 imported, 0 updated, 0 skipped" in ok.output
    bad = runner.invoke(app, ["moves", "import", str(_bad_batch(bundle, tmp_path))])
    assert bad.exit_code == 1
    assert "0 imported, 2 updated, 4 skipped" in bad.output
    assert "skipped  moves[3] (disco-move): style: unknown style 'disco'" in bad.output


def test_unreadable_manifest_fails_the_whole_import(database_url: str, tmp_path: Path) -> None:
    """A manifest that is missing or not JSON stops the import with a message naming the file."""
    (tmp_path / "manifest.json").write_text("{not json")
    with connect(database_url) as conn:
        with pytest.raises(InvalidInput, match=r"manifest\.json: cannot read manifest"):
            import_bundle(tmp_path, conn, tmp_path)
        with pytest.raises(InvalidInput, match="manifest not found"):
            import_bundle(tmp_path / "other", conn, tmp_path)
