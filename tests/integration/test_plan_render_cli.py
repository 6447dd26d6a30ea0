"""The newcomer's path through the real ``choreo`` executable: plan a song, then render it.

The song is a real CC-BY track read from the shared corpus (never copied into the project);
the move library is the demo library written as a bundle with small clips.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from choreo_cli.demo.song_synth import synthesize_song, write_wav
from choreography.moves.bundle import write_bundle
from choreography.moves.demo_library import demo_drafts
from choreography.moves.render import ClipFormat

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHOREO = str(ROOT / ".venv" / "bin" / "choreo")
SONG = ROOT.parent / "shared" / "corpus" / "librosa-data" / "audio" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
STRUCTURE = (("intro", 2), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4), ("outro", 2))


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole demo library (four styles, three levels) as a bundle with small clips."""
    out = tmp_path_factory.mktemp("library")
    write_bundle(out, demo_drafts(), clip_format=ClipFormat(64, 64, 12))
    return out


def choreo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI in ``cwd`` with the default local storage root (``cwd/.choreo``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_BACKEND", "STORAGE_ROOT")}
    return subprocess.run(
        [CHOREO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_plan_then_render_as_the_readme_says(library: Path, tmp_path: Path) -> None:
    """``plan --song`` stores the song and the clips it uses, so ``render`` finds them."""
    if not SONG.is_file():  # pragma: no cover - the corpus is part of the machine set-up
        pytest.fail(f"corpus song missing: {SONG}", pytrace=False)
    planned = choreo(
        tmp_path, "plan", "--song", str(SONG), "--library", str(library),
        "--duration", "15", "--out", "bp.json",
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    audio_uri = json.loads((tmp_path / "bp.json").read_text())["song"]["audio_uri"]
    assert audio_uri.startswith("songs/kevin_macleod_-_vibe_ace-")
    assert (tmp_path / ".choreo" / "storage" / audio_uri).is_file()
    rendered = choreo(tmp_path, "render", "bp.json", "--out", "v.mp4")
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "v.mp4").stat().st_size > 10_000
    again = choreo(
        tmp_path, "plan", "--song", str(SONG), "--library", str(library),
        "--duration", "15", "--out", "bp2.json",
    )  # fmt: skip
    assert f"song already stored as {audio_uri}" in again.stdout


def test_render_of_a_missing_song_says_what_to_do(library: Path, tmp_path: Path) -> None:
    """A song missing from storage fails in one stderr line naming ``choreo plan``."""
    song = tmp_path / "song.wav"
    synth = synthesize_song(112.0, structure=STRUCTURE, seed=3)
    write_wav(song, synth.y, synth.sr)
    planned = choreo(
        tmp_path, "plan", "--song", str(song), "--library", str(library),
        "--style", "hip-hop", "--duration", "15", "--out", "bp.json",
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    for stored in (tmp_path / ".choreo" / "storage" / "songs").iterdir():
        stored.unlink()
    rendered = choreo(tmp_path, "render", "bp.json", "--out", "v.mp4")
    assert rendered.returncode == 3
    assert len(rendered.stderr.strip().splitlines()) == 1
    assert "song.audio_uri" in rendered.stderr
    assert "`choreo plan --song FILE` stores the song" in rendered.stderr
    assert "Traceback" not in rendered.stdout + rendered.stderr


def test_default_style_is_one_that_fits_the_song(library: Path, tmp_path: Path) -> None:
    """No style given: a 97 BPM song is danced in a style whose moves reach 97 BPM."""
    song = tmp_path / "song97.wav"
    synth = synthesize_song(97.0, structure=STRUCTURE, seed=5)
    write_wav(song, synth.y, synth.sr)
    planned = choreo(
        tmp_path, "plan", "--song", str(song), "--library", str(library),
        "--duration", "20", "--out", "bp.json",
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    constraints = json.loads((tmp_path / "bp.json").read_text())["request"]["constraints"]
    # Salsa (120-128 BPM) and pop (112-120 BPM) cannot play at 97 BPM within 0.85-1.15.
    assert constraints["style"] in {"hip-hop", "contemporary"}
