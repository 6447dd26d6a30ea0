"""Draw docs/figure_contact_sheet.png: a few frames of a few moves as the library renders them.

Two procedural demo moves and two windows of a real CMU salsa take (``60_01_scaled.bvh``, split
at 150 BPM, 60 fps), each rendered whole at 1280x720 with ``choreography.moves.render`` (the
camera follows the dancer, so a frame depends on the frames before it). Four frames of each,
spread over the clip but off the counts (frames on every other count of a looping move would all
look alike), cropped to the middle half of the frame. Run from the repository root:

    .venv/bin/python docs/figure_contact_sheet.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from choreography.moves.bvh_import import BvhSplitOptions, drafts_from_bvh  # noqa: E402
from choreography.moves.demo_library import demo_drafts  # noqa: E402
from choreography.moves.render import ClipFormat, iter_frames  # noqa: E402
from choreography.moves.skeleton import Keypoints  # noqa: E402

SALSA = ROOT.parent / "shared" / "corpus" / "cmu-mocap-salsa" / "60_01_scaled.bvh"
DEMO_MOVES = ("hip-hop-rock-punch-advanced-low", "contemporary-lunge-reach-advanced-high")
SALSA_WINDOWS = (0, 6)  # which 8-count windows of the take
SHOTS = (0.0, 0.19, 0.44, 0.69)  # where in the clip (a share of it), off the counts
TILE = (300, 338)  # a 640x720 crop, scaled
LABEL_HEIGHT = 26


def clips() -> list[tuple[str, Keypoints, float]]:
    """(label, keypoints, fps) of the moves on the sheet."""
    drafts = {draft.move_id: draft for draft in demo_drafts()}
    chosen = [(f"demo: {move_id}", drafts[move_id].keypoints, drafts[move_id].fps)
              for move_id in DEMO_MOVES]  # fmt: skip
    _, windows = drafts_from_bvh(SALSA, BvhSplitOptions(bpm=150.0, fps=60.0))
    for index in SALSA_WINDOWS:
        window = windows[index]
        chosen.append((f"CMU salsa 60_01, {window.move_id}", window.keypoints, window.fps))
    return chosen


def main() -> int:
    """Render the moves and write the sheet next to this script."""
    fmt = ClipFormat()
    rows = clips()
    sheet = Image.new("RGB", (TILE[0] * len(SHOTS), (TILE[1] + LABEL_HEIGHT) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, keypoints, fps) in enumerate(rows):
        frames = list(iter_frames(keypoints, fps, fmt))
        top = r * (TILE[1] + LABEL_HEIGHT)
        for c, share in enumerate(SHOTS):
            index = min(round(share * len(frames)), len(frames) - 1)
            crop = frames[index][:, fmt.width // 4 : 3 * fmt.width // 4]
            tile = Image.fromarray(crop).resize(TILE, Image.Resampling.LANCZOS)
            sheet.paste(tile, (c * TILE[0], top + LABEL_HEIGHT))
            draw.text(
                (c * TILE[0] + 6, top + 7), f"{label}  t={index / fmt.fps:.1f}s", fill="black"
            )
    out = Path(__file__).with_suffix(".png")
    sheet.save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
