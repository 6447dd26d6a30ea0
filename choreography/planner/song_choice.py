"""Path 2 without a song: pick the catalog song that best fits the parsed description.

Pure and deterministic. A song must be long enough for the requested duration, within the tempo
range a tempo word or BPM asks for, of the requested style when the catalog says its style, and
of the requested energy when the catalog gives its energy. Among the songs that fit, the best is
the one closest to the tempo range's centre and the energy level's centre, with a declared style
match before an unknown style; the song id breaks ties. The reason is written for humans and
goes into the blueprint's ``song.choice_reason``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from choreography.music.style_count import style_tempo
from schemas.errors import NotFound
from schemas.events import Constraints

# Middle of each energy third, as in the move library.
ENERGY_CENTRES = {"low": 1 / 6, "medium": 0.5, "high": 5 / 6}
# A window may be a little shorter than asked (whole 8-count phrases), so allow 10 %.
DURATION_SLACK = 0.9


@dataclass(frozen=True)
class CatalogSong:
    """A catalog song with its cached analysis summary (style and energy may be unknown)."""

    song_id: str
    title: str
    audio_uri: str
    duration_s: float
    tempo_bpm: float
    style: str | None = None
    energy: float | None = None


@dataclass(frozen=True)
class SongChoice:
    """The chosen song and why."""

    song: CatalogSong
    reason: str


class NoSongFits(NotFound):
    """No catalog song satisfies the constraints; the message says what ruled each one out."""

    error_code = "no-song-fits"


def choose_song(
    catalog: Sequence[CatalogSong],
    constraints: Constraints,
    tempo_range: tuple[float, float] | None = None,
) -> SongChoice:
    """The best-fitting song and the reason, or ``NoSongFits`` naming what ruled songs out."""
    if not catalog:
        raise NoSongFits("no song to choose from: the catalog has no analysed songs")
    ruled_out: Counter[str] = Counter()
    fitting: list[CatalogSong] = []
    for song in catalog:
        problem = _misfit(song, constraints, tempo_range)
        if problem is None:
            fitting.append(song)
        else:
            ruled_out[problem] += 1
    if not fitting:
        details = "; ".join(f"{count} {why}" for why, count in sorted(ruled_out.items()))
        raise NoSongFits(
            f"no catalog song fits {_wanted(constraints, tempo_range)}: "
            f"of {len(catalog)} analysed songs, {details}"
        )
    best = min(fitting, key=lambda s: (_distance(s, constraints, tempo_range), s.song_id))
    return SongChoice(best, _reason(best, constraints, tempo_range, len(fitting), len(catalog)))


def _misfit(
    song: CatalogSong, constraints: Constraints, tempo_range: tuple[float, float] | None
) -> str | None:
    wanted = constraints.duration_s
    if wanted is not None and song.duration_s < wanted * DURATION_SLACK:
        return f"shorter than {wanted:g} s"
    tempo = style_tempo(song.tempo_bpm, constraints.style)
    if tempo_range is not None and not tempo_range[0] <= tempo <= tempo_range[1]:
        return f"outside {tempo_range[0]:.0f}-{tempo_range[1]:.0f} BPM"
    if constraints.style and song.style and song.style != constraints.style:
        return f"not {constraints.style}"
    known_energy = song.energy is not None and constraints.energy is not None
    if known_energy and _energy_level(song.energy or 0.0) != constraints.energy:
        return f"not {constraints.energy} energy"
    return None


def _distance(
    song: CatalogSong, constraints: Constraints, tempo_range: tuple[float, float] | None
) -> tuple[float, ...]:
    # Declared style and energy matches first: an unknown is a weaker fit than a known match.
    unknown = float(bool(constraints.style) and song.style is None) + float(
        bool(constraints.energy) and song.energy is None
    )
    tempo = 0.0
    if tempo_range is not None:
        centre = (tempo_range[0] + tempo_range[1]) / 2
        tempo = abs(style_tempo(song.tempo_bpm, constraints.style) - centre) / centre
    energy = 0.0
    if constraints.energy and song.energy is not None:
        energy = abs(song.energy - ENERGY_CENTRES[constraints.energy])
    return (unknown, round(tempo + energy, 6))


def _energy_level(energy: float) -> str:
    if energy < 1 / 3:
        return "low"
    return "medium" if energy < 2 / 3 else "high"


def _wanted(constraints: Constraints, tempo_range: tuple[float, float] | None) -> str:
    parts = [
        f"style {constraints.style}" if constraints.style else "",
        f"{constraints.energy} energy" if constraints.energy else "",
        f"{tempo_range[0]:.0f}-{tempo_range[1]:.0f} BPM" if tempo_range else "",
        f"at least {constraints.duration_s:g} s" if constraints.duration_s else "",
    ]
    return "(" + ", ".join(p for p in parts if p) + ")" if any(parts) else "(no constraints)"


def _reason(
    song: CatalogSong,
    constraints: Constraints,
    tempo_range: tuple[float, float] | None,
    fitting: int,
    total: int,
) -> str:
    tempo = style_tempo(song.tempo_bpm, constraints.style)
    counted = f" counted as {constraints.style} is" if tempo != song.tempo_bpm else ""
    facts = [f"{tempo:.0f} BPM{counted}", f"{song.duration_s:.0f} s"]
    if song.style:
        facts.insert(0, song.style)
    if song.energy is not None:
        facts.append(f"{_energy_level(song.energy)} energy ({song.energy:.2f})")
    matched = []
    if constraints.style:
        matched.append(
            f"style {constraints.style}" if song.style else f"style {constraints.style} (unknown)"
        )
    if constraints.energy:
        known = song.energy is not None
        matched.append(f"{constraints.energy} energy" + ("" if known else " (unknown)"))
    if tempo_range:
        matched.append(f"tempo in {tempo_range[0]:.0f}-{tempo_range[1]:.0f} BPM")
    if constraints.duration_s:
        matched.append(f"long enough for {constraints.duration_s:g} s")
    wanted = ", ".join(matched) if matched else "no constraints given, first by id"
    return (
        f"Chose {song.title!r} ({', '.join(facts)}) as the closest of {fitting} fitting songs "
        f"out of {total} analysed: {wanted}."
    )
