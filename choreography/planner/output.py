"""The video output a plan asks for: the request's size, rate and practice renditions, or the
defaults."""

from __future__ import annotations

from schemas.blueprint import VideoOutput
from schemas.events import OutputSpec

DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 1280, 720, 30
AUDIO_FADE_IN_S, AUDIO_FADE_OUT_S = 0.5, 1.5


def video_output(uri: str, spec: OutputSpec | None = None, *, overlays: bool = True) -> VideoOutput:
    """A ``VideoOutput`` for ``uri``: size, fps and practice renditions from ``spec`` (else
    1280x720 at 30 fps, no renditions)."""
    spec = spec or OutputSpec()
    return VideoOutput(
        uri=uri,
        width=spec.width or DEFAULT_WIDTH,
        height=spec.height or DEFAULT_HEIGHT,
        fps=spec.fps or DEFAULT_FPS,
        codec="h264",
        audio_fade_in_s=AUDIO_FADE_IN_S,
        audio_fade_out_s=AUDIO_FADE_OUT_S,
        overlays={"count_numbers": True, "move_names": overlays},  # type: ignore[arg-type]
        practice=spec.practice,
    )
