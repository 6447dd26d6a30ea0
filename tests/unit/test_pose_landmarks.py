"""MediaPipe landmarks onto the skeleton: axes, sides, derived joints, gaps, One Euro smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from choreography.moves import pose_landmarks as lm
from choreography.moves.skeleton import JOINT_INDEX as J
from schemas.errors import InvalidInput


def _standing(frames: int = 1) -> np.ndarray:
    """MediaPipe world landmarks of a person facing the camera (y down, z away from it)."""
    points = np.zeros((lm.NUM_LANDMARKS, 3))
    left = {  # the person's left is the image's right: +x in MediaPipe
        lm.LEFT_SHOULDER: (0.18, -0.50, 0.0), lm.LEFT_ELBOW: (0.22, -0.25, 0.0),
        lm.LEFT_WRIST: (0.24, 0.0, -0.20), lm.LEFT_HIP: (0.10, 0.0, 0.0),
        lm.LEFT_KNEE: (0.10, 0.42, 0.0), lm.LEFT_ANKLE: (0.10, 0.85, 0.05),
        lm.LEFT_EAR: (0.07, -0.66, 0.05),
    }  # fmt: skip
    for index, (x, y, z) in left.items():
        points[index] = (x, y, z)
        points[index + 1] = (-x, y, z)  # each right landmark follows its left one
    points[lm.NOSE] = (0.0, -0.66, -0.10)  # the nose is nearer the camera than the ears
    return np.repeat(points[None], frames, axis=0)


def test_axes_flip_y_and_z_and_keep_the_sides() -> None:
    """Up is +y, towards the camera is +z, the person's left (MediaPipe left) is +x."""
    skeleton = lm.skeleton_from_landmarks(_standing())[0]
    assert skeleton[J["l_shoulder"], 0] == pytest.approx(0.18)
    assert skeleton[J["r_shoulder"], 0] == pytest.approx(-0.18)
    assert skeleton[J["l_shoulder"], 1] == pytest.approx(0.50)  # above the hips
    assert skeleton[J["l_ankle"], 1] == pytest.approx(-0.85)  # below them
    assert skeleton[J["l_wrist"], 2] == pytest.approx(0.20)  # reaching towards the camera


def test_pelvis_neck_spine_and_head_are_derived() -> None:
    """Pelvis and neck are midpoints, the spine halfway, the head at the ears towards the nose."""
    skeleton = lm.skeleton_from_landmarks(_standing())[0]
    np.testing.assert_allclose(skeleton[J["pelvis"]], (0.0, 0.0, 0.0), atol=1e-6)
    np.testing.assert_allclose(skeleton[J["neck"]], (0.0, 0.50, 0.0), atol=1e-6)
    np.testing.assert_allclose(skeleton[J["spine"]], (0.0, 0.25, 0.0), atol=1e-6)
    head = skeleton[J["head"]]
    assert head[1] == pytest.approx(0.66)
    assert head[2] == pytest.approx(-0.05 + 0.25 * (0.10 + 0.05))  # ears, a quarter to the nose


def test_wrong_landmark_shape_is_invalid_input() -> None:
    """An array that is not (frames, 33, 3) is refused naming the shape."""
    with pytest.raises(InvalidInput, match=r"\(frames, 33, 3\)"):
        lm.skeleton_from_landmarks(np.zeros((4, 17, 3)))


def test_gaps_are_the_runs_without_a_person() -> None:
    """Runs of absent frames, inclusive, at the edges and inside."""
    present = np.array([0, 1, 1, 0, 0, 1, 0], dtype=bool)
    assert [(g.first, g.last, g.frames) for g in lm.gaps(present)] == [
        (0, 0, 1), (3, 4, 2), (6, 6, 1),
    ]  # fmt: skip
    assert str(lm.gaps(present)[1]) == "frames 3-4"


def test_fill_gaps_interpolates_linearly_and_holds_the_edges() -> None:
    """Missing frames inside are interpolated; before the first seen frame the first is held."""
    values = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan])
    present = np.isfinite(values)
    np.testing.assert_allclose(lm.fill_gaps(values, present), [1, 1, 2, 3, 4, 4])


def test_one_euro_smooths_jitter_when_still() -> None:
    """A still point with noise comes out with far less noise."""
    rng = np.random.default_rng(1)
    noisy = 1.0 + rng.normal(0, 0.01, size=(300, 1))
    smooth = lm.one_euro(noisy, 30.0, min_cutoff=1.0, beta=1.0)
    assert smooth[50:].std() < 0.4 * noisy[50:].std()


def test_one_euro_follows_fast_motion_with_less_lag_for_higher_beta() -> None:
    """A fast ramp lags behind less when beta is larger (the cutoff opens with speed)."""
    ramp = np.linspace(0, 3, 90)[:, None]  # 1 m/s at 30 fps
    slow = lm.one_euro(ramp, 30.0, min_cutoff=1.0, beta=0.0)
    fast = lm.one_euro(ramp, 30.0, min_cutoff=1.0, beta=5.0)
    assert abs(ramp[-1, 0] - fast[-1, 0]) < 0.5 * abs(ramp[-1, 0] - slow[-1, 0])
    assert lm.one_euro(ramp, 30.0, min_cutoff=1.0, beta=0.0)[0, 0] == 0.0


def test_pelvis_travel_follows_the_image_and_ignores_a_switch_of_people() -> None:
    """Hips moving up in the picture rise in metres; a jump of more than a torso is dropped."""
    frames = 6
    world = _standing(frames)
    image = np.zeros((frames, lm.NUM_LANDMARKS, 2))
    image[:, [lm.LEFT_SHOULDER, lm.RIGHT_SHOULDER], 1] = 0.25  # torso: 0.25 of 1000 px
    image[:, [lm.LEFT_HIP, lm.RIGHT_HIP], 1] = 0.5
    image[:, :, 1] -= np.array([0, 0.02, 0.04, 0.04, 0.04, 0.04])[:, None]  # rises 40 px
    image[4:, :, 0] += 0.9  # another person, 900 px to the side
    travel = lm.pelvis_travel(world, image, np.ones(frames, bool), 1000, 1000)
    # 0.5 m of world torso over 250 px: 2 mm a pixel
    np.testing.assert_allclose(travel[:, 1], [0, 0.04, 0.08, 0.08, 0.08, 0.08], atol=1e-9)
    np.testing.assert_allclose(travel[:, 0], 0.0, atol=1e-9)
