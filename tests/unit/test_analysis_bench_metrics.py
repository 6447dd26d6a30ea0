"""The analysis benchmark's scores: mir_eval's F-measure, tempo and 8-count phase rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.analysis_metrics import beat_offset_ms, f_measure, phrase_phase_accuracy, tempo_correct

MIR_EVAL_BEAT = Path(__file__).resolve().parents[3] / "shared/corpus/mir_eval/tests/data/beat"
GRID = [5.0 + 0.5 * i for i in range(40)]


@pytest.mark.skipif(not MIR_EVAL_BEAT.is_dir(), reason="shared corpus not mounted")
@pytest.mark.parametrize("n", range(10))
def test_f_measure_reproduces_mir_evals_expected_outputs(n: int) -> None:
    """On mir_eval's own test vectors the F-measure equals its recorded output."""
    ref = np.loadtxt(MIR_EVAL_BEAT / f"ref{n:02d}.txt").tolist()
    est = np.loadtxt(MIR_EVAL_BEAT / f"est{n:02d}.txt").tolist()
    expected = json.loads((MIR_EVAL_BEAT / f"output{n:02d}.json").read_text())["F-measure"]
    assert f_measure(ref, est) == pytest.approx(expected, abs=1e-9)


def test_f_measure_known_cases() -> None:
    """Exact beats score 1, beats 100 ms late score 0, every other beat scores 2/3."""
    assert f_measure(GRID, GRID) == 1.0
    assert f_measure(GRID, [b + 0.06 for b in GRID]) == 1.0
    assert f_measure(GRID, [b + 0.1 for b in GRID]) == 0.0
    assert f_measure(GRID, GRID[::2]) == pytest.approx(2 / 3, abs=0.01)


def test_f_measure_ignores_the_first_five_seconds() -> None:
    """Beats before 5 s do not count, as in mir_eval.beat.evaluate."""
    assert f_measure([1.0, 2.0, *GRID], GRID) == 1.0


@pytest.mark.parametrize(
    ("estimate", "alternatives", "correct"),
    [
        (128.0, [], True),
        (130.5, [], True),  # +1.95 %
        (131.0, [], False),  # +2.3 %
        (85.4, [170.8], False),  # 2:3 is never an octave
        (64.0, [], False),  # half, not flagged
        (64.0, [128.2], True),  # half, true tempo flagged as the alternative
        (256.0, [128.0], True),
        (256.0, [64.0], False),  # flagged, but the wrong alternative
    ],
)
def test_tempo_correct(estimate: float, alternatives: list[float], correct: bool) -> None:
    """Within 2 %, or an octave off with the true 128 BPM among the flagged alternatives."""
    assert tempo_correct(128.0, estimate, alternatives) is correct


def test_phrase_phase_accuracy() -> None:
    """Share of estimated 8-count starts on true ones; None without 8-count truth."""
    truth = [4.0, 8.0, 12.0, 16.0]
    assert phrase_phase_accuracy(truth, [4.01, 8.0, 12.05, 16.0]) == 1.0
    assert phrase_phase_accuracy(truth, [6.0, 10.0, 14.0]) == 0.0
    assert phrase_phase_accuracy(truth, [0.5, 4.0, 10.0]) == 0.5  # 0.5 s is before the groove
    assert phrase_phase_accuracy(truth, []) == 0.0
    assert phrase_phase_accuracy([], [4.0]) is None


def test_beat_offset_is_the_median_signed_lag_of_the_hits() -> None:
    """Beats 40 ms late read +40 (F-measure 1 all the same); misses and the first 5 s do not
    count."""
    assert beat_offset_ms(GRID, [b + 0.04 for b in GRID]) == pytest.approx(40.0)
    assert beat_offset_ms(GRID, [b - 0.02 for b in GRID]) == pytest.approx(-20.0)
    assert beat_offset_ms(GRID, [b + 0.25 for b in GRID]) is None
    assert beat_offset_ms(GRID, [1.0, 2.0]) is None
