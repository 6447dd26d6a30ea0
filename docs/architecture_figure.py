"""Draw docs/architecture.png from the code itself: packages, their imports, and the images.

Boxes are the first-party packages in their layers (outermost at the top), with their lines of
code and the images that carry them; arrows are the imports grimp finds between packages (every
``import``, those inside functions included). Run from the repository root:

    .venv/bin/python docs/architecture_figure.py
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import grimp
import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parents[1]
LAYERS: list[tuple[str, list[str]]] = [
    ("command line (no image)", ["choreo_cli"]),
    ("deployables that compose the domain", ["consumers"]),
    ("deployables and the domain", ["producers", "job", "choreography"]),
    ("shared adapters and delivery rules", ["delivery", "lifecycle", "blobstore"]),
    ("contracts", ["schemas"]),
]
ROLE = {
    "choreo_cli": "choreo: operators' and developers' commands,\nthe demo, the local stack",
    "consumers": "blueprint consumer, dispatcher, status recorder\nand their runtime",
    "producers": "request API, upload trigger, outbox relay,\nDLQ replay, topology, ops jobs",
    "job": "the video job:\nblueprint in, video out (FFmpeg)",
    "choreography": "the domain: music analysis, moves,\nmove search (FAISS), planner",
    "delivery": "ack/nack and HTTP status, OIDC,\nbounded bodies, poison",
    "lifecycle": "task state in PostgreSQL: pool, migrations,\nports, outbox, executions, reaper",
    "blobstore": "object storage: the port,\nlocal root, Cloud Storage",
    "schemas": "events, blueprint, settings, topology,\ntask states, errors, SQL migrations",
}
IMAGE_LETTER = {"producer": "P", "status": "S", "dispatcher": "D", "blueprint": "B", "job": "J"}


def lines_of(package: str) -> int:
    """Lines of Python in a package."""
    return sum(
        len(p.read_text(encoding="utf-8").splitlines()) for p in (ROOT / package).rglob("*.py")
    )


def images_holding(package: str) -> list[str]:
    """Letters of the images whose Dockerfile copies (part of) ``package``."""
    held = []
    for image, letter in IMAGE_LETTER.items():
        text = (ROOT / "infra" / "docker" / f"{image}.Dockerfile").read_text(encoding="utf-8")
        for line in re.sub(r"\\\n", " ", text).splitlines():
            words = shlex.split(line) if line.startswith("COPY") else []
            if any(w.split("/")[0] == package for w in words[1:-1]):
                held.append(letter)
                break
    return held


def main() -> int:
    """Write docs/architecture.png."""
    packages = [name for _, names in LAYERS for name in names]
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*packages)
    width, height = 15.0, 11.0
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.set_xlim(0, width)
    ax.set_ylim(-0.9, height)
    ax.axis("off")
    box_w, box_h = 4.1, 1.35
    centre: dict[str, tuple[float, float]] = {}
    for row, (label, names) in enumerate(LAYERS):
        y = height - 1.4 - row * 2.1
        ax.text(0.15, y + box_h / 2 + 0.12, label, fontsize=9, color="#666666", style="italic")
        slots = len(names)
        for i, name in enumerate(names):
            x = (width - slots * box_w - (slots - 1) * 0.6) / 2 + i * (box_w + 0.6)
            centre[name] = (x + box_w / 2, y)
            deployable = name in {"consumers", "producers", "job"}
            face = "#dbeafe" if deployable else "#f3f4f6" if name != "choreo_cli" else "#fde68a"
            ax.add_patch(
                FancyBboxPatch(
                    (x, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.04",
                    facecolor=face, edgecolor="#374151", linewidth=1.2, zorder=2,
                )
            )  # fmt: skip
            images = images_holding(name)
            tag = f"images: {' '.join(images)}" if images else "in no image"
            ax.text(x + 0.15, y + 0.42, name, fontsize=12.5, weight="bold", zorder=3)
            ax.text(
                x + box_w - 0.12, y + 0.42, f"{lines_of(name):,} lines", fontsize=8.5,
                ha="right", color="#374151", zorder=3,
            )  # fmt: skip
            ax.text(x + 0.15, y - 0.08, ROLE[name], fontsize=8.2, va="center", zorder=3)
            ax.text(x + 0.15, y - 0.52, tag, fontsize=8, color="#1d4ed8", zorder=3)
    drawn = 0
    for importer in packages:
        for imported in packages:
            if importer in (imported, "choreo_cli"):
                continue  # the command line reaches every package: said in the caption
            if not graph.direct_import_exists(
                importer=importer, imported=imported, as_packages=True
            ):
                continue
            (x1, y1), (x2, y2) = centre[importer], centre[imported]
            same_row = abs(y1 - y2) < 0.01
            start = (
                (x1, y1 - box_h / 2)
                if not same_row
                else (x1 + box_w / 2 * (1 if x2 > x1 else -1), y1)
            )
            end = (
                (x2, y2 + box_h / 2)
                if not same_row
                else (x2 - box_w / 2 * (1 if x2 > x1 else -1), y2)
            )
            ax.add_patch(
                FancyArrowPatch(
                    start, end, arrowstyle="-|>", mutation_scale=11, color="#6b7280",
                    linewidth=0.8, alpha=0.75, connectionstyle="arc3,rad=0.06", zorder=1,
                )
            )  # fmt: skip
            drawn += 1
    ax.text(
        0.15, -0.75,
        "Arrows: imports between packages (grimp, every import statement); choreo_cli imports any "
        "of them and nothing imports it. Images: P producer, S status recorder (+ ops jobs),\n"
        "D dispatcher (+ the job, run as a subprocess locally), B blueprint, J video job. Every "
        "arrow points down or sideways: import-linter's contracts in pyproject.toml forbid the\n"
        "rest, and tests/unit/test_image_imports.py checks that each image copies exactly what it "
        "imports.",
        fontsize=8.5, color="#374151",
    )  # fmt: skip
    ax.set_title("choreo: packages, layers and images", fontsize=15, weight="bold")
    out = ROOT / "docs" / "architecture.png"
    fig.savefig(out, bbox_inches="tight")
    print(f"wrote {out.relative_to(ROOT)} ({drawn} package imports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
