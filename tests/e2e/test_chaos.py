"""The short chaos run: requests flow while workers, jobs, PostgreSQL and the emulators die."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HARNESS_TIMEOUT_S = 420


@pytest.mark.timeout(HARNESS_TIMEOUT_S + 120)
def test_short_chaos_run_loses_and_doubles_nothing(demo_library: Path, tmp_path: Path) -> None:
    """20 requests under kill -9 of every kind of process, PostgreSQL restarts (fast and
    immediate) and emulator restarts: every task terminal, none doubled (bench/chaos.py)."""
    out = tmp_path / "chaos.json"
    harness = subprocess.Popen(
        [
            sys.executable, str(ROOT / "bench" / "chaos.py"),
            "--requests", "20", "--submit-over", "20",
            "--fault-window", "75", "--fault-every", "6", "10",
            "--drain-timeout", "240", "--port-base", "56300", "--seed", "7",
            "--library", str(demo_library), "--out", str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        stdout, stderr = harness.communicate(timeout=HARNESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        harness.terminate()  # the harness stops its processes and its stack on SIGTERM
        stdout, stderr = harness.communicate(timeout=60)
        pytest.fail(f"the chaos run took over {HARNESS_TIMEOUT_S} s\n{stderr[-3000:]}")
    assert out.exists(), stderr[-3000:]
    result = json.loads(out.read_text())
    counts = result["counts"]
    assert harness.returncode == 0, f"{stdout}\n{stderr[-3000:]}"
    assert counts["lost"] == 0, counts["lost_tasks"]
    assert counts["completed"] + counts["failed"] == counts["submitted"] == 20
    assert counts["completed"] == 20, counts["failure_reasons"]
    assert counts["tasks_with_two_distinct_completed_events"] == 0
    assert counts["video_objects"] == counts["completed"]
    kinds = {fault["fault"] for fault in result["faults"]}
    assert len(result["faults"]) >= 5 and "kill-worker" in kinds, result["faults"]
