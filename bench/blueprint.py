"""Benchmark: a blueprint for a 3-minute song, from a fresh process, a warm worker, a cache hit.

Run: ``.venv/bin/python bench/blueprint.py [--library DIR]`` (a few minutes on a loaded
machine). Prints a table and writes JSON to ``bench/results/``.

- *fresh*: ``choreo plan`` in a new process (interpreter start, imports, library read, analysis,
  search, planning, writing the file), timed from outside; best of ``--repeat``. Twice: with an
  empty numba cache (``NUMBA_CACHE_DIR`` a new empty folder each run: librosa's functions compile)
  and with a cache filled by ``choreo warmup`` beforehand (what the blueprint image ships).
- Bytecode: the blueprint image has a ``.pyc`` for every module (pip compiles site-packages, the
  Dockerfile the standard library); a venv made by uv (as here) has none, and
  ``PYTHONDONTWRITEBYTECODE=1`` keeps it so, so each fresh process would compile ~1,100 modules
  from source first (about 2.5 s). The bench compiles the standard library, the venv and the
  project into a scratch ``PYTHONPYCACHEPREFIX`` first (untimed, ~20 s) and gives it to every
  fresh process, so they start as the image does; ``--no-bytecode`` times the bare venv instead.
- *warm worker, new song*: in this process, after one warm-up plan on another song (imports
  done, move library and its index loaded once, as the blueprint consumer keeps them): analysis
  + search + planning of a song not seen before.
- *cache hit*: the same song again, its analysis read from the PostgreSQL analysis cache through
  the blueprint consumer's own ``SongResolver`` (``consumers/blueprint_consumer/song_store.py``):
  the request names the song by ``audio_uri``, so the audio is copied from local storage,
  hashed, looked up by ``content_sha256`` and the stored analysis validated; then search and
  planning. One warm connection, one transaction per resolve, as in the consumer; median of
  ``--hits`` runs. Also reported: the hit by ``song_id`` (no download, no hash) and the old
  in-memory dict stand-in, as the baseline of the same run.
- The database: ``DATABASE_URL`` when set (migrated, as the demo does; the bench deletes the song
  row it added), else an embedded PostgreSQL (``pgserver``, the demo's default) in the temporary
  folder, started and stopped by the bench (a few seconds, not timed). No local stack needed.
- peak RSS of the fresh process (``RUSAGE_CHILDREN``) and of this process.

The songs are synthesized (``choreo_cli.demo.song_synth``), 116 BPM, 88 bars (3 min 2 s), and
the move library is the procedural demo library (clips rendered small, since planning never
reads them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
STRUCTURE = (
    ("intro", 4), ("verse", 16), ("chorus", 16), ("verse", 16),
    ("chorus", 16), ("bridge", 8), ("chorus", 8), ("outro", 4),
)  # fmt: skip
TEMPO_BPM = 116.0
GOALS_S = {"fresh": 5.0, "warm_new_song": 1.5, "cache_hit": 0.1}


def make_inputs(work: Path, library: Path | None) -> tuple[list[Path], Path]:
    """Three synthesized songs and a move library folder (built when not given)."""
    from choreo_cli.demo.song_synth import synthesize_song, write_wav  # noqa: PLC0415
    from choreography.moves.demo_library import build_demo_library  # noqa: PLC0415
    from choreography.moves.render import ClipFormat  # noqa: PLC0415

    songs = []
    for seed in range(3):
        song = synthesize_song(TEMPO_BPM + seed, structure=STRUCTURE, seed=seed)
        songs.append(write_wav(work / f"song{seed}.wav", song.y, song.sr))
    if library is None:
        library = work / "library"
        build_demo_library(library, clip_format=ClipFormat(64, 64, 12))
    return songs, library


def compile_bytecode(work: Path) -> dict[str, str]:
    """Bytecode for the standard library, site-packages and the project, as the image has it.

    Returns the environment that makes a fresh process read it (``PYTHONPYCACHEPREFIX``: with it
    set, Python looks for every module's bytecode there only, the standard library's too).
    """
    prefix = {"PYTHONPYCACHEPREFIX": str(work / "bytecode")}
    paths = sysconfig.get_paths()
    packages = [str(ROOT / name) for name in ("schemas", "producers", "consumers", "job")]
    # The python base image deletes test folders; some hold deliberately invalid files.
    skip_tests = ("-x", "/(test|tests|idle_test)/")
    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", *skip_tests,
               paths["stdlib"], paths["purelib"], *packages]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=os.environ | prefix)
    return prefix


def fresh(
    song: Path, library: Path, work: Path, repeat: int, env: dict[str, str], *, warm_cache: bool
) -> tuple[float, float]:
    """Best wall time of ``choreo plan`` in new processes, and their peak RSS (MiB).

    ``warm_cache``: one numba cache filled by ``choreo warmup`` first; otherwise each run gets a
    new empty cache, so it compiles as a fresh container without a shipped cache does.
    """
    choreo = str(ROOT / ".venv/bin/choreo")
    command = [
        *(choreo, "plan", "--song", str(song), "--library", str(library)),
        *("--style", "hip-hop", "--difficulty", "beginner", "--out", str(work / "bp.json")),
        *("--storage-root", str(work / "storage")),  # plan stores the song and clips there
    ]
    shipped = Path(tempfile.mkdtemp(dir=work))
    if warm_cache:
        subprocess.run([choreo, "warmup"], check=True, capture_output=True, cwd=ROOT,
                       env=os.environ | env | {"NUMBA_CACHE_DIR": str(shipped)})  # fmt: skip

    def cache_dir() -> str:
        return str(shipped if warm_cache else tempfile.mkdtemp(dir=work))

    return _best_of(command, repeat, cache_dir, env)


# A fresh process whose analysis is cached (read from JSON): imports, library, search, plan.
_CACHED_ANALYSIS_PLAN = """
import sys
from pathlib import Path
from choreography.music.model import MusicAnalysis
from choreography.planner import offline
from choreography.planner.pipeline import PlannedSong, PlanningPipeline, PlanningRequest
from schemas.events import Constraints
analysis = MusicAnalysis.model_validate_json(Path(sys.argv[1]).read_text())
library = offline.library_from_folder(Path(sys.argv[2]))
pipeline = PlanningPipeline()
request = PlanningRequest("bench", Constraints(style="hip-hop", difficulty="beginner"))
understood = pipeline.understand(request)
candidates = pipeline.candidates(request, understood, library, library)
pipeline.blueprint(request, understood, PlannedSong(analysis, "songs/a.wav"), candidates,
                   video_uri="videos/b.mp4")
"""


def fresh_cached(
    song: Path, library: Path, work: Path, repeat: int, env: dict[str, str]
) -> tuple[float, float]:
    """Best wall time of a new process planning with the analysis already cached."""
    from choreography.music.analysis import analyse_file  # noqa: PLC0415

    cached = work / "analysis.json"
    cached.write_text(analyse_file(song).model_dump_json())
    command = [sys.executable, "-c", _CACHED_ANALYSIS_PLAN, str(cached), str(library)]
    return _best_of(command, repeat, lambda: os.environ.get("NUMBA_CACHE_DIR", ""), env)


def _best_of(
    command: list[str], repeat: int, cache_dir: Callable[[], str], env: dict[str, str]
) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        run_env = os.environ | env | {"NUMBA_CACHE_DIR": cache_dir()}
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=run_env)
        times.append(time.perf_counter() - start)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return min(times), peak_kib / 1024


def in_process(songs: list[Path], library_dir: Path, work: Path, hits: int) -> dict[str, Any]:
    """Warm-worker and cache-hit timings, with a breakdown of the warm plan."""
    from choreography.planner import offline  # noqa: PLC0415
    from choreography.planner.pipeline import (  # noqa: PLC0415
        PlannedSong,
        PlanningPipeline,
        PlanningRequest,
    )
    from schemas.events import Constraints  # noqa: PLC0415

    constraints = Constraints(style="hip-hop", difficulty="beginner")
    library = offline.library_from_folder(library_dir)
    pipeline = PlanningPipeline()
    planning = PlanningRequest("bench", constraints)
    understood = pipeline.understand(planning)
    cache: dict[str, Any] = {}

    def plan(song: Path) -> float:
        start = time.perf_counter()
        request = offline.OfflineRequest(song=song, constraints=constraints, task_id="bench")
        offline.plan_offline(request, library, cache)
        return time.perf_counter() - start

    def plan_analysed(analysis: Any) -> None:
        candidates = pipeline.candidates(planning, understood, library, library)
        song = PlannedSong(analysis, songs[2].name)
        pipeline.blueprint(planning, understood, song, candidates, video_uri="videos/bench.mp4")

    warm_up = plan(songs[1])  # imports, library motion summaries, text index
    warm = plan(songs[2])
    in_memory = [plan(songs[2]) for _ in range(hits)]
    postgres = postgres_cache_hits(songs[2], work, cache, plan_analysed, hits)
    # Breakdown of one more new-song plan, without the cache.
    start = time.perf_counter()
    analysis = offline.analyse_song(songs[0])
    analysed = time.perf_counter()
    candidates = pipeline.candidates(planning, understood, library, library)
    searched = time.perf_counter()
    song = PlannedSong(analysis, "songs/a.wav")
    blueprint = pipeline.blueprint(
        planning, understood, song, candidates, video_uri="videos/bench.mp4"
    )
    planned = time.perf_counter()
    return {
        "first_plan_in_process_s": warm_up,
        "warm_new_song_s": warm,
        "cache_hit_s": postgres["by_audio_uri_s"],
        "cache_hit_song_id_s": postgres["by_song_id_s"],
        "cache_hit_in_memory_s": statistics.median(in_memory),
        "cache_hit_database": postgres["database"],
        "breakdown_s": {
            "analysis": analysed - start,
            "search": searched - analysed,
            "planning": planned - searched,
        },
        "moves_planned": len(blueprint.moves_used),
        "song_duration_s": analysis.duration_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def postgres_cache_hits(
    song: Path,
    work: Path,
    analysed: dict[str, Any],
    plan: Callable[[Any], None],
    hits: int,
) -> dict[str, Any]:
    """Median cache-hit times through the consumer's ``SongResolver`` on real PostgreSQL.

    The first resolve is the miss that fills the cache (its analyser returns the analysis this
    process already made, by content hash, so the bench does not analyse the song again).
    """
    from psycopg_pool import ConnectionPool  # noqa: PLC0415

    from blobstore.storage import LocalStorage  # noqa: PLC0415
    from choreo_cli.demo.environment import DemoPaths, demo_database  # noqa: PLC0415
    from choreography.planner.offline import file_digest  # noqa: PLC0415
    from consumers.blueprint_consumer.song_store import SongResolver  # noqa: PLC0415
    from schemas.events import SongRef  # noqa: PLC0415
    from schemas.song_limits import SongLimits, SongSources  # noqa: PLC0415

    def analyse(path: Path) -> Any:
        return analysed[file_digest(path)]

    paths = DemoPaths.under(work / "db")
    with (
        demo_database(paths, os.environ.get("DATABASE_URL", "")) as (url, database),
        ConnectionPool(url, min_size=1, max_size=2, open=True) as pool,
        pool.connection() as conn,
    ):
        # The song is named by its file:// URI, so the allow-list names its directory.
        sources = SongSources.parse(f"file://{song.parent.resolve()}/")
        resolver = SongResolver(LocalStorage(song.parent), pool, analyse, SongLimits(sources))

        def hit(ref: SongRef) -> float:
            start = time.perf_counter()
            with conn.transaction():
                resolved = resolver.resolve(conn, ref)
            plan(resolved.analysis)
            elapsed = time.perf_counter() - start
            if not resolved.cached:
                raise RuntimeError(f"expected a cache hit for {ref}")
            return elapsed

        by_uri = SongRef(audio_uri=f"file://{song.resolve()}")
        with conn.transaction():
            first = resolver.resolve(conn, by_uri)
        try:
            uri_times = [hit(by_uri) for _ in range(hits)]
            id_times = [hit(SongRef(song_id=first.row.song_id)) for _ in range(hits)]
        finally:
            if not first.cached:  # the bench added the row: leave a given database as it was
                with conn.transaction():
                    conn.execute("DELETE FROM songs WHERE song_id = %s", (first.row.song_id,))
    return {
        "by_audio_uri_s": statistics.median(uri_times),
        "by_song_id_s": statistics.median(id_times),
        "database": database,
    }


def main() -> None:
    """Run the benchmark, print a table, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, help="move bundle folder (default: build one)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs (best of)")
    parser.add_argument("--hits", type=int, default=7, help="cache-hit runs (median of)")
    parser.add_argument(
        "--no-bytecode", action="store_true",
        help="fresh processes without compiled bytecode (the bare uv venv), not as in the image",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        songs, library = make_inputs(work, args.library)
        env = {} if args.no_bytecode else compile_bytecode(work)
        fresh_s, fresh_rss = fresh(songs[0], library, work, args.repeat, env, warm_cache=False)
        warmed_s, _ = fresh(songs[0], library, work, args.repeat, env, warm_cache=True)
        cached_s, _ = fresh_cached(songs[0], library, work, args.repeat, env)
        result = in_process(songs, library, work, args.hits)
    result |= {
        "fresh_s": fresh_s,
        "fresh_warm_numba_cache_s": warmed_s,
        "fresh_cached_analysis_s": cached_s,
        "fresh_peak_rss_mib": fresh_rss,
        "fresh_bytecode": not args.no_bytecode,
        "goals_s": GOALS_S,
    }
    rows = [
        ("fresh process, empty numba cache", fresh_s, GOALS_S["fresh"]),
        ("fresh process, warmed numba cache", warmed_s, GOALS_S["fresh"]),
        ("fresh process, analysis cached", cached_s, GOALS_S["fresh"]),
        ("warm worker, new song", result["warm_new_song_s"], GOALS_S["warm_new_song"]),
        ("cache hit, PostgreSQL, audio_uri", result["cache_hit_s"], GOALS_S["cache_hit"]),
        ("cache hit, PostgreSQL, song_id", result["cache_hit_song_id_s"], GOALS_S["cache_hit"]),
        ("cache hit, in-memory dict", result["cache_hit_in_memory_s"], GOALS_S["cache_hit"]),
    ]
    print(f"3-minute song ({result['song_duration_s']:.0f} s, {TEMPO_BPM:g} BPM), "
          f"{result['moves_planned']} moves")  # fmt: skip
    for name, seconds, goal in rows:
        verdict = "ok" if seconds <= goal else "OVER"
        print(f"  {name:<32} {seconds * 1000:8.0f} ms   goal {goal * 1000:6.0f} ms  {verdict}")
    breakdown = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result["breakdown_s"].items())
    print(f"  warm breakdown: {breakdown}")
    print(f"  cache hits on {result['cache_hit_database']}, median of {args.hits}; fresh "
          f"processes {'without' if args.no_bytecode else 'with'} compiled bytecode")  # fmt: skip
    print(f"  peak RSS: fresh process {fresh_rss:.0f} MiB, bench process "
          f"{result['peak_rss_mib']:.0f} MiB")  # fmt: skip
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (results / f"blueprint-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
