"""A real clip round trip: ``choreo moves import-video`` with the MediaPipe worker in its own
environment, then ``choreo plan`` with other moves from the database and ``choreo render``.

The clips are ``pose2sim_single_cam02.mp4`` and ``cam03`` from the shared corpus (one man seen by
two cameras, 100 frames at 60 fps each, read in place, never copied into the project), imported
in one command with a CSV manifest; the library also holds demo moves of another style. The plan
is in the clips' style, so it dances them (the planner's costs favour the demo moves' clean
counts whenever both are allowed: that is the planner's choice, not the import's).
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
from choreography.moves.library_store import get_move
from choreography.moves.render import ClipFormat
from choreography.moves.video_import import audio_tempo
from lifecycle.database import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHOREO = str(ROOT / ".venv" / "bin" / "choreo")
INGEST_PYTHON = ROOT / ".venv-ingest" / "bin" / "python"
CORPUS = ROOT.parent / "shared" / "corpus" / "people-video"
CLIP = CORPUS / "pose2sim_single_cam02.mp4"
OTHER = CORPUS / "pose2sim_single_cam03.mp4"
STYLE = "jazz"  # no demo move has it
STRUCTURE = (("intro", 2), ("verse", 4), ("chorus", 4), ("outro", 2))


def _choreo(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHOREO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def _probe(path: Path) -> dict[str, object]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_type,codec_name,width,height,r_frame_rate:format=duration", "-of", "json",
         str(path)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    probed: dict[str, object] = json.loads(result.stdout)
    return probed


@pytest.fixture
def workspace(tmp_path: Path, database_url: str) -> tuple[Path, dict[str, str]]:
    """A folder, a fresh database and a storage root of this test's own, as environment."""
    for needed in (CLIP, OTHER, INGEST_PYTHON):
        if not needed.exists():  # pragma: no cover - infra/local/setup.sh makes both available
            pytest.fail(f"missing {needed} (corpus, or run infra/local/setup.sh)", pytrace=False)
    env = {
        **os.environ, "DATABASE_URL": database_url, "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": str(tmp_path / "storage"), "INGEST_PYTHON": str(INGEST_PYTHON),
        "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    return tmp_path, env


def test_clips_import_plan_and_render(workspace: tuple[Path, dict[str, str]]) -> None:
    """Both clips become moves (report lines, stored clip and original), the same files again
    are unchanged, a blueprint dances them, and the render is a real H.264 video."""
    cwd, env = workspace
    demo = [d for d in demo_drafts() if d.style == "salsa" and d.difficulty == "beginner"]
    write_bundle(cwd / "demo", demo, clip_format=ClipFormat(64, 64, 12))
    imported = _choreo(cwd, env, "moves", "import", str(cwd / "demo"))
    assert imported.returncode == 0, imported.stderr

    manifest = cwd / "clips.csv"
    manifest.write_text(
        "clip,name,bpm,counts,difficulty\n"
        f"{CLIP.name},,144,4,beginner\n"
        f"{OTHER.name},Balance side view,144,4,\n"
    )
    args = ("moves", "import-video", str(CLIP), str(OTHER), "--style", STYLE,
            "--manifest", str(manifest))  # fmt: skip
    first = _choreo(cwd, env, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    line = next(ln for ln in first.stdout.splitlines() if CLIP.name in ln)
    assert line.startswith(f"imported  {CLIP.name} -> jazz/pose2sim-single-cam02-")
    assert "person in 50/50 frames (100%)" in line  # 100 frames at 60 fps, tracked at 30
    assert "144.0 BPM (given), 4 counts (given)" in line
    assert "energy high (motion)" in line  # big arm swings and kicks
    assert "difficulty beginner (given)" in line
    other = next(ln for ln in first.stdout.splitlines() if OTHER.name in ln)
    assert " -> jazz/balance-side-view-" in other and "(suggested)" in other
    assert "2 clips: 2 imported, 0 updated, 0 unchanged, 0 failed" in first.stdout
    move_id = line.split(" -> jazz/")[1].split(":")[0]

    again = _choreo(cwd, env, *args)
    assert again.returncode == 0
    assert f"unchanged {CLIP.name} -> {move_id}" in again.stdout

    storage = Path(env["STORAGE_ROOT"])
    stored = storage / "moves" / STYLE / f"{move_id}.mp4"
    original = storage / "moves" / STYLE / f"{move_id}.original.mp4"
    assert original.read_bytes() == CLIP.read_bytes()
    video = _probe(stored)["streams"]
    assert isinstance(video, list) and len(video) == 1  # no audio kept
    assert (video[0]["width"], video[0]["height"], video[0]["r_frame_rate"]) == (404, 720, "60/1")
    with connect(env["DATABASE_URL"]) as conn:
        move = get_move(conn, move_id)
        rows = conn.execute("SELECT count(*) FROM moves WHERE move_id LIKE 'pose2sim%'").fetchone()
    assert rows is not None and rows[0] == 1
    assert (move.fps, move.frames, move.counts) == (30.0, 50, 4)  # keypoints at the tracked rate

    song = synthesize_song(132.0, structure=STRUCTURE, seed=4)
    write_wav(cwd / "song.wav", song.y, song.sr)
    planned = _choreo(
        cwd, env, "plan", "--song", str(cwd / "song.wav"), "--style", STYLE,
        "--duration", "15", "--out", "bp.json",
    )  # fmt: skip
    assert planned.returncode == 0, planned.stdout + planned.stderr
    used = {m["move_id"] for m in json.loads((cwd / "bp.json").read_text())["moves_used"]}
    assert move_id in used
    assert any(m.startswith("balance-side-view-") for m in used)

    rendered = _choreo(cwd, env, "render", "bp.json", "--out", "v.mp4")
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    probed = _probe(cwd / "v.mp4")
    kinds = {s["codec_type"]: s for s in probed["streams"]}  # type: ignore[attr-defined]
    assert kinds["video"]["codec_name"] == "h264"
    assert "audio" in kinds
    duration = float(probed["format"]["duration"])  # type: ignore[index]
    assert 14.0 <= duration <= 17.0


def test_tempo_comes_from_the_clips_own_music(tmp_path: Path) -> None:
    """A clip filmed to a 118 BPM song gets the song analysis' tempo; a silent track gets none."""
    song = synthesize_song(118.0, structure=(("intro", 2), ("verse", 2)), seed=3)
    write_wav(tmp_path / "song.wav", song.y, song.sr)
    clip = tmp_path / "with-music.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=30",
         "-i", str(tmp_path / "song.wav"), "-shortest", "-c:v", "libx264", "-c:a", "aac",
         str(clip)], check=True,
    )  # fmt: skip
    tempo = audio_tempo(clip, tmp_path)
    assert tempo is not None and abs(tempo - 118.0) < 1.0
    # sports2d_demo.mp4 has an audio stream, but it is silent: the motion decides.
    assert audio_tempo(CORPUS / "sports2d_demo.mp4", tmp_path) is None


def test_a_bad_clip_fails_alone_in_one_line(workspace: tuple[Path, dict[str, str]]) -> None:
    """A file that is no video fails in one line naming it (the extractor's exit 2), exit 1."""
    cwd, env = workspace
    (cwd / "notes.mp4").write_text("not a video")
    done = _choreo(cwd, env, "moves", "import-video", str(cwd / "notes.mp4"))
    assert done.returncode == 1
    failed, summary = done.stdout.splitlines()
    assert failed.startswith("failed    notes.mp4: ") and failed.endswith("(unreadable video)")
    assert summary == "1 clips: 0 imported, 0 updated, 0 unchanged, 1 failed"
    assert "Traceback" not in done.stderr
