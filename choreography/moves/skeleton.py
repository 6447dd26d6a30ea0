"""The canonical skeleton every keypoint array in choreo uses.

A keypoint array has shape ``(frames, len(JOINTS), 3)``, dtype float32, in metres, in a
right-handed frame with **y up**; the dancer faces **+z** (towards the camera) at rest, so the
dancer's left is **+x** (the viewer's right). Arrays may be in world coordinates (the pelvis
travels) or pelvis-centred per frame (``centre_on_pelvis``): stored move keypoints keep world
coordinates so travel is visible; poses used for continuity (``Move.start_pose``) are
pelvis-centred so a move's position on the floor does not count as a pose jump.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

JOINTS: Final[tuple[str, ...]] = (
    "pelvis",
    "spine",
    "neck",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_hip",
    "r_knee",
    "r_ankle",
)
JOINT_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(JOINTS)}
NUM_JOINTS: Final[int] = len(JOINTS)
PELVIS: Final[int] = JOINT_INDEX["pelvis"]

# Parent -> child pairs, for drawing stick figures and for bone-length checks.
BONES: Final[tuple[tuple[str, str], ...]] = (
    ("pelvis", "spine"),
    ("spine", "neck"),
    ("neck", "head"),
    ("neck", "l_shoulder"),
    ("l_shoulder", "l_elbow"),
    ("l_elbow", "l_wrist"),
    ("neck", "r_shoulder"),
    ("r_shoulder", "r_elbow"),
    ("r_elbow", "r_wrist"),
    ("pelvis", "l_hip"),
    ("l_hip", "l_knee"),
    ("l_knee", "l_ankle"),
    ("pelvis", "r_hip"),
    ("r_hip", "r_knee"),
    ("r_knee", "r_ankle"),
)
BONE_INDICES: Final[tuple[tuple[int, int], ...]] = tuple(
    (JOINT_INDEX[a], JOINT_INDEX[b]) for a, b in BONES
)

Keypoints = npt.NDArray[np.float32]


def centre_on_pelvis(keypoints: Keypoints) -> Keypoints:
    """Copy of ``(frames, joints, 3)`` keypoints with the pelvis at the origin in every frame."""
    centred = keypoints - keypoints[:, PELVIS : PELVIS + 1, :]
    return centred.astype(np.float32, copy=False)


def rest_pose() -> Keypoints:
    """A standing neutral pose ``(joints, 3)``, arms hanging, pelvis at 1.0 m (for generators)."""
    positions = {
        "pelvis": (0.0, 1.00, 0.0),
        "spine": (0.0, 1.25, 0.0),
        "neck": (0.0, 1.50, 0.0),
        "head": (0.0, 1.68, 0.0),
        "l_shoulder": (0.19, 1.47, 0.0),
        "l_elbow": (0.21, 1.19, 0.0),
        "l_wrist": (0.22, 0.94, 0.0),
        "r_shoulder": (-0.19, 1.47, 0.0),
        "r_elbow": (-0.21, 1.19, 0.0),
        "r_wrist": (-0.22, 0.94, 0.0),
        "l_hip": (0.10, 0.95, 0.0),
        "l_knee": (0.10, 0.52, 0.0),
        "l_ankle": (0.10, 0.08, 0.0),
        "r_hip": (-0.10, 0.95, 0.0),
        "r_knee": (-0.10, 0.52, 0.0),
        "r_ankle": (-0.10, 0.08, 0.0),
    }
    return np.array([positions[name] for name in JOINTS], dtype=np.float32)
