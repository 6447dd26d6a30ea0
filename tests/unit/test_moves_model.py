"""The Move model: validation, keypoint bytes, edge poses, energy levels."""

from __future__ import annotations

import struct
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from choreography.moves.model import (
    ENERGY_VALUES,
    STYLES,
    Move,
    energy_level,
    keypoints_from_bytes,
    keypoints_to_bytes,
    pack_keypoints,
    unpack_keypoints,
)
from choreography.moves.skeleton import BONES, JOINT_INDEX, JOINTS, NUM_JOINTS, PELVIS, rest_pose
from schemas.errors import InvalidInput


def _keypoints(frames: int = 30) -> np.ndarray:
    rng = np.random.default_rng(1)
    base = np.repeat(rest_pose()[None], frames, axis=0)
    return (base + rng.normal(0, 0.01, base.shape)).astype(np.float32)


def _move(**overrides: Any) -> Move:
    fields: dict[str, Any] = {
        "move_id": "cross-body-lead",
        "name": "Cross-body lead",
        "style": "salsa",
        "difficulty": "intermediate",
        "energy": "medium",
        "tempo_bpm": 120.0,
        "counts": 8,
        "clip_uri": "moves/salsa/cross-body-lead.mp4",
        "keypoints": _keypoints(),
        "fps": 30.0,
        "tags": ("partner",),
    }
    fields.update(overrides)
    return Move(**fields)


def test_valid_move_has_derived_duration_and_frames() -> None:
    """A valid move reports frames and duration from its keypoints and fps."""
    move = _move(keypoints=_keypoints(45), fps=30.0)
    assert move.frames == 45
    assert move.duration_s == pytest.approx(1.5)


def test_skeleton_bones_use_known_joints() -> None:
    """Every bone joins two joints of the canonical skeleton, and the pelvis is joint 0."""
    assert NUM_JOINTS == len(JOINTS) == 16
    assert PELVIS == 0
    assert all(a in JOINT_INDEX and b in JOINT_INDEX for a, b in BONES)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("style", "disco", "style: unknown style 'disco'"),
        ("difficulty", "expert", "difficulty: unknown difficulty 'expert'"),
        ("energy", "extreme", "energy: unknown energy 'extreme'"),
        ("move_id", "Cross Body", "move_id: 'Cross Body' is not a slug"),
        ("move_id", "-leading-dash", "move_id"),
        ("move_id", "x" * 65, "move_id"),
        ("name", "  ", "name: must be a non-empty string"),
        ("tempo_bpm", 0, "tempo_bpm: must be a positive number"),
        ("tempo_bpm", float("inf"), "tempo_bpm: must be finite"),
        ("fps", -30.0, "fps: must be a positive number"),
        ("counts", 0, "counts: must be a positive integer"),
        ("counts", True, "counts: must be a positive integer"),
        ("counts", 8.0, "counts: must be a positive integer"),
        ("clip_uri", "../etc/passwd", "clip_uri: must be a relative storage key"),
        ("clip_uri", "/abs/clip.mp4", "clip_uri: must be a relative storage key"),
        ("tags", ["list"], "tags: must be a tuple of strings"),
    ],
)
def test_invalid_field_is_named_in_the_error(field: str, value: object, expected: str) -> None:
    """A bad field raises InvalidInput whose message starts with that field's name."""
    with pytest.raises(InvalidInput) as error:
        _move(**{field: value})
    assert str(error.value).startswith(expected)


def test_unknown_style_error_lists_the_known_styles() -> None:
    """The unknown-style error tells the user which styles exist."""
    with pytest.raises(InvalidInput) as error:
        _move(style="polka")
    assert all(style in str(error.value) for style in STYLES)


@pytest.mark.parametrize(
    ("keypoints", "expected"),
    [
        (np.zeros((10, NUM_JOINTS, 2), np.float32), "expected shape"),
        (np.zeros((10, 15, 3), np.float32), "expected shape"),
        (np.zeros((0, NUM_JOINTS, 3), np.float32), "expected shape"),
        (np.zeros((10, NUM_JOINTS, 3), np.int32), "floating point"),
        (np.full((10, NUM_JOINTS, 3), np.nan, np.float32), "NaN"),
        ([[0.0]], "numpy array"),
    ],
)
def test_bad_keypoints_are_rejected(keypoints: object, expected: str) -> None:
    """Keypoints of the wrong shape, type or with NaN raise InvalidInput naming keypoints."""
    with pytest.raises(InvalidInput, match=expected) as error:
        _move(keypoints=keypoints)
    assert str(error.value).startswith("keypoints:")


def test_keypoints_are_stored_as_read_only_float32() -> None:
    """A move converts float64 keypoints to float32 and freezes them."""
    move = _move(keypoints=_keypoints().astype(np.float64))
    assert move.keypoints.dtype == np.float32
    with pytest.raises(ValueError, match="read-only"):
        move.keypoints[0, 0, 0] = 1.0


def test_keypoint_bytes_round_trip_exactly() -> None:
    """keypoints_to_bytes then keypoints_from_bytes gives back the same array."""
    keypoints = _keypoints(7)
    data = keypoints_to_bytes(keypoints)
    assert len(data) == 4 * 7 * NUM_JOINTS * 3
    assert np.array_equal(keypoints_from_bytes(data, keypoints.shape), keypoints)


def test_keypoint_bytes_are_little_endian_float32() -> None:
    """The first four bytes are the first value as a little-endian float32."""
    keypoints = _keypoints(2)
    data = keypoints_to_bytes(keypoints)
    assert data[:4] == struct.pack("<f", float(keypoints[0, 0, 0]))


def test_packed_keypoints_carry_their_shape() -> None:
    """pack_keypoints/unpack_keypoints round trip without knowing the shape in advance."""
    keypoints = _keypoints(5)
    assert np.array_equal(unpack_keypoints(pack_keypoints(keypoints)), keypoints)


@pytest.mark.parametrize("cut", [1, 4, 9])
def test_truncated_keypoint_bytes_are_rejected(cut: int) -> None:
    """Bytes shorter than their shape says raise InvalidInput instead of a garbled array."""
    keypoints = _keypoints(3)
    with pytest.raises(InvalidInput, match="keypoints"):
        keypoints_from_bytes(keypoints_to_bytes(keypoints)[:-cut], keypoints.shape)
    with pytest.raises(InvalidInput, match="keypoints"):
        unpack_keypoints(pack_keypoints(keypoints)[:-cut])


def test_start_and_end_pose_average_the_edges_pelvis_centred() -> None:
    """start_pose/end_pose are the pelvis-centred mean of the first/last 0.1 s."""
    keypoints = np.repeat(rest_pose()[None], 30, axis=0)
    keypoints[:3, JOINT_INDEX["l_wrist"], 1] += np.array([0.3, 0.6, 0.9], np.float32)
    keypoints[:, :, 0] += np.linspace(0, 2, 30, dtype=np.float32)[:, None]  # travels 2 m
    keypoints[-3:, JOINT_INDEX["head"], 2] += 0.3
    move = _move(keypoints=keypoints, fps=30.0)  # 0.1 s = 3 frames
    rest = rest_pose() - rest_pose()[PELVIS]
    start, end = move.start_pose, move.end_pose
    assert start.shape == end.shape == (NUM_JOINTS, 3)
    assert start[JOINT_INDEX["l_wrist"], 1] == pytest.approx(rest[JOINT_INDEX["l_wrist"], 1] + 0.6)
    assert end[JOINT_INDEX["head"], 2] == pytest.approx(0.3)
    assert np.allclose(start[PELVIS], 0) and np.allclose(end[PELVIS], 0)
    wrist = JOINT_INDEX["l_wrist"]
    assert end[wrist, 0] == pytest.approx(rest[wrist, 0], abs=1e-5)  # travel is centred away


def test_edge_pose_of_a_one_frame_move_is_that_frame() -> None:
    """A move shorter than the pose window uses what frames it has."""
    move = _move(keypoints=_keypoints(1), fps=120.0)
    assert np.allclose(move.start_pose, move.end_pose)


def test_energy_levels_round_trip_through_numbers() -> None:
    """Each level's stored number reads back as the same level; numbers map by thirds."""
    for level, value in ENERGY_VALUES.items():
        assert energy_level(value) == level
        assert energy_level(float(np.float32(value))) == level
    assert [energy_level(v) for v in (0.0, 0.33, 0.34, 0.66, 0.67, 1.0)] == [
        "low", "low", "medium", "medium", "high", "high"
    ]  # fmt: skip
    with pytest.raises(InvalidInput, match="energy"):
        energy_level(1.5)


def test_moves_are_immutable() -> None:
    """A move's fields cannot be reassigned; replace() makes a validated copy."""
    move = _move()
    with pytest.raises(AttributeError):
        move.style = "pop"  # type: ignore[misc]
    with pytest.raises(InvalidInput, match="style"):
        replace(move, style="disco")
