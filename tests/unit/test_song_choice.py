"""Path 2 song choice: hard fits, ranking, determinism and the reasons given."""

from __future__ import annotations

import random

import pytest

from choreography.planner.song_choice import CatalogSong, NoSongFits, choose_song
from schemas.errors import NotFound
from schemas.events import Constraints


def song(song_id: str, bpm: float, seconds: float = 200.0, style: str | None = None,
         energy: float | None = None) -> CatalogSong:  # fmt: skip
    """A catalog song with the given facts."""
    return CatalogSong(
        song_id, song_id.title(), f"songs/{song_id}.wav", seconds, bpm, style, energy
    )


CATALOG = [
    song("ballad", 72, style="contemporary", energy=0.1),
    song("groove", 98, style="hip-hop", energy=0.55),
    song("banger", 128, style="hip-hop", energy=0.9),
    song("anthem", 124, style="pop", energy=0.85),
    song("short", 126, seconds=40, style="hip-hop", energy=0.9),
    song("mystery", 120),
]


def test_picks_the_song_matching_style_energy_tempo() -> None:
    """Energetic fast hip-hop for 2 minutes picks the fast, high-energy hip-hop song."""
    choice = choose_song(CATALOG, Constraints(style="hip-hop", energy="high", duration_s=120),
                         tempo_range=(116, 200))  # fmt: skip
    assert choice.song.song_id == "banger"
    assert "style hip-hop" in choice.reason and "high energy" in choice.reason
    assert "2 fitting songs out of 6" in choice.reason


def test_too_short_songs_are_ruled_out() -> None:
    """A song shorter than the requested length is never chosen."""
    choice = choose_song(CATALOG, Constraints(style="hip-hop", energy="high", duration_s=120))
    assert choice.song.song_id == "banger"
    only_short = [CATALOG[4]]
    with pytest.raises(NoSongFits, match="1 shorter than 120 s"):
        choose_song(only_short, Constraints(duration_s=120))


def test_declared_match_beats_unknown_style() -> None:
    """A song that declares the style wins over one whose style is unknown."""
    choice = choose_song([CATALOG[5], CATALOG[3]], Constraints(style="pop"))
    assert choice.song.song_id == "anthem"
    alone = choose_song([CATALOG[5]], Constraints(style="pop"))
    assert alone.song.song_id == "mystery" and "(unknown)" in alone.reason


def test_choice_does_not_depend_on_catalog_order() -> None:
    """The same catalog in any order gives the same song (ties broken by song id)."""
    wanted = Constraints(energy="high")
    first = choose_song(CATALOG, wanted).song.song_id
    for seed in range(5):
        shuffled = CATALOG[:]
        random.Random(seed).shuffle(shuffled)  # noqa: S311 - a test shuffle, not a secret
        assert choose_song(shuffled, wanted).song.song_id == first


def test_nothing_fits_names_what_ruled_songs_out() -> None:
    """No fit is a NotFound whose message counts each reason songs were ruled out."""
    with pytest.raises(NotFound) as caught:
        choose_song(CATALOG, Constraints(style="salsa", energy="low"), tempo_range=(60, 102))
    message = str(caught.value)
    assert "no catalog song fits (style salsa, low energy, 60-102 BPM)" in message
    assert "of 6 analysed songs" in message and "outside 60-102 BPM" in message
    assert "not salsa" in message


def test_empty_catalog_is_a_clear_error() -> None:
    """An empty catalog says so instead of failing somewhere else."""
    with pytest.raises(NoSongFits, match="catalog has no analysed songs"):
        choose_song([], Constraints())


def test_a_salsa_tempo_range_counts_songs_as_salsa_counts_them() -> None:
    """Salsa is counted on the quarter note: a song counted at 102 is a 204 BPM salsa, so it
    fits "salsa at 190-220 BPM", and one counted at 190 fits as it is; for hip-hop, 102 does not."""
    catalog = [song("tumbao", 102, style="salsa"), song("dura", 190, style="salsa")]
    choice = choose_song(catalog, Constraints(style="salsa"), tempo_range=(200, 220))
    assert choice.song.song_id == "tumbao"
    assert "204 BPM counted as salsa is" in choice.reason
    as_is = choose_song(catalog, Constraints(style="salsa"), tempo_range=(180, 195))
    assert as_is.song.song_id == "dura" and "counted as" not in as_is.reason
    hip_hop = [song("tumbao", 102, style="hip-hop")]
    with pytest.raises(NoSongFits, match="outside 200-220 BPM"):
        choose_song(hip_hop, Constraints(style="hip-hop"), tempo_range=(200, 220))
