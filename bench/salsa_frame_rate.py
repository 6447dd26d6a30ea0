"""The frame-rate check on every CMU salsa take: header rate or half of it, from the cadence.

    .venv/bin/python bench/salsa_frame_rate.py [CORPUS_DIR]

For each ``*.bvh`` under ``../shared/corpus/cmu-mocap-salsa/`` it prints the frames, the steps
counted, the cadence (steps per second) under the header rate and half of it, the median pelvis
speed under both, the rate chosen by :func:`choreography.moves.bvh_import.detect_frame_rate`
(the same check ``choreo moves import-bvh`` runs) and the duration at that rate. A Markdown
table, for docs/MOVE_LIBRARY.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from choreography.moves.bvh import read_bvh
from choreography.moves.bvh_import import canonical_keypoints, detect_frame_rate, header_rate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "cmu-mocap-salsa"


def main(argv: list[str]) -> int:
    """Print the table; 1 when the corpus is missing."""
    corpus = Path(argv[0]) if argv else CORPUS
    takes = sorted(corpus.glob("*.bvh"))
    if not takes:
        print(f"no .bvh files under {corpus}", file=sys.stderr)
        return 1
    print("| take | frames | steps | cadence @header | cadence @half | pelvis m/s @header / @half "
          "| chosen | seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    chosen_rates = []
    for path in takes:
        motion = read_bvh(path)
        keypoints = canonical_keypoints(motion)
        header = header_rate(motion.frame_time_s)
        found = detect_frame_rate(keypoints, header)
        half = header / 2
        chosen_rates.append(found.fps)
        print(
            f"| {path.stem.removesuffix('_scaled')} | {keypoints.shape[0]} | {found.steps} "
            f"| {found.cadence[header]:.2f} /s | {found.cadence[half]:.2f} /s "
            f"| {found.pelvis_speed[header]:.2f} / {found.pelvis_speed[half]:.2f} "
            f"| {found.fps:g} fps | {keypoints.shape[0] / found.fps:.1f} |"
        )
    at_half = sum(1 for fps, path in zip(chosen_rates, takes, strict=True) if fps < header_rate(
        read_bvh(path).frame_time_s))  # fmt: skip
    print(f"\n{len(takes)} takes; {at_half} read at half the header rate")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
