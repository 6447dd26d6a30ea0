"""The video output a plan asks for: the request's size and rate, or the defaults."""

from __future__ import annotations

from schemas.blueprint import VideoOutput
from schemas.events import OutputSpec

DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 1280, 720, 30
AUDIO_FADE_IN_S, AUDIO_FADE_OUT_S = 0.5, 1.5


def video_output(uri: str, spec: OutputSpec | None = None, *, overlays: bool = True) -> VideoOutput:
    """A ``VideoOutput`` for ``uri``: size and fps from ``spec`` (else 1280x720 at 30 fps)."""
    return VideoOutput(
        uri=uri,
        width=spec.width if spec else DEFAULT_WIDTH,
        height=spec.height if spec else DEFAULT_HEIGHT,
        fps=spec.fps if spec else DEFAULT_FPS,
        codec="h264",
        audio_fade_in_s=AUDIO_FADE_IN_S,
        audio_fade_out_s=AUDIO_FADE_OUT_S,
        overlays={"count_numbers": True, "move_names": overlays},  # type: ignore[arg-type]
    )
