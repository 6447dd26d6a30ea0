"""The practice page's HTML: built from the blueprint, with every user text escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from job.practice_page import practice_page, timeline_svg
from schemas.blueprint import parse_blueprint
from tests.fixtures.blueprints import MovePlan, build_blueprint

HOSTILE = '<script>alert("x")</script> & "quoted"'


def _blueprint() -> object:
    document = build_blueprint([MovePlan("moves/a.mp4", counts=4, name=HOSTILE)] * 3)
    document["song"]["title"] = HOSTILE
    document["moves_used"][2]["section"] = {"label": "</li><b>", "index": 1, "repeat_of": None}
    return parse_blueprint(document)


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.buttons: list[dict[str, str | None]] = []
        self.video: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if tag == "button":
            self.buttons.append(dict(attrs))
        if tag == "video":
            self.video = dict(attrs)


def test_user_text_is_escaped_so_the_page_has_only_its_own_script() -> None:
    """A title, move name and section label full of markup appear as text, not tags."""
    page = practice_page(_blueprint(), "t.mp4")  # type: ignore[arg-type]
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.scripts == 1
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert "&lt;/li&gt;&lt;b&gt;" in page


def test_the_page_plays_the_video_beside_it_and_offers_every_loop() -> None:
    """The video's src is the relative name; one loop button per section and 8-count, with its
    start and end in seconds; speed buttons 0.5, 0.75, 1 and a mirror toggle."""
    page = practice_page(_blueprint(), "task test.mp4", [("0.5x video", "t-slow050.mp4")])  # type: ignore[arg-type]
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.video["src"] == "task test.mp4"
    loops = [b for b in parsed.buttons if b.get("class") == "loop"]
    # 12 beats: sections [0, 4 s) and [4 s, 6 s); 8-counts from 0 s and from 4 s.
    assert [(b["data-start"], b["data-end"]) for b in loops] == [
        ("0.0", "4.0"), ("4.0", "6.0"), ("0.0", "4.0"), ("4.0", "6.0"),
    ]  # fmt: skip
    assert [b["data-rate"] for b in parsed.buttons if b.get("class") == "speed"] == [
        "0.5", "0.75", "1",
    ]  # fmt: skip
    assert any(b.get("id") == "mirror" for b in parsed.buttons)
    assert 'href="t-slow050.mp4"' in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page must load nothing remote"


def test_the_timeline_has_one_block_per_move_over_the_video_length() -> None:
    """Three 2-second moves of a 6-second video are blocks at x 0, 333.3 and 666.7 of 1000."""
    svg = timeline_svg(_blueprint())  # type: ignore[arg-type]
    assert re.findall(r'<rect x="([0-9.]+)" y="0" width="([0-9.]+)" height="40" fill', svg) == [
        ("0.0", "333.3"), ("333.3", "333.3"), ("666.7", "333.3"),
    ]  # fmt: skip
