"""Property-based fuzzing of every decoder and validator: only the documented error escapes.

The strategies and targets live in ``bench/fuzz.py``, which runs them long; here each target gets
a bounded number of examples (a fixed seed, so a failure reproduces).
"""

from __future__ import annotations

import pytest

from bench.fuzz import TARGETS, run_target

EXAMPLES = 150


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_the_documented_error_escapes(name: str) -> None:
    """Every input is accepted or rejected with the target's documented error, never a crash."""
    counts = run_target(name, EXAMPLES)
    assert sum(counts.values()) >= EXAMPLES // 2  # hypothesis may stop early on small spaces
    # The strategies reach both sides: valid inputs that pass, and broken ones that are refused.
    assert counts["accepted"] > 0, counts
    assert counts["rejected"] > 0, counts
