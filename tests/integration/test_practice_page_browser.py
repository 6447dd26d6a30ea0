"""The practice page in a real headless Chromium, opened from file:// beside a real H.264 video."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from job.practice_page import practice_page
from schemas.blueprint import parse_blueprint
from tests.fixtures.blueprints import MovePlan, build_blueprint
from tests.fixtures.browser import HeadlessPage, find_chromium

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        find_chromium() is None, reason="no Chromium: infra/local/setup.sh installs it"
    ),
]

BPM = 240.0  # an 8-count lasts 2 s


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadlessPage]:
    """A 12-second page (a title full of markup, two sections) loaded with its video playing."""
    folder = tmp_path_factory.mktemp("page")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=48000", "-t", "12.5", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart",
         str(folder / "dance 1.mp4")],
        check=True,
    )  # fmt: skip
    document = build_blueprint(
        [MovePlan("moves/a.mp4", counts=8, name="Box <step>")] * 6, bpm=BPM, fps=24
    )
    document["song"]["title"] = "Song <b>&amp;</b>"
    for move in document["moves_used"][3:]:
        move["section"] = {"label": "chorus", "index": 1, "repeat_of": None}
    html = practice_page(parse_blueprint(document), "dance 1.mp4")
    (folder / "dance 1.html").write_text(html, encoding="utf-8")
    with HeadlessPage((folder / "dance 1.html").as_uri()) as opened:
        opened.wait_for("document.getElementById('video').readyState >= 2")
        opened.folder = folder  # type: ignore[attr-defined]
        yield opened


def test_a_loop_button_plays_inside_its_loop_and_wraps_at_its_end(page: HeadlessPage) -> None:
    """Clicking the second 8-count's button seeks into [2 s, 4 s) and plays; past 4 s the
    video jumps back to 2 s."""
    page.click("li.count:nth-of-type(4) button.loop")  # sections come first: 2 of them
    start, end = page.evaluate(
        "[...document.querySelectorAll('button.loop.on')].map(b => [Number(b.dataset.start),"
        " Number(b.dataset.end)])[0]"
    )
    assert (start, end) == (2.0, 4.0)
    page.wait_for("!document.getElementById('video').paused")
    position = page.evaluate("document.getElementById('video').currentTime")
    assert start <= position < end
    page.evaluate("document.getElementById('video').currentTime = 3.9")
    page.wait_for(
        "(() => { const t = document.getElementById('video').currentTime;"
        " return t >= 2.0 && t < 3.0; })()",
        timeout_s=5,
    )


def test_the_mirror_toggle_flips_the_video_only(page: HeadlessPage) -> None:
    """The video's computed transform is scaleX(-1) after a click (its native controls, which
    would be mirrored with it, hidden), none after a second one; the heading is never flipped."""
    transform = "getComputedStyle(document.getElementById('video')).transform"
    assert page.evaluate(transform) == "none"
    page.click("#mirror")
    assert page.evaluate(transform) == "matrix(-1, 0, 0, 1, 0, 0)"
    assert page.evaluate("document.getElementById('mirror').getAttribute('aria-pressed')") == (
        "true"
    )
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).transform") == "none"
    assert page.evaluate("document.getElementById('video').controls") is False
    page.screenshot(page.folder / "practice-page.png")  # type: ignore[attr-defined]
    assert (page.folder / "practice-page.png").stat().st_size > 10_000  # type: ignore[attr-defined]
    page.click("#mirror")
    assert page.evaluate(transform) == "none"
    assert page.evaluate("document.getElementById('video').controls") is True


def test_speed_buttons_set_the_rate_and_keep_the_pitch(page: HeadlessPage) -> None:
    """0.5x sets playbackRate 0.5 with preservesPitch on; 1x sets it back."""
    page.click("button.speed[data-rate='0.5']")
    assert page.evaluate("document.getElementById('video').playbackRate") == 0.5
    assert page.evaluate("document.getElementById('video').preservesPitch") is True
    page.click("button.speed[data-rate='1']")
    assert page.evaluate("document.getElementById('video').playbackRate") == 1


def test_user_text_shows_as_text(page: HeadlessPage) -> None:
    """The escaped title is shown literally and added no element."""
    assert page.evaluate("document.querySelector('h1').textContent") == (
        "Practice: Song <b>&amp;</b>"
    )
    assert page.evaluate("document.querySelectorAll('h1 b').length") == 0


def test_the_play_button_pauses_and_resumes(page: HeadlessPage) -> None:
    """Play / pause works without the native controls (hidden while mirrored)."""
    playing = "!document.getElementById('video').paused"
    if not page.evaluate(playing):
        page.click("#play")
    page.wait_for(playing)
    page.click("#play")
    page.wait_for("document.getElementById('video').paused")
    page.click("#play")
    page.wait_for(playing)
