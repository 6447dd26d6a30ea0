"""Benchmark: move vector search and index loading at 1k, 10k and 100k moves of 384-d vectors.

Run: ``DATABASE_URL=postgresql://... .venv/bin/python bench/vector_search.py`` (a few minutes).
Prints a table and writes JSON to ``bench/results/``. Search goes through the service's own
``MoveIndex`` with each index kind forced, on clustered synthetic vectors (real embeddings are
clustered by style and motion; uniform random vectors are IVF's worst case and not what the
library looks like). Recall@20 is against brute-force exact search over the same rows (with the
filter applied when there is one). Loading compares ``load_matrix`` (one ``bytea`` aggregate)
with reading the same vectors from a ``jsonb`` column, in a throwaway database on DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import faiss
import numpy as np
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from choreography.search import search as search_module
from choreography.search.embedding_store import load_matrix
from choreography.search.move_matrix import MoveMatrix
from choreography.search.search import MoveFilter, MoveIndex
from choreography.search.spaces import Embedding, l2_normalise_rows
from lifecycle.migrations import migrate
from schemas.settings import VectorSearchSettings

DIM, K = 384, 20
SPACE = f"bench-{DIM}"
RARE_STYLE = "salsa"  # exactly 1 % of moves: the selective filter
RESULTS = Path(__file__).resolve().parent / "results"


def make_library(n: int, seed: int) -> MoveMatrix:
    """Clustered unit vectors (about 100 moves per cluster) with a 1 % style."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(10, n // 100), DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), n)]
    vectors += 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    styles = np.full(n, "hip-hop", dtype="<U8")
    styles[rng.choice(n, n // 100, replace=False)] = RARE_STYLE
    return MoveMatrix(
        kind="text",
        space=SPACE,
        ids=np.array([f"m{i:07d}" for i in range(n)]),
        styles=styles,
        difficulties=rng.choice(["beginner", "intermediate", "advanced"], n),
        energies=rng.choice(["low", "medium", "high"], n),
        matrix=l2_normalise_rows(vectors),
        library_version=1,
    )


def queries(data: MoveMatrix, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = data.matrix[rng.choice(data.size, count, replace=False)]
    return l2_normalise_rows(rows + 0.3 * rng.standard_normal(rows.shape) / np.sqrt(DIM) * 4)


def exact_truth(data: MoveMatrix, qs: np.ndarray, mask: np.ndarray | None) -> list[set[str]]:
    scores = qs @ data.matrix.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :K]
    # With fewer than K moves passing the filter, recall is over the ones that exist.
    return [{data.ids[i] for i in row if mask is None or mask[i]} for row in top]


def run_searches(
    index: MoveIndex, qs: np.ndarray, flt: MoveFilter | None, truth: list[set[str]]
) -> dict[str, Any]:
    index.search(Embedding("text", SPACE, qs[0]), K, flt)  # warm-up: gathers filter selection
    times, found, strategies = [], 0, set()
    for q, expected in zip(qs, truth, strict=True):
        start = time.perf_counter()
        result = index.search(Embedding("text", SPACE, q), K, flt)
        times.append((time.perf_counter() - start) * 1000)
        found += len(expected & {h.move_id for h in result.hits})
        strategies.add(result.strategy)
    times.sort()
    return {
        "strategy": "/".join(sorted(strategies)),
        "median_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "recall_at_20": found / sum(len(t) for t in truth),
    }


def bench_search(n: int, query_count: int, base: VectorSearchSettings) -> list[dict[str, Any]]:
    data = make_library(n, seed=n)
    qs = queries(data, query_count, seed=n + 1)
    mask = data.styles == RARE_STYLE
    truths = {"none": exact_truth(data, qs, None), "1%": exact_truth(data, qs, mask)}
    no_subset = {"VECTOR_SEARCH_SUBSET_MAX_MOVES": 0, "VECTOR_SEARCH_SUBSET_MAX_FRACTION": 0.0}
    configs = {
        "flat": {"FAISS_INDEX_KIND": "flat", **no_subset},
        "ivf": {"FAISS_INDEX_KIND": "ivf", **no_subset},
        "hnsw": {"FAISS_INDEX_KIND": "hnsw", **no_subset},
        "numpy": {"numpy": True, **no_subset},
        "filtered-subset": {"FAISS_INDEX_KIND": "flat"},
        "service (auto)": {},
    }
    rows = []
    for name, overrides in configs.items():
        numpy_only = overrides.pop("numpy", False)
        settings = base.model_copy(update=_fields(base, overrides))
        start = time.perf_counter()
        index = _numpy_index(data, settings) if numpy_only else MoveIndex(data, settings)
        build_s = time.perf_counter() - start
        for label, flt in (("none", None), ("1%", MoveFilter.of(styles=RARE_STYLE))):
            if name == "filtered-subset" and flt is None:
                continue
            row = {"moves": n, "index": name, "filter": label, "build_s": build_s}
            row.update(run_searches(index, qs, flt, truths[label]))
            rows.append(row)
            print(_format_search(row), flush=True)
    return rows


def _fields(base: VectorSearchSettings, by_env: dict[str, Any]) -> dict[str, Any]:
    names = {f.validation_alias: name for name, f in type(base).model_fields.items()}
    return {names[env]: value for env, value in by_env.items()}


def _numpy_index(data: MoveMatrix, settings: VectorSearchSettings) -> MoveIndex:
    original = search_module.import_faiss
    search_module.import_faiss = lambda: None  # type: ignore[assignment]
    try:
        return MoveIndex(data, settings)
    finally:
        search_module.import_faiss = original  # type: ignore[assignment]


def bench_loading(admin_url: str, sizes: list[int]) -> list[dict[str, Any]]:
    name = f"choreo_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_dbname(admin_url, name)
    rows = []
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_vectors_json (move_id text PRIMARY KEY, vector jsonb)")
            for n in sizes:
                data = make_library(n, seed=n)
                _fill(conn, data)
                # Best of two each: the first read after COPY also pays for a cold page cache.
                bytea_s, json_s = float("inf"), float("inf")
                for _ in range(2):
                    start = time.perf_counter()
                    loaded = load_matrix(conn, "text")
                    bytea_s = min(bytea_s, time.perf_counter() - start)
                    start = time.perf_counter()
                    records = conn.execute(
                        "SELECT move_id, vector FROM bench_vectors_json ORDER BY move_id"
                    ).fetchall()
                    from_json = np.array([r[1] for r in records], dtype=np.float32)
                    json_s = min(json_s, time.perf_counter() - start)
                assert np.array_equal(loaded.matrix, data.matrix)
                assert np.allclose(from_json, data.matrix, atol=1e-6)
                row = {
                    "moves": n,
                    "bytea_s": bytea_s,
                    "jsonb_s": json_s,
                    "speedup": json_s / bytea_s,
                }
                rows.append(row)
                print(
                    f"load {n:>7} moves: bytea {bytea_s * 1000:8.1f} ms   "
                    f"jsonb {json_s * 1000:9.1f} ms   {row['speedup']:5.1f}x",
                    flush=True,
                )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    return rows


def _fill(conn: psycopg.Connection, data: MoveMatrix) -> None:
    conn.execute("TRUNCATE moves CASCADE")
    conn.execute("TRUNCATE bench_vectors_json")
    with conn.cursor().copy(
        "COPY moves (move_id, name, style, difficulty, energy, counts, clip_uri) FROM STDIN"
    ) as copy:
        for i, move_id in enumerate(data.ids):
            copy.write_row(
                (move_id, move_id, data.styles[i], data.difficulties[i], 0.5, 8, f"m/{move_id}")
            )
    with conn.cursor().copy(
        "COPY move_embeddings (move_id, kind, space, dim, vector) FROM STDIN"
    ) as copy:
        for i, move_id in enumerate(data.ids):
            copy.write_row((move_id, "text", SPACE, DIM, data.matrix[i].astype("<f4").tobytes()))
    with conn.cursor().copy("COPY bench_vectors_json (move_id, vector) FROM STDIN") as copy:
        for i, move_id in enumerate(data.ids):
            copy.write_row((move_id, json.dumps(data.matrix[i].tolist())))
    conn.execute("VACUUM ANALYZE move_embeddings")
    conn.execute("VACUUM ANALYZE bench_vectors_json")


def _with_dbname(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def _format_search(row: dict[str, Any]) -> str:
    return (
        f"{row['moves']:>7} {row['index']:<16} filter {row['filter']:<4} "
        f"{row['strategy']:<16} median {row['median_ms']:7.3f} ms  p95 {row['p95_ms']:7.3f} ms  "
        f"recall@20 {row['recall_at_20']:.3f}  build {row['build_s']:6.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-load", action="store_true", help="skip the PostgreSQL part")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = VectorSearchSettings()
    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads, "
        f"nprobe {settings.nprobe}, "
        f"{args.queries} queries, k={K}, dim={DIM}",
        flush=True,
    )
    search_rows = [row for n in sizes for row in bench_search(n, args.queries, settings)]
    load_rows = []
    if not args.skip_load:
        load_rows = bench_loading(os.environ["DATABASE_URL"], sizes)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"vector_search-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps(
            {
                "faiss": faiss.__version__,
                "threads": faiss.omp_get_max_threads(),
                "dim": DIM,
                "k": K,
                "queries": args.queries,
                "settings": settings.model_dump(exclude={"gemini_api_key"}),
                "search": search_rows,
                "load": load_rows,
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
