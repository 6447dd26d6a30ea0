"""Find a TrueType font for the overlays: the configured file, fc-match, or known paths."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from job.errors import FfmpegFailed

KNOWN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
)


def find_font(configured: str = "") -> Path:
    """An existing font file; ``FfmpegFailed`` saying how to get one when there is none."""
    if configured:
        path = Path(configured).resolve()
        if not path.is_file():
            raise FfmpegFailed(f"JOB_FONT_FILE={configured} is not a file", step="overlay")
        return path
    candidates = [*_fc_match(), *KNOWN_FONTS]
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            return path.resolve()
    raise FfmpegFailed(
        "overlays need a TrueType font and none was found (tried fc-match and "
        f"{', '.join(KNOWN_FONTS)}): install fonts-dejavu-core or set JOB_FONT_FILE",
        step="overlay",
    )


def _fc_match() -> list[str]:
    if shutil.which("fc-match") is None:
        return []
    try:
        done = subprocess.run(
            ["fc-match", "-f", "%{file}", "DejaVu Sans:style=Bold"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [done.stdout.strip()] if done.returncode == 0 and done.stdout.strip() else []
