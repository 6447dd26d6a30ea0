"""A small BVH reader: the HIERARCHY (joints, offsets, channels, end sites), the MOTION table,
and forward kinematics to world joint positions.

Rotation channels apply in the order the file lists them (``Zrotation Xrotation Yrotation``
means ``R = Rz @ Rx @ Ry`` acting on column vectors), angles in degrees; a joint's world
transform is its parent's transform times ``translate(offset [+ position channels]) @ R``.
Every malformed input raises ``InvalidInput`` naming the file, the line and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from schemas.errors import InvalidInput

_ROTATIONS = ("Xrotation", "Yrotation", "Zrotation")
_POSITIONS = ("Xposition", "Yposition", "Zposition")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BvhJoint:
    """One ROOT/JOINT (or an End Site, which has no channels and an ``_end`` name suffix)."""

    name: str
    parent: int  # index into BvhMotion.joints; -1 for the root
    offset: tuple[float, float, float]
    channels: tuple[str, ...]
    channel_start: int  # first column of this joint's channels in a MOTION row


@dataclass(frozen=True)
class BvhMotion:
    """A parsed BVH file: joints in file order and the per-frame channel values."""

    source: str
    joints: tuple[BvhJoint, ...]
    values: FloatArray  # (frames, total channels)
    frame_time_s: float

    @property
    def frames(self) -> int:
        """Number of MOTION rows."""
        return int(self.values.shape[0])

    def joint_index(self, name: str) -> int:
        """Index of the joint called ``name``; ``InvalidInput`` if it is not in the file."""
        for i, joint in enumerate(self.joints):
            if joint.name == name:
                return i
        raise InvalidInput(f"{self.source}: no joint named {name!r}")


class _Tokens:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.items = [
            (word, number)
            for number, line in enumerate(text.splitlines(), start=1)
            for word in line.split()
        ]
        self.pos = 0

    def fail(self, expected: str) -> InvalidInput:
        if self.pos >= len(self.items):
            return InvalidInput(f"{self.source}: unexpected end of file, expected {expected}")
        word, line = self.items[self.pos]
        return InvalidInput(f"{self.source}:{line}: expected {expected}, found {word!r}")

    def next(self, expected: str) -> str:
        if self.pos >= len(self.items):
            raise self.fail(expected)
        word = self.items[self.pos][0]
        self.pos += 1
        return word

    def expect(self, keyword: str) -> None:
        if self.pos >= len(self.items) or self.items[self.pos][0] != keyword:
            raise self.fail(repr(keyword))
        self.pos += 1

    def number(self, expected: str) -> float:
        word = self.next(expected)
        try:
            return float(word)
        except ValueError:
            self.pos -= 1
            raise self.fail(expected) from None


def read_bvh(path: Path) -> BvhMotion:
    """Parse the BVH file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read BVH file: {error}") from None
    return parse_bvh(text, source=str(path))


def parse_bvh(text: str, source: str = "<bvh>") -> BvhMotion:
    """Parse BVH text; ``source`` names it in error messages."""
    tokens = _Tokens(text, source)
    tokens.expect("HIERARCHY")
    tokens.expect("ROOT")
    joints: list[BvhJoint] = []
    _parse_joint(tokens, joints, parent=-1)
    tokens.expect("MOTION")
    tokens.expect("Frames:")
    frames = tokens.number("the frame count")
    if frames != int(frames) or frames < 1:
        raise InvalidInput(f"{source}: Frames: must be a positive integer, got {frames}")
    tokens.expect("Frame")
    tokens.expect("Time:")
    frame_time = tokens.number("the frame time in seconds")
    if not frame_time > 0:
        raise InvalidInput(f"{source}: Frame Time: must be positive, got {frame_time}")
    width = sum(len(j.channels) for j in joints)
    values = _motion_table(tokens, int(frames), width)
    return BvhMotion(source, tuple(joints), values, frame_time)


def _parse_joint(tokens: _Tokens, joints: list[BvhJoint], parent: int) -> None:
    name = tokens.next("a joint name")
    tokens.expect("{")
    tokens.expect("OFFSET")
    offset = (tokens.number("x"), tokens.number("y"), tokens.number("z"))
    tokens.expect("CHANNELS")
    count = tokens.number("the channel count")
    channels = tuple(tokens.next("a channel name") for _ in range(int(count)))
    for channel in channels:
        if channel not in _ROTATIONS + _POSITIONS:
            tokens.pos -= 1
            raise tokens.fail("a channel name (X/Y/Z position or rotation)")
    start = sum(len(j.channels) for j in joints)
    index = len(joints)
    joints.append(BvhJoint(name, parent, offset, channels, start))
    while True:
        word = tokens.next("JOINT, End Site or '}'")
        if word == "}":
            return
        if word == "JOINT":
            _parse_joint(tokens, joints, parent=index)
        elif word == "End":
            tokens.expect("Site")
            tokens.expect("{")
            tokens.expect("OFFSET")
            end = (tokens.number("x"), tokens.number("y"), tokens.number("z"))
            tokens.expect("}")
            joints.append(BvhJoint(f"{name}_end", index, end, (), start + len(channels)))
        else:
            tokens.pos -= 1
            raise tokens.fail("JOINT, End Site or '}'")


def _motion_table(tokens: _Tokens, frames: int, width: int) -> FloatArray:
    words = tokens.items[tokens.pos :]
    if len(words) != frames * width:
        raise InvalidInput(
            f"{tokens.source}: MOTION has {len(words)} values, expected {frames} frames x "
            f"{width} channels = {frames * width}"
        )
    try:
        values = np.array([word for word, _ in words], dtype=np.float64)
    except ValueError:
        bad = next(item for item in words if not _is_number(item[0]))
        raise InvalidInput(f"{tokens.source}:{bad[1]}: not a number: {bad[0]!r}") from None
    return values.reshape(frames, width)


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def rotation_matrices(axis: str, degrees: FloatArray) -> FloatArray:
    """Rotation matrices ``(n, 3, 3)`` about ``axis`` ('X', 'Y' or 'Z') for angles in degrees."""
    radians = np.deg2rad(degrees)
    c, s = np.cos(radians), np.sin(radians)
    one, zero = np.ones_like(c), np.zeros_like(c)
    rows = {
        "X": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "Y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "Z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def world_positions(motion: BvhMotion) -> FloatArray:
    """Forward kinematics: world positions ``(frames, joints, 3)`` of every joint and end site."""
    frames = motion.frames
    rotations = np.empty((len(motion.joints), frames, 3, 3))
    positions = np.empty((frames, len(motion.joints), 3))
    for i, joint in enumerate(motion.joints):
        local = np.broadcast_to(np.eye(3), (frames, 3, 3)).copy()
        translation = np.broadcast_to(np.array(joint.offset), (frames, 3)).copy()
        for k, channel in enumerate(joint.channels):
            column = motion.values[:, joint.channel_start + k]
            if channel in _POSITIONS:
                translation[:, _POSITIONS.index(channel)] += column
            else:
                local = local @ rotation_matrices(channel[0], column)
        if joint.parent < 0:
            rotations[i] = local
            positions[:, i] = translation
        else:
            parent_rotation = rotations[joint.parent]
            offset = np.einsum("fij,fj->fi", parent_rotation, translation)
            positions[:, i] = positions[:, joint.parent] + offset
            rotations[i] = parent_rotation @ local
    return positions
