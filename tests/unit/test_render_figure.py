"""The dancer figure: output size, depth order, contact shadow, the following camera."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from choreography.moves.figure import render_figure
from choreography.moves.figure_camera import Camera, follow_path
from choreography.moves.figure_stage import stage_for
from choreography.moves.render import (
    ClipFormat,
    RenderError,
    draw_frames,
    encode_h264,
    render_clip,
    sample_poses,
)
from choreography.moves.skeleton import JOINT_INDEX, NUM_JOINTS, PELVIS, rest_pose
from choreography.planner.output import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH

SMALL = ClipFormat(320, 180, 30)


def _frame(pose: npt.NDArray[np.float32], fmt: ClipFormat = SMALL) -> npt.NDArray[np.uint8]:
    """The single frame of a one-pose clip."""
    frames = draw_frames(pose[None].astype(np.float32), float(fmt.fps), fmt)
    assert frames.shape[0] == 1
    frame: npt.NDArray[np.uint8] = frames[0]
    return frame


def _pixel(point: tuple[float, float, float], fmt: ClipFormat = SMALL) -> tuple[int, int]:
    """(row, column) where a world point lands for a camera following a pelvis at the origin."""
    camera = Camera(fmt.width, fmt.height)
    pixels, _ = camera.project(np.array([point], np.float32), camera.eye([[0.0, 0.0]]))
    return int(pixels[0, 1]), int(pixels[0, 0])


def test_default_clip_format_is_the_job_output_size() -> None:
    """Clips are rendered at the job's default output (1280x720 at 30 fps), never upscaled."""
    fmt = ClipFormat()
    assert (fmt.width, fmt.height, fmt.fps) == (DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS)
    frame = _frame(rest_pose(), fmt)
    assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8


def test_frames_follow_the_clip_rate_and_size() -> None:
    """One second of 60 fps motion gives 12 frames of 64x64 at 12 fps."""
    keypoints = np.repeat(rest_pose()[None], 60, axis=0)
    frames = draw_frames(keypoints, 60.0, ClipFormat(64, 64, 12))
    assert frames.shape == (12, 64, 64, 3)


def test_the_figure_is_drawn_where_the_body_is() -> None:
    """The chest is shirt-red and the floor beside the dancer is not."""
    frame = _frame(rest_pose()).astype(int)
    chest = frame[_pixel((0.0, 1.3, 0.1))]
    beside = frame[_pixel((0.8, 1.3, 0.0))]
    assert chest[0] > chest[1] + 60  # red dominates
    assert abs(int(beside[0]) - int(beside[1])) < 20  # the grey backdrop


def test_an_arm_in_front_of_the_torso_covers_it_and_behind_is_hidden() -> None:
    """A forearm across the chest paints over the shirt; the same arm behind the back is hidden."""
    elbow, wrist = JOINT_INDEX["l_elbow"], JOINT_INDEX["l_wrist"]
    front, behind = rest_pose(), rest_pose()
    front[elbow], front[wrist] = (0.06, 1.22, 0.26), (-0.14, 1.24, 0.24)
    behind[elbow], behind[wrist] = (0.06, 1.22, -0.26), (-0.14, 1.24, -0.24)
    baseline = _frame(rest_pose()).astype(int)
    where = _pixel((-0.04, 1.23, 0.25))  # the middle of the front forearm, over the chest
    in_front, hidden = _frame(front).astype(int)[where], _frame(behind).astype(int)[where]
    assert baseline[where][0] > baseline[where][1] + 60  # without the arm: the red shirt
    assert in_front[1] > baseline[where][1] + 40  # skin (far more green than the shirt)
    assert hidden.tolist() == baseline[where].tolist()


def test_the_contact_shadow_darkens_the_floor_by_the_feet_and_not_far_away() -> None:
    """In front of planted feet the floor is darker than bare floor; lifted, lighter; far, equal."""
    standing = rest_pose()
    jumping = standing + np.array([0.0, 0.5, 0.0], np.float32)
    near, far = _pixel((0.1, 0.0, 0.21)), _pixel((1.6, 0.0, 0.21))
    bare = stage_for(SMALL.width, SMALL.height).frame((0.0, 0.0), []).astype(int)
    on_floor, in_air = _frame(standing).astype(int), _frame(jumping).astype(int)
    assert on_floor[near].sum() < 0.8 * bare[near].sum()
    assert on_floor[near].sum() < in_air[near].sum() - 10
    assert on_floor[far].tolist() == in_air[far].tolist() == bare[far].tolist()


def test_the_camera_follows_a_travelling_dancer_without_overshoot() -> None:
    """Two metres of travel: the camera starts on the pelvis, never passes it, and catches up."""
    fps = 30.0
    travel = np.concatenate([np.linspace(0.0, 2.0, 60), np.full(90, 2.0)])
    target = np.stack([travel, np.zeros_like(travel)], axis=1)
    path = follow_path(target, fps)
    assert path[0].tolist() == [0.0, 0.0]
    assert np.all(np.diff(path[:, 0]) >= -1e-6) and path[:, 0].max() <= 2.0 + 1e-6
    assert abs(float(path[-1, 0]) - 2.0) < 0.02
    # The travelling pelvis stays in the middle half of the frame all along.
    camera = Camera(1280, 720)
    pelvis = np.stack([travel, np.ones_like(travel), np.zeros_like(travel)], axis=1)
    columns = camera.project(pelvis, camera.eye(path))[0][:, 0]
    assert columns.min() > 320 and columns.max() < 960


def test_a_jittery_pelvis_gives_a_much_smoother_camera_path() -> None:
    """3 cm of frame-to-frame pelvis jitter moves the camera 20 times less (second differences)."""
    rng = np.random.default_rng(17)
    target = rng.normal(0.0, 0.03, size=(300, 2))
    path = follow_path(target, 30.0)
    shake = np.abs(np.diff(target, n=2, axis=0)).mean()
    assert np.abs(np.diff(path, n=2, axis=0)).mean() < shake / 20
    assert np.array_equal(path, follow_path(target, 30.0))  # deterministic per clip


def test_the_camera_path_comes_from_the_pelvis_floor_position() -> None:
    """A dancer who travels to x = 1 m is still drawn in the middle of the last frame."""
    keypoints = np.repeat(rest_pose()[None], 90, axis=0)
    keypoints[:, :, 0] += np.linspace(0.0, 1.0, 90, dtype=np.float32)[:, None]
    keypoints = np.concatenate([keypoints, np.repeat(keypoints[-1:], 60, axis=0)])
    last = draw_frames(keypoints, 30.0, SMALL)[-1].astype(int)
    red = (last[..., 0] - last[..., 1]) > 60  # the shirt
    columns = np.flatnonzero(red.any(axis=0))
    assert abs((columns.min() + columns.max()) / 2 - SMALL.width / 2) < 0.05 * SMALL.width


def test_poses_are_interpolated_to_the_clip_rate() -> None:
    """60 fps motion sampled at 12 fps and 45 fps lands between source frames linearly."""
    keypoints = np.zeros((60, NUM_JOINTS, 3), np.float32)
    keypoints[:, PELVIS, 0] = np.arange(60, dtype=np.float32)
    sampled = sample_poses(keypoints, 60.0, ClipFormat(64, 64, 45))
    assert sampled.shape == (45, NUM_JOINTS, 3)
    assert sampled[1, PELVIS, 0] == pytest.approx(60 / 45)


@pytest.mark.parametrize(
    ("keypoints", "message"),
    [
        (np.zeros((4, 15, 3), np.float32), "(frames, 16, 3)"),
        (np.zeros((0, 16, 3), np.float32), "(frames, 16, 3)"),
        (np.full((2, 16, 3), np.nan, np.float32), "not finite"),
    ],
)
def test_bad_keypoints_are_refused_with_the_problem(
    keypoints: npt.NDArray[np.float32], message: str
) -> None:
    """Keypoints of the wrong shape or with NaNs fail with a message naming the problem."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(render_figure(keypoints, 30.0, 64, 64))


def test_bad_clip_formats_and_paths_are_refused() -> None:
    """Odd or tiny sizes, a zero frame rate and a malformed target path name the problem."""
    with pytest.raises(ValueError, match="even and at least 16x16"):
        ClipFormat(101, 64, 12)
    with pytest.raises(ValueError, match="frame rate"):
        ClipFormat(64, 64, 0)
    with pytest.raises(ValueError, match=r"\(frames, 2\)"):
        follow_path(np.zeros((5, 3)), 30.0)
    with pytest.raises(ValueError, match="positive frame rate"):
        follow_path(np.zeros((5, 2)), 0.0)


def test_a_clip_encodes_to_h264_of_its_format(tmp_path: Path) -> None:
    """ClipFormat(64, 64, 12) gives a 64x64 H.264 yuv420p clip at 12 fps, one frame per 1/12 s."""
    keypoints = np.repeat(rest_pose()[None], 60, axis=0)
    clip = tmp_path / "small.mp4"
    frames = render_clip(keypoints, 30.0, clip, ClipFormat(64, 64, 12))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,pix_fmt,width,height,nb_read_frames,r_frame_rate", "-of", "json",
         str(clip)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert (stream["width"], stream["height"], stream["r_frame_rate"]) == (64, 64, "12/1")
    assert int(stream["nb_read_frames"]) == frames == 24


def test_ffmpeg_failing_names_the_clip_and_its_error(tmp_path: Path) -> None:
    """An output ffmpeg cannot write raises RenderError with the path and ffmpeg's message."""
    frames = [np.zeros((16, 16, 3), np.uint8)] * 3
    with pytest.raises(RenderError, match=r"ffmpeg failed for .*clip\.nosuchformat .*format"):
        encode_h264(frames, ClipFormat(16, 16, 12), tmp_path / "clip.nosuchformat")


def test_a_frame_of_the_wrong_size_stops_the_encode(tmp_path: Path) -> None:
    """A frame that does not match the clip format is refused, naming its index and shape."""
    frames = [np.zeros((16, 16, 3), np.uint8), np.zeros((16, 18, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"frame 1 is \(16, 18, 3\)"):
        encode_h264(frames, ClipFormat(16, 16, 12), tmp_path / "clip.mp4")
