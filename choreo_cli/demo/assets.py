"""What the demo needs before a request: the move library, a song, a catalogue to choose from.

Each is built once and reused: the procedural library bundle is rendered into
``library/`` (via a temporary folder renamed at the end, so an interrupted build is never taken
for a finished one) and imported, with its embeddings, into a database that has no moves yet;
the synthesized demo song is written once; a ``--song`` file is copied into the storage root
under a name derived from its content, so the blueprint consumer's analysis cache recognises it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from choreo_cli.demo.environment import DemoPaths
from choreography.planner.offline_storage import song_key
from lifecycle.database import connect
from schemas.errors import ChoreoError, ConfigurationError

DEMO_SONG_KEY = "songs/choreo-demo-song.wav"
# Inside every demo move's speed band: the demo library is recorded at 100-128 BPM and a move may
# play at 0.85-1.15x, so 112 BPM lets every style, difficulty and energy dance (at 120 BPM the
# 100/104 BPM hip-hop and contemporary moves could not, and "hip-hop for beginners" failed).
DEMO_TEMPO_BPM = 112.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    """What one preparation step did: ``reused`` or ``built``, with a line for the user."""

    reused: bool
    detail: str
    seconds: float


def ensure_library(paths: DemoPaths, database_url: str, say: Progress) -> Prepared:
    """Render the demo bundle unless present, import it unless the database has moves."""
    started = time.monotonic()
    manifest = paths.library / "manifest.json"
    rendered = False
    if not manifest.exists():
        say("rendering the procedural demo move library (once; reused by later runs)")
        _render_bundle(paths.library)
        rendered = True
    with connect(database_url) as conn:
        count = _move_count(conn)
        if count:
            detail = f"move library reused: {count} moves already in the database"
            return Prepared(not rendered, detail, time.monotonic() - started)
        say("importing the demo move library with its embeddings (once per database)")
        imported = _import_bundle(paths, conn)
    took = time.monotonic() - started
    detail = f"move library built: {imported} moves imported in {took:.1f} s"
    return Prepared(False, detail, took)


def ensure_demo_song(paths: DemoPaths, seconds: float, say: Progress) -> tuple[str, Prepared]:
    """The storage key of the synthesized demo song, written on the first run only."""
    target = paths.storage_root / DEMO_SONG_KEY
    if target.exists():
        return DEMO_SONG_KEY, Prepared(True, f"demo song reused: {target}", 0.0)
    started = time.monotonic()
    say(f"synthesizing a {seconds:.0f} s demo song (once)")
    from choreo_cli.demo.song_synth import synthesize_song, write_wav  # noqa: PLC0415 - numpy

    song = synthesize_song(DEMO_TEMPO_BPM, "syncopated", demo_structure(seconds), seed=3)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.wav")
    write_wav(partial, song.y, song.sr)
    partial.replace(target)
    took = time.monotonic() - started
    return DEMO_SONG_KEY, Prepared(False, f"demo song written: {target}", took)


def demo_structure(seconds: float) -> tuple[tuple[str, int], ...]:
    """Sections (name, bars) filling about ``seconds`` at the demo tempo, chorus repeated.

    Every section is a whole number of 8-count phrases (2 bars): the analysis snaps section
    boundaries to phrases, so a 7-bar chorus is not found to repeat (measured at 112 BPM).
    """
    bar_s = 4 * 60.0 / DEMO_TEMPO_BPM
    bars = max(8, round(seconds / bar_s))
    intro = 2
    phrases = (bars - intro) // 2
    verse = phrases // 4
    chorus = (phrases - 2 * verse) // 2
    tail = phrases - 2 * verse - 2 * chorus
    sections = [("intro", intro), ("verse", 2 * verse), ("chorus", 2 * chorus)]
    sections += [("verse", 2 * verse), ("chorus", 2 * (chorus + tail))]
    return tuple((name, count) for name, count in sections if count > 0)


def stage_song_file(paths: DemoPaths, song: Path) -> str:
    """Copy ``song`` into the storage root (named by its content); its storage key."""
    key = song_key(song)
    target = paths.storage_root / key
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(song, target)
    return key


def ensure_in_catalogue(paths: DemoPaths, database_url: str, key: str) -> str:
    """Register and analyse the song at ``key`` (cached by content); its song id."""
    from blobstore.storage import LocalStorage  # noqa: PLC0415
    from consumers.blueprint_consumer.song_store import SongResolver  # noqa: PLC0415 - librosa
    from lifecycle.database import open_pool  # noqa: PLC0415
    from schemas.events import SongRef  # noqa: PLC0415
    from schemas.settings import DatabaseSettings, SongSettings  # noqa: PLC0415

    storage = LocalStorage(paths.storage_root)
    settings = DatabaseSettings(DATABASE_URL=database_url, DB_POOL_MAX_SIZE=1)
    pool = open_pool(settings, name="choreo-demo-catalogue")
    try:
        with pool.connection() as conn:
            resolver = SongResolver(storage, pool, limits=SongSettings().limits())
            resolved = resolver.resolve(conn, SongRef(audio_uri=key))
    finally:
        pool.close()
    return resolved.row.song_id


def _render_bundle(target: Path) -> None:
    from choreography.moves.demo_library import build_demo_library  # noqa: PLC0415 - heavy

    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    build_demo_library(building)
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)


def _import_bundle(paths: DemoPaths, conn: psycopg.Connection) -> int:
    from choreography.moves.ingest import import_bundle  # noqa: PLC0415 - heavy
    from choreography.search.embeddings import embed_moves  # noqa: PLC0415
    from choreography.search.text_embedding import text_embedder_from_settings  # noqa: PLC0415
    from schemas.settings import VectorSearchSettings  # noqa: PLC0415

    embedder = text_embedder_from_settings(VectorSearchSettings())
    try:
        report = import_bundle(
            paths.library,
            conn,
            paths.storage_root,
            embed=lambda move: embed_moves([move], embedder)[0],
        )
    except ChoreoError as error:
        raise ConfigurationError(f"importing the demo library failed: {error}") from error
    skipped = report.with_status("skipped")
    if skipped:
        first = skipped[0]
        raise ConfigurationError(
            f"{len(skipped)} demo moves could not be imported; first: {first.entry}: "
            f"{first.detail}. Delete {paths.library} to rebuild the library"
        )
    return len(report.outcomes)


def _move_count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM moves").fetchone()
    return int(row[0]) if row else 0
