"""The onset envelopes' delay that ``BEAT_DELAY_S`` takes off every beat time.

Every onset envelope peaks after the sound starts: centred 2048-sample frames spread a kick over
+-46 ms, and SuperFlux compares a frame with the one 2 hops back. Measured here on the demo's
kick, the same way as on the analysis benchmark (where every beat came 36-50 ms late before the
correction; docs/MUSIC_ANALYSIS.md).
"""

from __future__ import annotations

import numpy as np

from choreo_cli.demo.instruments import kick
from choreography.music import analysis

SR = analysis.SAMPLE_RATE


def _kicks() -> tuple[np.ndarray, np.ndarray]:
    times = np.arange(0.5, 7.5, 0.5) + 0.0037  # off the frame grid
    y = np.zeros(SR * 8, dtype=np.float32)
    hit = kick(SR, np.random.default_rng(0))
    for t in times:
        start = round(t * SR)
        y[start : start + hit.size] += hit[: y.size - start]
    return y, times


def _peak_delays(env: np.ndarray, times: np.ndarray) -> np.ndarray:
    delays = []
    for t in times:
        centre = round(t * SR / analysis.HOP)
        peak = centre - 6 + int(np.argmax(env[centre - 6 : centre + 6]))
        delays.append(peak * analysis.HOP / SR - t)
    return np.asarray(delays)


def test_the_tracking_envelopes_peak_about_beat_delay_after_a_kick() -> None:
    """SuperFlux and the floored kick band, which the beats are tracked on, peak 30-45 ms after
    each kick; BEAT_DELAY_S is within 10 ms of their median."""
    y, times = _kicks()
    feats = analysis._features(y)
    superflux, kick_band = feats.beat_onset, feats.kick_onset
    tracking = superflux / superflux.mean() + kick_band / kick_band.mean()
    delay = float(np.median(_peak_delays(tracking, times)))
    assert 0.02 <= delay <= 0.05
    assert abs(analysis.BEAT_DELAY_S - delay) <= 0.01


def test_beats_are_reported_at_the_kick_not_at_the_envelope_peak() -> None:
    """A kick every 0.5 s (120 BPM): the reported beats sit within 15 ms of the kicks."""
    y, times = _kicks()
    beats = np.asarray(analysis.analyse_samples(y, SR).beats_s)
    nearest = times[np.abs(beats[:, None] - times[None, :]).argmin(axis=1)]
    assert float(np.median(np.abs(beats - nearest))) <= 0.015


def test_a_beat_on_the_first_frame_is_not_moved_before_the_song() -> None:
    """Beat times never go below 0."""
    assert analysis.beat_times(np.array([0, 1, 10], dtype=np.intp)).tolist()[0] == 0.0
