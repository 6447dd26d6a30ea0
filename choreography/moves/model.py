"""The move: a short dance clip with metadata and the keypoints of the motion in it.

A ``Move`` validates itself on construction and raises ``InvalidInput`` naming the field, so a
bad manifest row, a bad BVH split or a bad database row all fail the same way.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from choreography.moves.skeleton import NUM_JOINTS, Keypoints, centre_on_pelvis
from schemas.errors import InvalidInput

STYLES: Final[tuple[str, ...]] = ("hip-hop", "pop", "salsa", "contemporary", "house", "jazz")
DIFFICULTIES: Final[tuple[str, ...]] = ("beginner", "intermediate", "advanced")
ENERGIES: Final[tuple[str, ...]] = ("low", "medium", "high")
# The database keeps energy as a number in [0, 1] (so the planner can follow an energy curve);
# a level is stored as the middle of its third and read back by which third the number is in.
ENERGY_VALUES: Final[dict[str, float]] = {"low": 1 / 6, "medium": 0.5, "high": 5 / 6}


def difficulties_up_to(level: str | None) -> tuple[str, ...] | None:
    """The levels a dancer at ``level`` can dance: that one and every easier one (None: any)."""
    if level is None:
        return None
    _check_choice("difficulty", level, DIFFICULTIES)
    return DIFFICULTIES[: DIFFICULTIES.index(level) + 1]


MOVE_ID_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# The pose at a move's edge is averaged over this long, so one noisy frame does not decide it.
POSE_WINDOW_S: Final[float] = 0.1
# Storage keys are relative, forward-slash paths with no way out of the storage root.
_CLIP_URI_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
_SHAPE_HEADER: Final[struct.Struct] = struct.Struct("<III")


# A move cut from a longer capture names the window after it with this tag prefix, so the planner
# can dance the capture on across a cut (``planner.pipeline.with_continuations``).
NEXT_TAG: Final = "next:"


def next_move_of(tags: Sequence[str]) -> str | None:
    """The id a ``next:<move_id>`` tag names: the window that follows in the same capture."""
    return next((tag[len(NEXT_TAG) :] for tag in tags if tag.startswith(NEXT_TAG)), None)


@dataclass(frozen=True, eq=False)
class Move:
    """One move of the library; ``keypoints`` is ``(frames, joints, 3)`` float32 metres, y up."""

    move_id: str
    name: str
    style: str
    difficulty: str
    energy: str
    tempo_bpm: float
    counts: int
    clip_uri: str
    keypoints: Keypoints
    fps: float
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _check_choice("move_id", self.move_id, None)
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInput("name: must be a non-empty string")
        _check_choice("style", self.style, STYLES)
        _check_choice("difficulty", self.difficulty, DIFFICULTIES)
        _check_choice("energy", self.energy, ENERGIES)
        _check_positive("tempo_bpm", self.tempo_bpm)
        _check_positive("fps", self.fps)
        if isinstance(self.counts, bool) or not isinstance(self.counts, int) or self.counts < 1:
            raise InvalidInput(f"counts: must be a positive integer, got {self.counts!r}")
        uri = self.clip_uri
        if not isinstance(uri, str) or not _CLIP_URI_PATTERN.match(uri) or ".." in uri.split("/"):
            raise InvalidInput(f"clip_uri: must be a relative storage key, got {uri!r}")
        if not isinstance(self.tags, tuple) or not all(isinstance(t, str) for t in self.tags):
            raise InvalidInput(f"tags: must be a tuple of strings, got {self.tags!r}")
        object.__setattr__(self, "keypoints", _checked_keypoints(self.keypoints, self.fps))

    @property
    def frames(self) -> int:
        """Number of keypoint frames."""
        return int(self.keypoints.shape[0])

    @property
    def duration_s(self) -> float:
        """Length of the motion in seconds (frames / fps)."""
        return self.frames / self.fps

    @property
    def start_pose(self) -> Keypoints:
        """Pelvis-centred mean pose ``(joints, 3)`` of the first ~0.1 s."""
        return _edge_pose(self.keypoints, self._pose_window_frames(), first=True)

    @property
    def end_pose(self) -> Keypoints:
        """Pelvis-centred mean pose ``(joints, 3)`` of the last ~0.1 s."""
        return _edge_pose(self.keypoints, self._pose_window_frames(), first=False)

    def _pose_window_frames(self) -> int:
        return max(1, min(self.frames, round(POSE_WINDOW_S * self.fps)))


def _check_choice(field_name: str, value: object, allowed: tuple[str, ...] | None) -> None:
    if allowed is None:
        if not isinstance(value, str) or not MOVE_ID_PATTERN.match(value):
            raise InvalidInput(
                f"{field_name}: {value!r} is not a slug matching {MOVE_ID_PATTERN.pattern}"
            )
        return
    if value not in allowed:
        raise InvalidInput(f"{field_name}: unknown {field_name} {value!r}; one of {list(allowed)}")


def _check_positive(field_name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput(f"{field_name}: must be a positive number, got {value!r}")
    if not np.isfinite(value):
        raise InvalidInput(f"{field_name}: must be finite, got {value!r}")


def _checked_keypoints(keypoints: object, fps: float) -> Keypoints:
    if not isinstance(keypoints, np.ndarray):
        raise InvalidInput(f"keypoints: expected a numpy array, got {type(keypoints).__name__}")
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 3) or keypoints.shape[0] < 1:
        raise InvalidInput(
            f"keypoints: expected shape (frames>=1, {NUM_JOINTS}, 3), got {keypoints.shape}"
        )
    if not np.issubdtype(keypoints.dtype, np.floating):
        raise InvalidInput(f"keypoints: expected floating point values, got {keypoints.dtype}")
    if not np.all(np.isfinite(keypoints)):
        raise InvalidInput("keypoints: contains NaN or infinite values")
    converted = np.ascontiguousarray(keypoints, dtype=np.float32)
    converted.setflags(write=False)
    return converted


def _edge_pose(keypoints: Keypoints, window: int, *, first: bool) -> Keypoints:
    edge = keypoints[:window] if first else keypoints[-window:]
    pose: Keypoints = centre_on_pelvis(edge).mean(axis=0).astype(np.float32)
    return pose


def energy_level(value: float) -> str:
    """The level (``low|medium|high``) of an energy number in [0, 1], by thirds."""
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(f"energy: {value!r} is outside [0, 1]")
    if value < 1 / 3:
        return "low"
    return "medium" if value < 2 / 3 else "high"


def keypoints_to_bytes(keypoints: Keypoints) -> bytes:
    """Raw little-endian float32 bytes, row-major; the shape travels separately (DB columns)."""
    return np.ascontiguousarray(keypoints, dtype="<f4").tobytes()


def keypoints_from_bytes(data: bytes, shape: tuple[int, ...]) -> Keypoints:
    """Inverse of ``keypoints_to_bytes`` for a known shape; wrong length raises ``InvalidInput``."""
    expected = 4 * int(np.prod(shape))
    if len(data) != expected:
        raise InvalidInput(
            f"keypoints: {len(data)} bytes do not match shape {shape} ({expected} bytes)"
        )
    values: Keypoints = np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)
    return values


def pack_keypoints(keypoints: Keypoints) -> bytes:
    """Self-describing bytes: a ``<III`` shape header then little-endian float32 values."""
    if keypoints.ndim != 3:
        raise InvalidInput(f"keypoints: expected 3 dimensions, got shape {keypoints.shape}")
    frames, joints, dims = keypoints.shape
    return _SHAPE_HEADER.pack(frames, joints, dims) + keypoints_to_bytes(keypoints)


def unpack_keypoints(data: bytes) -> Keypoints:
    """Inverse of ``pack_keypoints``; a truncated or padded buffer raises ``InvalidInput``."""
    if len(data) < _SHAPE_HEADER.size:
        raise InvalidInput(f"keypoints: {len(data)} bytes is shorter than the shape header")
    shape = _SHAPE_HEADER.unpack_from(data)
    return keypoints_from_bytes(data[_SHAPE_HEADER.size :], shape)
