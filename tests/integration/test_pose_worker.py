"""The pose worker (choreography/moves/pose_worker.py) on the real people-video corpus, offline.

The worker runs in the ingest environment (``.venv-ingest``, ``INGEST_PYTHON``), as the import
runs it: a subprocess writing an .npz. Every run here is under ``unshare -n``, so no run can
download a model (the lite and heavy MediaPipe models would be fetched at run time; the full one
ships inside the wheel). Clips: ../shared/corpus/people-video/, described in the corpus
SOURCES.md section 8. About 40 s on 2 cores.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.ingest import (
    CAMERAS,
    CORPUS,
    UNSHARE_NET,
    WorkerRun,
    camera_agreement,
    ingest_python,
    run_worker,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEYS = {
    "fps": np.float64, "width": np.int64, "height": np.int64, "n_frames": np.int64,
    "world": np.float32, "visibility": np.float32, "image": np.float32, "present": np.bool_,
    "people": np.int16, "target_box": np.float32,
}  # fmt: skip
INTEL = "intel_one-by-one-person-detection.mp4"
INTEL_FRAMES = 300  # of 1394 (139 s at 10 fps): three people come and go in the first 30 s


@pytest.fixture(scope="module")
def offline() -> None:
    """The ingest environment exists and ``unshare -n`` really cuts the network off."""
    if not ingest_python().exists():
        pytest.fail(
            f"no ingest environment at {ingest_python()}: run `bash infra/local/setup.sh`",
            pytrace=False,
        )
    probe = subprocess.run(
        [*UNSHARE_NET, str(ingest_python()), "-c",
         "import socket; socket.create_connection(('1.1.1.1', 443), timeout=3)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.returncode != 0, "unshare -n left the network up"
    assert "OSError" in probe.stderr or "unreachable" in probe.stderr, probe.stderr


class Extractions:
    """Each clip extracted once per module (under ``unshare -n``), on first use."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runs: dict[str, tuple[WorkerRun, dict[str, np.ndarray]]] = {}

    def __call__(self, clip: str) -> tuple[WorkerRun, dict[str, np.ndarray]]:
        if clip not in self.runs:
            video = CORPUS / clip
            if not video.is_file():  # pragma: no cover - the corpus is part of the machine set-up
                pytest.fail(f"corpus clip missing: {video}", pytrace=False)
            out = self.tmp / f"{clip}.npz"
            extra = ["--max-frames", str(INTEL_FRAMES)] if clip == INTEL else []
            run = run_worker(video, out, *extra, offline=True)
            assert run.returncode == 0, (run.returncode, run.events, run.other_stderr[-5:])
            with np.load(out) as data:
                self.runs[clip] = (run, {k: data[k] for k in data.files})
        return self.runs[clip]


@pytest.fixture(scope="module")
def extracted(offline: None, tmp_path_factory: pytest.TempPathFactory) -> Extractions:
    return Extractions(tmp_path_factory.mktemp("poses"))


def test_offline_run_writes_the_npz_contract(extracted: Extractions) -> None:
    """With the network cut off, a clip yields every key, dtype and shape the import reads."""
    run, d = extracted("sports2d_demo.mp4")
    assert run.other_stderr == []  # stderr carries JSON lines only (native logging silenced)
    assert set(d) == set(KEYS)
    for key, dtype in KEYS.items():
        assert d[key].dtype == dtype, key
    n = int(d["n_frames"])
    assert (n, float(d["fps"]), int(d["width"]), int(d["height"])) == (230, 30.0, 1768, 994)
    assert d["world"].shape == (n, 33, 3) and d["image"].shape == (n, 33, 2)
    assert d["visibility"].shape == (n, 33) and d["target_box"].shape == (n, 4)
    assert d["present"].shape == d["people"].shape == (n,)
    present = d["present"]
    assert np.isfinite(d["world"][present]).all() and np.isnan(d["world"][~present]).all()
    assert np.isnan(d["image"][~present]).all() and (d["visibility"][~present] == 0).all()
    # Metres around the hips: a body is within a few metres of its origin.
    assert np.nanmax(np.abs(d["world"])) < 3.0
    # The people detector ran on every 15th frame only.
    sampled = np.arange(n) % 15 == 0
    assert (d["people"][sampled] >= 0).all() and (d["people"][~sampled] == -1).all()
    progress = [e for e in run.events if e["event"] == "progress"]
    assert [e["frame"] for e in progress] == list(range(10, n + 1, 10))
    assert {e["frames"] for e in progress} == {n}
    done = run.last("done")
    assert done is not None and (done["frames"], done["present"]) == (n, int(present.sum()))


def test_several_people_track_the_chosen_one_in_a_crop(extracted: Extractions) -> None:
    """sports2d: two people (walker, jumper) and a tiny one. Seen as 2 on sampled frames, warned
    about, and the landmarks found in the crop are mapped back inside the crop on the frame."""
    run, d = extracted("sports2d_demo.mp4")
    assert (d["people"] == 2).sum() >= 4  # measured: 7 of 16 sampled frames
    warning = run.last("warning")
    assert warning is not None and warning["code"] == "several_people"
    assert warning["ranges"][0] == [45, 90]
    boxes, present = d["target_box"], d["present"]
    cropped = (boxes != np.array([0, 0, 1, 1], np.float32)).any(axis=1)
    assert cropped[:45].sum() == 0 and cropped[45:].sum() >= 100  # measured: 185
    hips = d["image"][:, 23:25].mean(axis=1)  # mid-hip, normalised to the whole frame
    inside = (
        (hips[:, 0] >= boxes[:, 0]) & (hips[:, 0] <= boxes[:, 2])
        & (hips[:, 1] >= boxes[:, 1]) & (hips[:, 1] <= boxes[:, 3])
    )  # fmt: skip
    assert inside[cropped & present].mean() > 0.95


# Share of frames with a person, measured with the worker on 2026-12-04 (the corpus SOURCES.md
# measured 222/230 on sports2d with MediaPipe's default detection threshold of 0.5).
RATES = {
    "sports2d_demo.mp4": (0.922, 0.85),  # backlit flip: some frames lost
    **dict.fromkeys(CAMERAS, (1.0, 0.97)),
    INTEL: (0.663, 0.55),  # empty table in frames 0-65 and 195-240: no person, rightly
    "intel_face-demographics-walking.gif": (1.0, 0.9),
}


@pytest.mark.parametrize("clip", RATES)
def test_detection_rate(extracted: Extractions, clip: str) -> None:
    """The share of frames with a person stays near what was measured (table: measured, bound)."""
    _, d = extracted(clip)
    measured, bound = RATES[clip]
    rate = float(d["present"].mean())
    assert rate >= bound, f"{clip}: {rate:.3f} (measured {measured})"
    assert float(d["visibility"][d["present"]].mean()) > 0.6


def test_empty_scene_has_no_person(extracted: Extractions) -> None:
    """The Intel clip opens on an empty table for 6.5 s: no person, and none counted."""
    _, d = extracted(INTEL)
    assert int(d["n_frames"]) == INTEL_FRAMES and float(d["fps"]) == 10.0
    assert not d["present"][:60].any()
    assert (d["people"][:60:15] == 0).all()
    assert d["present"][80:190].all()  # the first person, standing at the table


def test_four_synchronised_cameras_agree_on_joint_angles(extracted: Extractions) -> None:
    """One man on a force plate filmed by four synchronised cameras (100 frames each): elbow,
    shoulder, hip and knee angles from the world landmarks (view-independent) are compared, frame
    by frame, with the median of the four views.

    Measured 2026-12-04 (bench/ingest.py), |angle - median of views| over 100 frames and 8
    angles: median 5.8 deg (per camera 5.7, 6.7, 5.7, 5.3), 90th percentile 22.7 deg (per camera
    16.8, 38.8, 21.8, 16.5); per angle the right elbow is worst (median 12.5 deg), the others
    4.3-6.2 deg.
    """
    worlds = [extracted(cam)[1]["world"] for cam in CAMERAS]
    agreement = camera_agreement(worlds)
    assert agreement["frames"] == 100
    assert agreement["median"] < 8.0
    assert max(agreement["per_camera_median"]) < 10.0
    assert agreement["p90"] < 30.0
    assert max(agreement["per_angle_median"].values()) < 18.0


def test_several_people_refused_exits_3(offline: None, tmp_path: Path) -> None:
    """--on-multiple refuse: exit 3 and one JSON error naming the frames with several people."""
    out = tmp_path / "o.npz"
    run = run_worker(CORPUS / "sports2d_demo.mp4", out, "--on-multiple", "refuse", offline=True)
    assert run.returncode == 3
    error = run.last("error")
    assert error is not None and error["code"] == "several_people"
    assert error["frames"] == [45, 90] and "45-90" in error["message"]
    assert not out.exists()


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    garbage = tmp / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(16).integers(0, 256, 20_000, np.uint8).tobytes())
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    audio = tmp / "audio.m4a"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(audio)],
        check=True,
    )
    return {
        "garbage": garbage,
        "empty": empty,
        "audio only": audio,
        "text": CORPUS / "Sports2D_BSD-3-Clause.txt",  # FFmpeg would render it as a video
        "missing": tmp / "missing.mp4",
    }


def test_bad_inputs_exit_2_with_one_json_error(offline: None, tmp_path: Path) -> None:
    """Not a video, empty, audio only, text, no file: exit 2, one JSON line, no traceback."""
    for name, video in _bad_inputs(tmp_path).items():
        out = tmp_path / f"{name}.npz"
        run = run_worker(video, out, offline=True)
        assert run.returncode == 2, (name, run.events, run.other_stderr)
        assert run.other_stderr == [], name
        assert [e["event"] for e in run.events] == ["error"], name
        assert run.events[0]["code"] == "unreadable_video", name
        assert not out.exists(), name


def test_worker_imports_nothing_from_choreo() -> None:
    """The worker runs where choreo is not installed: stdlib, numpy, cv2 and mediapipe only."""
    source = (Path(__file__).resolve().parents[2] / "choreography/moves/pose_worker.py").read_text()
    imports = [
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.lstrip().startswith(("import ", "from "))
    ]
    first_party = {"schemas", "lifecycle", "blobstore", "delivery", "choreography", "producers",
                   "consumers", "job", "choreo_cli", "bench", "tests"}  # fmt: skip
    assert not first_party & set(imports), imports
    assert {"numpy", "cv2", "mediapipe"} <= set(imports)
