"""The song analysis in a child process (consumers/blueprint_consumer/bounded_analysis.py):
the same result, the child's refusals as raised there, and a hung or dead child handled."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from choreo_cli.demo.song_synth import synthesize_song, write_wav
from choreography.music.analysis import analyse_file
from consumers.blueprint_consumer.bounded_analysis import (
    AnalysisCrashed,
    AnalysisTimedOut,
    BoundedAnalyser,
)
from schemas.errors import InvalidInput, PermanentError, TransientError
from schemas.media_formats import AUDIO_DEMUXERS, UnsupportedMediaFormat
from tests.fixtures.analysers import (
    HANG_MARK,
    answers_then_dies,
    dies,
    hangs_on_marked,
    records_pid,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    groove = synthesize_song(112.0, structure=(("verse", 4), ("chorus", 4)))
    return write_wav(root / "groove.wav", groove.y, groove.sr)


@pytest.fixture
def bounded() -> Iterator[BoundedAnalyser]:
    analyser = BoundedAnalyser(8.0, 1200.0, hangs_on_marked)
    yield analyser
    analyser.close()


def test_the_child_gives_the_analysis_the_worker_would(
    song: Path, bounded: BoundedAnalyser
) -> None:
    assert bounded(song) == analyse_file(song)


def test_a_hung_analysis_is_killed_and_the_next_song_is_analysed(
    song: Path, bounded: BoundedAnalyser, tmp_path: Path
) -> None:
    """The child that never answers is killed (its process is gone) and the task fails
    permanently naming the setting; a fresh child analyses the next song."""
    hung = tmp_path / "hang.wav"
    hung.write_bytes(song.read_bytes() + HANG_MARK)
    with pytest.raises(AnalysisTimedOut, match=r"hang\.wav did not finish within 8 s \(ANALYSIS"):
        bounded(hung)
    pid = int(Path(f"{hung}.pid").read_text(encoding="utf-8"))
    assert _gone(pid), f"the hung analysis (pid {pid}) is still running"
    assert isinstance(AnalysisTimedOut("x"), PermanentError)
    assert bounded(song).tempo_bpm == pytest.approx(112.0, rel=0.02)


def test_a_dead_child_is_a_transient_failure_and_the_next_song_is_analysed(song: Path) -> None:
    dying = BoundedAnalyser(30.0, 1200.0, dies)
    try:
        with pytest.raises(AnalysisCrashed, match=r"died \(exit code -9\)"):
            dying(song)
    finally:
        dying.close()
    assert isinstance(AnalysisCrashed("x"), TransientError)


def test_the_analysis_refusals_come_back_as_raised_in_the_child(
    bounded: BoundedAnalyser, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("these are my dance notes, not audio\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"notes\.wav cannot be"):
        bounded(notes)
    error = UnsupportedMediaFormat("song file a.m3u8", "hls", AUDIO_DEMUXERS)
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, as pebble sends
    assert type(again) is UnsupportedMediaFormat and again.detected == "hls"
    assert str(again) == str(error)


def test_a_timeout_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        BoundedAnalyser(0.0, 1200.0)


def _gone(pid: int, wait_s: float = 10.0) -> bool:
    """Whether process ``pid`` has ended (polled: the pool reaps it in its own thread)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _zombie(pid):
            return True
        time.sleep(0.1)
    return False


def _zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return True
    return "State:\tZ" in status


def test_the_child_ends_when_the_worker_is_killed(song: Path, tmp_path: Path) -> None:
    """kill -9 of the worker mid-analysis leaves no analysis process behind."""
    hung = tmp_path / "hang.wav"
    hung.write_bytes(song.read_bytes() + HANG_MARK)
    script = (
        "import sys; from pathlib import Path; "
        "from consumers.blueprint_consumer.bounded_analysis import BoundedAnalyser; "
        "from tests.fixtures.analysers import hangs_on_marked; "
        "BoundedAnalyser(600.0, 1200.0, hangs_on_marked)(Path(sys.argv[1]))"
    )
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen([sys.executable, "-c", script, str(hung)], cwd=root)
    try:
        pid_file = Path(f"{hung}.pid")
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
        assert pid_file.exists(), "the child never started analysing"
        child = int(pid_file.read_text(encoding="utf-8"))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        assert _gone(child, wait_s=30), f"analysis process {child} outlived its worker"
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_child_that_dies_between_songs_is_replaced_before_the_next(song: Path) -> None:
    """Killed while idle (it answered, then died), the child breaks pebble's pool; the next
    song is analysed in a new one rather than failed."""
    analyser = BoundedAnalyser(30.0, 1200.0, answers_then_dies)
    try:
        analyser(song)
        first = int(Path(f"{song}.pid").read_text(encoding="utf-8"))
        assert _gone(first, wait_s=30)
        assert analyser(song).tempo_bpm == pytest.approx(112.0, rel=0.02)
        assert int(Path(f"{song}.pid").read_text(encoding="utf-8")) != first
    finally:
        analyser.close()


def test_songs_from_short_lived_threads_keep_one_child(song: Path) -> None:
    """The HTTP entrypoint hands each request to a thread that ends when idle, and the child's
    PR_SET_PDEATHSIG follows the thread that started it: started on the analyser's own thread,
    it outlives them (the same process analyses every song)."""
    made: list[BoundedAnalyser] = []
    pids: list[int] = []

    def on_a_thread(work: Callable[[], object]) -> None:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        time.sleep(1.0)  # the thread is gone: a child tied to it would be killed by now

    on_a_thread(lambda: made.append(BoundedAnalyser(30.0, 1200.0, records_pid)))
    try:
        for _ in range(3):
            on_a_thread(lambda: made[0](song))
            pids.append(int(Path(f"{song}.pid").read_text(encoding="utf-8")))
        assert len(set(pids)) == 1 and not _gone(pids[0], wait_s=0.0)
    finally:
        made[0].close()


def test_a_worker_that_is_pid_1_keeps_its_child(song: Path, tmp_path: Path) -> None:
    """In a container the worker is PID 1: its child must not take that for a dead parent."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    script = (
        "import os, sys; from pathlib import Path; "
        "from consumers.blueprint_consumer.bounded_analysis import BoundedAnalyser; "
        "assert os.getpid() == 1, os.getpid(); "
        "a = BoundedAnalyser(60.0, 1200.0); print(round(a(Path(sys.argv[1])).tempo_bpm)); "
        "a.close()"
    )
    root = Path(__file__).resolve().parents[2]
    command = ["unshare", "--user", "--map-root-user", "--pid", "--fork", sys.executable, "-c"]
    done = subprocess.run(
        [*command, script, str(song)], cwd=root, capture_output=True, text=True, timeout=150,
        check=False,
    )  # fmt: skip
    if (
        done.returncode != 0
        and "unshare" in done.stderr
        and "Operation not permitted" in done.stderr
    ):
        pytest.skip(f"no user namespaces here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "112"
