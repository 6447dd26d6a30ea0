"""``choreo plan`` and ``choreo blueprint inspect`` on a synthesized song and a demo bundle."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from choreo_cli.demo.song_synth import synthesize_song, write_wav
from choreo_cli.main import app
from choreography.moves.bundle import write_bundle
from choreography.moves.demo_library import demo_drafts
from choreography.moves.render import ClipFormat
from schemas.blueprint import parse_blueprint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STRUCTURE = (("intro", 2), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4), ("outro", 2))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthesized 112 BPM song and the demo library's hip-hop moves as a bundle."""
    out = tmp_path_factory.mktemp("plan")
    song = synthesize_song(112.0, structure=STRUCTURE, seed=3)
    write_wav(out / "song.wav", song.y, song.sr)
    drafts = [d for d in demo_drafts() if d.style == "hip-hop"]
    # Small clips: the planner reads only the manifest and keypoints, not the pictures.
    write_bundle(out / "library", drafts, clip_format=ClipFormat(64, 64, 12))
    return out


@pytest.fixture(autouse=True)
def storage_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Plan stores the song and clips in a local root of the test's own."""
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_ROOT", str(tmp_path / "storage"))
    return tmp_path / "storage"


def run(*args: str) -> str:
    """Run the CLI; fail the test with its output when it exits non-zero."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_plan_writes_a_valid_blueprint_with_its_quality_figures(workdir: Path) -> None:
    """The blueprint validates, uses the library's hip-hop moves and reports its figures."""
    out = workdir / "blueprint.json"
    output = run(
        "plan", "--song", str(workdir / "song.wav"), "--library", str(workdir / "library"),
        "--style", "hiphop", "--difficulty", "beginner", "--duration", "30", "--out", str(out),
    )  # fmt: skip
    blueprint = parse_blueprint(out.read_bytes())
    assert {m.move_id.split("-beginner")[0][:7] for m in blueprint.moves_used} == {"hip-hop"}
    assert abs(blueprint.song.window.length_s - 30) < 60 / 112 * 8
    assert "cuts on beat      100%" in output
    bas = float(re.search(r"beat align score\s+([0-9.]+)", output).group(1))  # type: ignore[union-attr]
    assert 0 <= bas <= 1
    print(output)  # the figures, for the record (pytest -s)


def test_plan_from_a_description(workdir: Path) -> None:
    """A description's words become the constraints recorded in the blueprint."""
    out = workdir / "described.json"
    run(
        "plan", "--song", str(workdir / "song.wav"), "--library", str(workdir / "library"),
        "--describe", "energetic hip-hop for beginners, about 20 seconds", "--out", str(out),
    )  # fmt: skip
    blueprint = parse_blueprint(out.read_bytes())
    constraints = blueprint.request.constraints
    assert blueprint.request.path == "describe"
    assert (constraints.style, constraints.difficulty, constraints.energy) == (
        "hip-hop",
        "beginner",
        "high",
    )


def test_plan_keeps_the_requested_difficulty_and_says_what_energy_it_gave(workdir: Path) -> None:
    """One advanced medium-energy hip-hop move: every move is advanced, substitutes are printed."""
    out = workdir / "advanced.json"
    output = run(
        "plan", "--song", str(workdir / "song.wav"), "--library", str(workdir / "library"),
        "--style", "hiphop", "--difficulty", "advanced", "--energy", "medium",
        "--allow-repeats", "--out", str(out),
    )  # fmt: skip
    blueprint = parse_blueprint(out.read_bytes())
    assert all("-advanced-" in m.move_id for m in blueprint.moves_used)
    assert blueprint.request.constraints.allow_repeats is True
    subs = blueprint.request.substitutions
    assert subs and {s.field for s in subs} == {"energy"}
    for sub in subs:
        assert f"  not as asked: {sub.line()}" in output
    exact = sum("-advanced-medium" in m.move_id for m in blueprint.moves_used)
    assert exact + sum(s.placements for s in subs) == len(blueprint.moves_used)


def test_plan_with_unknown_style_fails_naming_it(workdir: Path) -> None:
    """An unknown style exits 2 with a message naming the style."""
    result = CliRunner().invoke(
        app,
        ["plan", "--song", str(workdir / "song.wav"), "--library", str(workdir / "library"),
         "--style", "tango", "--out", str(workdir / "x.json")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown style 'tango'" in result.output


def test_inspect_draws_a_png_and_prints_the_figures(workdir: Path) -> None:
    """inspect --png writes a PNG picture and prints every move and the Beat Align Score."""
    out = workdir / "blueprint.json"
    if not out.exists():
        test_plan_writes_a_valid_blueprint_with_its_quality_figures(workdir)
    png = workdir / "timeline.png"
    output = run(
        "blueprint", "inspect", str(out), "--png", str(png),
        "--song", str(workdir / "song.wav"), "--library", str(workdir / "library"),
    )  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    assert "beat align score" in output
    assert len(re.findall(r"hip-hop-", output)) == len(parse_blueprint(out.read_bytes()).moves_used)


def test_inspect_without_library_or_song_still_draws_the_beat_grid(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the song and library, inspect draws the grid and says BAS needs the library."""
    monkeypatch.setenv("DATABASE_URL", "")
    out = workdir / "blueprint.json"
    if not out.exists():
        test_plan_writes_a_valid_blueprint_with_its_quality_figures(workdir)
    png = workdir / "grid.png"
    output = run("blueprint", "inspect", str(out), "--png", str(png))
    assert png.exists()
    assert "n/a (needs the move library)" in output
