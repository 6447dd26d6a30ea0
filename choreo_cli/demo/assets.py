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
from typing import TYPE_CHECKING, Any

import psycopg

from choreo_cli.demo.environment import DemoPaths
from choreography.planner.offline_storage import song_key
from lifecycle.database import connect
from schemas.errors import ChoreoError, ConfigurationError

if TYPE_CHECKING:
    from choreo_cli.demo.song_synth import Style

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


@dataclass(frozen=True)
class DemoLibrary:
    """One move library the demo builds once: its bundle folder and the tag its moves carry."""

    name: str
    folder: str  # under CHOREO_DATA_DIR
    tag: str  # every move of it carries this tag, so the database says whether it is imported
    what: str  # for people
    styles: tuple[str, ...]


PROCEDURAL = DemoLibrary(
    "procedural", "library", "procedural",
    "the procedural demo library (generated motion)",
    ("hip-hop", "pop", "contemporary"),
)  # fmt: skip
SALSA = DemoLibrary(
    "salsa", "library-salsa", "cmu",
    "the real-motion salsa library (CMU motion capture, subjects 60 and 61)", ("salsa",),
)  # fmt: skip


def libraries_for(style: str | None, describe: str | None) -> tuple[DemoLibrary, ...]:
    """The procedural library always; the real salsa one when the request asks for salsa.

    Salsa comes only from real motion capture; building it renders a few hundred clips once, so
    a run that does not ask for salsa does not pay for it.
    """
    wants_salsa = style == "salsa" or (describe is not None and "salsa" in describe.lower())
    return (PROCEDURAL, SALSA) if wants_salsa else (PROCEDURAL,)


def ensure_library(
    paths: DemoPaths,
    database_url: str,
    say: Progress,
    library: DemoLibrary = PROCEDURAL,
    size: tuple[int, int] = (1280, 720),
) -> Prepared:
    """Render ``library``'s bundle at ``size`` unless present, import it unless the database has
    it. A bundle rendered at another size is refused, naming the folder to delete."""
    started = time.monotonic()
    folder = paths.data_dir / library.folder
    rendered = False
    if not (folder / "manifest.json").exists():
        say(f"rendering {library.what} at {size[0]}x{size[1]} (once; reused by later runs)")
        _render_bundle(folder, library, say, size)
        rendered = True
    _check_size(folder, size)
    with connect(database_url) as conn:
        count = _move_count(conn, library.tag)
        if count:
            detail = f"{library.name} library reused: {count} moves ({library.what})"
            return Prepared(not rendered, detail, time.monotonic() - started)
        say(f"importing {library.what} with its embeddings (once per database)")
        imported = _import_bundle(paths, folder, conn)
    took = time.monotonic() - started
    detail = f"{library.name} library built: {imported} moves ({library.what}) in {took:.1f} s"
    return Prepared(False, detail, took)


@dataclass(frozen=True)
class DemoSong:
    """A synthesized demo song: where it is stored, its tempo and its drum pattern."""

    key: str
    tempo_bpm: float
    pattern: Style


DEMO_SONG = DemoSong(DEMO_SONG_KEY, DEMO_TEMPO_BPM, "syncopated")
# Salsa music runs 160-220 BPM; the CMU takes are danced at 163-187 BPM, so at 170 every take's
# moves play within the planner's speed band.
SALSA_SONG = DemoSong("songs/choreo-demo-salsa.wav", 170.0, "salsa")


def ensure_demo_song(
    paths: DemoPaths, seconds: float, say: Progress, song: DemoSong = DEMO_SONG
) -> tuple[str, Prepared]:
    """The storage key of the synthesized demo song, written on the first run only."""
    target = paths.storage_root / song.key
    if target.exists():
        return song.key, Prepared(True, f"demo song reused: {target}", 0.0)
    started = time.monotonic()
    say(f"synthesizing a {seconds:.0f} s {song.pattern} demo song at {song.tempo_bpm:g} BPM (once)")
    from choreo_cli.demo.song_synth import synthesize_song, write_wav  # noqa: PLC0415 - numpy

    structure = demo_structure(seconds, song.tempo_bpm)
    samples = synthesize_song(song.tempo_bpm, song.pattern, structure, seed=3)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.wav")
    write_wav(partial, samples.y, samples.sr)
    partial.replace(target)
    took = time.monotonic() - started
    return song.key, Prepared(False, f"demo song written: {target}", took)


def demo_structure(
    seconds: float, tempo_bpm: float = DEMO_TEMPO_BPM
) -> tuple[tuple[str, int], ...]:
    """Sections (name, bars) filling about ``seconds`` at ``tempo_bpm``, chorus repeated.

    Every section is a whole number of 8-count phrases (2 bars): the analysis snaps section
    boundaries to phrases, so a 7-bar chorus is not found to repeat (measured at 112 BPM).
    """
    bar_s = 4 * 60.0 / tempo_bpm
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


SIZE_FILE = "clip-size.txt"


def _check_size(folder: Path, size: tuple[int, int]) -> None:
    marker = folder / SIZE_FILE
    built = marker.read_text(encoding="utf-8").strip() if marker.exists() else "1280x720"
    wanted = f"{size[0]}x{size[1]}"
    if built != wanted:
        raise ConfigurationError(
            f"the demo library in {folder} was rendered at {built} and DEMO_VIDEO_SIZE is "
            f"{wanted}: delete {folder} (and use a new CHOREO_DATA_DIR, since its database has "
            "the old clips) or set DEMO_VIDEO_SIZE back"
        )


def _render_bundle(
    target: Path, library: DemoLibrary, say: Progress, size: tuple[int, int]
) -> None:
    from choreography.moves.bundle import write_bundle  # noqa: PLC0415 - heavy
    from choreography.moves.demo_library import demo_drafts  # noqa: PLC0415
    from choreography.moves.render import ClipFormat  # noqa: PLC0415

    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    drafts = _salsa_drafts(say) if library is SALSA else demo_drafts(styles=library.styles)
    done = 0
    started = time.monotonic()

    def step(_draft: object) -> None:
        nonlocal done
        done += 1
        if done % 25 == 0 or done == len(drafts):
            say(f"  rendered {done} of {len(drafts)} clips ({time.monotonic() - started:.0f} s)")

    try:
        clip_format = ClipFormat(*size)
    except ValueError as error:
        raise ConfigurationError(f"DEMO_VIDEO_SIZE: {error}") from error
    write_bundle(building, drafts, on_rendered=step, clip_format=clip_format)
    (building / SIZE_FILE).write_text(f"{size[0]}x{size[1]}\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)


def _salsa_drafts(say: Progress) -> list[Any]:
    from choreography.moves.salsa import salsa_drafts, trial_list  # noqa: PLC0415 - scipy
    from schemas.settings import DemoSettings  # noqa: PLC0415

    settings = DemoSettings()
    corpus = settings.salsa_corpus
    if not corpus.is_dir():
        raise ConfigurationError(
            f"the salsa library is cut from the CMU salsa captures, and {corpus} is not a folder "
            "of them: set CMU_SALSA_DIR to the folder holding 60_NN_scaled.bvh / 61_NN_scaled.bvh"
        )
    try:
        drafts, report = salsa_drafts(
            corpus,
            trials=trial_list(settings.salsa_trials),
            on_take=lambda trial: say(f"  cut trial {trial}"),
        )
    except ChoreoError as error:
        raise ConfigurationError(f"building the salsa library failed: {error}") from error
    for line in report.lines()[-1:]:
        say(f"  {line}")
    return drafts


def _import_bundle(paths: DemoPaths, folder: Path, conn: psycopg.Connection) -> int:
    from choreography.moves.ingest import import_bundle  # noqa: PLC0415 - heavy
    from choreography.search.embeddings import embed_moves  # noqa: PLC0415
    from choreography.search.text_embedding import text_embedder_from_settings  # noqa: PLC0415
    from schemas.settings import VectorSearchSettings  # noqa: PLC0415

    embedder = text_embedder_from_settings(VectorSearchSettings())
    try:
        report = import_bundle(
            folder,
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
            f"{first.detail}. Delete {folder} to rebuild the library"
        )
    return len(report.outcomes)


def _move_count(conn: psycopg.Connection, tag: str) -> int:
    row = conn.execute("SELECT count(*) FROM moves WHERE %s = ANY(tags)", (tag,)).fetchone()
    return int(row[0]) if row else 0
