"""The job image's render against the same render outside it, and the blueprint image's start.

    .venv/bin/python bench/image_render.py [--moves 12] [--rounds 3] [--skip-blueprint]

Needs the images of ``infra/local/images.sh``. Render: one blueprint of ``--moves`` 8-count moves
(720p30, lavfi test patterns of mixed size and rate, bench/render.py's footage) rendered from an
empty segment cache by ``python -m job`` in this checkout's ``.venv`` (outside) and by the job
image's ENTRYPOINT through ``buildah run`` with the media in a mounted folder (inside), in
alternating order, ``--rounds`` times each; wall time from process start to exit, so the inside
figure includes starting the container. Blueprint start: ``python -m
consumers.blueprint_consumer.warmup`` (the first analysis of a 32 s song) in a fresh container of
the blueprint image, with the image's numba cache (warm) and with an empty one (cold). Prints a
table and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.render import blueprint, make_media  # noqa: E402
from tests.fixtures.images import Container, image_tag, images_dir, storage_driver  # noqa: E402


def _open(name: str) -> Container:
    try:
        return Container(name)
    except subprocess.CalledProcessError:
        sys.exit(
            f"no image {image_tag(name)} in {images_dir()} (driver {storage_driver()}): "
            "run `bash infra/local/images.sh` first"
        )


def _fresh_output(root: Path) -> None:
    shutil.rmtree(root / "videos", ignore_errors=True)


def render_outside(document: str, root: Path, cache: Path) -> float:
    """``python -m job`` from the checkout; seconds from start to exit."""
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
        "BLUEPRINT_JSON": document,
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": str(root),
        "JOB_CACHE_DIR": str(cache),
        "LOG_JSON": "true",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "job"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the render outside failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def render_inside(container: Container, document: str, root: Path) -> float:
    """The job image's ENTRYPOINT with ``root`` mounted at /data; seconds from start to exit."""
    # Inside the container's own /tmp: empty, like the outside run's.
    cache = f"/tmp/choreo-cache-{time.monotonic_ns()}"  # noqa: S108
    env = {
        "BLUEPRINT_JSON": document,
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": "/data",
        "JOB_CACHE_DIR": cache,
        "LOG_JSON": "true",
    }
    started = time.perf_counter()
    done = container.run(container.command(), env=env, volumes={root: "/data"}, timeout=1800)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the render inside failed (exit {done.returncode}): {done.stdout[-2000:]}")
    return elapsed


def ffmpeg_versions(container: Container) -> tuple[str, str]:
    """The first line of ``ffmpeg -version`` outside and inside."""
    outside = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True)
    inside = container.run(["ffmpeg", "-version"], timeout=60)
    return outside.stdout.splitlines()[0], inside.stdout.splitlines()[0]


def bench_render(moves: int, rounds: int) -> dict[str, Any]:
    """Alternate outside and inside renders of one blueprint, each from an empty cache."""
    container = _open("job")
    try:
        with tempfile.TemporaryDirectory(prefix="image-render-") as work:
            root = Path(work) / "storage"
            lengths = make_media(root, "patterns", min(moves, 8))
            document = json.dumps(blueprint(moves, "patterns", lengths, seed=1))
            for path in [root, *root.rglob("*")]:  # the image runs as uid 10001
                path.chmod(0o777 if path.is_dir() else 0o666)
            outside, inside = [], []
            for index in range(rounds):
                order = ("out", "in") if index % 2 == 0 else ("in", "out")
                for where in order:
                    _fresh_output(root)
                    if where == "out":
                        cache = Path(work) / f"cache-{index}"
                        outside.append(render_outside(document, root, cache))
                    else:
                        inside.append(render_inside(container, document, root))
                    took = (outside if where == "out" else inside)[-1]
                    print(f"  round {index + 1} {where}: {took:.1f} s")
            versions = ffmpeg_versions(container)
    finally:
        container.remove()
    video_s = json.loads(document)["song"]["window"]
    return {
        "moves": moves,
        "video_s": round(video_s["end_s"] - video_s["start_s"], 1),
        "outside_s": [round(x, 2) for x in outside],
        "inside_s": [round(x, 2) for x in inside],
        "outside_median_s": round(statistics.median(outside), 2),
        "inside_median_s": round(statistics.median(inside), 2),
        "ratio_inside_over_outside": round(
            statistics.median(inside) / statistics.median(outside), 3
        ),
        "ffmpeg_outside": versions[0],
        "ffmpeg_inside": versions[1],
    }


def bench_blueprint_start(rounds: int) -> dict[str, Any]:
    """Fresh container -> first analysis, with the image's numba cache and with an empty one."""
    results: dict[str, list[float]] = {"warm": [], "cold": []}
    for _ in range(rounds):
        for kind in ("warm", "cold"):
            started = time.perf_counter()
            container = _open("blueprint")  # a fresh container each time: nothing cached in it
            empty = "/tmp/empty-numba-cache"  # noqa: S108 - inside the fresh container
            env = {} if kind == "warm" else {"NUMBA_CACHE_DIR": empty}
            try:
                done = container.run(
                    ["python", "-m", "consumers.blueprint_consumer.warmup"], env=env, timeout=900
                )
            finally:
                container.remove()
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"the blueprint warm-up failed: {done.stderr[-2000:]}")
            results[kind].append(elapsed)
            print(f"  blueprint start ({kind} numba cache): {elapsed:.1f} s; {done.stdout.strip()}")
    return {
        "warm_s": [round(x, 2) for x in results["warm"]],
        "cold_s": [round(x, 2) for x in results["cold"]],
        "warm_median_s": round(statistics.median(results["warm"]), 2),
        "cold_median_s": round(statistics.median(results["cold"]), 2),
    }


def main() -> None:
    """Run the benchmarks, print a summary, write JSON to bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-blueprint", action="store_true")
    args = parser.parse_args()
    if args.moves < 2 or args.rounds < 1:
        parser.error("--moves must be at least 2 and --rounds at least 1")
    print(f"render: {args.moves} moves, {args.rounds} rounds each side")
    report: dict[str, Any] = {"render": bench_render(args.moves, args.rounds)}
    if not args.skip_blueprint:
        report["blueprint_start"] = bench_blueprint_start(max(1, args.rounds - 1))
    report["load_average"] = os.getloadavg()
    render = report["render"]
    print(
        f"render of a {render['video_s']} s 720p30 video: outside {render['outside_median_s']} s, "
        f"inside {render['inside_median_s']} s (median), inside/outside "
        f"{render['ratio_inside_over_outside']}"
    )
    if "blueprint_start" in report:
        start = report["blueprint_start"]
        print(
            f"blueprint container start -> first analysis: warm cache {start['warm_median_s']} s,"
            f" empty cache {start['cold_median_s']} s (median)"
        )
    out = ROOT / "bench/results" / f"image_render-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
